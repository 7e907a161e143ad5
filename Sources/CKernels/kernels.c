#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__)
#define MULTIVERSIONED __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MULTIVERSIONED
#endif
// Helpers take vectors by pointer: by value their ABI would differ between the versions.
#define INLINE static inline __attribute__((always_inline))

/// Sixteen lanes: one AVX-512 register, two AVX2 ones, four SSE ones.
enum { lanes = 16 };
typedef float vector __attribute__((ext_vector_type(lanes)));
typedef unsigned bits __attribute__((ext_vector_type(lanes)));

/// Unaligned loads and stores.
INLINE void load(vector *v, const float *p) { memcpy(v, p, sizeof *v); }
INLINE void store(float *p, const vector *v) { memcpy(p, v, sizeof *v); }

/// The first `count` (< lanes) elements of `p` into `padded`, the other lanes `fill`.
INLINE void load_partial(const float *p, long count, float fill, float padded[lanes]) {
    for (long i = 0; i < lanes; i++) padded[i] = i < count ? p[i] : fill;
}

INLINE float sum(const vector *v) {
    float total = 0;
    for (int i = 0; i < lanes; i++) total += (*v)[i];
    return total;
}

INLINE float maximum(const vector *v) {
    float peak = (*v)[0];
    for (int i = 1; i < lanes; i++) peak = (*v)[i] > peak ? (*v)[i] : peak;
    return peak;
}

/// e^x per lane, in place: x = n ln2 + r with |r| <= ln2 / 2 (n rounded by the magic
/// constant 1.5 * 2^23), e^r by its degree-6 Taylor polynomial, 2^n from the exponent bits.
INLINE void exp_lanes(vector *v) {
    vector x = __builtin_elementwise_min(__builtin_elementwise_max(*v, (vector)(-87.3f)), (vector)(88.3f));
    vector shifted = x * 1.44269504f + 12582912.0f;
    vector n = shifted - 12582912.0f;
    vector r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    vector p = (vector)(1.0f / 720);
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1;
    p = p * r + 1;
    bits exponent = ((bits)shifted - 0x4B400000u + 127u) << 23;
    *v = p * (vector)exponent;
}

/// GELU and its derivative per lane; erf by Abramowitz and Stegun 7.1.26
/// (absolute error below 5e-7).
INLINE void gelu_lanes(const vector *x, vector *value, vector *derivative) {
    vector z = *x * 0.70710678118654752f;
    vector a = __builtin_elementwise_abs(z);
    vector t = 1 / (1 + 0.3275911f * a);
    vector p = (vector)(1.061405429f);
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    vector gaussian = -a * a;  // -x² / 2
    exp_lanes(&gaussian);
    vector erf = (vector)((bits)(1 - p * t * gaussian) | ((bits)z & 0x80000000u));
    vector cdf = 0.5f * (1 + erf);
    *value = *x * cdf;
    *derivative = cdf + *x * 0.3989422804014327f * gaussian;
}

MULTIVERSIONED
float graft_exp(const float *x, float *y, float shift, float scale, long count) {
    vector sums = 0;
    long i = 0;
    for (; i + lanes <= count; i += lanes) {
        vector e;
        load(&e, x + i);
        e -= shift;
        exp_lanes(&e);
        sums += e;
        if (y) {
            vector scaled = e * scale;
            store(y + i, &scaled);
        }
    }
    float total = sum(&sums);
    if (i < count) {
        float padded[lanes];
        load_partial(x + i, count - i, shift, padded);
        vector e;
        load(&e, padded);
        e -= shift;
        exp_lanes(&e);
        for (long j = 0; j < count - i; j++) {
            total += e[j];
            if (y) y[i + j] = e[j] * scale;
        }
    }
    return total;
}

