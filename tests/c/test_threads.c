/*
 * Threads: four threads run four sessions over ONE model at once (sampled, a different seed each)
 * and produce the same tokens as the same work run on one thread; a fifth thread entering a busy
 * session gets CHORD_E_BUSY; a cancel from another thread stops a long generation within one
 * token.
 * Usage: test_threads MODEL [BAD_GGUF_DIR]
 * With CHORD_TEST_LIGHT=1 (under valgrind) prompts and generations are shorter.
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
static int light;
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        pthread_mutex_lock(&check_lock);                                  \
        if (cond) {                                                       \
            passed++;                                                     \
        } else {                                                          \
            failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
        pthread_mutex_unlock(&check_lock);                                \
    } while (0)

#define FLAGS (CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL)
#define N_SESSIONS 4
#define MAX_TOKENS 512

static const char *prompt(void) {
    return light ? "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                 : "<|im_start|>user\nWrite a long story about a dragon.<|im_end|>\n<|im_start|>assistant\n";
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The probe handshake: session 0's callback waits in its first call until the fifth thread has
 * checked that the session is busy (`finished`: session 0 ended without calling back). Control
 * tokens are rendered, so every token but a split character brings text and a callback. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_callback, probed, finished;
} probe_t;

typedef struct {
    chord_session *s;
    uint64_t seed;
    probe_t *probe; /* only for session 0 of the concurrent run */
    probe_t *finish; /* the same, kept to report the end */
    chord_token out[MAX_TOKENS];
    size_t n;
    chord_status st;
} job_t;

static uint32_t on_text(const char *text, size_t len, void *ud) {
    job_t *j = ud;
    (void)text;
    (void)len;
    probe_t *p = j->probe;
    if (p) {
        pthread_mutex_lock(&p->mu);
        p->in_callback = 1;
        pthread_cond_broadcast(&p->cv);
        while (!p->probed) pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        j->probe = NULL;
    }
    return 1;
}

static void *run_job(void *arg) {
    job_t *j = arg;
    chord_generate_params *gp = NULL;
    chord_generate_params_new(&gp, NULL);
    chord_generate_params_set_temperature(gp, 0.8f, NULL);
    chord_generate_params_set_seed(gp, j->seed, NULL);
    chord_generate_params_set_max_tokens(gp, light ? 2 : 24, NULL);
    chord_generate_params_set_render_special(gp, 1, NULL);
    j->finish = j->probe;
    j->st = chord_session_append_text(j->s, prompt(), strlen(prompt()), FLAGS, NULL, NULL);
    if (j->st == CHORD_OK) j->st = chord_session_generate(j->s, gp, on_text, j, NULL, NULL);
    if (j->finish) {
        pthread_mutex_lock(&j->finish->mu);
        j->finish->finished = 1;
        pthread_cond_broadcast(&j->finish->cv);
        pthread_mutex_unlock(&j->finish->mu);
    }
    if (j->st == CHORD_OK) j->st = chord_session_tokens(j->s, j->out, MAX_TOKENS, &j->n, NULL);
    chord_generate_params_free(gp);
    return NULL;
}

static chord_session *new_session(chord_model *m) {
    chord_session_options *so = NULL;
    chord_session *s = NULL;
    chord_session_options_new(&so, NULL);
    chord_session_options_set_n_ctx(so, MAX_TOKENS, NULL);
    chord_status st = chord_session_new(m, so, &s, NULL);
    CHECK(st == CHORD_OK, "session_new: %s", chord_status_name(st));
    chord_session_options_free(so);
    return s;
}

typedef struct {
    chord_session *s;
    probe_t *probe;
    chord_status n_tokens, append, start, generate;
} fifth_t;

