/*
 * chord: the command-line program. Uses only the public header include/chord.h.
 *
 *   chord generate -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]
 *                  [--seed S] [--threads N] [--ctx N] [--chat [--system TEXT]] [--stats]
 *                  [--grammar FILE | --json-schema FILE|JSON | --json] [--lenient]
 *                  [--logit-bias ID=BIAS]... [--logprobs N]
 *     --grammar: only text that the GBNF grammar in FILE allows is generated.
 *     --json-schema: only JSON that the schema (a file, or inline text starting with '{') allows;
 *     --json: any JSON value; --lenient: convert the schema as llama.cpp does, ignoring what the
 *     grammar cannot express (default: refuse it).
 *     --logit-bias: adds BIAS to token ID's logit (-inf bans it); repeatable.
 *     --logprobs: prints each token's log-probability and the N most likely tokens' to stderr.
 *     --chat: PROMPT is a user message; the model's chat template turns it (after the optional
 *     system message) into the prompt, ending with the opening of the assistant's turn.
 *   chord grammar  --json-schema FILE|JSON [--lenient]
 *     prints the GBNF grammar that the JSON Schema converts to (no model needed).
 *   chord embed    -m MODEL -p TEXT [--pooling default|mean|cls|last] [--no-normalize] [--ctx N]
 *     prints the text's embedding (pooled final hidden states, unit length unless --no-normalize)
 *     on one line, each value exactly (%.9g).
 *   chord tokenize -m MODEL -p TEXT [--no-bos]
 *   chord logits   -m MODEL --tokens "ID ID ..." [--top K] [--out FILE] [--threads N]
 *   chord inspect  -m MODEL [--meta]
 *     --stats: after the text, prints the layer pager's and the GPU's counters for the prompt and the generation
 *     (stderr; the pager's all 0 when the model is not paged, the GPU's on the CPU backend).
 *   chord bench    -m MODEL [-p 128] [-n 32] [-d 0] [-r 3] [--threads N] [--ctx N] [--json]
 *     also prints the pager's and the GPU's counters (kernel launches, transfers) over the measured
 *     prefill and decode runs.
 *   chord bench    -m MODEL --sessions N [--fork] [-p 128] [-n 32] [-r 3] [--threads N]
 *     N sessions, each after its own prompt of -p tokens: one session decoding -n tokens alone, then
 *     all N decoding -n tokens together (chord_session_decode_batch): aggregate and per-session
 *     tok/s, and the KV cache they hold (chord_session_kv_bytes). With --fork the first session's
 *     prompt is the others' too: they are its forks (chord_session_fork), sharing its KV memory.
 * Model options for every command: [--no-mmap] [--no-pack] [--budget BYTES[K|M|G]] [--backend auto|cpu|wgpu|cuda]
 * [--prompt-cache BYTES[K|M|G]] [-v | -vv] (log the load to stderr: info, or info and debug).
 * bench with --prompt-cache measures the prompt cache instead: per run, a new session's prompt of -p
 * random tokens to its first logits, then another new session's same prompt (a cache hit).
 *
 * Text goes to stdout, statistics, logs and errors to stderr; errors exit with status 1.
 */
#define _POSIX_C_SOURCE 200809L
#include "chord.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    const char *cmd, *model, *prompt, *tokens, *out, *system, *grammar, *schema;
    long n, threads, ctx, top, reps, top_k, depth, logprobs, sessions, fork;
    int n_bias;
    uint32_t bias_ids[64];
    float bias[64];
    int have_n, no_bos, json, no_mmap, no_pack, verbose, meta, chat, stats, any_json, lenient, no_normalize;
    uint32_t pooling;
    double temp, top_p, min_p;
    unsigned long long seed, budget, prompt_cache;
    uint32_t backend;
} args_t;

static void die(const char *what, chord_status st, chord_error *err) {
    fprintf(stderr, "chord: %s: %s (%s)\n", what, err ? chord_error_message(err) : "failed",
            chord_status_name(st));
    chord_error_free(err);
    exit(1);
}

static void usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "chord: %s%s%s (run `chord help`)\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static long parse_long(const char *s, const char *flag) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0) usage_error("expected a non-negative integer for", flag);
    return v;
}

static double parse_double(const char *s, const char *flag) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s) usage_error("expected a number for", flag);
    return v;
}

/* A byte count with an optional binary suffix: K (KiB), M (MiB) or G (GiB). */
static unsigned long long parse_bytes(const char *s, const char *flag) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') usage_error("expected a byte count for", flag);
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10;
    else if (*end == 'M' || *end == 'm') shift = 20;
    else if (*end == 'G' || *end == 'g') shift = 30;
    if (shift) end++;
    if (*end || (shift && v > (~0ull >> shift))) usage_error("expected a byte count (K, M, G suffixes) for", flag);
    return v << shift;
}

static uint32_t parse_backend(const char *s) {
    if (!strcmp(s, "auto")) return CHORD_BACKEND_AUTO;
    if (!strcmp(s, "cpu")) return CHORD_BACKEND_CPU;
    if (!strcmp(s, "wgpu")) return CHORD_BACKEND_WGPU;
    if (!strcmp(s, "cuda")) return CHORD_BACKEND_CUDA;
    usage_error("unknown backend (auto, cpu, wgpu, cuda)", s);
    return 0;
}

static uint32_t parse_pooling(const char *s) {
    if (!strcmp(s, "default")) return CHORD_POOLING_DEFAULT;
    if (!strcmp(s, "mean")) return CHORD_POOLING_MEAN;
    if (!strcmp(s, "cls")) return CHORD_POOLING_CLS;
    if (!strcmp(s, "last")) return CHORD_POOLING_LAST;
    usage_error("unknown pooling (default, mean, cls, last)", s);
    return 0;
}

static void log_to_stderr(uint32_t level, const char *msg, size_t len, void *user_data) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)user_data;
    fprintf(stderr, "chord: [%s] %.*s\n", level < 4 ? names[level] : "?", (int)len, msg);
}

static void help(void) {
    fputs("usage:\n"
          "  chord generate -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
          "                 [--seed S] [--threads N] [--ctx N] [--chat [--system TEXT]] [--stats]\n"
          "                 [--grammar FILE | --json-schema FILE|JSON | --json] [--lenient]\n"
          "                 [--logit-bias ID=BIAS]... [--logprobs N]\n"
          "  chord grammar  --json-schema FILE|JSON [--lenient]\n"
          "  chord embed    -m MODEL -p TEXT [--pooling default|mean|cls|last] [--no-normalize] [--ctx N]\n"
          "  chord tokenize -m MODEL -p TEXT [--no-bos]\n"
          "  chord logits   -m MODEL --tokens \"ID ID ...\" [--top K] [--out FILE] [--threads N]\n"
          "  chord inspect  -m MODEL [--meta]\n"
          "  chord bench    -m MODEL [-p 128] [-n 32] [-d 0] [-r 3] [--threads N] [--ctx N] [--json]\n"
          "  chord bench    -m MODEL --sessions N [--fork] [-p 128] [-n 32] [-r 3] [--threads N]\n"
          "model options (every command):\n"
          "  --no-mmap            read the file into memory instead of mapping it (paged: read\n"
          "                       streamed layers into buffers instead of mapping them)\n"
          "  --no-pack            keep every matrix in the file image (no packing for the CPU kernels)\n"
          "  --budget BYTES       memory budget, K/M/G suffixes (larger files are paged)\n"
          "  --backend NAME       auto (default), cpu, wgpu, cuda\n"
          "  --prompt-cache BYTES keep prompts' keys and values for sessions that start alike\n"
          "                       (bench: time a new session's prompt, then another's with the same one)\n"
          "  -v, -vv              log the load to stderr (info; info and debug)\n",
          stdout);
}

