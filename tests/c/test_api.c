/*
 * C tests of the public API (include/chord.h): every function, and its documented error statuses.
 * Usage: test_api MODEL [BAD_GGUF_DIR]
 *   MODEL         a llama GGUF (SmolLM2-135M-Instruct Q4_1)
 *   BAD_GGUF_DIR  the malformed-GGUF corpus with its expected.tsv (see tests/gguf_malformed.rs)
 * With CHORD_TEST_LIGHT=1 in the environment (used under valgrind, where a forward pass is a few
 * hundred times slower) prompts and generations are shorter and the long cross-thread prefill is
 * skipped; every function is still called.
 * Ends with a line "N passed, N failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "chord.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed, failed;
static int light; /* CHORD_TEST_LIGHT=1 */

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (cond) {                                                       \
            passed++;                                                     \
        } else {                                                          \
            failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

/* Checks that a call returned `want`, that the error object carries the same code and a message. */
static void expect(chord_status got, chord_error *err, chord_status want, const char *what) {
    CHECK(got == want, "%s: got %s, want %s (%s)", what, chord_status_name(got), chord_status_name(want),
          err ? chord_error_message(err) : "no error object");
    if (want != CHORD_OK) {
        CHECK(err != NULL, "%s: no error object", what);
        if (err) {
            CHECK(chord_error_code(err) == want, "%s: error object code %u", what, chord_error_code(err));
            CHECK(strlen(chord_error_message(err)) > 0, "%s: empty message", what);
        }
    } else {
        CHECK(err == NULL, "%s: error object on success", what);
    }
    chord_error_free(err);
}

#define EXPECT(want, call)                           \
    do {                                             \
        chord_error *err_ = NULL;                    \
        chord_status st_ = (call);                   \
        (void)err_;                                  \
        expect(st_, err_, want, #call);              \
    } while (0)
/* `call` must pass &err_ as its error argument. */

static void test_versions(void) {
    CHECK(chord_abi_version() == CHORD_ABI_VERSION, "abi version");
    CHECK(strlen(chord_version_string()) > 0, "version string");
    CHECK(!strcmp(chord_status_name(CHORD_OK), "OK"), "OK name");
    CHECK(!strcmp(chord_status_name(CHORD_E_BUFFER_TOO_SMALL), "BUFFER_TOO_SMALL"), "status name");
    CHECK(!strcmp(chord_status_name(CHORD_E_INTERNAL), "INTERNAL"), "status name");
    CHECK(!strcmp(chord_status_name(9999), "UNKNOWN"), "unknown status name");
    CHECK(chord_error_code(NULL) == CHORD_E_INVALID_ARGUMENT, "error_code(NULL)");
    CHECK(!strcmp(chord_error_message(NULL), ""), "error_message(NULL)");
    chord_error_free(NULL);
    /* NULL err argument: status still returned, nothing written. */
    CHECK(chord_model_options_new(NULL, NULL) == CHORD_E_INVALID_ARGUMENT, "NULL err pointer");
}

static void test_options(void) {
    chord_model_options *mo = NULL;
    EXPECT(CHORD_OK, chord_model_options_new(&mo, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_threads(mo, 2, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_backend(mo, CHORD_BACKEND_CPU, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_backend(mo, 99, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_vocab_only(mo, 2, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_threads(NULL, 1, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_vocab_only(mo, 0, &err_));
    chord_model_options_free(mo);
    chord_model_options_free(NULL);

    chord_session_options *so = NULL;
    EXPECT(CHORD_OK, chord_session_options_new(&so, &err_));
    EXPECT(CHORD_OK, chord_session_options_set_n_ctx(so, 256, &err_));
    EXPECT(CHORD_OK, chord_session_options_set_n_batch(so, 64, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_options_set_n_ctx(NULL, 1, &err_));
    chord_session_options_free(so);
    chord_session_options_free(NULL);

    chord_generate_params *gp = NULL;
    EXPECT(CHORD_OK, chord_generate_params_new(&gp, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(gp, 8, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_temperature(gp, 0.7f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_top_k(gp, 20, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_top_p(gp, 0.9f, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_set_top_p(gp, 1.5f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_min_p(gp, 0.1f, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_set_min_p(gp, -0.1f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_repeat_penalty(gp, 1.1f, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_set_repeat_penalty(gp, 0.0f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_frequency_penalty(gp, 0.1f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_presence_penalty(gp, 0.1f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_penalty_last_n(gp, 32, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_seed(gp, 42, &err_));
    EXPECT(CHORD_OK, chord_generate_params_add_stop(gp, "\n\n", 2, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_add_stop(gp, "", 0, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_generate_params_add_stop(gp, "\xff\xfe", 2, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_render_special(gp, 1, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_set_render_special(gp, 7, &err_));
    chord_generate_params_free(gp);
    chord_generate_params_free(NULL);
}

static const char *status_by_name(const char *name, chord_status *out) {
    for (chord_status s = 1; s < 64; s++) {
        if (!strcmp(chord_status_name(s), name)) { *out = s; return name; }
    }
    return NULL;
}

static void test_bad_files(const char *dir) {
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_load(NULL, 3, NULL, NULL, &err_));
    chord_model *m = NULL;
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_load("x.gguf", 6, NULL, NULL, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_load("\xc3\x28.gguf", 7, NULL, &m, &err_));
    EXPECT(CHORD_E_IO, chord_model_load("/nonexistent/model.gguf", 23, NULL, &m, &err_));
    CHECK(m == NULL, "out untouched on error");
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/expected.tsv", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[1024];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        char *code = tab + 1;
        code[strcspn(code, "\r\n")] = 0;
        chord_status want = 0;
        CHECK(status_by_name(code, &want) != NULL, "unknown code name %s", code);
        snprintf(path, sizeof path, "%s/%s", dir, line);
        chord_error *err = NULL;
        chord_model *bad = NULL;
        chord_status st = chord_model_load(path, strlen(path), NULL, &bad, &err);
        CHECK(st == want, "%s: got %s, want %s (%s)", line, chord_status_name(st), code, err ? chord_error_message(err) : "");
        CHECK(bad == NULL, "%s: model returned on error", line);
        chord_error_free(err);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 30, "only %d corpus cases", cases);
    printf("malformed GGUF corpus: %d files checked\n", cases);
}

static void test_model_queries(chord_model *m) {
    uint64_t v = 0;
    EXPECT(CHORD_OK, chord_model_info(m, CHORD_INFO_N_VOCAB, &v, &err_));
    CHECK(v == 49152, "n_vocab %llu", (unsigned long long)v);
    EXPECT(CHORD_OK, chord_model_info(m, CHORD_INFO_N_LAYER, &v, &err_));
    CHECK(v == 30, "n_layer");
    uint64_t keys[] = {CHORD_INFO_N_CTX_TRAIN, CHORD_INFO_N_EMBD, CHORD_INFO_N_HEAD, CHORD_INFO_N_HEAD_KV,
                       CHORD_INFO_WEIGHT_BYTES, CHORD_INFO_TOKEN_BOS, CHORD_INFO_TOKEN_EOS, CHORD_INFO_ADD_BOS,
                       CHORD_INFO_N_THREADS};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) EXPECT(CHORD_OK, chord_model_info(m, (uint32_t)keys[i], &v, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_info(m, 1000, &v, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_info(NULL, 0, &v, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_info(m, 0, NULL, &err_));

    char small[3];
    size_t len = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_architecture(m, small, sizeof small, &len, &err_));
    CHECK(len == 5, "architecture length %zu", len);
    char arch[6];
    EXPECT(CHORD_OK, chord_model_architecture(m, arch, sizeof arch, &len, &err_));
    CHECK(!strcmp(arch, "llama"), "architecture %s", arch);
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_describe(m, NULL, 0, &len, &err_));
    char *desc = malloc(len + 1);
    EXPECT(CHORD_OK, chord_model_describe(m, desc, len + 1, &len, &err_));
    CHECK(strstr(desc, "Q4_1") != NULL, "describe mentions Q4_1");
    free(desc);

    chord_model *m2 = chord_model_retain(m);
    CHECK(m2 != NULL, "retain");
    chord_model_free(m2);
    CHECK(chord_model_retain(NULL) == NULL, "retain NULL");
    chord_model_free(NULL);
}

static void test_tokens(chord_model *m) {
    const char *text = "<|im_start|>user\nHello, wörld! 123 漢字 🙂<|im_end|>";
    size_t len = strlen(text), n = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_tokenize(m, text, len, 1, 1, NULL, 0, &n, &err_));
    CHECK(n > 5, "token count %zu", n);
    chord_token toks[64];
    size_t n2 = 0;
    EXPECT(CHORD_OK, chord_tokenize(m, text, len, 1, 1, toks, 64, &n2, &err_));
    CHECK(n2 == n, "same count");
    size_t n_plain = 0;
    EXPECT(CHORD_OK, chord_tokenize(m, text, len, 0, 0, toks + 32, 32, &n_plain, &err_));
    CHECK(n_plain > n, "special text splits into more tokens when not parsed (%zu vs %zu)", n_plain, n);
    EXPECT(CHORD_E_INVALID_UTF8, chord_tokenize(m, "ab\xff", 3, 1, 1, toks, 64, &n2, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_tokenize(m, text, len, 2, 1, toks, 64, &n2, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_tokenize(NULL, text, len, 1, 1, toks, 64, &n2, &err_));
    EXPECT(CHORD_OK, chord_tokenize(m, "", 0, 0, 0, toks, 64, &n2, &err_));
    CHECK(n2 == 0, "empty text gives no tokens");

    char buf[256];
    size_t blen = 0;
    EXPECT(CHORD_OK, chord_detokenize(m, toks, n, 0, 1, buf, sizeof buf, &blen, &err_));
    CHECK(blen == len && !memcmp(buf, text, len), "round trip: %.*s", (int)blen, buf);
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_detokenize(m, toks, n, 0, 1, buf, 4, &blen, &err_));
    CHECK(blen == len, "needed length reported");
    chord_token bad = 1u << 30;
    EXPECT(CHORD_E_INVALID_TOKEN, chord_detokenize(m, &bad, 1, 0, 0, buf, sizeof buf, &blen, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_detokenize(m, NULL, 3, 0, 0, buf, sizeof buf, &blen, &err_));
    EXPECT(CHORD_OK, chord_token_to_piece(m, toks[1], 0, buf, sizeof buf, &blen, &err_));
    EXPECT(CHORD_E_INVALID_TOKEN, chord_token_to_piece(m, bad, 0, buf, sizeof buf, &blen, &err_));
    uint64_t eos = 0;
    chord_model_info(m, CHORD_INFO_TOKEN_EOS, &eos, NULL);
    CHECK(chord_token_is_eog(m, (chord_token)eos) == 1, "eos is eog");
    CHECK(chord_token_is_eog(m, toks[1]) == 0, "text token is not eog");
    CHECK(chord_token_is_eog(NULL, 0) == 0 && chord_token_is_eog(m, bad) == 0, "is_eog bad args");
}

typedef struct {
    char text[4096];
    size_t len;
    int calls, stop_after;
    chord_session *session;
    int cancel_after;
} collect_t;

static uint32_t collect(const char *text, size_t len, void *ud) {
    collect_t *c = ud;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, text, len);
        c->len += len;
    }
    c->calls++;
    if (c->cancel_after && c->calls == c->cancel_after) chord_session_cancel(c->session);
    return c->stop_after && c->calls >= c->stop_after ? 0 : 1;
}

static chord_session *session(chord_model *m, uint32_t n_ctx) {
    chord_session_options *so = NULL;
    chord_session *s = NULL;
    chord_session_options_new(&so, NULL);
    chord_session_options_set_n_ctx(so, n_ctx, NULL);
    EXPECT(CHORD_OK, chord_session_new(m, so, &s, &err_));
    chord_session_options_free(so);
    return s;
}

typedef struct {
    chord_session *s;
    const chord_token *toks;
    size_t n;
    chord_status st;
} append_thread_t;

static void *append_thread(void *p) {
    append_thread_t *g = p;
    g->st = chord_session_append_tokens(g->s, g->toks, g->n, 0, NULL);
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_session(chord_model *m) {
    chord_session *s = NULL;
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_new(NULL, NULL, &s, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_new(m, NULL, NULL, &err_));
    s = session(m, 128);
    size_t n = 99;
    EXPECT(CHORD_OK, chord_session_n_tokens(s, &n, &err_));
    CHECK(n == 0, "empty session");
    EXPECT(CHORD_OK, chord_session_n_ctx(s, &n, &err_));
    CHECK(n == 128, "n_ctx %zu", n);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_generate(s, NULL, NULL, NULL, NULL, &err_)); /* empty context */
    size_t got = 0;
    EXPECT(CHORD_OK, chord_session_logits(s, NULL, 0, &got, &err_));
    CHECK(got == 0, "no logits before evaluation");

    const char *prompt = light ? "<|im_start|>user\nHi<|im_end|>\n"
                               : "<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n";
    size_t n_prompt = 0;
    EXPECT(CHORD_OK, chord_session_append_text(s, prompt, strlen(prompt), CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL, &n_prompt, &err_));
    CHECK(n_prompt > 5, "prompt tokens %zu", n_prompt);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_append_text(s, "x", 1, 8, NULL, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_session_append_text(s, "\xe2\x82", 2, 0, NULL, &err_));
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_session_logits(s, NULL, 0, &got, &err_));
    CHECK(got == 49152, "one row of logits, %zu", got);
    float *logits = malloc(got * sizeof *logits);
    EXPECT(CHORD_OK, chord_session_logits(s, logits, got, &got, &err_));
    free(logits);

    chord_generate_params *gp = NULL;
    chord_generate_params_new(&gp, NULL);
    chord_generate_params_set_temperature(gp, 0.0f, NULL);
    chord_generate_params_set_max_tokens(gp, light ? 3 : 12, NULL);
    collect_t c = {0};
    uint32_t reason = 99;
    EXPECT(CHORD_OK, chord_session_generate(s, gp, collect, &c, &reason, &err_));
    CHECK(reason == CHORD_STOP_MAX_TOKENS || reason == CHORD_STOP_EOG, "stop reason %u", reason);
    CHECK(c.len > 0, "some text");
    uint64_t pt = 0, pus = 0, dt = 0, dus = 0;
    EXPECT(CHORD_OK, chord_session_stats(s, &pt, &pus, &dt, &dus, &err_));
    CHECK(dt > 0 && dt <= 12, "decode tokens %llu", (unsigned long long)dt);
    EXPECT(CHORD_OK, chord_session_stats(s, NULL, NULL, NULL, NULL, &err_));

    /* Greedy is reproducible: reset, same prompt, same text. */
    EXPECT(CHORD_OK, chord_session_reset(s, &err_));
    EXPECT(CHORD_OK, chord_session_n_tokens(s, &n, &err_));
    CHECK(n == 0, "reset empties");
    EXPECT(CHORD_OK, chord_session_append_text(s, prompt, strlen(prompt), CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL, NULL, &err_));
    collect_t c2 = {0};
    EXPECT(CHORD_OK, chord_session_generate(s, gp, collect, &c2, NULL, &err_));
    CHECK(c2.len == c.len && !memcmp(c.text, c2.text, c.len), "greedy reproducible");

    /* The callback stops generation. */
    chord_session_reset(s, NULL);
    chord_session_append_text(s, prompt, strlen(prompt), 3, NULL, NULL);
    collect_t c3 = {0};
    c3.stop_after = 2;
    EXPECT(CHORD_OK, chord_session_generate(s, gp, collect, &c3, &reason, &err_));
    CHECK(reason == CHORD_STOP_CALLBACK && c3.calls == 2, "callback stop: reason %u, calls %d", reason, c3.calls);

    /* Bad tokens and a full context leave the session as it was. */
    EXPECT(CHORD_OK, chord_session_n_tokens(s, &n, &err_));
    chord_token bad = 49152;
    EXPECT(CHORD_E_INVALID_TOKEN, chord_session_append_tokens(s, &bad, 1, 0, &err_));
    chord_token many[200];
    for (int i = 0; i < 200; i++) many[i] = 100 + (chord_token)i;
    EXPECT(CHORD_E_CONTEXT_FULL, chord_session_append_tokens(s, many, 200, 0, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_append_tokens(s, NULL, 3, 0, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_append_tokens(s, many, 1, 5, &err_));
    size_t n_after = 0;
    EXPECT(CHORD_OK, chord_session_n_tokens(s, &n_after, &err_));
    CHECK(n_after == n, "failed appends add nothing (%zu vs %zu)", n_after, n);
    EXPECT(CHORD_OK, chord_session_append_tokens(s, many, 3, 1, &err_));
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_session_logits(s, NULL, 0, &got, &err_));
    CHECK(got == 3 * 49152, "all logits: %zu", got);

    /* Cancel from the callback (same thread): generate returns CANCELLED, session usable. */
    collect_t c4 = {0};
    c4.session = s;
    c4.cancel_after = 1;
    chord_session_reset(s, NULL);
    chord_session_append_text(s, prompt, strlen(prompt), 3, NULL, NULL);
    EXPECT(CHORD_E_CANCELLED, chord_session_generate(s, gp, collect, &c4, NULL, &err_));
    CHECK(c4.calls == 1, "stopped within one token, %d calls", c4.calls);
    chord_session_cancel(s); /* idempotent, nothing running */
    chord_session_cancel(NULL);

    /* Another thread: BUSY while it processes a long prompt, then cancel from this thread; the
     * cancelled append adds nothing and the session stays usable. */
    if (!light) {
        chord_session *big = session(m, 600);
        chord_token prompt_toks[560];
        for (int i = 0; i < 560; i++) prompt_toks[i] = 200 + (chord_token)(i * 7 % 3000);
        append_thread_t g = {big, prompt_toks, 560, 0};
        pthread_t th;
        pthread_create(&th, NULL, append_thread, &g);
        /* Wait until the other thread holds the session (at most 10 s). */
        chord_status busy = CHORD_OK;
        for (int i = 0; i < 10000 && busy != CHORD_E_BUSY; i++) {
            busy = chord_session_n_tokens(big, &n, NULL);
            if (busy != CHORD_E_BUSY) sleep_ms(1);
        }
        CHECK(busy == CHORD_E_BUSY, "the other thread never held the session");
        sleep_ms(20);
        EXPECT(CHORD_E_BUSY, chord_session_n_tokens(big, &n, &err_));
        EXPECT(CHORD_E_BUSY, chord_session_append_text(big, "x", 1, 0, NULL, &err_));
        chord_session_cancel(big);
        pthread_join(th, NULL);
        CHECK(g.st == CHORD_E_CANCELLED, "cancel from another thread: %s", chord_status_name(g.st));
        EXPECT(CHORD_OK, chord_session_n_tokens(big, &n, &err_));
        CHECK(n == 0, "a cancelled append adds nothing (%zu tokens)", n);
        EXPECT(CHORD_OK, chord_session_append_tokens(big, prompt_toks, 4, 0, &err_));
        chord_session_free(big);
    }

    chord_generate_params_free(gp);
    chord_session_free(s);
    chord_session_free(NULL);
}

static void test_vocab_only(const char *model) {
    chord_model_options *mo = NULL;
    chord_model_options_new(&mo, NULL);
    chord_model_options_set_vocab_only(mo, 1, NULL);
    chord_model *m = NULL;
    EXPECT(CHORD_OK, chord_model_load(model, strlen(model), mo, &m, &err_));
    chord_model_options_free(mo);
    chord_session *s = NULL;
    EXPECT(CHORD_E_UNSUPPORTED, chord_session_new(m, NULL, &s, &err_));
    chord_token t[8];
    size_t n = 0;
    EXPECT(CHORD_OK, chord_tokenize(m, "Hello", 5, 0, 0, t, 8, &n, &err_));
    chord_model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [BAD_GGUF_DIR]\n", argv[0]);
        return 2;
    }
    const char *model = argv[1];
    const char *l = getenv("CHORD_TEST_LIGHT");
    light = l && !strcmp(l, "1");
    test_versions();
    test_options();
    test_bad_files(argc > 2 ? argv[2] : NULL);
    chord_model_options *mo = NULL;
    chord_model_options_new(&mo, NULL);
    chord_model_options_set_threads(mo, 2, NULL);
    chord_model *m = NULL;
    EXPECT(CHORD_OK, chord_model_load(model, strlen(model), mo, &m, &err_));
    chord_model_options_free(mo);
    if (m) {
        test_model_queries(m);
        test_tokens(m);
        test_session(m);
        chord_model_free(m);
    }
    test_vocab_only(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
