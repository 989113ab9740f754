/*
 * C tests of constrained and host-driven sampling: grammars (errors with positions, a fixed set of
 * answers, a grammar that never completes), logit bias, log-probabilities (callback and poll
 * forms, against log-softmax of chord_session_logits), and a host-owned sampler loop that gives
 * exactly the tokens of chord_session_generate.
 * Usage: test_sampling MODEL [ignored]   (MODEL: SmolLM2-135M-Instruct Q4_1)
 * CHORD_TEST_LIGHT=1 (valgrind) runs fewer and shorter generations.
 * Ends with a line "N passed, N failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "chord.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static int light;

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

/* Runs `call` (which passes &err_), checks its status, frees the error. */
#define EXPECT(want, call)                                                                         \
    do {                                                                                           \
        chord_error *err_ = NULL;                                                                  \
        chord_status st_ = (call);                                                                 \
        CHECK(st_ == (want), "%s: got %s, want %s (%s)", #call, chord_status_name(st_),            \
              chord_status_name(want), err_ ? chord_error_message(err_) : "-");                    \
        chord_error_free(err_);                                                                    \
    } while (0)

static chord_model *model;

static const char *PROMPT = "<|im_start|>user\nIs the sky blue? Answer in one word.<|im_end|>\n<|im_start|>assistant\n";

static chord_session *fresh(void) {
    chord_session *s = NULL;
    chord_session_options *so = NULL;
    EXPECT(CHORD_OK, chord_session_options_new(&so, &err_));
    EXPECT(CHORD_OK, chord_session_options_set_n_ctx(so, 512, &err_));
    EXPECT(CHORD_OK, chord_session_new(model, so, &s, &err_));
    chord_session_options_free(so);
    return s;
}

static void prompt(chord_session *s) {
    EXPECT(CHORD_OK, chord_session_reset(s, &err_));
    EXPECT(CHORD_OK, chord_session_append_text(s, PROMPT, strlen(PROMPT),
                                               CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL, NULL, &err_));
}

typedef struct {
    char text[1024];
    size_t len;
    chord_token ids[256];
    size_t n;
    float logprob[256];
    float top[256][5];
    chord_token top_ids[256][5];
    uint32_t n_top[256];
} Gen;

static uint32_t on_text(const char *t, size_t len, void *ud) {
    Gen *g = ud;
    if (g->len + len < sizeof g->text) {
        memcpy(g->text + g->len, t, len);
        g->len += len;
        g->text[g->len] = 0;
    }
    return 1;
}

static uint32_t on_token(const chord_token_info *info, void *ud) {
    Gen *g = ud;
    if (info->struct_size < sizeof(chord_token_info) || g->n >= 256) return 0;
    g->ids[g->n] = info->token;
    g->logprob[g->n] = info->logprob;
    g->n_top[g->n] = info->n_top;
    for (uint32_t i = 0; i < info->n_top && i < 5; i++) {
        g->top[g->n][i] = info->top_logprobs[i];
        g->top_ids[g->n][i] = info->top_tokens[i];
    }
    g->n++;
    return 1;
}

static uint32_t generate(chord_session *s, chord_generate_params *p, Gen *g) {
    memset(g, 0, sizeof *g);
    uint32_t reason = 99;
    EXPECT(CHORD_OK, chord_generate_params_set_token_callback(p, on_token, g, &err_));
    EXPECT(CHORD_OK, chord_session_generate(s, p, on_text, g, &reason, &err_));
    return reason;
}

static chord_grammar *grammar(const char *text) {
    chord_grammar *g = NULL;
    EXPECT(CHORD_OK, chord_grammar_new(model, text, strlen(text), NULL, 0, &g, &err_));
    return g;
}