static args_t parse_args(int argc, char **argv) {
    args_t a = {0};
    a.n = -1;
    a.temp = 0.8;
    a.top_k = 40;
    a.top_p = 0.95;
    a.min_p = 0.05;
    a.reps = 3;
    if (argc < 2) usage_error("missing command", NULL);
    a.cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) usage_error("missing value for", f); i++; } while (0)
        if (!strcmp(f, "-m") || !strcmp(f, "--model")) { NEEDV(); a.model = v; }
        else if (!strcmp(f, "-p") || !strcmp(f, "--prompt")) { NEEDV(); a.prompt = v; }
        else if (!strcmp(f, "-n")) { NEEDV(); a.n = parse_long(v, f); a.have_n = 1; }
        else if (!strcmp(f, "--temp")) { NEEDV(); a.temp = parse_double(v, f); }
        else if (!strcmp(f, "--top-k")) { NEEDV(); a.top_k = parse_long(v, f); }
        else if (!strcmp(f, "--top-p")) { NEEDV(); a.top_p = parse_double(v, f); }
        else if (!strcmp(f, "--min-p")) { NEEDV(); a.min_p = parse_double(v, f); }
        else if (!strcmp(f, "--seed")) { NEEDV(); a.seed = (unsigned long long)parse_long(v, f); }
        else if (!strcmp(f, "--threads") || !strcmp(f, "-t")) { NEEDV(); a.threads = parse_long(v, f); }
        else if (!strcmp(f, "--ctx") || !strcmp(f, "-c")) { NEEDV(); a.ctx = parse_long(v, f); }
        else if (!strcmp(f, "--tokens")) { NEEDV(); a.tokens = v; }
        else if (!strcmp(f, "--top")) { NEEDV(); a.top = parse_long(v, f); }
        else if (!strcmp(f, "--out")) { NEEDV(); a.out = v; }
        else if (!strcmp(f, "-r")) { NEEDV(); a.reps = parse_long(v, f); }
        else if (!strcmp(f, "-d") || !strcmp(f, "--depth")) { NEEDV(); a.depth = parse_long(v, f); }
        else if (!strcmp(f, "--no-bos")) a.no_bos = 1;
        else if (!strcmp(f, "--no-mmap")) a.no_mmap = 1;
        else if (!strcmp(f, "--no-pack")) a.no_pack = 1;
        else if (!strcmp(f, "--budget")) { NEEDV(); a.budget = parse_bytes(v, f); }
        else if (!strcmp(f, "--prompt-cache")) { NEEDV(); a.prompt_cache = parse_bytes(v, f); }
        else if (!strcmp(f, "--backend")) { NEEDV(); a.backend = parse_backend(v); }
        else if (!strcmp(f, "-v")) a.verbose = 1;
        else if (!strcmp(f, "-vv")) a.verbose = 2;
        else if (!strcmp(f, "--meta")) a.meta = 1;
        else if (!strcmp(f, "--json")) { if (!strcmp(a.cmd, "generate")) a.any_json = 1; else a.json = 1; }
        else if (!strcmp(f, "--chat")) a.chat = 1;
        else if (!strcmp(f, "--stats")) a.stats = 1;
        else if (!strcmp(f, "--system")) { NEEDV(); a.system = v; }
        else if (!strcmp(f, "--grammar")) { NEEDV(); a.grammar = v; }
        else if (!strcmp(f, "--json-schema")) { NEEDV(); a.schema = v; }
        else if (!strcmp(f, "--lenient")) a.lenient = 1;
        else if (!strcmp(f, "--no-normalize")) a.no_normalize = 1;
        else if (!strcmp(f, "--sessions")) { NEEDV(); a.sessions = parse_long(v, f); }
        else if (!strcmp(f, "--fork")) a.fork = 1;
        else if (!strcmp(f, "--pooling")) { NEEDV(); a.pooling = parse_pooling(v); }
        else if (!strcmp(f, "--logprobs")) { NEEDV(); a.logprobs = parse_long(v, f); }
        else if (!strcmp(f, "--logit-bias")) {
            NEEDV();
            const char *eq = strchr(v, '=');
            char id[32];
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof id) usage_error("expected ID=BIAS for", f);
            if (a.n_bias == 64) usage_error("at most 64 of", f);
            memcpy(id, v, (size_t)(eq - v));
            id[eq - v] = 0;
            a.bias_ids[a.n_bias] = (uint32_t)parse_long(id, f);
            a.bias[a.n_bias++] = !strcmp(eq + 1, "-inf") ? -INFINITY : (float)strtod(eq + 1, NULL);
        }
        else usage_error("unknown option", f);
#undef NEEDV
    }
    return a;
}

static chord_model *load_model(const args_t *a) {
    if (!a->model) usage_error("missing -m MODEL", NULL);
    chord_error *err = NULL;
    chord_model_options *opts = NULL;
    chord_status st = CHORD_OK;
    if (a->verbose) {
        st = chord_set_log_level(a->verbose > 1 ? CHORD_LOG_DEBUG : CHORD_LOG_INFO, &err);
        if (st == CHORD_OK) st = chord_set_log_callback(log_to_stderr, NULL, NULL, &err);
    }
    if (st == CHORD_OK) st = chord_model_options_new(&opts, &err);
    if (st == CHORD_OK) st = chord_model_options_set_threads(opts, (uint32_t)a->threads, &err);
    if (st == CHORD_OK) st = chord_model_options_set_use_mmap(opts, a->no_mmap ? 0 : 1, &err);
    if (st == CHORD_OK) st = chord_model_options_set_pack_weights(opts, a->no_pack ? 0 : 1, &err);
    if (st == CHORD_OK) st = chord_model_options_set_memory_budget(opts, a->budget, &err);
    if (st == CHORD_OK) st = chord_model_options_set_backend(opts, a->backend, &err);
    if (st == CHORD_OK) st = chord_model_options_set_prompt_cache(opts, a->prompt_cache, &err);
    chord_model *model = NULL;
    if (st == CHORD_OK) st = chord_model_load(a->model, strlen(a->model), opts, &model, &err);
    chord_model_options_free(opts);
    if (st != CHORD_OK) die(a->model, st, err);
    return model;
}

