/*
 * Soak: host threads (8 by default) over two models run random C API operations for a given time:
 * sessions created and freed (also while a background generation runs), text appended, generation
 * in callback and poll mode, cancels from other threads, truncation, state saved and loaded (also
 * into a session of the other model), batched decoding, chat templates, tokenization of valid and
 * invalid text, detokenization of valid and invalid ids. Threads share twelve session slots, so
 * calls meet busy sessions all the time.
 *
 * Checked:
 * * every status is one that chord.h documents for that call (CHORD_E_INTERNAL, though
 *   documented, is a failure: it means a bug);
 * * nothing hangs: a watchdog ends the run (exit 2) when a call has not returned for
 *   SOAK_WATCHDOG_S seconds (default 120);
 * * resident memory stays flat: with a run of at least SOAK_RSS_MIN_S seconds (default 600), the
 *   peak of the second half may exceed the peak of the first half by at most 32 MiB (the
 *   recycling allocator keeps up to 32 MiB of freed blocks). Shorter runs (CI's short form, and
 *   runs under ASan, whose quarantine holds freed memory on purpose) report the figures only; ASan
 *   and LeakSanitizer check those runs' memory instead.
 *
 * Usage: soak MODEL_A MODEL_B [SECONDS]    (default 60; SOAK_THREADS sets the thread count)
 * Prints the operations, statuses and memory figures; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "chord.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_SLOTS 12
#define N_CTX 256
#define MAX_THREADS 64
#define MAX_SAMPLES 100000

#define BIT(s) (1u << (s))
#define OK BIT(CHORD_OK)
#define BUSY BIT(CHORD_E_BUSY)

/* The operations, for the counts and the watchdog's message. */
enum {
    OP_NEW_OR_FREE,
    OP_APPEND,
    OP_GENERATE,
    OP_POLL,
    OP_START_AND_LEAVE,
    OP_CANCEL,
    OP_TRUNCATE,
    OP_STATE,
    OP_BATCH,
    OP_CHAT,
    OP_TOKENIZE,
    OP_RESET,
    OP_FORK,
    N_OPS
};
static const char *op_names[N_OPS] = {"new/free", "append", "generate", "poll", "start+leave",
                                      "cancel", "truncate", "state", "batch", "chat", "tokenize",
                                      "reset", "fork"};

typedef struct {
    pthread_rwlock_t lock; /* write: create or free the session; read: any call on it */
    chord_session *s;
    int model;
} slot_t;

typedef struct {
    pthread_t th;
    int id;
    uint64_t rng;
    _Atomic long op_start_ms; /* 0: between calls */
    _Atomic int op;
    long ops[N_OPS];
} worker_t;