MULTIVERSIONED
void graft_gelu(const float *x, float *value, float *derivative, long count) {
    long i = 0;
    for (; i + lanes <= count; i += lanes) {
        vector in, v, d;
        load(&in, x + i);
        gelu_lanes(&in, &v, &d);
        store(value + i, &v);
        if (derivative) store(derivative + i, &d);
    }
    if (i < count) {
        float padded[lanes];
        load_partial(x + i, count - i, 0, padded);
        vector in, v, d;
        load(&in, padded);
        gelu_lanes(&in, &v, &d);
        for (long j = 0; j < count - i; j++) {
            value[i + j] = v[j];
            if (derivative) derivative[i + j] = d[j];
        }
    }
}

MULTIVERSIONED
float graft_softmax(float *row, const float *factors, const float *shifts, float scale, long count) {
    if (count <= 0) return -__builtin_inff();
    vector peaks = (vector)(-__builtin_inff());
    long i = 0;
    for (; i + lanes <= count; i += lanes) {
        vector s, factor, shift;
        load(&s, row + i);
        if (factors) { load(&factor, factors + i); s *= factor; }
        if (shifts) { load(&shift, shifts + i); s += shift; }
        store(row + i, &s);
        peaks = __builtin_elementwise_max(peaks, s);
    }
    float peak = maximum(&peaks);
    for (; i < count; i++) {
        row[i] = row[i] * (factors ? factors[i] : 1) + (shifts ? shifts[i] : 0);
        peak = row[i] > peak ? row[i] : peak;
    }
    float total = graft_exp(row, row, peak, 1, count), inverse = scale / total;
    for (i = 0; i + lanes <= count; i += lanes) {
        vector s;
        load(&s, row + i);
        s *= inverse;
        store(row + i, &s);
    }
    for (; i < count; i++) row[i] *= inverse;
    return peak + __builtin_logf(total);
}

MULTIVERSIONED
void graft_softmax_backward(float *gradient, const float *probabilities, float scale, long count) {
    vector dots = 0, g, p;
    long i = 0;
    for (; i + lanes <= count; i += lanes) {
        load(&g, gradient + i);
        load(&p, probabilities + i);
        dots += g * p;
    }
    float dot = sum(&dots);
    for (; i < count; i++) dot += gradient[i] * probabilities[i];
    for (i = 0; i + lanes <= count; i += lanes) {
        load(&g, gradient + i);
        load(&p, probabilities + i);
        g = p * (g - dot) * scale;
        store(gradient + i, &g);
    }
    for (; i < count; i++) gradient[i] = probabilities[i] * (gradient[i] - dot) * scale;
}

MULTIVERSIONED
float graft_layer_norm(const float *x, const float *gamma, const float *beta, float epsilon,
                       float *output, float *normalized, long width) {
    vector sums = 0, v, g, b;
    long i = 0;
    for (; i + lanes <= width; i += lanes) {
        load(&v, x + i);
        sums += v;
    }
    float mean = sum(&sums);
    for (; i < width; i++) mean += x[i];
    mean /= (float)width;
    vector squares = 0;
    for (i = 0; i + lanes <= width; i += lanes) {
        load(&v, x + i);
        v -= mean;
        squares += v * v;
    }
    float variance = sum(&squares);
    for (; i < width; i++) variance += (x[i] - mean) * (x[i] - mean);
    float inverse = 1 / __builtin_sqrtf(variance / (float)width + epsilon);
    for (i = 0; i + lanes <= width; i += lanes) {
        load(&v, x + i);
        load(&g, gamma + i);
        load(&b, beta + i);
        v = (v - mean) * inverse;
        if (normalized) store(normalized + i, &v);
        v = v * g + b;
        store(output + i, &v);
    }
    for (; i < width; i++) {
        float xhat = (x[i] - mean) * inverse;
        if (normalized) normalized[i] = xhat;
        output[i] = xhat * gamma[i] + beta[i];
    }
    return inverse;
}