static chord_session *new_session(chord_model *model, long n_ctx) {
    chord_error *err = NULL;
    chord_session_options *opts = NULL;
    chord_session *s = NULL;
    chord_status st = chord_session_options_new(&opts, &err);
    if (st == CHORD_OK) st = chord_session_options_set_n_ctx(opts, (uint32_t)n_ctx, &err);
    if (st == CHORD_OK) st = chord_session_new(model, opts, &s, &err);
    chord_session_options_free(opts);
    if (st != CHORD_OK) die("creating a session", st, err);
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long long peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (unsigned long long)ru.ru_maxrss * 1024ull; /* Linux reports KiB */
}

static uint32_t print_text(const char *text, size_t len, void *user_data) {
    (void)user_data;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 1;
}

/* Applies the model's chat template to [system,] user; returns a malloc'd NUL-terminated prompt. */
static char *chat_prompt(const chord_model *model, const char *system, const char *user) {
    chord_chat_message msgs[2];
    size_t n_msgs = 0;
    const char *roles[2] = {"system", "user"};
    const char *texts[2] = {system, user};
    for (int i = 0; i < 2; i++) {
        if (!texts[i]) continue;
        msgs[n_msgs].struct_size = (uint32_t)sizeof(chord_chat_message);
        msgs[n_msgs].role = roles[i];
        msgs[n_msgs].role_len = strlen(roles[i]);
        msgs[n_msgs].content = texts[i];
        msgs[n_msgs].content_len = strlen(texts[i]);
        n_msgs++;
    }
    chord_error *err = NULL;
    size_t len = 0;
    chord_status st = chord_chat_apply(model, NULL, 0, msgs, n_msgs, 1, NULL, 0, &len, &err);
    if (st != CHORD_E_BUFFER_TOO_SMALL) die("applying the chat template", st, err);
    chord_error_free(err);
    err = NULL;
    char *buf = malloc(len + 1);
    if (!buf) die("applying the chat template", CHORD_E_INTERNAL, NULL);
    st = chord_chat_apply(model, NULL, 0, msgs, n_msgs, 1, buf, len + 1, &len, &err);
    if (st != CHORD_OK) die("applying the chat template", st, err);
    return buf;
}

/* The model's cumulative counters: the layer pager's (CHORD_INFO_PAGER_*; all 0 for a model that is
 * not paged) and the GPU's (CHORD_INFO_DEVICE_*; all 0 on the CPU); and the bytes the process had
 * read from storage (Linux's /proc/self/io `read_bytes`: page cache hits are not counted; 0 where
 * the system does not say). */
typedef struct {
    uint64_t sync_loads, prefetch_hits, evictions, bytes_read, stall_ns;
    uint64_t launches, uploads, upload_bytes, downloads, download_bytes;
    uint64_t storage_bytes;
} run_counters;

static uint64_t storage_bytes_read(void) {
    unsigned long long v = 0;
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return 0;
    char line[128];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "read_bytes: %llu", &v) == 1) break;
    fclose(f);
    return v;
}

static uint64_t model_info(const chord_model *m, uint32_t key) {
    uint64_t v = 0;
    chord_error *err = NULL;
    chord_status st = chord_model_info(m, key, &v, &err);
    if (st != CHORD_OK) die("reading a model counter", st, err);
    return v;
}

static run_counters counters_now(const chord_model *m) {
    run_counters c;
    c.sync_loads = model_info(m, CHORD_INFO_PAGER_SYNC_LOADS);
    c.prefetch_hits = model_info(m, CHORD_INFO_PAGER_PREFETCH_HITS);
    c.evictions = model_info(m, CHORD_INFO_PAGER_EVICTIONS);
    c.bytes_read = model_info(m, CHORD_INFO_PAGER_BYTES_READ);
    c.stall_ns = model_info(m, CHORD_INFO_PAGER_STALL_NS);
    c.launches = model_info(m, CHORD_INFO_DEVICE_LAUNCHES);
    c.uploads = model_info(m, CHORD_INFO_DEVICE_UPLOADS);
    c.upload_bytes = model_info(m, CHORD_INFO_DEVICE_UPLOAD_BYTES);
    c.downloads = model_info(m, CHORD_INFO_DEVICE_DOWNLOADS);
    c.download_bytes = model_info(m, CHORD_INFO_DEVICE_DOWNLOAD_BYTES);
    c.storage_bytes = storage_bytes_read();
    return c;
}

/* The counters of the work between snapshots `a` and `b`. */
static run_counters counters_delta(run_counters a, run_counters b) {
    run_counters d = {b.sync_loads - a.sync_loads, b.prefetch_hits - a.prefetch_hits,
                      b.evictions - a.evictions, b.bytes_read - a.bytes_read, b.stall_ns - a.stall_ns,
                      b.launches - a.launches, b.uploads - a.uploads, b.upload_bytes - a.upload_bytes,
                      b.downloads - a.downloads, b.download_bytes - a.download_bytes,
                      b.storage_bytes - a.storage_bytes};
    return d;
}

static void counters_add(run_counters *sum, run_counters d) {
    sum->sync_loads += d.sync_loads;
    sum->prefetch_hits += d.prefetch_hits;
    sum->evictions += d.evictions;
    sum->bytes_read += d.bytes_read;
    sum->stall_ns += d.stall_ns;
    sum->launches += d.launches;
    sum->uploads += d.uploads;
    sum->upload_bytes += d.upload_bytes;
    sum->downloads += d.downloads;
    sum->download_bytes += d.download_bytes;
    sum->storage_bytes += d.storage_bytes;
}

/* The plan's facts: paged, units pinned/streamed, bytes resident, and the bytes read by the time
 * the model was loaded (the pinned units, plus any slot the prefetch thread had already filled). */
static void print_pager_plan(FILE *f, const chord_model *m, uint64_t load_read) {
    fprintf(f, "pager: paged %llu, weight bytes %llu, budget %llu, units pinned %llu, streamed %llu, "
               "resident %llu bytes, read at load %llu bytes\n",
            (unsigned long long)model_info(m, CHORD_INFO_PAGED),
            (unsigned long long)model_info(m, CHORD_INFO_WEIGHT_BYTES),
            (unsigned long long)model_info(m, CHORD_INFO_MEMORY_BUDGET),
            (unsigned long long)model_info(m, CHORD_INFO_PAGER_UNITS_PINNED),
            (unsigned long long)model_info(m, CHORD_INFO_PAGER_UNITS_STREAMED),
            (unsigned long long)model_info(m, CHORD_INFO_PAGER_BYTES_RESIDENT),
            (unsigned long long)load_read);
}