static void *fifth_thread(void *arg) {
    fifth_t *f = arg;
    probe_t *p = f->probe;
    pthread_mutex_lock(&p->mu);
    while (!p->in_callback && !p->finished) pthread_cond_wait(&p->cv, &p->mu);
    CHECK(p->in_callback, "session 0 ended without calling back");
    size_t n = 0;
    f->n_tokens = chord_session_n_tokens(f->s, &n, NULL);
    f->append = chord_session_append_text(f->s, "x", 1, 0, NULL, NULL);
    f->start = chord_session_generate_start(f->s, NULL, NULL);
    f->generate = chord_session_generate(f->s, NULL, NULL, NULL, NULL, NULL);
    p->probed = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void test_concurrent_sessions(chord_model *m) {
    static job_t ref[N_SESSIONS], par[N_SESSIONS];
    /* One thread, one session after the other. */
    for (int i = 0; i < N_SESSIONS; i++) {
        memset(&ref[i], 0, sizeof ref[i]);
        ref[i].s = new_session(m);
        ref[i].seed = 1000 + (uint64_t)i * 17;
        run_job(&ref[i]);
        CHECK(ref[i].st == CHORD_OK, "reference %d: %s", i, chord_status_name(ref[i].st));
        chord_session_free(ref[i].s);
    }
    /* Four threads at once, plus a fifth that probes session 0 while it generates. */
    probe_t probe;
    pthread_mutex_init(&probe.mu, NULL);
    pthread_cond_init(&probe.cv, NULL);
    probe.in_callback = probe.probed = probe.finished = 0;
    pthread_t th[N_SESSIONS], fifth;
    for (int i = 0; i < N_SESSIONS; i++) {
        memset(&par[i], 0, sizeof par[i]);
        par[i].s = new_session(m);
        par[i].seed = ref[i].seed;
        par[i].probe = i == 0 ? &probe : NULL;
    }
    fifth_t f = {par[0].s, &probe, 0, 0, 0, 0};
    pthread_create(&fifth, NULL, fifth_thread, &f);
    for (int i = 0; i < N_SESSIONS; i++) pthread_create(&th[i], NULL, run_job, &par[i]);
    for (int i = 0; i < N_SESSIONS; i++) pthread_join(th[i], NULL);
    pthread_join(fifth, NULL);
    CHECK(f.n_tokens == CHORD_E_BUSY, "fifth thread n_tokens: %s", chord_status_name(f.n_tokens));
    CHECK(f.append == CHORD_E_BUSY, "fifth thread append: %s", chord_status_name(f.append));
    CHECK(f.start == CHORD_E_BUSY, "fifth thread generate_start: %s", chord_status_name(f.start));
    CHECK(f.generate == CHORD_E_BUSY, "fifth thread generate: %s", chord_status_name(f.generate));
    for (int i = 0; i < N_SESSIONS; i++) {
        CHECK(par[i].st == CHORD_OK, "thread %d: %s", i, chord_status_name(par[i].st));
        CHECK(par[i].n == ref[i].n && par[i].n > 0 && !memcmp(par[i].out, ref[i].out, ref[i].n * sizeof(chord_token)),
              "thread %d: tokens differ from the single-threaded run (%zu vs %zu)", i, par[i].n, ref[i].n);
        chord_session_free(par[i].s);
    }
    /* Different seeds give different continuations (the seeds are really per session). */
    int differ = 0;
    for (int i = 1; i < N_SESSIONS; i++)
        differ |= ref[i].n != ref[0].n || memcmp(ref[i].out, ref[0].out, ref[0].n * sizeof(chord_token));
    CHECK(light || differ, "four seeds, four identical generations");
    pthread_mutex_destroy(&probe.mu);
    pthread_cond_destroy(&probe.cv);
}

/* Cancel from another thread: count the pieces delivered after chord_session_cancel returned. */
typedef struct {
    chord_session *s;
    pthread_mutex_t mu;
    int calls, done;
    chord_status st;
} long_t;

static uint32_t count_text(const char *text, size_t len, void *ud) {
    long_t *g = ud;
    (void)text;
    (void)len;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    pthread_mutex_unlock(&g->mu);
    return 1;
}

static void *long_generation(void *arg) {
    long_t *g = arg;
    chord_generate_params *gp = NULL;
    chord_generate_params_new(&gp, NULL);
    chord_generate_params_set_temperature(gp, 0.0f, NULL);
    chord_generate_params_set_max_tokens(gp, MAX_TOKENS, NULL);
    chord_generate_params_set_render_special(gp, 1, NULL);
    g->st = chord_session_generate(g->s, gp, count_text, g, NULL, NULL);
    pthread_mutex_lock(&g->mu);
    g->done = 1;
    pthread_mutex_unlock(&g->mu);
    chord_generate_params_free(gp);
    return NULL;
}

/* Pieces delivered so far; a large number once the generation has ended. */
static int calls(long_t *g) {
    pthread_mutex_lock(&g->mu);
    int c = g->done ? 1 << 30 : g->calls;
    pthread_mutex_unlock(&g->mu);
    return c;
}

static void test_cancel(chord_model *m) {
    long_t g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    g.s = new_session(m);
    size_t n_prompt = 0;
    chord_status st = chord_session_append_text(g.s, prompt(), strlen(prompt()), FLAGS, &n_prompt, NULL);
    CHECK(st == CHORD_OK, "prompt: %s", chord_status_name(st));
    pthread_t th;
    pthread_create(&th, NULL, long_generation, &g);
    int want = light ? 1 : 3;
    for (int i = 0; i < 600000 && calls(&g) < want; i++) sleep_ms(1);
    chord_session_cancel(g.s);
    pthread_mutex_lock(&g.mu);
    int at_cancel = g.calls;
    pthread_mutex_unlock(&g.mu);
    pthread_join(th, NULL);
    int after = g.calls - at_cancel;
    CHECK(g.st == CHORD_E_CANCELLED, "long generation: %s after %d pieces", chord_status_name(g.st), at_cancel);
    CHECK(after <= 1, "%d pieces delivered after the cancel returned", after);
    size_t n = 0;
    st = chord_session_n_tokens(g.s, &n, NULL);
    CHECK(st == CHORD_OK && n >= n_prompt + (size_t)at_cancel && n <= n_prompt + (size_t)at_cancel + 2,
          "tokens kept after the cancel: %zu (prompt %zu, pieces %d)", n, n_prompt, at_cancel);
    /* Usable afterwards. */
    chord_token t = 28;
    st = chord_session_append_tokens(g.s, &t, 1, 0, NULL);
    CHECK(st == CHORD_OK, "append after cancel: %s", chord_status_name(st));
    chord_session_free(g.s);
    pthread_mutex_destroy(&g.mu);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [BAD_GGUF_DIR]\n", argv[0]);
        return 2;
    }
    const char *l = getenv("CHORD_TEST_LIGHT");
    light = l && !strcmp(l, "1");
    chord_model_options *mo = NULL;
    chord_model_options_new(&mo, NULL);
    chord_model_options_set_threads(mo, 1, NULL);
    chord_model *m = NULL;
    chord_status st = chord_model_load(argv[1], strlen(argv[1]), mo, &m, NULL);
    chord_model_options_free(mo);
    CHECK(st == CHORD_OK, "model_load: %s", chord_status_name(st));
    if (m) {
        test_concurrent_sessions(m);
        test_cancel(m);
        chord_model_free(m);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
