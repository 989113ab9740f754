/*
 * C tests of the model side of the API (include/chord.h): model options (memory budget, mmap,
 * threads, backend, progress callback with cancel), the log callback, model facts and GGUF
 * metadata by key. Every function with good inputs on the real model and its documented errors.
 * Usage: test_model_api MODEL [BAD_GGUF_DIR]
 *   MODEL         a llama GGUF (SmolLM2-135M-Instruct Q4_1)
 *   BAD_GGUF_DIR  the malformed-GGUF corpus with its expected.tsv (see tests/gguf_malformed.rs)
 * With CHORD_TEST_LIGHT=1 (used under valgrind) fewer loads are cancelled at every step and the
 * mmap/no-mmap logits comparison evaluates fewer tokens; every function is still called.
 * Ends with a line "N passed, N failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "chord.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static int light; /* CHORD_TEST_LIGHT=1 */
static const char *model_path;

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
static void expect(chord_status got, chord_error *err, chord_status want, const char *what, int line) {
    CHECK(got == want, "line %d: %s: got %s, want %s (%s)", line, what, chord_status_name(got),
          chord_status_name(want), err ? chord_error_message(err) : "no error object");
    if (want != CHORD_OK) {
        CHECK(err != NULL, "line %d: %s: no error object", line, what);
        if (err) {
            CHECK(chord_error_code(err) == want, "line %d: %s: error object code %u", line, what,
                  chord_error_code(err));
            CHECK(strlen(chord_error_message(err)) > 0, "line %d: %s: empty message", line, what);
        }
    } else {
        CHECK(err == NULL, "line %d: %s: error object on success", line, what);
    }
    chord_error_free(err);
}