/* One phase's counters over `tokens` tokens that took `seconds`; stall as a share of that time. */
static void print_pager_phase(FILE *f, const char *phase, run_counters c, uint64_t tokens, double seconds) {
    fprintf(f, "pager %s: %llu tokens, sync loads %llu, prefetch hits %llu, evictions %llu, "
               "read %llu bytes (%.0f per token), stall %.3f s = %.1f%% of %.3f s; from storage %llu bytes "
               "(%.0f per token)\n",
            phase, (unsigned long long)tokens, (unsigned long long)c.sync_loads,
            (unsigned long long)c.prefetch_hits, (unsigned long long)c.evictions,
            (unsigned long long)c.bytes_read, tokens ? (double)c.bytes_read / (double)tokens : 0.0,
            c.stall_ns * 1e-9, seconds > 0 ? 100.0 * c.stall_ns * 1e-9 / seconds : 0.0, seconds,
            (unsigned long long)c.storage_bytes, tokens ? (double)c.storage_bytes / (double)tokens : 0.0);
}

/* One phase's GPU launches and transfers over `tokens` tokens, in all and per token (all 0 on the CPU). */
static void print_device_phase(FILE *f, const char *phase, run_counters c, uint64_t tokens) {
    double n = tokens ? (double)tokens : 1.0;
    fprintf(f, "device %s: %llu tokens, launches %llu (%.1f per token), uploads %llu (%.1f per token, "
               "%.0f bytes per token), downloads %llu (%.1f per token, %.0f bytes per token)\n",
            phase, (unsigned long long)tokens, (unsigned long long)c.launches, c.launches / n,
            (unsigned long long)c.uploads, c.uploads / n, c.upload_bytes / n,
            (unsigned long long)c.downloads, c.downloads / n, c.download_bytes / n);
}

/* The whole file at `path` (malloc'd, NUL-terminated), its length in `*len`; exits on error. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "chord: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) die("reading a file", CHORD_E_INTERNAL, NULL);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The JSON Schema of --json-schema (inline when it starts with '{', else a file), malloc'd. */
static char *schema_text(const char *arg, size_t *len) {
    if (arg[0] == '{') {
        *len = strlen(arg);
        char *s = malloc(*len + 1);
        if (!s) die("reading the schema", CHORD_E_INTERNAL, NULL);
        memcpy(s, arg, *len + 1);
        return s;
    }
    return read_file(arg, len);
}

/* --logprobs: one line per token on stderr. */
static uint32_t print_logprobs(const chord_token_info *t, void *ud) {
    (void)ud;
    fprintf(stderr, "[token %u logprob %.7f:", t->token, t->logprob);
    for (uint32_t i = 0; i < t->n_top; i++) fprintf(stderr, " %u=%.7f", t->top_tokens[i], t->top_logprobs[i]);
    fputs("]\n", stderr);
    return 1;
}

static int cmd_generate(const args_t *a) {
    if (!a->prompt) usage_error("missing -p PROMPT", NULL);
    if (a->system && !a->chat) usage_error("--system needs", "--chat");
    chord_model *model = load_model(a);
    chord_session *s = new_session(model, a->ctx);
    chord_error *err = NULL;
    chord_generate_params *gp = NULL;
    chord_status st = chord_generate_params_new(&gp, &err);
    if (st == CHORD_OK) st = chord_generate_params_set_max_tokens(gp, (uint32_t)(a->have_n ? a->n : 128), &err);
    if (st == CHORD_OK) st = chord_generate_params_set_temperature(gp, (float)a->temp, &err);
    if (st == CHORD_OK) st = chord_generate_params_set_top_k(gp, (uint32_t)a->top_k, &err);
    if (st == CHORD_OK) st = chord_generate_params_set_top_p(gp, (float)a->top_p, &err);
    if (st == CHORD_OK) st = chord_generate_params_set_min_p(gp, (float)a->min_p, &err);
    if (st == CHORD_OK) st = chord_generate_params_set_seed(gp, a->seed, &err);
    for (int i = 0; st == CHORD_OK && i < a->n_bias; i++)
        st = chord_generate_params_add_logit_bias(gp, a->bias_ids[i], a->bias[i], &err);
    if (st == CHORD_OK && a->logprobs > 0) {
        st = chord_generate_params_set_logprobs(gp, (uint32_t)a->logprobs, &err);
        if (st == CHORD_OK) st = chord_generate_params_set_token_callback(gp, print_logprobs, NULL, &err);
    }
    if (st != CHORD_OK) die("generation settings", st, err);
    if (!!a->grammar + !!a->schema + a->any_json > 1) usage_error("give one of", "--grammar, --json-schema, --json");
    if (a->grammar || a->schema || a->any_json) {
        chord_grammar *g = NULL;
        uint32_t flags = a->lenient ? CHORD_SCHEMA_LENIENT : 0;
        if (a->any_json) {
            st = chord_grammar_from_json_schema(model, NULL, 0, flags, &g, &err);
        } else if (a->schema) {
            size_t len = 0;
            char *text = schema_text(a->schema, &len);
            st = chord_grammar_from_json_schema(model, text, len, flags, &g, &err);
            free(text);
        } else {
            size_t len = 0;
            char *text = read_file(a->grammar, &len);
            st = chord_grammar_new(model, text, len, NULL, 0, &g, &err);
            free(text);
        }
        if (st != CHORD_OK) die(a->grammar ? a->grammar : "the JSON Schema", st, err);
        st = chord_generate_params_set_grammar(gp, g, &err);
        chord_grammar_free(g);
        if (st != CHORD_OK) die("generation settings", st, err);
    }

    run_counters c_load = counters_now(model);
    char *chat = a->chat ? chat_prompt(model, a->system, a->prompt) : NULL;
    const char *prompt = chat ? chat : a->prompt;
    size_t n_prompt = 0;
    st = chord_session_append_text(s, prompt, strlen(prompt),
                                   CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL, &n_prompt, &err);
    free(chat);
    if (st != CHORD_OK) die("processing the prompt", st, err);
    uint64_t pp_tokens = 0, pp_us = 0, tg_tokens = 0, tg_us = 0;
    chord_session_stats(s, &pp_tokens, &pp_us, NULL, NULL, NULL);
    run_counters c_prompt = counters_now(model);

    uint32_t reason = 0;
    st = chord_session_generate(s, gp, print_text, NULL, &reason, &err);
    if (st != CHORD_OK) die("generating", st, err);
    chord_session_stats(s, NULL, NULL, &tg_tokens, &tg_us, NULL);
    run_counters c_gen = counters_now(model);
    printf("\n");
    fprintf(stderr, "chord: prompt %llu tokens, %.1f tok/s; generated %llu tokens, %.1f tok/s; peak RSS %.1f MiB\n",
            (unsigned long long)pp_tokens, pp_us ? pp_tokens * 1e6 / (double)pp_us : 0.0,
            (unsigned long long)tg_tokens, tg_us ? tg_tokens * 1e6 / (double)tg_us : 0.0,
            peak_rss_bytes() / 1048576.0);
    if (a->stats) {
        fputs("chord: ", stderr);
        print_pager_plan(stderr, model, c_load.bytes_read);
        fputs("chord: ", stderr);
        print_pager_phase(stderr, "prompt", counters_delta(c_load, c_prompt), pp_tokens, pp_us * 1e-6);
        fputs("chord: ", stderr);
        print_pager_phase(stderr, "generate", counters_delta(c_prompt, c_gen), tg_tokens, tg_us * 1e-6);
        fputs("chord: ", stderr);
        print_device_phase(stderr, "prompt", counters_delta(c_load, c_prompt), pp_tokens);
        fputs("chord: ", stderr);
        print_device_phase(stderr, "generate", counters_delta(c_prompt, c_gen), tg_tokens);
    }
    chord_generate_params_free(gp);
    chord_session_free(s);
    chord_model_free(model);
    return 0;
}

