/*
 * Out-of-tree C consumer of an installed chord (built by tests/pkg/run.sh with pkg-config and with
 * CMake, against libchord.so and libchord.a). Usage: consumer MODEL [TEXT]
 * Loads MODEL, tokenizes TEXT (default "The capital of France is"), evaluates it, then picks the
 * greedy next token 4 times, and prints the library version, the prompt tokens, the greedy tokens
 * and their text. tests/pkg/cxx/main.cpp prints the same lines; the runner compares them.
 */
#include <chord.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 4

static chord_error *err;

static int fail(const char *what, chord_status st) {
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, chord_status_name(st), err ? chord_error_message(err) : "");
    chord_error_free(err);
    return 1;
}

/* Prints n bytes as the inside of a C string literal (escapes quotes, backslashes, control bytes). */
static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') printf("\\n");
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

/* Index of the largest of n floats (the first one on ties). */
static chord_token argmax(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (chord_token)best;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: consumer MODEL [TEXT]\n");
        return 2;
    }
    const char *path = argv[1];
    const char *text = argc > 2 ? argv[2] : "The capital of France is";
    if (chord_abi_version() != CHORD_ABI_VERSION) {
        fprintf(stderr, "consumer: library ABI %u, header ABI %u\n", (unsigned)chord_abi_version(),
                (unsigned)CHORD_ABI_VERSION);
        return 1;
    }
    printf("chord %s abi %u\n", chord_version_string(), (unsigned)chord_abi_version());

    chord_model *model = NULL;
    chord_status st = chord_model_load(path, strlen(path), NULL, &model, &err);
    if (st != CHORD_OK) return fail("load", st);
    uint64_t n_vocab = 0;
    if ((st = chord_model_info(model, CHORD_INFO_N_VOCAB, &n_vocab, &err)) != CHORD_OK) return fail("info", st);

    size_t n_prompt = 0;
    st = chord_tokenize(model, text, strlen(text), 1, 0, NULL, 0, &n_prompt, &err);
    if (st != CHORD_E_BUFFER_TOO_SMALL && st != CHORD_OK) return fail("tokenize (size)", st);
    chord_error_free(err);
    err = NULL;
    chord_token *tokens = malloc((n_prompt + STEPS) * sizeof *tokens);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    if (!tokens || !logits) return 1;
    if ((st = chord_tokenize(model, text, strlen(text), 1, 0, tokens, n_prompt, &n_prompt, &err)) != CHORD_OK)
        return fail("tokenize", st);
    printf("prompt");
    for (size_t i = 0; i < n_prompt; i++) printf(" %u", (unsigned)tokens[i]);
    printf("\n");

    chord_session_options *so = NULL;
    chord_session *session = NULL;
    if ((st = chord_session_options_new(&so, &err)) != CHORD_OK) return fail("session options", st);
    if ((st = chord_session_options_set_n_ctx(so, 64, &err)) != CHORD_OK) return fail("n_ctx", st);
    if ((st = chord_session_new(model, so, &session, &err)) != CHORD_OK) return fail("session", st);
    chord_session_options_free(so);

    /* Evaluate the prompt, then feed back the most likely token STEPS times. */
    const chord_token *feed = tokens;
    size_t n_feed = n_prompt;
    printf("greedy");
    for (size_t step = 0; step < STEPS; step++) {
        size_t n_logits = 0;
        if ((st = chord_session_append_tokens(session, feed, n_feed, 0, &err)) != CHORD_OK) return fail("append", st);
        if ((st = chord_session_logits(session, logits, (size_t)n_vocab, &n_logits, &err)) != CHORD_OK)
            return fail("logits", st);
        if (n_logits != (size_t)n_vocab) {
            fprintf(stderr, "consumer: %zu logits for a vocabulary of %zu\n", n_logits, (size_t)n_vocab);
            return 1;
        }
        tokens[n_prompt + step] = argmax(logits, n_logits);
        printf(" %u", (unsigned)tokens[n_prompt + step]);
        feed = &tokens[n_prompt + step];
        n_feed = 1;
    }
    printf("\n");

    char piece[256];
    size_t n_piece = 0;
    st = chord_detokenize(model, &tokens[n_prompt], STEPS, 1, 0, piece, sizeof piece, &n_piece, &err);
    if (st != CHORD_OK) return fail("detokenize", st);
    printf("text \"");
    print_escaped(piece, n_piece);
    printf("\"\n");

    chord_session_free(session);
    chord_model_free(model);
    free(tokens);
    free(logits);
    return 0;
}