static void test_grammar_errors(void) {
    chord_grammar *g = NULL;
    chord_error *err = NULL;
    const char *bad = "root ::= answer\nanswer ::= \"yes\" | [a-";
    CHECK(chord_grammar_new(NULL, bad, strlen(bad), NULL, 0, &g, &err) == CHORD_E_GRAMMAR, "syntax error");
    CHECK(err && strstr(chord_error_message(err), "line 2, column"), "position: %s", err ? chord_error_message(err) : "-");
    CHECK(g == NULL, "no grammar on error");
    chord_error_free(err);
    err = NULL;
    const char *undef = "root ::= missing";
    CHECK(chord_grammar_new(NULL, undef, strlen(undef), NULL, 0, &g, &err) == CHORD_E_GRAMMAR, "undefined");
    CHECK(err && strstr(chord_error_message(err), "undefined rule 'missing'"), "undefined message");
    chord_error_free(err);
    const char *ok = "start ::= \"x\"";
    EXPECT(CHORD_E_GRAMMAR, chord_grammar_new(NULL, ok, strlen(ok), NULL, 0, &g, &err_));
    EXPECT(CHORD_OK, chord_grammar_new(NULL, ok, strlen(ok), "start", 5, &g, &err_));
    chord_grammar_free(g);
    EXPECT(CHORD_E_INVALID_UTF8, chord_grammar_new(NULL, "root ::= \"\xff\"", 12, NULL, 0, &g, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_grammar_new(NULL, ok, strlen(ok), "start", 5, NULL, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_grammar_new(NULL, NULL, 5, NULL, 0, &g, &err_));
    /* A token written as text needs a model to resolve it. */
    const char *tok = "root ::= <|im_end|>";
    EXPECT(CHORD_E_GRAMMAR, chord_grammar_new(NULL, tok, strlen(tok), NULL, 0, &g, &err_));
    EXPECT(CHORD_OK, chord_grammar_new(model, tok, strlen(tok), NULL, 0, &g, &err_));
    chord_grammar_free(g);
    chord_grammar_free(NULL);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_set_grammar(NULL, NULL, &err_));
}

static void test_json_schema(chord_session *s) {
    chord_grammar *g = NULL;
    chord_error *err = NULL;
    const char *bad_json = "{\"type\": \"object\",\n \"properties\": {\"a\": 1,}}";
    CHECK(chord_grammar_from_json_schema(NULL, bad_json, strlen(bad_json), 0, &g, &err) == CHORD_E_GRAMMAR, "bad JSON");
    CHECK(err && strstr(chord_error_message(err), "line 2, column"), "JSON position: %s", err ? chord_error_message(err) : "-");
    chord_error_free(err);
    err = NULL;
    const char *loose = "{\"type\": \"integer\", \"multipleOf\": 3}";
    CHECK(chord_grammar_from_json_schema(NULL, loose, strlen(loose), 0, &g, &err) == CHORD_E_GRAMMAR, "strict refuses multipleOf");
    CHECK(err && strstr(chord_error_message(err), "multipleOf"), "names the keyword");
    chord_error_free(err);
    EXPECT(CHORD_OK, chord_grammar_from_json_schema(NULL, loose, strlen(loose), CHORD_SCHEMA_LENIENT, &g, &err_));
    chord_grammar_free(g);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_grammar_from_json_schema(NULL, loose, strlen(loose), 8, &g, &err_));
    const char *path = "{\"properties\": {\"a\": {\"type\": \"kaboom\"}}}";
    err = NULL;
    CHECK(chord_grammar_from_json_schema(NULL, path, strlen(path), 0, &g, &err) == CHORD_E_GRAMMAR, "unknown type");
    CHECK(err && strstr(chord_error_message(err), "#/properties/a"), "JSON path: %s", err ? chord_error_message(err) : "-");
    chord_error_free(err);
    /* The GBNF text: as llama.cpp converts it. */
    const char *schema = "{\"type\": \"integer\", \"minimum\": 0}";
    size_t len = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_json_schema_to_gbnf(schema, strlen(schema), 0, NULL, 0, &len, &err_));
    char *text = malloc(len + 1);
    EXPECT(CHORD_OK, chord_json_schema_to_gbnf(schema, strlen(schema), 0, text, len, &len, &err_));
    text[len] = 0;
    CHECK(strstr(text, "root ::= ([0] | [1-9] [0-9]{0,15})") != NULL, "gbnf: %s", text);
    free(text);

    /* Any JSON value (NULL schema): greedy output parses as the start of a JSON value. */
    EXPECT(CHORD_OK, chord_grammar_from_json_schema(model, NULL, 0, 0, &g, &err_));
    chord_generate_params *p = NULL;
    EXPECT(CHORD_OK, chord_generate_params_new(&p, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_grammar(p, g, &err_));
    chord_grammar_free(g);
    EXPECT(CHORD_OK, chord_generate_params_set_temperature(p, 0.0f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, light ? 4 : 24, &err_));
    Gen out;
    prompt(s);
    generate(s, p, &out);
    CHECK(out.len > 0 && strchr("{[\"-0123456789tfn", out.text[0]) != NULL, "any JSON: '%s'", out.text);
    chord_generate_params_free(p);
}