static int cmd_grammar(const args_t *a) {
    if (!a->schema) usage_error("missing --json-schema", NULL);
    size_t len = 0, n = 0;
    char *schema = schema_text(a->schema, &len);
    uint32_t flags = a->lenient ? CHORD_SCHEMA_LENIENT : 0;
    chord_error *err = NULL;
    chord_status st = chord_json_schema_to_gbnf(schema, len, flags, NULL, 0, &n, &err);
    if (st != CHORD_E_BUFFER_TOO_SMALL && st != CHORD_OK) die("the JSON Schema", st, err);
    chord_error_free(err);
    err = NULL;
    char *out = malloc(n + 1);
    if (!out) die("converting the schema", CHORD_E_INTERNAL, NULL);
    st = chord_json_schema_to_gbnf(schema, len, flags, out, n, &n, &err);
    if (st != CHORD_OK) die("the JSON Schema", st, err);
    fwrite(out, 1, n, stdout);
    free(out);
    free(schema);
    return 0;
}

static int cmd_tokenize(const args_t *a) {
    if (!a->prompt) usage_error("missing -p TEXT", NULL);
    chord_model *model = load_model(a);
    chord_error *err = NULL;
    size_t n = 0;
    uint32_t add = a->no_bos ? 0 : 1;
    size_t len = strlen(a->prompt);
    chord_status st = chord_tokenize(model, a->prompt, len, add, 1, NULL, 0, &n, &err);
    if (st != CHORD_OK && st != CHORD_E_BUFFER_TOO_SMALL) die("tokenizing", st, err);
    chord_error_free(err);
    err = NULL;
    chord_token *toks = malloc((n ? n : 1) * sizeof *toks);
    if (!toks) { fputs("chord: out of memory\n", stderr); return 1; }
    st = chord_tokenize(model, a->prompt, len, add, 1, toks, n, &n, &err);
    if (st != CHORD_OK) die("tokenizing", st, err);
    for (size_t i = 0; i < n; i++) printf(i ? " %u" : "%u", toks[i]);
    printf("\n");
    free(toks);
    chord_model_free(model);
    return 0;
}

static int cmd_embed(const args_t *a) {
    if (!a->prompt) usage_error("missing -p TEXT", NULL);
    chord_model *model = load_model(a);
    chord_session *s = new_session(model, a->ctx);
    uint64_t n_embd = 0;
    chord_error *err = NULL;
    chord_status st = chord_model_info(model, CHORD_INFO_N_EMBD, &n_embd, &err);
    if (st != CHORD_OK) die("reading the model's width", st, err);
    float *v = malloc((size_t)n_embd * sizeof *v);
    if (!v) { fputs("chord: out of memory\n", stderr); return 1; }
    uint32_t flags = CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL | (a->no_normalize ? 0 : CHORD_EMBED_NORMALIZE);
    size_t n = 0;
    st = chord_session_embed(s, a->prompt, strlen(a->prompt), flags, a->pooling, v, (size_t)n_embd, &n, &err);
    if (st != CHORD_OK) die("embedding the text", st, err);
    for (size_t i = 0; i < n; i++) printf(i ? " %.9g" : "%.9g", (double)v[i]);
    printf("\n");
    free(v);
    chord_session_free(s);
    chord_model_free(model);
    return 0;
}

static int cmd_logits(const args_t *a) {
    if (!a->tokens) usage_error("missing --tokens \"ID ID ...\"", NULL);
    size_t cap = 16, n = 0;
    chord_token *toks = malloc(cap * sizeof *toks);
    const char *p = a->tokens;
    while (toks) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || errno || v > 0xffffffffUL) usage_error("bad token id in --tokens near", p);
        if (n == cap) {
            chord_token *bigger = realloc(toks, 2 * cap * sizeof *toks);
            if (!bigger) { free(toks); toks = NULL; break; }
            toks = bigger;
            cap *= 2;
        }
        toks[n++] = (chord_token)v;
        p = end;
    }
    if (!toks) { fputs("chord: out of memory\n", stderr); return 1; }
    if (!n) usage_error("--tokens is empty", NULL);
    chord_model *model = load_model(a);
    chord_session *s = new_session(model, a->ctx ? a->ctx : (long)(n > 4096 ? n : 0));
    chord_error *err = NULL;
    chord_status st = chord_session_append_tokens(s, toks, n, 1, &err);
    if (st != CHORD_OK) die("evaluating the tokens", st, err);
    uint64_t n_vocab = 0;
    chord_model_info(model, CHORD_INFO_N_VOCAB, &n_vocab, NULL);
    size_t total = n * (size_t)n_vocab;
    float *logits = malloc(total * sizeof *logits);
    if (!logits) { fputs("chord: out of memory\n", stderr); return 1; }
    size_t got = 0;
    st = chord_session_logits(s, logits, total, &got, &err);
    if (st != CHORD_OK) die("reading logits", st, err);
    if (a->out) {
        FILE *f = fopen(a->out, "wb");
        if (!f || fwrite(logits, sizeof *logits, got, f) != got || fclose(f) != 0) {
            fprintf(stderr, "chord: cannot write %s: %s\n", a->out, strerror(errno));
            return 1;
        }
    } else {
        long k = a->top ? a->top : 5;
        for (size_t pos = 0; pos < n; pos++) {
            const float *row = logits + pos * n_vocab;
            /* the k largest logits, ties to the lower id: O(k * n_vocab), fine for small k */
            size_t *picked = malloc((size_t)k * sizeof *picked);
            if (!picked) { fputs("chord: out of memory\n", stderr); return 1; }
            long np = 0;
            for (long j = 0; j < k && j < (long)n_vocab; j++) {
                size_t best = (size_t)-1;
                for (size_t t = 0; t < n_vocab; t++) {
                    int used = 0;
                    for (long q = 0; q < np; q++) used |= picked[q] == t;
                    if (used) continue;
                    if (best == (size_t)-1 || row[t] > row[best]) best = t;
                }
                picked[np++] = best;
                printf(j ? " %zu:%.6f" : "%zu:%.6f", best, (double)row[best]);
            }
            printf("\n");
            free(picked);
        }
    }
    free(logits);
    free(toks);
    chord_session_free(s);
    chord_model_free(model);
    return 0;
}

