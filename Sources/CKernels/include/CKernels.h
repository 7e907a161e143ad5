#ifndef GRAFT_CKERNELS_H
#define GRAFT_CKERNELS_H

/// Vectorised element-wise kernels on contiguous Float32 arrays, single-threaded
/// (callers split work across cores). On x86-64 each is compiled for AVX-512,
/// AVX2 + FMA and the baseline, and the loader picks the best the CPU supports.

/// `y[i] = scale * e^(x[i] - shift)`, with the exponent clamped to [-87.3, 88.3];
/// returns `Σ e^(x[i] - shift)`. `y` may be `x`, or NULL to compute only the sum.
/// Relative error below 3e-7.
float graft_exp(const float *x, float *y, float shift, float scale, long count);

/// GELU in the exact erf form, `x Φ(x)`, into `value`, and its derivative
/// `Φ(x) + x φ(x)` into `derivative` unless NULL. Absolute error below 2e-6.
void graft_gelu(const float *x, float *value, float *derivative, long count);

/// Replaces `row` by `scale` times the softmax of `z = row ⊙ factors + shifts`
/// (`factors` and `shifts` each NULL for none); returns `log Σ e^z`.
float graft_softmax(float *row, const float *factors, const float *shifts, float scale, long count);

/// Replaces `gradient` by the softmax pullback `scale · p ⊙ (gradient - Σ gradient ⊙ p)`,
/// given the softmax output `p`.
void graft_softmax_backward(float *gradient, const float *probabilities, float scale, long count);

/// Layer normalisation of one row of `width`: writes `γ x̂ + β` to `output`, with
/// `x̂ = (x - mean) / sqrt(variance + epsilon)` (biased variance), and `x̂` to
/// `normalized` unless NULL; returns `1 / sqrt(variance + epsilon)`.
float graft_layer_norm(const float *x, const float *gamma, const float *beta, float epsilon,
                       float *output, float *normalized, long width);

/// Replaces `gradient` (one row's upstream gradient) by the layer norm's input
/// gradient, given the row's `x̂`, `γ` and `1 / sqrt(variance + epsilon)`.
void graft_layer_norm_backward(float *gradient, const float *normalized, const float *gamma,
                               float inverse_deviation, long width);

/// `out = a + b`, `a - b`, `a * b`, `a / b` element by element (`out` may be `a` or `b`).
void graft_add(const float *a, const float *b, float *out, long count);
void graft_subtract(const float *a, const float *b, float *out, long count);
void graft_multiply(const float *a, const float *b, float *out, long count);
void graft_divide(const float *a, const float *b, float *out, long count);

/// `out = x * scale + offset` element by element (`out` may be `x`).
void graft_affine(const float *x, float scale, float offset, float *out, long count);

/// `y += factor * x` element by element.
void graft_accumulate(float *y, const float *x, float factor, long count);

/// `out = kept ? x * scale : 0` element by element (inverted dropout).
void graft_dropout(const float *x, const _Bool *kept, float scale, float *out, long count);

/// The constants of one AdamW step (see `graft_adamw`).
struct graft_adamw_step {
    float decay, beta1, beta2, step_size, correction2_root, epsilon;
};

/// One AdamW update in PyTorch's order and rounding: `p *= decay`,
/// `m += (g - m)(1 - β1)`, `v = β2 v + (1 - β2) g²`,
/// `p -= step_size · m / (sqrt(v) / correction2_root + ε)`.
void graft_adamw(float *parameter, const float *gradient, float *first, float *second, long count,
                 const struct graft_adamw_step *step);

/// Runs `task(context, item)` for every `item` in `0..<items` on the calling
/// thread and up to `threads - 1` persistent pool threads, and returns once
/// all have finished. Items are claimed one at a time, so a pool thread that
/// is slow to wake leaves its share to the others. Pool threads spin briefly
/// after their last item before they sleep, so the short parallel sections of
/// a training step do not pay a thread wake-up each. Returns 0 without running
/// anything when the pool is already running another call (from another
/// thread, or from inside a task): the caller then runs the items another way.
int graft_pool_run(void (*task)(void *context, long item), void *context, long items, long threads);

#endif