/* `call` must pass &err_ as its error argument. */
#define EXPECT(want, call)                           \
    do {                                             \
        chord_error *err_ = NULL;                    \
        chord_status st_ = (call);                   \
        expect(st_, err_, want, #call, __LINE__);    \
    } while (0)

#define KEY(s) s, strlen(s)

/* Loads the test model with `opts` (may be NULL); NULL on failure (reported). */
static chord_model *load(const chord_model_options *opts) {
    chord_model *m = NULL;
    EXPECT(CHORD_OK, chord_model_load(model_path, strlen(model_path), opts, &m, &err_));
    return m;
}

static chord_model_options *new_options(void) {
    chord_model_options *o = NULL;
    EXPECT(CHORD_OK, chord_model_options_new(&o, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_threads(o, 2, &err_));
    return o;
}

static uint64_t info(const chord_model *m, uint32_t key) {
    uint64_t v = 0xdeadbeef;
    EXPECT(CHORD_OK, chord_model_info(m, key, &v, &err_));
    return v;
}

/* ---- options ---- */

static void test_options(void) {
    chord_model_options *o = new_options();
    EXPECT(CHORD_OK, chord_model_options_set_memory_budget(o, 0, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_memory_budget(o, 1ull << 40, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_memory_budget(NULL, 1, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_use_mmap(o, 0, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_use_mmap(o, 1, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_use_mmap(o, 2, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_use_mmap(NULL, 1, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_pack_weights(o, 0, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_pack_weights(o, 1, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_pack_weights(o, 2, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_pack_weights(NULL, 1, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_threads(o, 0, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_threads(o, 1024, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_threads(o, 1025, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_backend(o, CHORD_BACKEND_CUDA, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_backend(o, CHORD_BACKEND_CUDA + 1, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_progress_callback(o, NULL, NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_options_set_progress_callback(NULL, NULL, NULL, &err_));
    chord_model_options_free(o);

    /* Backends: auto resolves to the CPU; CUDA is not built in; this test links a build without wgpu. */
    chord_model *m = NULL;
    o = new_options();
    EXPECT(CHORD_OK, chord_model_options_set_backend(o, CHORD_BACKEND_CUDA, &err_));
    EXPECT(CHORD_E_UNSUPPORTED, chord_model_load(model_path, strlen(model_path), o, &m, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_backend(o, CHORD_BACKEND_WGPU, &err_));
    EXPECT(CHORD_E_UNSUPPORTED, chord_model_load(model_path, strlen(model_path), o, &m, &err_));
    CHECK(m == NULL, "out untouched by failed loads");
    EXPECT(CHORD_OK, chord_model_options_set_backend(o, CHORD_BACKEND_AUTO, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_memory_budget(o, 12345678, &err_));
    m = load(o);
    chord_model_options_free(o);
    if (!m) return;
    CHECK(info(m, CHORD_INFO_BACKEND) == CHORD_BACKEND_CPU, "auto backend is the CPU");
    CHECK(info(m, CHORD_INFO_MEMORY_BUDGET) == 12345678, "budget reported");
    CHECK(info(m, CHORD_INFO_USE_MMAP) == 1, "mapped by default");
    CHECK(info(m, CHORD_INFO_PACKED_BYTES) == 0, "paged weights stay in the file's layout");
    CHECK(info(m, CHORD_INFO_N_THREADS) == 2, "threads");
    size_t len = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_describe(m, NULL, 0, &len, &err_));
    char *d = malloc(len + 1);
    EXPECT(CHORD_OK, chord_model_describe(m, d, len + 1, &len, &err_));
    CHECK(strstr(d, "memory_budget=12345678") != NULL, "describe reports the budget");
    CHECK(strstr(d, "mmap=true") != NULL, "describe reports mmap");
    free(d);
    chord_model_free(m);
}

/* ---- progress and cancel ---- */

typedef struct {
    int calls;
    int cancel_at; /* 1-based call that returns 0; 0: never */
    float last;
    int decreasing, out_of_range;
} progress_t;

static uint32_t on_progress(float p, void *user_data) {
    progress_t *t = user_data;
    t->calls++;
    if (!(p >= 0.0f && p <= 1.0f)) t->out_of_range = 1;
    if (t->calls > 1 && p < t->last) t->decreasing = 1;
    t->last = p;
    return t->cancel_at == t->calls ? 0 : 1;
}

/* Loads with progress, cancelling at call `cancel_at` (0: never); returns the status, fills *t. */
static chord_status load_with_progress(uint32_t use_mmap, int cancel_at, progress_t *t, chord_model **out) {
    memset(t, 0, sizeof *t);
    t->cancel_at = cancel_at;
    chord_model_options *o = new_options();
    EXPECT(CHORD_OK, chord_model_options_set_use_mmap(o, use_mmap, &err_));
    EXPECT(CHORD_OK, chord_model_options_set_progress_callback(o, on_progress, t, &err_));
    chord_error *err = NULL;
    chord_status st = chord_model_load(model_path, strlen(model_path), o, out, &err);
    chord_model_options_free(o);
    if (st != CHORD_OK) {
        CHECK(err && chord_error_code(err) == st, "error object matches the status");
    }
    chord_error_free(err);
    return st;
}

static void test_progress(void) {
    for (uint32_t mm = 0; mm <= 1; mm++) {
        progress_t t;
        chord_model *m = NULL;
        chord_status st = load_with_progress(mm, 0, &t, &m);
        CHECK(st == CHORD_OK, "mmap=%u: load with progress: %s", mm, chord_status_name(st));
        CHECK(t.calls >= 4, "mmap=%u: only %d progress calls", mm, t.calls);
        CHECK(t.last == 1.0f, "mmap=%u: last progress %f", mm, (double)t.last);
        CHECK(!t.decreasing && !t.out_of_range, "mmap=%u: progress not monotonic in [0, 1]", mm);
        chord_model_free(m);
        int n = t.calls;
        if (mm == 0) CHECK(n > 6, "reading 98 MB in 16 MiB steps reports each step (%d calls)", n);
        /* Cancel at every step (light: first, middle, last): CANCELLED, no model, no leak. */
        for (int k = 1; k <= n; k++) {
            if (light && k != 1 && k != n / 2 && k != n) continue;
            m = NULL;
            st = load_with_progress(mm, k, &t, &m);
            CHECK(st == CHORD_E_CANCELLED, "mmap=%u: cancel at call %d of %d: %s", mm, k, n, chord_status_name(st));
            CHECK(m == NULL, "mmap=%u: no model after a cancel", mm);
            CHECK(t.calls == k, "mmap=%u: %d calls after cancelling at %d", mm, t.calls, k);
        }
    }
}

/* ---- no mmap: same logits ---- */

static float *eval_logits(chord_model *m, const chord_token *toks, size_t n, size_t *n_out) {
    chord_session *s = NULL;
    EXPECT(CHORD_OK, chord_session_new(m, NULL, &s, &err_));
    if (!s) return NULL;
    EXPECT(CHORD_OK, chord_session_append_tokens(s, toks, n, 1, &err_));
    size_t len = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_session_logits(s, NULL, 0, &len, &err_));
    float *buf = malloc(len * sizeof *buf);
    EXPECT(CHORD_OK, chord_session_logits(s, buf, len, &len, &err_));
    chord_session_free(s);
    *n_out = len;
    return buf;
}

static void test_no_mmap(void) {
    chord_model_options *o = new_options();
    chord_model *mapped = load(o);
    EXPECT(CHORD_OK, chord_model_options_set_use_mmap(o, 0, &err_));
    chord_model *owned = load(o);
    chord_model_options_free(o);
    if (mapped && owned) {
        CHECK(info(mapped, CHORD_INFO_USE_MMAP) == 1, "mapped model reports mmap");
        CHECK(info(owned, CHORD_INFO_USE_MMAP) == 0, "owned model reports no mmap");
        chord_token toks[8];
        size_t n = 0;
        EXPECT(CHORD_OK, chord_tokenize(mapped, KEY("The sea is calm tonight"), 0, 0, toks, 8, &n, &err_));
        if (light && n > 2) n = 2;
        size_t la = 0, lb = 0;
        float *a = eval_logits(mapped, toks, n, &la);
        float *b = eval_logits(owned, toks, n, &lb);
        uint64_t n_vocab = info(mapped, CHORD_INFO_N_VOCAB);
        CHECK(a && b && la == lb && la == n * n_vocab, "logit counts %zu %zu", la, lb);
        if (a && b && la == lb) {
            CHECK(!memcmp(a, b, la * sizeof *a), "mapped and owned weights give bit-equal logits");
            int finite = 1;
            for (size_t i = 0; i < la; i++) finite &= isfinite(a[i]) != 0;
            CHECK(finite, "finite logits");
        }
        free(a);
        free(b);
    }
    chord_model_free(mapped);
    chord_model_free(owned);
}

/* Every malformed file fails with its expected status when read into memory, as when mapped. */
static void test_bad_files_no_mmap(const char *dir) {
    chord_model_options *o = new_options();
    EXPECT(CHORD_OK, chord_model_options_set_use_mmap(o, 0, &err_));
    chord_model *m = NULL;
    EXPECT(CHORD_E_IO, chord_model_load(KEY("/nonexistent/model.gguf"), o, &m, &err_));
    if (dir) {
        char path[4096], line[1024];
        snprintf(path, sizeof path, "%s/expected.tsv", dir);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL, "cannot open %s", path);
        int cases = 0;
        while (f && fgets(line, sizeof line, f)) {
            char *tab = strchr(line, '\t');
            if (!tab) continue;
            *tab = 0;
            char *code = tab + 1;
            code[strcspn(code, "\r\n")] = 0;
            snprintf(path, sizeof path, "%s/%s", dir, line);
            chord_error *err = NULL;
            chord_status st = chord_model_load(path, strlen(path), o, &m, &err);
            CHECK(!strcmp(chord_status_name(st), code), "no mmap: %s: got %s, want %s", line,
                  chord_status_name(st), code);
            chord_error_free(err);
            cases++;
        }
        if (f) fclose(f);
        CHECK(cases >= 30, "only %d corpus cases", cases);
    }
    CHECK(m == NULL, "no model from a bad file");
    chord_model_options_free(o);
}

/* ---- logging ---- */

typedef struct {
    int messages, by_level[4], bad_level, bad_len, frees;
    int saw_arch, saw_budget_warning, nested_status;
    int nest; /* 1: call chord_set_log_callback from inside the callback once */
} log_t;

static void on_log(uint32_t level, const char *msg, size_t len, void *user_data) {
    log_t *t = user_data;
    t->messages++;
    if (level > CHORD_LOG_DEBUG) t->bad_level = 1;
    else t->by_level[level]++;
    if (strlen(msg) != len || len == 0) t->bad_len = 1;
    if (strstr(msg, "architecture llama")) t->saw_arch = 1;
    if (level == CHORD_LOG_WARN && strstr(msg, "budget")) t->saw_budget_warning = 1;
    if (t->nest) {
        t->nest = 0;
        chord_error *err = NULL;
        t->nested_status = (int)chord_set_log_callback(NULL, NULL, NULL, &err);
        chord_error_free(err);
    }
}

static void on_log_free(void *user_data) { ((log_t *)user_data)->frees++; }

static void test_log(void) {
    log_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_set_log_level(CHORD_LOG_DEBUG + 1, &err_));
    EXPECT(CHORD_OK, chord_set_log_level(CHORD_LOG_DEBUG, &err_));
    a.nest = 1;
    EXPECT(CHORD_OK, chord_set_log_callback(on_log, &a, on_log_free, &err_));
    chord_model_options *o = new_options();
    chord_model *m = load(o);
    chord_model_free(m);
    CHECK(a.nested_status == CHORD_E_BUSY, "set_log_callback inside the callback: %s",
          chord_status_name((chord_status)a.nested_status));
    CHECK(a.messages > 5, "only %d log messages for a load", a.messages);
    CHECK(a.by_level[CHORD_LOG_INFO] > 0 && a.by_level[CHORD_LOG_DEBUG] > 0, "info and debug messages");
    CHECK(a.saw_arch, "the load logs the architecture");
    CHECK(!a.bad_level && !a.bad_len, "levels and lengths are valid");
    CHECK(a.frees == 0, "user_data not freed while installed");

    /* Level filter: WARN and up only. A budget below the largest layer (2.2 MB here) cannot run
     * and fails the load; one that holds a single streaming slot (no prefetch) runs and warns. */
    EXPECT(CHORD_OK, chord_set_log_level(CHORD_LOG_WARN, &err_));
    memset(a.by_level, 0, sizeof a.by_level);
    EXPECT(CHORD_OK, chord_model_options_set_memory_budget(o, 1000, &err_));
    {
        chord_model *tiny = NULL;
        EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_load(model_path, strlen(model_path), o, &tiny, &err_));
        CHECK(tiny == NULL, "no model from a failed load");
        CHECK(a.by_level[CHORD_LOG_ERROR] == 1, "the failed load logs one error");
        a.by_level[CHORD_LOG_ERROR] = 0;
    }
    EXPECT(CHORD_OK, chord_model_options_set_memory_budget(o, 3000000, &err_));
    m = load(o);
    CHECK(info(m, CHORD_INFO_PAGED) == 1, "a 3 MB budget pages the model");
    chord_model_free(m);
    CHECK(a.by_level[CHORD_LOG_INFO] == 0 && a.by_level[CHORD_LOG_DEBUG] == 0, "filtered levels are not delivered");
    CHECK(a.saw_budget_warning, "a budget with room for one streaming slot is a warning");
    chord_model *none = NULL;
    EXPECT(CHORD_E_IO, chord_model_load(KEY("/nonexistent/model.gguf"), o, &none, &err_));
    CHECK(a.by_level[CHORD_LOG_ERROR] == 1, "a failed load logs one error (%d)", a.by_level[CHORD_LOG_ERROR]);

    /* Replacing the callback frees the old user_data exactly once; removing it frees the new one. */
    EXPECT(CHORD_OK, chord_set_log_callback(on_log, &b, on_log_free, &err_));
    CHECK(a.frees == 1, "old user_data freed once on replacement (%d)", a.frees);
    int a_msgs = a.messages;
    m = load(o);
    chord_model_free(m);
    CHECK(a.messages == a_msgs && b.by_level[CHORD_LOG_WARN] > 0, "only the new callback receives");
    EXPECT(CHORD_OK, chord_set_log_callback(NULL, NULL, NULL, &err_));
    CHECK(b.frees == 1 && a.frees == 1, "each user_data freed exactly once (%d, %d)", a.frees, b.frees);
    int b_msgs = b.messages;
    m = load(o);
    chord_model_free(m);
    CHECK(b.messages == b_msgs, "no messages after removing the callback");
    EXPECT(CHORD_OK, chord_set_log_callback(NULL, NULL, NULL, &err_));
    CHECK(b.frees == 1 && a.frees == 1, "removing twice frees nothing more");
    /* A callback without user_data_free works too. */
    memset(&a, 0, sizeof a);
    EXPECT(CHORD_OK, chord_set_log_callback(on_log, &a, NULL, &err_));
    m = load(o);
    chord_model_free(m);
    EXPECT(CHORD_OK, chord_set_log_callback(NULL, NULL, NULL, &err_));
    CHECK(a.saw_budget_warning && a.frees == 0, "callback without user_data_free");
    EXPECT(CHORD_OK, chord_set_log_level(CHORD_LOG_INFO, &err_));
    chord_model_options_free(o);
}

/* ---- model facts ---- */

static void test_info(chord_model *m) {
    uint64_t n_vocab = info(m, CHORD_INFO_N_VOCAB), n_embd = info(m, CHORD_INFO_N_EMBD);
    uint64_t n_layer = info(m, CHORD_INFO_N_LAYER), n_head = info(m, CHORD_INFO_N_HEAD);
    uint64_t n_head_kv = info(m, CHORD_INFO_N_HEAD_KV), n_ff = info(m, CHORD_INFO_N_FF);
    uint64_t v = 0;
    EXPECT(CHORD_OK, chord_model_meta_u64(m, KEY("llama.feed_forward_length"), &v, &err_));
    CHECK(n_ff == v && n_ff > 0, "n_ff %llu vs metadata %llu", (unsigned long long)n_ff, (unsigned long long)v);
    EXPECT(CHORD_OK, chord_model_meta_u64(m, KEY("llama.block_count"), &v, &err_));
    CHECK(n_layer == v, "n_layer matches metadata");
    EXPECT(CHORD_OK, chord_model_meta_u64(m, KEY("llama.context_length"), &v, &err_));
    CHECK(info(m, CHORD_INFO_N_CTX_TRAIN) == v, "n_ctx_train matches metadata");
    /* Parameters of a llama model: embeddings, per layer q/k/v/o, gate/up/down, two norms; the
     * output norm; an output head unless it is tied to the embeddings. */
    uint64_t head_dim = n_embd / n_head, kv = n_head_kv * head_dim;
    uint64_t per_layer = 2 * n_embd * n_embd + 2 * n_embd * kv + 3 * n_embd * n_ff + 2 * n_embd;
    uint64_t tied = n_vocab * n_embd + n_layer * per_layer + n_embd;
    uint64_t n_params = info(m, CHORD_INFO_N_PARAMS);
    CHECK(n_params == tied || n_params == tied + n_vocab * n_embd, "n_params %llu, expected %llu",
          (unsigned long long)n_params, (unsigned long long)tied);
    uint64_t bytes = info(m, CHORD_INFO_WEIGHT_BYTES);
    CHECK(bytes > n_params / 2 && bytes < n_params * 4, "weight bytes %llu", (unsigned long long)bytes);
    /* Special tokens agree with the metadata (UINT64_MAX when the file names none). */
    struct { uint32_t key; const char *meta; } special[] = {
        {CHORD_INFO_TOKEN_BOS, "tokenizer.ggml.bos_token_id"},
        {CHORD_INFO_TOKEN_EOS, "tokenizer.ggml.eos_token_id"},
        {CHORD_INFO_TOKEN_PAD, "tokenizer.ggml.padding_token_id"},
        {CHORD_INFO_TOKEN_UNK, "tokenizer.ggml.unknown_token_id"},
        {CHORD_INFO_TOKEN_SEP, "tokenizer.ggml.seperator_token_id"},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        uint64_t id = info(m, special[i].key);
        chord_error *err = NULL;
        chord_status st = chord_model_meta_u64(m, KEY(special[i].meta), &v, &err);
        chord_error_free(err);
        if (st == CHORD_OK) CHECK(id == v, "%s: info %llu, metadata %llu", special[i].meta, (unsigned long long)id, (unsigned long long)v);
        else CHECK(st == CHORD_E_NOT_FOUND && id == UINT64_MAX, "%s absent: info %llu", special[i].meta, (unsigned long long)id);
    }
    uint64_t eot = info(m, CHORD_INFO_TOKEN_EOT);
    CHECK(eot == UINT64_MAX || (eot < n_vocab && chord_token_is_eog(m, (chord_token)eot)), "eot %llu", (unsigned long long)eot);
    uint32_t b = 9;
    EXPECT(CHORD_OK, chord_model_meta_bool(m, KEY("tokenizer.ggml.add_bos_token"), &b, &err_));
    CHECK(info(m, CHORD_INFO_ADD_BOS) == b, "add_bos matches metadata");
    chord_error *err = NULL;
    chord_status st = chord_model_meta_bool(m, KEY("tokenizer.ggml.add_eos_token"), &b, &err);
    chord_error_free(err);
    CHECK(info(m, CHORD_INFO_ADD_EOS) == (st == CHORD_OK ? b : 0), "add_eos matches metadata");
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_info(m, 9999, &v, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_info(m, CHORD_INFO_N_FF, NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_info(NULL, CHORD_INFO_N_FF, &v, &err_));
}

/* ---- metadata by key ---- */

/* Reads the value of `key` with the getter for its type; returns 1 when that worked. */
static int read_scalar(chord_model *m, const char *key, uint32_t type) {
    chord_error *err = NULL;
    chord_status st;
    uint64_t u;
    int64_t i;
    double f;
    uint32_t b;
    size_t len = 0;
    switch (type) {
    case CHORD_META_U8: case CHORD_META_U16: case CHORD_META_U32: case CHORD_META_U64:
        st = chord_model_meta_u64(m, KEY(key), &u, &err);
        break;
    case CHORD_META_I8: case CHORD_META_I16: case CHORD_META_I32: case CHORD_META_I64:
        st = chord_model_meta_i64(m, KEY(key), &i, &err);
        break;
    case CHORD_META_F32: case CHORD_META_F64:
        st = chord_model_meta_f64(m, KEY(key), &f, &err);
        break;
    case CHORD_META_BOOL:
        st = chord_model_meta_bool(m, KEY(key), &b, &err);
        CHECK(b <= 1, "%s: bool is %u", key, b);
        break;
    case CHORD_META_STRING: {
        st = chord_model_meta_string(m, KEY(key), NULL, 0, &len, &err);
        CHECK(st == CHORD_E_BUFFER_TOO_SMALL, "%s: size query %s", key, chord_status_name(st));
        chord_error_free(err);
        err = NULL;
        char *s = malloc(len + 1);
        st = chord_model_meta_string(m, KEY(key), s, len + 1, &len, &err);
        if (st == CHORD_OK) CHECK(s[len] == 0, "%s: NUL-terminated", key);
        free(s);
        break;
    }
    default:
        st = CHORD_E_INTERNAL;
    }
    CHECK(st == CHORD_OK, "%s (type %u): %s %s", key, type, chord_status_name(st), err ? chord_error_message(err) : "");
    chord_error_free(err);
    return st == CHORD_OK;
}

/* Reads element `index` of array `key` with the getter for `type`. */
static chord_status read_element(chord_model *m, const char *key, uint32_t type, size_t index) {
    chord_error *err = NULL;
    chord_status st;
    uint64_t u;
    int64_t i;
    double f;
    uint32_t b;
    size_t len = 0;
    char buf[512];
    switch (type) {
    case CHORD_META_U8: case CHORD_META_U16: case CHORD_META_U32: case CHORD_META_U64:
        st = chord_model_meta_array_u64(m, KEY(key), index, &u, &err);
        break;
    case CHORD_META_I8: case CHORD_META_I16: case CHORD_META_I32: case CHORD_META_I64:
        st = chord_model_meta_array_i64(m, KEY(key), index, &i, &err);
        break;
    case CHORD_META_F32: case CHORD_META_F64:
        st = chord_model_meta_array_f64(m, KEY(key), index, &f, &err);
        break;
    case CHORD_META_BOOL:
        st = chord_model_meta_array_bool(m, KEY(key), index, &b, &err);
        break;
    case CHORD_META_STRING:
        st = chord_model_meta_array_string(m, KEY(key), index, buf, sizeof buf, &len, &err);
        break;
    default:
        st = CHORD_E_UNSUPPORTED; /* nested arrays: only their type and length are readable */
    }
    if (st != CHORD_OK) CHECK(err && chord_error_code(err) == st, "error object matches");
    chord_error_free(err);
    return st;
}

static void test_meta_enumerate(chord_model *m) {
    size_t count = 0, len = 0;
    EXPECT(CHORD_OK, chord_model_meta_count(m, &count, &err_));
    CHECK(count > 10, "only %zu metadata keys", count);
    int arrays = 0, strings = 0, uints = 0, floats = 0, bools = 0;
    for (size_t k = 0; k < count; k++) {
        char key[256];
        EXPECT(CHORD_OK, chord_model_meta_key_by_index(m, k, key, sizeof key, &len, &err_));
        CHECK(len == strlen(key), "key length");
        uint32_t type = 99;
        EXPECT(CHORD_OK, chord_model_meta_type(m, key, len, &type, &err_));
        CHECK(type <= CHORD_META_F64, "%s: type %u", key, type);
        if (type == CHORD_META_ARRAY) {
            size_t n = 0;
            uint32_t et = 99;
            EXPECT(CHORD_OK, chord_model_meta_array_len(m, key, len, &n, &et, &err_));
            CHECK(et <= CHORD_META_F64, "%s: element type %u", key, et);
            if (n > 0) {
                CHECK(read_element(m, key, et, 0) == CHORD_OK, "%s[0]", key);
                CHECK(read_element(m, key, et, n - 1) == CHORD_OK, "%s[last]", key);
            }
            CHECK(read_element(m, key, et, n) == CHORD_E_INVALID_ARGUMENT, "%s[len] is out of range", key);
            arrays++;
        } else {
            read_scalar(m, key, type);
            strings += type == CHORD_META_STRING;
            uints += type == CHORD_META_U32 || type == CHORD_META_U64;
            floats += type == CHORD_META_F32;
            bools += type == CHORD_META_BOOL;
        }
    }
    CHECK(arrays > 0 && strings > 0 && uints > 0 && floats > 0 && bools > 0, "the model covers the common types");
    char small[4];
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_meta_key_by_index(m, 0, small, sizeof small, &len, &err_));
    CHECK(len > 3, "needed length reported");
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_key_by_index(m, count, small, sizeof small, &len, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_key_by_index(NULL, 0, small, sizeof small, &len, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_count(NULL, &count, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_count(m, NULL, &err_));
}

static void test_meta_values(chord_model *m) {
    /* Strings: into a buffer, too small a buffer, the same as chord_model_architecture. */
    char buf[64], arch[64];
    size_t len = 0, alen = 0;
    EXPECT(CHORD_OK, chord_model_meta_string(m, KEY("general.architecture"), buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_OK, chord_model_architecture(m, arch, sizeof arch, &alen, &err_));
    CHECK(len == alen && !strcmp(buf, arch), "architecture '%s' vs '%s'", buf, arch);
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_meta_string(m, KEY("general.architecture"), buf, alen, &len, &err_));
    CHECK(len == alen, "needed length %zu", len);
    /* Integers widen: a u32 reads as u64 and as i64. */
    uint64_t u = 0;
    int64_t i = 0;
    EXPECT(CHORD_OK, chord_model_meta_u64(m, KEY("llama.embedding_length"), &u, &err_));
    EXPECT(CHORD_OK, chord_model_meta_i64(m, KEY("llama.embedding_length"), &i, &err_));
    CHECK(u == info(m, CHORD_INFO_N_EMBD) && (uint64_t)i == u, "embedding length %llu %lld", (unsigned long long)u, (long long)i);
    uint32_t type = 0;
    EXPECT(CHORD_OK, chord_model_meta_type(m, KEY("llama.embedding_length"), &type, &err_));
    CHECK(type == CHORD_META_U32, "embedding_length is a u32 (%u)", type);
    /* Floats: an f32 reads exactly as f64. */
    double f = 0;
    EXPECT(CHORD_OK, chord_model_meta_f64(m, KEY("llama.rope.freq_base"), &f, &err_));
    CHECK(f > 0 && (double)(float)f == f, "rope base %f", f);
    /* Type mismatches. */
    uint32_t b = 0;
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_u64(m, KEY("general.architecture"), &u, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_i64(m, KEY("llama.rope.freq_base"), &i, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_f64(m, KEY("llama.embedding_length"), &f, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_bool(m, KEY("llama.embedding_length"), &b, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_string(m, KEY("llama.embedding_length"), buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_string(m, KEY("tokenizer.ggml.tokens"), buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_len(m, KEY("general.architecture"), &len, &type, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_u64(m, KEY("general.architecture"), 0, &u, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_u64(m, KEY("tokenizer.ggml.tokens"), 0, &u, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_string(m, KEY("tokenizer.ggml.token_type"), 0, buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_f64(m, KEY("tokenizer.ggml.tokens"), 0, &f, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_bool(m, KEY("tokenizer.ggml.tokens"), 0, &b, &err_));
    EXPECT(CHORD_E_TYPE_MISMATCH, chord_model_meta_array_i64(m, KEY("tokenizer.ggml.tokens"), 0, &i, &err_));
    /* Arrays: the vocabulary by index agrees with the tokenizer. */
    size_t n = 0;
    EXPECT(CHORD_OK, chord_model_meta_array_len(m, KEY("tokenizer.ggml.tokens"), &n, NULL, &err_));
    CHECK(n == info(m, CHORD_INFO_N_VOCAB), "vocabulary array length %zu", n);
    EXPECT(CHORD_OK, chord_model_meta_array_len(m, KEY("tokenizer.ggml.tokens"), &n, &type, &err_));
    CHECK(type == CHORD_META_STRING, "tokens are strings");
    uint64_t bos = info(m, CHORD_INFO_TOKEN_BOS);
    if (bos != UINT64_MAX) {
        char piece[64];
        size_t plen = 0;
        EXPECT(CHORD_OK, chord_model_meta_array_string(m, KEY("tokenizer.ggml.tokens"), (size_t)bos, buf, sizeof buf, &len, &err_));
        EXPECT(CHORD_OK, chord_token_to_piece(m, (chord_token)bos, 1, piece, sizeof piece, &plen, &err_));
        CHECK(plen == len && !memcmp(piece, buf, len), "token %llu text '%s'", (unsigned long long)bos, buf);
        EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_meta_array_string(m, KEY("tokenizer.ggml.tokens"), (size_t)bos, buf, len, &len, &err_));
        CHECK(len == plen, "needed length");
    }
    EXPECT(CHORD_OK, chord_model_meta_array_i64(m, KEY("tokenizer.ggml.token_type"), 0, &i, &err_));
    EXPECT(CHORD_OK, chord_model_meta_array_u64(m, KEY("tokenizer.ggml.token_type"), 0, &u, &err_));
    CHECK((uint64_t)i == u, "token type widens");
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_i64(m, KEY("tokenizer.ggml.token_type"), n, &i, &err_));
    /* Missing keys. */
    const char *none = "no.such.key";
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_type(m, KEY(none), &type, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_u64(m, KEY(none), &u, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_i64(m, KEY(none), &i, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_f64(m, KEY(none), &f, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_bool(m, KEY(none), &b, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_string(m, KEY(none), buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_array_len(m, KEY(none), &len, &type, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_array_u64(m, KEY(none), 0, &u, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_array_i64(m, KEY(none), 0, &i, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_array_f64(m, KEY(none), 0, &f, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_array_bool(m, KEY(none), 0, &b, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_array_string(m, KEY(none), 0, buf, sizeof buf, &len, &err_));
    /* A key is matched exactly: a prefix or a key with a trailing NUL is another key. */
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_type(m, "general.architecture", 7, &type, &err_));
    EXPECT(CHORD_E_NOT_FOUND, chord_model_meta_type(m, "general.architecture", 21, &type, &err_));
    /* Invalid UTF-8 keys. */
    const char *bad = "general.\xc3\x28";
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_type(m, KEY(bad), &type, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_u64(m, KEY(bad), &u, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_i64(m, KEY(bad), &i, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_f64(m, KEY(bad), &f, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_bool(m, KEY(bad), &b, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_string(m, KEY(bad), buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_array_len(m, KEY(bad), &len, &type, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_array_u64(m, KEY(bad), 0, &u, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_array_i64(m, KEY(bad), 0, &i, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_array_f64(m, KEY(bad), 0, &f, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_array_bool(m, KEY(bad), 0, &b, &err_));
    EXPECT(CHORD_E_INVALID_UTF8, chord_model_meta_array_string(m, KEY(bad), 0, buf, sizeof buf, &len, &err_));
    /* NULL pointers. */
    const char *k = "llama.embedding_length";
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_type(NULL, KEY(k), &type, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_type(m, NULL, 5, &type, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_type(m, KEY(k), NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_u64(NULL, KEY(k), &u, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_u64(m, KEY(k), NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_i64(m, KEY(k), NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_f64(m, KEY("llama.rope.freq_base"), NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_bool(m, KEY("tokenizer.ggml.add_bos_token"), NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_string(m, KEY("general.architecture"), NULL, 100, &len, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_string(NULL, KEY("general.architecture"), buf, sizeof buf, &len, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_len(m, KEY("tokenizer.ggml.tokens"), NULL, &type, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_len(NULL, KEY("tokenizer.ggml.tokens"), &len, &type, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_u64(m, KEY("tokenizer.ggml.token_type"), 0, NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_i64(m, KEY("tokenizer.ggml.token_type"), 0, NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_f64(NULL, KEY("tokenizer.ggml.token_type"), 0, &f, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_bool(NULL, KEY("tokenizer.ggml.token_type"), 0, &b, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_meta_array_string(m, KEY("tokenizer.ggml.tokens"), 0, NULL, 100, &len, &err_));
    /* A NULL err pointer still returns the status. */
    CHECK(chord_model_meta_u64(m, KEY(none), &u, NULL) == CHORD_E_NOT_FOUND, "NULL err");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [BAD_GGUF_DIR]\n", argv[0]);
        return 2;
    }
    model_path = argv[1];
    const char *l = getenv("CHORD_TEST_LIGHT");
    light = l && !strcmp(l, "1");
    test_options();
    test_progress();
    test_bad_files_no_mmap(argc > 2 ? argv[2] : NULL);
    test_log();
    test_no_mmap();
    chord_model_options *o = new_options();
    chord_model *m = load(o);
    chord_model_options_free(o);
    if (m) {
        test_info(m);
        test_meta_enumerate(m);
        test_meta_values(m);
        chord_model_free(m);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