static const char *meta_type_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* Prints one scalar metadata value (or array element when `index` >= 0) of type `t`. */
static void print_meta_value(const chord_model *m, const char *key, uint32_t t, long index) {
    size_t kl = strlen(key), len = 0;
    chord_error *err = NULL;
    chord_status st;
    switch (t) {
    case CHORD_META_U8: case CHORD_META_U16: case CHORD_META_U32: case CHORD_META_U64: {
        uint64_t v = 0;
        st = index < 0 ? chord_model_meta_u64(m, key, kl, &v, &err)
                       : chord_model_meta_array_u64(m, key, kl, (size_t)index, &v, &err);
        if (st == CHORD_OK) printf("%llu", (unsigned long long)v);
        break;
    }
    case CHORD_META_I8: case CHORD_META_I16: case CHORD_META_I32: case CHORD_META_I64: {
        int64_t v = 0;
        st = index < 0 ? chord_model_meta_i64(m, key, kl, &v, &err)
                       : chord_model_meta_array_i64(m, key, kl, (size_t)index, &v, &err);
        if (st == CHORD_OK) printf("%lld", (long long)v);
        break;
    }
    case CHORD_META_F32: case CHORD_META_F64: {
        double v = 0;
        st = index < 0 ? chord_model_meta_f64(m, key, kl, &v, &err)
                       : chord_model_meta_array_f64(m, key, kl, (size_t)index, &v, &err);
        if (st == CHORD_OK) printf("%.9g", v);
        break;
    }
    case CHORD_META_BOOL: {
        uint32_t v = 0;
        st = index < 0 ? chord_model_meta_bool(m, key, kl, &v, &err)
                       : chord_model_meta_array_bool(m, key, kl, (size_t)index, &v, &err);
        if (st == CHORD_OK) printf("%s", v ? "true" : "false");
        break;
    }
    case CHORD_META_STRING: {
        st = index < 0 ? chord_model_meta_string(m, key, kl, NULL, 0, &len, NULL)
                       : chord_model_meta_array_string(m, key, kl, (size_t)index, NULL, 0, &len, NULL);
        char *buf = malloc(len + 1);
        if (!buf) { fputs("chord: out of memory\n", stderr); exit(1); }
        st = index < 0 ? chord_model_meta_string(m, key, kl, buf, len + 1, &len, &err)
                       : chord_model_meta_array_string(m, key, kl, (size_t)index, buf, len + 1, &len, &err);
        if (st == CHORD_OK) {
            /* Quote and escape, cut long values (chat templates) to 80 bytes. */
            putchar('"');
            for (size_t i = 0; i < len && i < 80; i++) {
                unsigned char c = (unsigned char)buf[i];
                if (c == '"' || c == '\\') printf("\\%c", c);
                else if (c < 0x20) printf("\\x%02x", c);
                else putchar(c);
            }
            printf(len > 80 ? "\"... (%zu bytes)" : "\"", len);
        }
        free(buf);
        break;
    }
    default:
        printf("(nested array)");
        return;
    }
    if (st != CHORD_OK) die(key, st, err);
}

/* Prints every metadata key with its type and value (arrays: length and first elements). */
static void print_metadata(const chord_model *m) {
    size_t n = 0;
    chord_error *err = NULL;
    chord_status st = chord_model_meta_count(m, &n, &err);
    if (st != CHORD_OK) die("counting metadata", st, err);
    for (size_t i = 0; i < n; i++) {
        char key[1024];
        size_t kl = 0;
        st = chord_model_meta_key_by_index(m, i, key, sizeof key, &kl, &err);
        if (st != CHORD_OK) die("reading a metadata key", st, err);
        uint32_t t = 0;
        st = chord_model_meta_type(m, key, kl, &t, &err);
        if (st != CHORD_OK) die(key, st, err);
        if (t == CHORD_META_ARRAY) {
            size_t len = 0;
            uint32_t et = 0;
            st = chord_model_meta_array_len(m, key, kl, &len, &et, &err);
            if (st != CHORD_OK) die(key, st, err);
            printf("meta %s array[%zu] of %s: [", key, len, meta_type_name(et));
            for (size_t j = 0; j < len && j < 4; j++) {
                if (j) printf(", ");
                print_meta_value(m, key, et, (long)j);
            }
            printf(len > 4 ? ", ...]\n" : "]\n");
        } else {
            printf("meta %s %s: ", key, meta_type_name(t));
            print_meta_value(m, key, t, -1);
            putchar('\n');
        }
    }
}

static int cmd_inspect(const args_t *a) {
    chord_model *model = load_model(a);
    chord_error *err = NULL;
    size_t len = 0;
    chord_status st = chord_model_describe(model, NULL, 0, &len, NULL);
    char *buf = malloc(len + 1);
    if (!buf) { fputs("chord: out of memory\n", stderr); return 1; }
    st = chord_model_describe(model, buf, len + 1, &len, &err);
    if (st != CHORD_OK) die("describing the model", st, err);
    fputs(buf, stdout);
    free(buf);
    if (a->meta) print_metadata(model);
    chord_model_free(model);
    return 0;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Appends the first `depth` of `toks` (the context a -d run measures after). */
static void fill_depth(chord_session *s, const chord_token *toks, long depth) {
    if (depth <= 0) return;
    chord_error *err = NULL;
    chord_status st = chord_session_append_tokens(s, toks, (size_t)depth, 0, &err);
    if (st != CHORD_OK) die("depth", st, err);
}

/* bench --prompt-cache: per run, two new sessions append the same prompt of random tokens (other
 * tokens each run); the first computes it, the second copies it from the prompt cache. Prints the
 * median times to the first token's logits and their ratio. */
static int bench_prompt_cache(const args_t *a, chord_model *model, long n_prompt, long reps) {
    uint64_t n_vocab = model_info(model, CHORD_INFO_N_VOCAB);
    chord_token *toks = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *toks);
    double *first = calloc((size_t)reps, sizeof *first), *second = calloc((size_t)reps, sizeof *second);
    if (!toks || !first || !second || n_prompt < 2) { fputs("chord: out of memory or -p below 2\n", stderr); return 1; }
    unsigned long long x = 88172645463325252ull;
    for (long r = -1; r < reps; r++) { /* one warm-up run, not counted */
        for (long i = 0; i < n_prompt; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            toks[i] = (chord_token)(x % n_vocab);
        }
        double t[3];
        for (int k = 0; k < 2; k++) {
            chord_session *s = new_session(model, a->ctx ? a->ctx : n_prompt + 1);
            chord_error *err = NULL;
            t[k] = now_s();
            chord_status st = chord_session_append_tokens(s, toks, (size_t)n_prompt, 0, &err);
            t[k + 1] = now_s();
            if (st != CHORD_OK) die("prefill", st, err);
            chord_session_free(s);
        }
        if (r >= 0) {
            first[r] = t[1] - t[0];
            second[r] = t[2] - t[1];
        }
    }
    qsort(first, (size_t)reps, sizeof *first, cmp_double);
    qsort(second, (size_t)reps, sizeof *second, cmp_double);
    printf("model: %s\nprompt cache: %ld-token prompt to first logits: new prompt %.1f ms, same prompt in a new "
           "session %.1f ms (%.1f%%); %llu positions reused; cache holds %.1f MiB\n",
           a->model, n_prompt, first[reps / 2] * 1e3, second[reps / 2] * 1e3,
           100.0 * second[reps / 2] / first[reps / 2],
           (unsigned long long)model_info(model, CHORD_INFO_PROMPT_CACHE_TOKENS_REUSED),
           model_info(model, CHORD_INFO_PROMPT_CACHE_BYTES) / 1048576.0);
    free(toks);
    free(first);
    free(second);
    chord_model_free(model);
    return 0;
}