static slot_t slots[N_SLOTS];
static chord_model *models[2];
static worker_t workers[MAX_THREADS];
static int n_workers = 8;
static long deadline_ms;
static atomic_int failures;
static atomic_long status_count[32];
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static uint64_t next(worker_t *w) { /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

static unsigned pick(worker_t *w, unsigned n) { return (unsigned)(next(w) % n); }

/* Records `st` of `call`; a status outside `allowed` (or CHORD_E_INTERNAL) is a failure. */
static chord_status check(const char *call, chord_status st, unsigned allowed, chord_error *err) {
    if (st < 32) atomic_fetch_add(&status_count[st], 1);
    if (st == CHORD_E_INTERNAL || st >= 32 || !(allowed & BIT(st))) {
        atomic_fetch_add(&failures, 1);
        pthread_mutex_lock(&print_lock);
        fprintf(stderr, "FAIL %s returned %s: %s\n", call, chord_status_name(st),
                err ? chord_error_message(err) : "(no error object)");
        pthread_mutex_unlock(&print_lock);
    }
    chord_error_free(err);
    return st;
}

/* The error of the call being checked (each thread its own). */
static _Thread_local chord_error *call_err;

static chord_status checked(const char *call, chord_status st, unsigned allowed) {
    chord_error *e = call_err;
    call_err = NULL;
    return check(call, st, allowed, e);
}

/* Calls `fn(args..., &err)` and checks its status against `allowed`. */
#define CALL(allowed, fn, ...) checked(#fn, fn(__VA_ARGS__, &call_err), (allowed))

static char long_text[4096];
static const char *texts[] = {
    "<|im_start|>user\nTell me about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time",
    " and then the dragon said: ",
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
    "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n",
    "naïve café — 日本語のテキスト 🐉",
    "",
    NULL, /* a text of about 300 tokens, made in main: fills a context of 256 */
};
#define N_TEXTS (sizeof texts / sizeof texts[0])

static uint32_t on_text(const char *text, size_t len, void *ud) {
    worker_t *w = ud;
    (void)text;
    (void)len;
    return pick(w, 16) != 0; /* now and then the host stops the generation */
}

static chord_generate_params *random_params(worker_t *w) {
    chord_generate_params *p = NULL;
    CALL(OK, chord_generate_params_new, &p);
    CALL(OK, chord_generate_params_set_max_tokens, p, 1 + pick(w, 12));
    CALL(OK, chord_generate_params_set_temperature, p, (float)pick(w, 3) * 0.5f);
    CALL(OK, chord_generate_params_set_seed, p, next(w));
    if (pick(w, 4) == 0) CALL(OK, chord_generate_params_set_top_k, p, 1 + pick(w, 40));
    if (pick(w, 4) == 0) CALL(OK, chord_generate_params_add_stop, p, "\n", (size_t)1);
    return p;
}

/* Polls until the generation's DONE or ERROR event. Another thread may be polling this session
 * (BUSY) or have taken the events; a poll that returns NONE before its timeout means that no
 * generation runs and no event is left, which also ends the wait. */
static void drain(chord_session *s, int cancel_after) {
    char buf[256];
    for (int tokens = 0;;) {
        uint32_t ev = CHORD_EVENT_NONE, detail = 0;
        chord_token tok = 0;
        size_t len = 0;
        long t0 = now_ms();
        chord_status st = CALL(OK | BUSY | BIT(CHORD_E_BUFFER_TOO_SMALL), chord_session_poll, s,
                               50u, &ev, &tok, &detail, buf, sizeof buf, &len);
        if (st == CHORD_E_BUSY) {
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (st != CHORD_OK) continue;
        if (ev == CHORD_EVENT_TOKEN && ++tokens == cancel_after) chord_session_cancel(s);
        if (ev == CHORD_EVENT_DONE || ev == CHORD_EVENT_ERROR) {
            if (ev == CHORD_EVENT_ERROR && detail != CHORD_E_CANCELLED) {
                atomic_fetch_add(&failures, 1);
                fprintf(stderr, "FAIL background generation ended with %s\n",
                        chord_status_name(detail));
            }
            return;
        }
        if (ev == CHORD_EVENT_NONE && now_ms() - t0 < 40) return;
    }
}

static void random_op(worker_t *w, int op) {
    slot_t *sl = &slots[pick(w, N_SLOTS)];
    switch (op) {
    case OP_NEW_OR_FREE: {
        pthread_rwlock_wrlock(&sl->lock);
        if (sl->s) {
            chord_session_free(sl->s); /* also while a background generation runs */
            sl->s = NULL;
        } else {
            chord_session_options *o = NULL;
            CALL(OK, chord_session_options_new, &o);
            CALL(OK, chord_session_options_set_n_ctx, o, (uint32_t)N_CTX);
            sl->model = (int)pick(w, 2);
            CALL(OK, chord_session_new, models[sl->model], o, &sl->s);
            chord_session_options_free(o);
        }
        pthread_rwlock_unlock(&sl->lock);
        return;
    }
    case OP_TOKENIZE: {
        chord_model *m = models[pick(w, 2)];
        char text[sizeof long_text];
        const char *t = texts[pick(w, N_TEXTS)];
        size_t len = strlen(t);
        memcpy(text, t, len);
        if (len > 0 && pick(w, 4) == 0) text[pick(w, (unsigned)len)] = (char)0xC3; /* cut a character */
        chord_token ids[256];
        size_t n = 0;
        unsigned cap = pick(w, 3) == 0 ? 2 : 256;
        chord_status st = CALL(OK | BIT(CHORD_E_INVALID_UTF8) | BIT(CHORD_E_BUFFER_TOO_SMALL),
                               chord_tokenize, m, text, len, pick(w, 2), pick(w, 2), ids, cap, &n);
        if (st != CHORD_OK) return;
        if (n > 0 && pick(w, 4) == 0) ids[pick(w, (unsigned)n)] = 0xFFFFFFF0u;
        char out[1024];
        size_t out_len = 0;
        CALL(OK | BIT(CHORD_E_INVALID_TOKEN) | BIT(CHORD_E_BUFFER_TOO_SMALL), chord_detokenize, m,
             ids, n, pick(w, 2), pick(w, 2), out, pick(w, 3) == 0 ? 3 : sizeof out, &out_len);
        return;
    }
    case OP_CHAT: {
        chord_model *m = models[pick(w, 2)];
        chord_chat_message msgs[3] = {
            {sizeof(chord_chat_message), "system", 6, "You are brief.", 14},
            {sizeof(chord_chat_message), "user", 4, "Hello there", 11},
            {sizeof(chord_chat_message), "assistant", 9, "Hi!", 3},
        };
        char buf[2048];
        size_t len = 0;
        CALL(OK | BIT(CHORD_E_NOT_FOUND) | BIT(CHORD_E_BUFFER_TOO_SMALL), chord_chat_apply, m,
             NULL, 0, msgs, (size_t)(1 + pick(w, 3)), pick(w, 2), buf,
             pick(w, 4) == 0 ? 8 : sizeof buf, &len);
        return;
    }
    case OP_BATCH: {
        /* Up to three slots of one model, read-locked in slot order. */
        int model = -1, k = 0;
        slot_t *held[3];
        const chord_session *ss[3];
        chord_token toks[3];
        for (int i = (int)pick(w, N_SLOTS); i < N_SLOTS && k < 3; i++) {
            slot_t *x = &slots[i];
            pthread_rwlock_rdlock(&x->lock);
            if (x->s && (model < 0 || x->model == model)) {
                model = x->model;
                held[k] = x;
                ss[k] = x->s;
                toks[k] = 1 + pick(w, 200);
                k++;
            } else {
                pthread_rwlock_unlock(&x->lock);
            }
        }
        if (k > 0)
            CALL(OK | BUSY | BIT(CHORD_E_CONTEXT_FULL) | BIT(CHORD_E_CANCELLED),
                 chord_session_decode_batch, ss, toks, (size_t)k);
        for (int i = 0; i < k; i++) pthread_rwlock_unlock(&held[i]->lock);
        return;
    }
    case OP_FORK: {
        /* A session forked into an empty slot (the two locked in slot order): the fork shares
         * its source's KV blocks while both go on being used, truncated, freed. */
        unsigned a = (unsigned)(sl - slots), b = pick(w, N_SLOTS);
        if (a == b) return;
        slot_t *dst = &slots[b];
        if (a < b) {
            pthread_rwlock_rdlock(&sl->lock);
            pthread_rwlock_wrlock(&dst->lock);
        } else {
            pthread_rwlock_wrlock(&dst->lock);
            pthread_rwlock_rdlock(&sl->lock);
        }
        if (sl->s && !dst->s && CALL(OK | BUSY, chord_session_fork, sl->s, &dst->s) == CHORD_OK)
            dst->model = sl->model;
        pthread_rwlock_unlock(&sl->lock);
        pthread_rwlock_unlock(&dst->lock);
        return;
    }
    default:
        break;
    }

    /* The rest work on one existing session. */
    pthread_rwlock_rdlock(&sl->lock);
    chord_session *s = sl->s;
    if (!s) {
        pthread_rwlock_unlock(&sl->lock);
        return;
    }
    switch (op) {
    case OP_APPEND: {
        const char *t = texts[pick(w, N_TEXTS)];
        size_t n = 0;
        chord_status st = CALL(OK | BUSY | BIT(CHORD_E_CONTEXT_FULL) | BIT(CHORD_E_CANCELLED),
                               chord_session_append_text, s, t, strlen(t), pick(w, 4), &n);
        if (st == CHORD_E_CONTEXT_FULL) CALL(OK | BUSY, chord_session_reset, s);
        break;
    }
    case OP_GENERATE: {
        chord_generate_params *p = random_params(w);
        uint32_t reason = 0;
        /* INVALID_ARGUMENT: an empty or just truncated context has no logits. */
        CALL(OK | BUSY | BIT(CHORD_E_CANCELLED) | BIT(CHORD_E_INVALID_ARGUMENT),
             chord_session_generate, s, p, on_text, w, &reason);
        chord_generate_params_free(p);
        break;
    }
    case OP_POLL:
    case OP_START_AND_LEAVE: {
        chord_generate_params *p = random_params(w);
        chord_status st = CALL(OK | BUSY | BIT(CHORD_E_INVALID_ARGUMENT),
                               chord_session_generate_start, s, p);
        chord_generate_params_free(p);
        if (op == OP_POLL && (st == CHORD_OK || st == CHORD_E_BUSY))
            drain(s, pick(w, 3) == 0 ? 1 + (int)pick(w, 4) : -1);
        break;
    }
    case OP_CANCEL:
        chord_session_cancel(s);
        break;
    case OP_TRUNCATE: {
        size_t n = 0;
        if (CALL(OK | BUSY, chord_session_n_tokens, s, &n) == CHORD_OK)
            /* INVALID_ARGUMENT: another thread shortened the context in between. */
            CALL(OK | BUSY | BIT(CHORD_E_INVALID_ARGUMENT), chord_session_truncate, s,
                 (size_t)pick(w, (unsigned)n + 1));
        break;
    }
    case OP_STATE: {
        size_t size = 0, len = 0;
        int model = sl->model;
        if (CALL(OK | BUSY, chord_session_state_size, s, &size) != CHORD_OK) break;
        uint8_t *buf = malloc(size + 64);
        chord_status st = CALL(OK | BUSY | BIT(CHORD_E_BUFFER_TOO_SMALL), chord_session_state_save,
                               s, buf, size + 64, &len);
        pthread_rwlock_unlock(&sl->lock);
        if (st == CHORD_OK) {
            slot_t *to = &slots[pick(w, N_SLOTS)];
            pthread_rwlock_rdlock(&to->lock);
            if (to->s) {
                if (pick(w, 8) == 0 && len > 0) buf[pick(w, (unsigned)len)] ^= 0x40; /* corrupt */
                /* BAD_STATE: another model's state, or a corrupted one. */
                st = CALL(OK | BUSY | BIT(CHORD_E_BAD_STATE), chord_session_state_load, to->s, buf,
                          len);
                if (st == CHORD_OK && to->model != model) {
                    atomic_fetch_add(&failures, 1);
                    fprintf(stderr, "FAIL a state loaded into a session of the other model\n");
                }
            }
            pthread_rwlock_unlock(&to->lock);
        }
        free(buf);
        return;
    }
    case OP_RESET:
        CALL(OK | BUSY, chord_session_reset, s);
        break;
    default:
        break;
    }
    pthread_rwlock_unlock(&sl->lock);
}

static void *work(void *arg) {
    worker_t *w = arg;
    /* Weights: appends and generation dominate, as in a host; the rest often enough to meet. */
    static const int weights[N_OPS] = {6, 10, 8, 6, 2, 6, 4, 4, 4, 3, 6, 2, 3};
    int total = 0;
    for (int i = 0; i < N_OPS; i++) total += weights[i];
    while (now_ms() < deadline_ms && atomic_load(&failures) == 0) {
        int r = (int)pick(w, (unsigned)total), op = 0;
        while (r >= weights[op]) r -= weights[op++];
        atomic_store(&w->op, op);
        atomic_store(&w->op_start_ms, now_ms());
        random_op(w, op);
        atomic_store(&w->op_start_ms, 0);
        w->ops[op]++;
    }
    return NULL;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: soak MODEL_A MODEL_B [SECONDS]\n");
        return 1;
    }
    long seconds = argc > 3 ? atol(argv[3]) : 60;
    const char *env = getenv("SOAK_THREADS");
    if (env) n_workers = atoi(env);
    if (n_workers < 1 || n_workers > MAX_THREADS) n_workers = 8;
    long watchdog_ms = 1000L * (getenv("SOAK_WATCHDOG_S") ? atol(getenv("SOAK_WATCHDOG_S")) : 120);
    long rss_min_s = getenv("SOAK_RSS_MIN_S") ? atol(getenv("SOAK_RSS_MIN_S")) : 600;

    for (int i = 0; i < 2; i++) {
        chord_model_options *o = NULL;
        CALL(OK, chord_model_options_new, &o);
        CALL(OK, chord_model_options_set_threads, o, 2u);
        if (CALL(OK, chord_model_load, argv[1 + i], strlen(argv[1 + i]), o, &models[i]) != CHORD_OK) return 1;
        chord_model_options_free(o);
    }
    for (int i = 0; i < N_SLOTS; i++) pthread_rwlock_init(&slots[i].lock, NULL);
    for (int i = 0; i < 60; i++) strcat(long_text, "the brown fox ");
    texts[N_TEXTS - 1] = long_text;

    long start = now_ms();
    deadline_ms = start + seconds * 1000;
    for (int i = 0; i < n_workers; i++) {
        workers[i].id = i;
        workers[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        pthread_create(&workers[i].th, NULL, work, &workers[i]);
    }
    /* The main thread is the watchdog and samples resident memory once a second. */
    static long rss[MAX_SAMPLES];
    int n_rss = 0;
    long last_sample = 0;
    while (now_ms() < deadline_ms + watchdog_ms) {
        int running = 0;
        for (int i = 0; i < n_workers; i++) {
            long t0 = atomic_load(&workers[i].op_start_ms);
            if (t0 && now_ms() - t0 > watchdog_ms) {
                fprintf(stderr, "FAIL watchdog: thread %d has been in '%s' for %ld s\n", i,
                        op_names[atomic_load(&workers[i].op)], (now_ms() - t0) / 1000);
                fflush(stderr);
                _exit(2);
            }
            running += now_ms() < deadline_ms || t0 != 0;
        }
        if (now_ms() < deadline_ms && now_ms() - last_sample >= 1000 && n_rss < MAX_SAMPLES) {
            rss[n_rss++] = rss_kib();
            last_sample = now_ms();
        }
        if (!running || atomic_load(&failures) > 0) break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < n_workers; i++) pthread_join(workers[i].th, NULL);
    long elapsed = (now_ms() - start) / 1000;
    for (int i = 0; i < N_SLOTS; i++) {
        chord_session_free(slots[i].s);
        pthread_rwlock_destroy(&slots[i].lock);
    }
    chord_model_free(models[0]);
    chord_model_free(models[1]);

    long total = 0;
    printf("soak: %d threads, 2 models, %ld s\n", n_workers, elapsed);
    printf("operations:");
    for (int op = 0; op < N_OPS; op++) {
        long n = 0;
        for (int i = 0; i < n_workers; i++) n += workers[i].ops[op];
        total += n;
        printf(" %s %ld", op_names[op], n);
    }
    printf(" (total %ld)\nstatuses:", total);
    for (int st = 0; st < 32; st++)
        if (atomic_load(&status_count[st]))
            printf(" %s %ld", chord_status_name((chord_status)st), atomic_load(&status_count[st]));
    printf("\n");
    long peak1 = 0, peak2 = 0;
    for (int i = 0; i < n_rss; i++) {
        long *p = i < n_rss / 2 ? &peak1 : &peak2;
        if (rss[i] > *p) *p = rss[i];
    }
    printf("resident memory: peak of the first half %.1f MiB, of the second half %.1f MiB, at the end "
           "%.1f MiB (%d samples)\n",
           peak1 / 1024.0, peak2 / 1024.0, n_rss ? rss[n_rss - 1] / 1024.0 : 0.0, n_rss);
    if (seconds >= rss_min_s) {
        if (peak2 - peak1 > 32 * 1024) {
            atomic_fetch_add(&failures, 1);
            fprintf(stderr, "FAIL resident memory grew by %.1f MiB over the second half\n",
                    (peak2 - peak1) / 1024.0);
        }
    } else {
        printf("(memory growth is checked in runs of %ld s or more)\n", rss_min_s);
    }
    int f = atomic_load(&failures);
    printf("%s: %d failures\n", f ? "FAILED" : "passed", f);
    return f ? 1 : 0;
}
