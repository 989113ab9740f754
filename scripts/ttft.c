/*
 * Time to first token: seconds from the start of loading a model to the first generated token of a
 * 16-token prompt (greedy: the argmax of the last position's logits), in a fresh process, context
 * of 512, through chord's C API or, built with -DTTFT_LLAMA, through llama.cpp's llama.h. The same
 * pseudo-random prompt tokens on both. scripts/bench-ttft.sh builds both and runs them alternately.
 * Usage: ttft MODEL THREADS   (prints "SECONDS TOKEN")
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_PROMPT 16
#define N_CTX 512

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The prompt: xorshift tokens below n_vocab, as chord bench uses. */
static void prompt_tokens(int32_t *toks, uint64_t n_vocab) {
    unsigned long long x = 88172645463325252ull;
    for (int i = 0; i < N_PROMPT; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        toks[i] = (int32_t)(x % n_vocab);
    }
}

static int argmax(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++) if (v[i] > v[best]) best = i;
    return (int)best;
}

static void fail(const char *what) {
    fprintf(stderr, "ttft: %s failed\n", what);
    exit(1);
}

#ifdef TTFT_LLAMA
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user_data) {
    (void)level; (void)text; (void)user_data;
}

int main(int argc, char **argv) {
    if (argc != 3) { fputs("usage: ttft MODEL THREADS\n", stderr); return 2; }
    int threads = atoi(argv[2]);
    llama_log_set(quiet, NULL);
    double t0 = now_s();
    llama_backend_init();
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) fail("llama_model_load_from_file");
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = N_CTX;
    cp.n_batch = N_CTX;
    cp.n_threads = cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) fail("llama_init_from_model");
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    size_t n_vocab = (size_t)llama_vocab_n_tokens(vocab);
    llama_token toks[N_PROMPT];
    prompt_tokens(toks, n_vocab);
    if (llama_decode(ctx, llama_batch_get_one(toks, N_PROMPT)) != 0) fail("llama_decode");
    int tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    double t1 = now_s();
    printf("%.6f %d\n", t1 - t0, tok);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
#else
#include "chord.h"

static void check(chord_status st, chord_error *err, const char *what) {
    if (st == CHORD_OK) return;
    fprintf(stderr, "ttft: %s: %s\n", what, err ? chord_error_message(err) : chord_status_name(st));
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) { fputs("usage: ttft MODEL THREADS\n", stderr); return 2; }
    chord_error *err = NULL;
    double t0 = now_s();
    chord_model_options *mo = NULL;
    check(chord_model_options_new(&mo, &err), err, "options");
    check(chord_model_options_set_threads(mo, (uint32_t)atoi(argv[2]), &err), err, "threads");
    chord_model *model = NULL;
    check(chord_model_load(argv[1], strlen(argv[1]), mo, &model, &err), err, "load");
    chord_session_options *so = NULL;
    check(chord_session_options_new(&so, &err), err, "session options");
    check(chord_session_options_set_n_ctx(so, N_CTX, &err), err, "n_ctx");
    chord_session *s = NULL;
    check(chord_session_new(model, so, &s, &err), err, "session");
    uint64_t n_vocab = 0;
    check(chord_model_info(model, CHORD_INFO_N_VOCAB, &n_vocab, &err), err, "info");
    int32_t toks[N_PROMPT];
    prompt_tokens(toks, n_vocab);
    check(chord_session_append_tokens(s, (const chord_token *)toks, N_PROMPT, 0, &err), err, "append");
    float *logits = malloc(n_vocab * sizeof *logits);
    size_t got = 0;
    if (!logits) fail("malloc");
    check(chord_session_logits(s, logits, n_vocab, &got, &err), err, "logits");
    int tok = argmax(logits, got);
    double t1 = now_s();
    printf("%.6f %d\n", t1 - t0, tok);
    free(logits);
    chord_session_free(s);
    chord_session_options_free(so);
    chord_model_options_free(mo);
    chord_model_free(model);
    return 0;
}
#endif