/* bench --sessions N: median decode rates of one session alone and of N sessions together. */
static int bench_sessions(const args_t *a, chord_model *model, long n_prompt, long n_gen, long reps) {
    long ns = a->sessions;
    uint64_t n_vocab = model_info(model, CHORD_INFO_N_VOCAB);
    chord_session **s = calloc((size_t)ns, sizeof *s);
    chord_token *toks = malloc((size_t)(n_prompt > ns ? n_prompt : ns) * sizeof *toks);
    double *alone = calloc((size_t)reps, sizeof *alone), *together = calloc((size_t)reps, sizeof *together);
    if (!s || !toks || !alone || !together) { fputs("chord: out of memory\n", stderr); return 1; }
    unsigned long long x = 88172645463325252ull;
    chord_error *err = NULL;
    chord_status st;
    for (long i = 0; i < ns; i++) {
        if (a->fork && i > 0) {
            if ((st = chord_session_fork(s[0], &s[i], &err)) != CHORD_OK) die("fork", st, err);
            continue;
        }
        s[i] = new_session(model, a->ctx ? a->ctx : n_prompt + n_gen + 1);
        for (long j = 0; j < n_prompt; j++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            toks[j] = (chord_token)(x % n_vocab);
        }
        if (n_prompt > 0 && (st = chord_session_append_tokens(s[i], toks, (size_t)n_prompt, 0, &err)) != CHORD_OK)
            die("prefill", st, err);
    }
    double kv = 0;
    for (long r = -1; r < reps; r++) { /* one warm-up run, not counted */
        chord_token t = 1;
        double t0 = now_s();
        for (long k = 0; k < n_gen; k++) {
            if ((st = chord_session_append_tokens(s[0], &t, 1, 0, &err)) != CHORD_OK) die("decode", st, err);
            t = (chord_token)((t * 2654435761u + 1) % n_vocab);
        }
        double t1 = now_s();
        if ((st = chord_session_truncate(s[0], (size_t)n_prompt, &err)) != CHORD_OK) die("truncate", st, err);
        for (long k = 0; k < n_gen; k++) {
            for (long i = 0; i < ns; i++) toks[i] = (chord_token)((t + (chord_token)i * 7919u) % n_vocab);
            t = (chord_token)((t * 2654435761u + 1) % n_vocab);
            if ((st = chord_session_decode_batch((const chord_session *const *)s, toks, (size_t)ns, &err)) != CHORD_OK)
                die("batched decode", st, err);
        }
        double t2 = now_s();
        kv = 0;
        for (long i = 0; i < ns; i++) {
            size_t b = 0;
            if ((st = chord_session_kv_bytes(s[i], &b, &err)) != CHORD_OK) die("KV bytes", st, err);
            kv += (double)b;
        }
        for (long i = 0; i < ns; i++)
            if ((st = chord_session_truncate(s[i], (size_t)n_prompt, &err)) != CHORD_OK) die("truncate", st, err);
        if (r >= 0) {
            alone[r] = n_gen / (t1 - t0);
            together[r] = (double)(ns * n_gen) / (t2 - t1);
        }
    }
    qsort(alone, (size_t)reps, sizeof *alone, cmp_double);
    qsort(together, (size_t)reps, sizeof *together, cmp_double);
    double one = alone[reps / 2], all = together[reps / 2];
    double per_pos = (double)model_info(model, CHORD_INFO_KV_BYTES_PER_TOKEN);
    printf("model: %s\nthreads: %llu\nsessions: %ld, each after a %ld-token prompt%s, decoding %ld tokens\n"
           "decode alone: %.2f tok/s\ndecode together: %.2f tok/s aggregate (%.2fx alone), %.2f tok/s per session\n"
           "KV cache held after decoding: %.1f MiB, %.0f positions' worth (%ld sessions x %ld positions: %ld)\n",
           a->model, (unsigned long long)model_info(model, CHORD_INFO_N_THREADS), ns, n_prompt,
           a->fork ? " (the first session's, the others its forks)" : "", n_gen, one, all, all / one,
           all / (double)ns, kv / 1048576.0, kv / per_pos, ns, n_prompt + n_gen, ns * (n_prompt + n_gen));
    for (long i = 0; i < ns; i++) chord_session_free(s[i]);
    free(s);
    free(toks);
    free(alone);
    free(together);
    chord_model_free(model);
    return 0;
}