static void test_fixed_answers(chord_session *s) {
    chord_grammar *g = grammar("root ::= \"Yes\" | \"No\" | \"Maybe later\"");
    chord_generate_params *p = NULL;
    EXPECT(CHORD_OK, chord_generate_params_new(&p, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_grammar(p, g, &err_));
    chord_grammar_free(g); /* the parameters hold their own reference */
    EXPECT(CHORD_OK, chord_generate_params_set_temperature(p, 1.0f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_top_k(p, 0, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_top_p(p, 1.0f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_min_p(p, 0.0f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, 16, &err_));
    int n = light ? 2 : 20, seen[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        Gen out;
        prompt(s);
        EXPECT(CHORD_OK, chord_generate_params_set_seed(p, (uint64_t)i, &err_));
        uint32_t reason = generate(s, p, &out);
        int which = !strcmp(out.text, "Yes") ? 0 : !strcmp(out.text, "No") ? 1 : !strcmp(out.text, "Maybe later") ? 2 : -1;
        CHECK(which >= 0, "seed %d: '%s' is not an answer", i, out.text);
        CHECK(reason == CHORD_STOP_EOG, "seed %d: stop %u", i, reason);
        if (which >= 0) seen[which]++;
    }
    printf("answers over %d samples: Yes %d, No %d, Maybe later %d\n", n, seen[0], seen[1], seen[2]);

    /* A grammar that can never complete stops at max_tokens, every token inside it. */
    chord_grammar *never = grammar("root ::= [a-z] root");
    EXPECT(CHORD_OK, chord_generate_params_set_grammar(p, never, &err_));
    chord_grammar_free(never);
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, light ? 3 : 8, &err_));
    Gen out;
    prompt(s);
    uint32_t reason = generate(s, p, &out);
    CHECK(reason == CHORD_STOP_MAX_TOKENS, "never-complete grammar: stop %u", reason);
    CHECK(out.n == (light ? 3u : 8u), "%zu tokens", out.n);
    for (size_t i = 0; i < out.len; i++) CHECK(out.text[i] >= 'a' && out.text[i] <= 'z', "char %zu of '%s'", i, out.text);
    chord_generate_params_free(p);
}

/* The two best tokens of the session's last logits. */
static void best_two(chord_session *s, chord_token *a, chord_token *b) {
    size_t n = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_session_logits(s, NULL, 0, &n, &err_));
    float *l = malloc(n * sizeof *l);
    EXPECT(CHORD_OK, chord_session_logits(s, l, n, &n, &err_));
    *a = 0;
    for (size_t i = 1; i < n; i++) if (l[i] > l[*a]) *a = (chord_token)i;
    *b = *a == 0 ? 1 : 0;
    for (size_t i = 0; i < n; i++) if (i != *a && l[i] > l[*b]) *b = (chord_token)i;
    free(l);
}

static void test_logit_bias(chord_session *s) {
    chord_generate_params *p = NULL;
    EXPECT(CHORD_OK, chord_generate_params_new(&p, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_temperature(p, 0.0f, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, 1, &err_));
    chord_token first, second;
    Gen out;
    prompt(s);
    best_two(s, &first, &second);
    generate(s, p, &out);
    CHECK(out.n == 1 && out.ids[0] == first, "greedy takes the best token");
    EXPECT(CHORD_OK, chord_generate_params_add_logit_bias(p, first, -INFINITY, &err_));
    prompt(s);
    generate(s, p, &out);
    CHECK(out.n == 1 && out.ids[0] == second, "a banned best token gives the second: %u, want %u", out.ids[0], second);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_add_logit_bias(p, 1, NAN, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_add_logit_bias(p, 1, INFINITY, &err_));
    EXPECT(CHORD_OK, chord_generate_params_add_logit_bias(p, 4000000000u, 1.0f, &err_));
    prompt(s);
    uint32_t reason = 0;
    EXPECT(CHORD_E_INVALID_TOKEN, chord_session_generate(s, p, NULL, NULL, &reason, &err_));
    EXPECT(CHORD_OK, chord_generate_params_clear_logit_bias(p, &err_));
    prompt(s);
    generate(s, p, &out);
    CHECK(out.n == 1 && out.ids[0] == first, "bias cleared");
    chord_generate_params_free(p);
}

/* Log-probabilities of each token, step by step, against log-softmax of the logits. */
static void test_logprobs(chord_session *s) {
    chord_generate_params *p = NULL;
    EXPECT(CHORD_OK, chord_generate_params_new(&p, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_seed(p, 3, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, 1, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_logprobs(p, 5, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_generate_params_set_logprobs(p, CHORD_MAX_LOGPROBS + 1, &err_));
    prompt(s);
    size_t n = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_session_logits(s, NULL, 0, &n, &err_));
    float *l = malloc(n * sizeof *l);
    int steps = light ? 2 : 6;
    for (int step = 0; step < steps; step++) {
        EXPECT(CHORD_OK, chord_session_logits(s, l, n, &n, &err_));
        double max = l[0], sum = 0;
        for (size_t i = 0; i < n; i++) if (l[i] > max) max = l[i];
        for (size_t i = 0; i < n; i++) sum += exp((double)l[i] - max);
        double logz = max + log(sum);
        Gen out;
        generate(s, p, &out);
        if (out.n != 1) {
            CHECK(0, "step %d: %zu tokens", step, out.n);
            break;
        }
        double want = l[out.ids[0]] - logz;
        CHECK(fabs(out.logprob[0] - want) < 1e-5, "step %d: logprob %g, want %g", step, out.logprob[0], want);
        CHECK(out.n_top[0] == 5, "five alternatives");
        for (int k = 0; k < 5; k++) {
            double w = l[out.top_ids[0][k]] - logz;
            CHECK(fabs(out.top[0][k] - w) < 1e-5, "step %d top %d: %g, want %g", step, k, out.top[0][k], w);
            if (k > 0) CHECK(out.top[0][k] <= out.top[0][k - 1], "descending");
        }
    }
    free(l);

    /* The poll form: each token event's log-probabilities. */
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, light ? 2 : 5, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_logprobs(p, 3, &err_));
    prompt(s);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_session_poll_logprobs(s, NULL, NULL, NULL, 0, NULL, &err_));
    EXPECT(CHORD_OK, chord_session_generate_start(s, p, &err_));
    int tokens = 0;
    for (;;) {
        uint32_t ev = 0, detail = 0;
        chord_token tok = 0;
        char buf[256];
        size_t len = 0;
        EXPECT(CHORD_OK, chord_session_poll(s, 1000, &ev, &tok, &detail, buf, sizeof buf, &len, &err_));
        if (ev == CHORD_EVENT_TOKEN) {
            float lp = 1, top[3];
            chord_token ids[3];
            size_t k = 0;
            EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_session_poll_logprobs(s, &lp, ids, top, 2, &k, &err_));
            CHECK(k == 3, "three alternatives (%zu)", k);
            EXPECT(CHORD_OK, chord_session_poll_logprobs(s, &lp, ids, top, 3, &k, &err_));
            CHECK(lp <= 0, "logprob %g", lp);
            CHECK(top[0] >= top[1] && top[1] >= top[2], "descending");
            tokens++;
        } else if (ev == CHORD_EVENT_DONE || ev == CHORD_EVENT_ERROR) {
            CHECK(ev == CHORD_EVENT_DONE, "done");
            break;
        }
    }
    CHECK(tokens > 0, "tokens polled");
    chord_generate_params_free(p);
}

/* chord_sampler in the host's loop gives exactly the tokens of chord_session_generate. */
static void host_loop(chord_session *s, chord_generate_params *p, size_t max) {
    Gen out;
    prompt(s);
    generate(s, p, &out);
    chord_sampler *sm = NULL;
    EXPECT(CHORD_OK, chord_sampler_new(model, p, &sm, &err_));
    prompt(s);
    size_t n = 0;
    int same = 1;
    while (n < max) {
        chord_token t = 0;
        EXPECT(CHORD_OK, chord_sampler_sample(sm, s, &t, &err_));
        if (chord_token_is_eog(model, t)) break;
        EXPECT(CHORD_OK, chord_sampler_accept(sm, t, &err_));
        if (n >= out.n || out.ids[n] != t) same = 0;
        n++;
        EXPECT(CHORD_OK, chord_session_append_tokens(s, &t, 1, 0, &err_));
    }
    CHECK(same && n == out.n, "host loop: %zu tokens, generate: %zu ('%s')", n, out.n, out.text);
    uint32_t done = 7;
    EXPECT(CHORD_OK, chord_sampler_grammar_done(sm, &done, &err_));
    CHECK(done == 0 || done == 1, "grammar_done");
    EXPECT(CHORD_OK, chord_sampler_reset(sm, &err_));
    chord_sampler_free(sm);
}

static void test_host_sampler(chord_session *s) {
    chord_generate_params *p = NULL;
    EXPECT(CHORD_OK, chord_generate_params_new(&p, &err_));
    size_t max = light ? 4 : 24;
    EXPECT(CHORD_OK, chord_generate_params_set_max_tokens(p, (uint32_t)max, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_seed(p, 42, &err_));
    EXPECT(CHORD_OK, chord_generate_params_set_repeat_penalty(p, 1.2f, &err_));
    host_loop(s, p, max);
    chord_grammar *g = grammar("root ::= [A-Z] [a-z ,]* \".\"");
    EXPECT(CHORD_OK, chord_generate_params_set_grammar(p, g, &err_));
    chord_grammar_free(g);
    EXPECT(CHORD_OK, chord_generate_params_set_temperature(p, 1.2f, &err_));
    host_loop(s, p, max);

    chord_sampler *sm = NULL;
    chord_token t = 0;
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_sampler_new(NULL, p, &sm, &err_));
    EXPECT(CHORD_OK, chord_sampler_new(model, p, &sm, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_sampler_sample(sm, NULL, &t, &err_));
    EXPECT(CHORD_E_INVALID_TOKEN, chord_sampler_accept(sm, 4000000000u, &err_));
    /* "x" cannot begin the grammar (an upper-case letter first). */
    chord_token x[4];
    size_t nx = 0;
    EXPECT(CHORD_OK, chord_tokenize(model, "x", 1, 0, 0, x, 4, &nx, &err_));
    EXPECT(CHORD_E_GRAMMAR, chord_sampler_accept(sm, x[0], &err_));
    EXPECT(CHORD_OK, chord_session_reset(s, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_sampler_sample(sm, s, &t, &err_));
    chord_sampler_free(sm);
    chord_sampler_free(NULL);
    chord_generate_params_free(p);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL\n", argv[0]);
        return 2;
    }
    light = getenv("CHORD_TEST_LIGHT") && !strcmp(getenv("CHORD_TEST_LIGHT"), "1");
    EXPECT(CHORD_OK, chord_model_load(argv[1], strlen(argv[1]), NULL, &model, &err_));
    if (!model) return 1;
    chord_session *s = fresh();
    test_grammar_errors();
    test_json_schema(s);
    test_fixed_answers(s);
    test_logit_bias(s);
    test_logprobs(s);
    test_host_sampler(s);
    chord_session_free(s);
    chord_model_free(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