MULTIVERSIONED
void graft_layer_norm_backward(float *gradient, const float *normalized, const float *gamma,
                               float inverse_deviation, long width) {
    vector sums = 0, dots = 0, d, xhat, g;
    long i = 0;
    for (; i + lanes <= width; i += lanes) {
        load(&d, gradient + i);
        load(&g, gamma + i);
        load(&xhat, normalized + i);
        d *= g;
        sums += d;
        dots += d * xhat;
    }
    float total = sum(&sums), dot = sum(&dots);
    for (; i < width; i++) {
        float dxhat = gradient[i] * gamma[i];
        total += dxhat;
        dot += dxhat * normalized[i];
    }
    float n = (float)width, scale = inverse_deviation / n;
    for (i = 0; i + lanes <= width; i += lanes) {
        load(&d, gradient + i);
        load(&g, gamma + i);
        load(&xhat, normalized + i);
        d = scale * (n * d * g - total - xhat * dot);
        store(gradient + i, &d);
    }
    for (; i < width; i++) gradient[i] = scale * (n * gradient[i] * gamma[i] - total - normalized[i] * dot);
}

// Element-wise loops in whole vectors, then the tail.
#define ELEMENTWISE(name, operator)                                                          \
    MULTIVERSIONED void name(const float *a, const float *b, float *out, long count) {       \
        long i = 0;                                                                          \
        for (vector x, y; i + lanes <= count; i += lanes) {                                  \
            load(&x, a + i);                                                                 \
            load(&y, b + i);                                                                 \
            x = x operator y;                                                                \
            store(out + i, &x);                                                              \
        }                                                                                    \
        for (; i < count; i++) out[i] = a[i] operator b[i];                                  \
    }
ELEMENTWISE(graft_add, +)
ELEMENTWISE(graft_subtract, -)
ELEMENTWISE(graft_multiply, *)
ELEMENTWISE(graft_divide, /)

MULTIVERSIONED
void graft_affine(const float *x, float scale, float offset, float *out, long count) {
    long i = 0;
    for (vector v; i + lanes <= count; i += lanes) {
        load(&v, x + i);
        v = v * scale + offset;
        store(out + i, &v);
    }
    for (; i < count; i++) out[i] = x[i] * scale + offset;
}

MULTIVERSIONED
void graft_accumulate(float *y, const float *x, float factor, long count) {
    long i = 0;
    for (vector u, v; i + lanes <= count; i += lanes) {
        load(&u, y + i);
        load(&v, x + i);
        u += factor * v;
        store(y + i, &u);
    }
    for (; i < count; i++) y[i] += factor * x[i];
}

MULTIVERSIONED
void graft_adamw(float *parameter, const float *gradient, float *first, float *second, long count,
                 const struct graft_adamw_step *step) {
#pragma clang fp contract(off)  // PyTorch's rounding: no fused multiply-adds
    const float decay = step->decay, beta1 = step->beta1, beta2 = step->beta2, size = step->step_size,
                root = step->correction2_root, epsilon = step->epsilon;
    long i = 0;
    for (vector p, g, m, v; i + lanes <= count; i += lanes) {
        load(&p, parameter + i);
        load(&g, gradient + i);
        load(&m, first + i);
        load(&v, second + i);
        p *= decay;
        m += (g - m) * (1 - beta1);
        v = v * beta2 + (1 - beta2) * g * g;
        p -= size * m / (__builtin_elementwise_sqrt(v) / root + epsilon);
        store(parameter + i, &p);
        store(first + i, &m);
        store(second + i, &v);
    }
    for (; i < count; i++) {
        parameter[i] *= decay;
        first[i] += (gradient[i] - first[i]) * (1 - beta1);
        second[i] = second[i] * beta2 + (1 - beta2) * gradient[i] * gradient[i];
        parameter[i] -= size * first[i] / (__builtin_sqrtf(second[i]) / root + epsilon);
    }
}

MULTIVERSIONED
void graft_dropout(const float *x, const _Bool *kept, float scale, float *out, long count) {
    typedef unsigned char flags __attribute__((ext_vector_type(lanes)));
    long i = 0;
    for (vector v; i + lanes <= count; i += lanes) {
        flags f;
        memcpy(&f, kept + i, sizeof f);
        load(&v, x + i);
        v = (vector)((bits)(v * scale) & -__builtin_convertvector(f, bits));
        store(out + i, &v);
    }
    for (; i < count; i++) out[i] = kept[i] ? x[i] * scale : 0;
}