static int cmd_bench(const args_t *a) {
    long n_prompt = a->prompt ? parse_long(a->prompt, "-p") : 128;
    long n_gen = a->have_n ? a->n : 32;
    long reps = a->reps > 0 ? a->reps : 1;
    chord_model *model = load_model(a);
    if (a->prompt_cache) return bench_prompt_cache(a, model, n_prompt, reps);
    if (a->sessions > 0) return bench_sessions(a, model, n_prompt, n_gen, reps);
    uint64_t n_vocab = 0, threads = 0, mmap = 0, budget = 0;
    chord_model_info(model, CHORD_INFO_N_VOCAB, &n_vocab, NULL);
    chord_model_info(model, CHORD_INFO_N_THREADS, &threads, NULL);
    chord_model_info(model, CHORD_INFO_USE_MMAP, &mmap, NULL);
    chord_model_info(model, CHORD_INFO_MEMORY_BUDGET, &budget, NULL);
    uint64_t load_read = model_info(model, CHORD_INFO_PAGER_BYTES_READ);
    /* -d: prefill and decode are timed after `depth` tokens already in the context, untimed
     * (llama-bench's -d). */
    long depth = a->depth > 0 ? a->depth : 0;
    chord_session *s = new_session(model, a->ctx ? a->ctx : depth + n_prompt + n_gen + 1);
    long n_toks = depth > n_prompt ? depth : n_prompt;
    chord_token *toks = malloc((size_t)(n_toks > 0 ? n_toks : 1) * sizeof *toks);
    if (!toks) { fputs("chord: out of memory\n", stderr); return 1; }
    /* Deterministic pseudo-random tokens, as llama-bench uses random tokens. */
    unsigned long long x = 88172645463325252ull;
    toks[0] = 1 % (chord_token)n_vocab; /* the first decode token when there is no prompt */
    for (long i = 0; i < n_toks; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        toks[i] = (chord_token)(x % n_vocab);
    }
    double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg);
    if (!pp || !tg) { fputs("chord: out of memory\n", stderr); return 1; }
    chord_error *err = NULL;
    chord_status st;
    /* Pager counters and seconds over the measured (not warm-up) runs of each phase. */
    run_counters pp_counts = {0}, tg_counts = {0};
    double pp_s = 0, tg_s = 0;
    /* One warm-up run of each, not counted (llama-bench does the same). */
    for (long r = -1; r < reps; r++) {
        chord_session_reset(s, NULL);
        fill_depth(s, toks, depth);
        run_counters c0 = counters_now(model);
        double t0 = now_s();
        if (n_prompt > 0) {
            st = chord_session_append_tokens(s, toks, (size_t)n_prompt, 0, &err);
            if (st != CHORD_OK) die("prefill", st, err);
        }
        double t1 = now_s();
        run_counters c1 = counters_now(model);
        chord_session_reset(s, NULL);
        fill_depth(s, toks, depth);
        chord_token t = toks[0];
        run_counters c2 = counters_now(model);
        double t2 = now_s();
        for (long i = 0; i < n_gen; i++) {
            st = chord_session_append_tokens(s, &t, 1, 0, &err);
            if (st != CHORD_OK) die("decode", st, err);
            t = (chord_token)((t * 2654435761u + 1) % n_vocab);
        }
        double t3 = now_s();
        run_counters c3 = counters_now(model);
        if (r >= 0) {
            counters_add(&pp_counts, counters_delta(c0, c1));
            counters_add(&tg_counts, counters_delta(c2, c3));
            pp_s += t1 - t0;
            tg_s += t3 - t2;
            pp[r] = n_prompt > 0 ? n_prompt / (t1 - t0) : 0;
            tg[r] = n_gen > 0 ? n_gen / (t3 - t2) : 0;
        }
    }
    qsort(pp, (size_t)reps, sizeof *pp, cmp_double);
    qsort(tg, (size_t)reps, sizeof *tg, cmp_double);
    double pp_med = pp[reps / 2], tg_med = tg[reps / 2];
    unsigned long long rss = peak_rss_bytes();
    if (a->json) {
        printf("{\"model\": \"%s\", \"threads\": %llu, \"n_prompt\": %ld, \"n_gen\": %ld, \"n_depth\": %ld, \"reps\": %ld, "
               "\"prefill_tok_s\": %.3f, \"decode_tok_s\": %.3f, \"peak_rss_bytes\": %llu, \"use_mmap\": %s, "
               "\"memory_budget_bytes\": %llu, \"packed_bytes\": %llu, ",
               a->model, (unsigned long long)threads, n_prompt, n_gen, depth, reps, pp_med, tg_med, rss,
               mmap ? "true" : "false", (unsigned long long)budget,
               (unsigned long long)model_info(model, CHORD_INFO_PACKED_BYTES));
        /* The pager: its plan, then each phase's counters summed over the measured runs. */
        printf("\"paged\": %s, \"weight_bytes\": %llu, \"pager_units_pinned\": %llu, "
               "\"pager_units_streamed\": %llu, \"pager_bytes_resident\": %llu, \"pager_load_bytes_read\": %llu",
               model_info(model, CHORD_INFO_PAGED) ? "true" : "false",
               (unsigned long long)model_info(model, CHORD_INFO_WEIGHT_BYTES),
               (unsigned long long)model_info(model, CHORD_INFO_PAGER_UNITS_PINNED),
               (unsigned long long)model_info(model, CHORD_INFO_PAGER_UNITS_STREAMED),
               (unsigned long long)model_info(model, CHORD_INFO_PAGER_BYTES_RESIDENT),
               (unsigned long long)load_read);
        const char *names[2] = {"prefill", "decode"};
        const run_counters *cs[2] = {&pp_counts, &tg_counts};
        const double secs[2] = {pp_s, tg_s};
        const long toks_per_run[2] = {n_prompt, n_gen};
        for (int k = 0; k < 2; k++) {
            printf(", \"%s_tokens\": %ld, \"%s_ns\": %.0f, \"%s_sync_loads\": %llu, \"%s_prefetch_hits\": %llu, "
                   "\"%s_evictions\": %llu, \"%s_bytes_read\": %llu, \"%s_stall_ns\": %llu, "
                   "\"%s_launches\": %llu, \"%s_uploads\": %llu, \"%s_upload_bytes\": %llu, "
                   "\"%s_downloads\": %llu, \"%s_download_bytes\": %llu, \"%s_storage_bytes\": %llu",
                   names[k], toks_per_run[k] * reps, names[k], secs[k] * 1e9,
                   names[k], (unsigned long long)cs[k]->sync_loads,
                   names[k], (unsigned long long)cs[k]->prefetch_hits,
                   names[k], (unsigned long long)cs[k]->evictions,
                   names[k], (unsigned long long)cs[k]->bytes_read,
                   names[k], (unsigned long long)cs[k]->stall_ns,
                   names[k], (unsigned long long)cs[k]->launches,
                   names[k], (unsigned long long)cs[k]->uploads,
                   names[k], (unsigned long long)cs[k]->upload_bytes,
                   names[k], (unsigned long long)cs[k]->downloads,
                   names[k], (unsigned long long)cs[k]->download_bytes,
                   names[k], (unsigned long long)cs[k]->storage_bytes);
        }
        printf("}\n");
    } else {
        printf("model: %s\nthreads: %llu\n", a->model, (unsigned long long)threads);
        if (depth > 0) printf("depth: %ld\n", depth);
        printf("pp%ld: %.2f tok/s\ntg%ld: %.2f tok/s\npeak RSS: %.1f MiB\n", n_prompt, pp_med, n_gen, tg_med,
               rss / 1048576.0);
        print_pager_plan(stdout, model, load_read);
        print_pager_phase(stdout, "prefill", pp_counts, (uint64_t)(n_prompt * reps), pp_s);
        print_pager_phase(stdout, "decode", tg_counts, (uint64_t)(n_gen * reps), tg_s);
        print_device_phase(stdout, "prefill", pp_counts, (uint64_t)(n_prompt * reps));
        print_device_phase(stdout, "decode", tg_counts, (uint64_t)(n_gen * reps));
    }
    free(pp);
    free(tg);
    free(toks);
    chord_session_free(s);
    chord_model_free(model);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        help();
        return 0;
    }
    if (chord_abi_version() != CHORD_ABI_VERSION) {
        fprintf(stderr, "chord: library ABI %u does not match header ABI %u\n", chord_abi_version(), CHORD_ABI_VERSION);
        return 1;
    }
    args_t a = parse_args(argc, argv);
    if (!strcmp(a.cmd, "generate")) return cmd_generate(&a);
    if (!strcmp(a.cmd, "tokenize")) return cmd_tokenize(&a);
    if (!strcmp(a.cmd, "embed")) return cmd_embed(&a);
    if (!strcmp(a.cmd, "grammar")) return cmd_grammar(&a);
    if (!strcmp(a.cmd, "logits")) return cmd_logits(&a);
    if (!strcmp(a.cmd, "inspect")) return cmd_inspect(&a);
    if (!strcmp(a.cmd, "bench")) return cmd_bench(&a);
    usage_error("unknown command", a.cmd);
    return 2;
}
