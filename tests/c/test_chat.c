/*
 * C tests of the chat-template API (chord_chat_apply, chord_model_chat_template) on the real
 * SmolLM2 model, whose embedded template is ChatML with a default system prompt, and every error
 * path. For CHORD_E_NOT_FOUND the test writes a copy of the model whose `tokenizer.chat_template`
 * key is renamed (same length, so the file stays valid) and loads it vocabulary-only.
 * Usage: test_chat MODEL [BAD_GGUF_DIR]   (BAD_GGUF_DIR is accepted and unused)
 * Ends with a line "N passed, N failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "chord.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (cond) {                                              \
            passed++;                                            \
        } else {                                                 \
            failed++;                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

/* Checks status and error object; when `needle` is not NULL the message must contain it. */
static void expect(chord_status got, chord_error *err, chord_status want, const char *needle, const char *what) {
    CHECK(got == want, "%s: got %s, want %s (%s)", what, chord_status_name(got), chord_status_name(want),
          err ? chord_error_message(err) : "no error object");
    if (want != CHORD_OK) {
        CHECK(err != NULL, "%s: no error object", what);
        if (err) {
            CHECK(chord_error_code(err) == want, "%s: error object code %u", what, chord_error_code(err));
            CHECK(strlen(chord_error_message(err)) > 0, "%s: empty message", what);
            if (needle) {
                CHECK(strstr(chord_error_message(err), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
                      chord_error_message(err), needle);
            }
        }
    } else {
        CHECK(err == NULL, "%s: error object on success", what);
    }
    chord_error_free(err);
}

/* `call` must pass &err_ as its error argument. */
#define EXPECT_MSG(want, needle, call)        \
    do {                                      \
        chord_error *err_ = NULL;             \
        chord_status st_ = (call);            \
        expect(st_, err_, want, needle, #call); \
    } while (0)
#define EXPECT(want, call) EXPECT_MSG(want, NULL, call)

static chord_chat_message msg(const char *role, const char *content) {
    chord_chat_message m;
    memset(&m, 0, sizeof m);
    m.struct_size = (uint32_t)sizeof(chord_chat_message);
    m.role = role;
    m.role_len = strlen(role);
    m.content = content;
    m.content_len = strlen(content);
    return m;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *CHATML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static void test_model_template(const chord_model *m) {
    size_t need = 0, n = 0;
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_chat_template(m, NULL, 0, &need, &err_));
    CHECK(need > 100, "template length %zu", need);
    char *buf = malloc(need + 1);
    /* Room for the text but not the NUL is still too small. */
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_model_chat_template(m, buf, need, &n, &err_));
    CHECK(n == need, "out_len %zu after too small", n);
    EXPECT(CHORD_OK, chord_model_chat_template(m, buf, need + 1, &n, &err_));
    CHECK(n == need && strlen(buf) == need, "length %zu/%zu", n, strlen(buf));
    CHECK(strstr(buf, "<|im_start|>") != NULL && strstr(buf, "add_generation_prompt") != NULL, "template %s", buf);
    free(buf);
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_chat_template(NULL, NULL, 0, &n, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_model_chat_template(m, NULL, 4096, &n, &err_));
}

static void test_apply(const chord_model *m) {
    chord_chat_message msgs[2];
    msgs[0] = msg("system", "Be brief.");
    msgs[1] = msg("user", "Hi");
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\n";
    char buf[1024];
    size_t n = 0;

    /* The model's template, size query first. */
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_chat_apply(m, NULL, 0, msgs, 2, 1, NULL, 0, &n, &err_));
    CHECK(n == strlen(want), "needed %zu, want %zu", n, strlen(want));
    EXPECT(CHORD_E_BUFFER_TOO_SMALL, chord_chat_apply(m, NULL, 0, msgs, 2, 1, buf, strlen(want), &n, &err_));
    EXPECT(CHORD_OK, chord_chat_apply(m, NULL, 0, msgs, 2, 1, buf, sizeof buf, &n, &err_));
    CHECK(n == strlen(want) && !strcmp(buf, want), "prompt \"%s\"", buf);

    /* Without the generation prompt, and without a system message (the template adds its own). */
    EXPECT(CHORD_OK, chord_chat_apply(m, NULL, 0, msgs + 1, 1, 0, buf, sizeof buf, &n, &err_));
    CHECK(!strncmp(buf, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM", 61), "prompt \"%s\"", buf);
    CHECK(ends_with(buf, "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"), "prompt end \"%s\"", buf);

    /* No messages at all: NULL is allowed with 0. */
    EXPECT(CHORD_OK, chord_chat_apply(m, NULL, 0, NULL, 0, 1, buf, sizeof buf, &n, &err_));
    CHECK(!strcmp(buf, "<|im_start|>assistant\n"), "empty conversation \"%s\"", buf);

    /* A caller template, with and without a model (bos_token/eos_token empty without one). */
    EXPECT(CHORD_OK, chord_chat_apply(NULL, CHATML, strlen(CHATML), msgs, 2, 1, buf, sizeof buf, &n, &err_));
    CHECK(!strcmp(buf, want), "caller template \"%s\"", buf);
    const char *toks = "[{{ bos_token }}|{{ eos_token }}]";
    EXPECT(CHORD_OK, chord_chat_apply(m, toks, strlen(toks), msgs, 2, 0, buf, sizeof buf, &n, &err_));
    CHECK(!strcmp(buf, "[<|im_start|>|<|im_end|>]"), "model tokens \"%s\"", buf);
    EXPECT(CHORD_OK, chord_chat_apply(NULL, toks, strlen(toks), msgs, 2, 0, buf, sizeof buf, &n, &err_));
    CHECK(!strcmp(buf, "[|]"), "no-model tokens \"%s\"", buf);

    /* Strings are (pointer, length): the length wins over a NUL further on. */
    chord_chat_message cut = msg("user", "Hi there");
    cut.content_len = 2;
    EXPECT(CHORD_OK, chord_chat_apply(NULL, CHATML, strlen(CHATML), &cut, 1, 0, buf, sizeof buf, &n, &err_));
    CHECK(!strcmp(buf, "<|im_start|>user\nHi<|im_end|>\n"), "cut content \"%s\"", buf);

    /* A host compiled against a longer, future chord_chat_message. */
    struct longer {
        chord_chat_message m;
        uint64_t future_field;
    } big[2];
    big[0].m = msgs[0];
    big[1].m = msgs[1];
    big[0].m.struct_size = big[1].m.struct_size = (uint32_t)sizeof(struct longer);
    big[0].future_field = big[1].future_field = 0xdeadbeef;
    EXPECT(CHORD_OK, chord_chat_apply(m, NULL, 0, (const chord_chat_message *)big, 2, 1, buf, sizeof buf, &n, &err_));
    CHECK(!strcmp(buf, want), "longer struct \"%s\"", buf);
}

static void test_apply_errors(const chord_model *m) {
    chord_chat_message msgs[2];
    msgs[0] = msg("system", "Be brief.");
    msgs[1] = msg("user", "Hi");
    char buf[256];
    size_t n = 0;

    EXPECT_MSG(CHORD_E_INVALID_ARGUMENT, "NULL", chord_chat_apply(NULL, NULL, 0, msgs, 2, 1, buf, sizeof buf, &n, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_chat_apply(m, NULL, 0, NULL, 2, 1, buf, sizeof buf, &n, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_chat_apply(m, NULL, 0, msgs, 2, 2, buf, sizeof buf, &n, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_chat_apply(m, NULL, 0, msgs, 2, 1, NULL, 4096, &n, &err_));
    EXPECT(CHORD_E_INVALID_ARGUMENT, chord_chat_apply(NULL, NULL, 5, msgs, 2, 1, buf, sizeof buf, &n, &err_));

    chord_chat_message bad[2];
    bad[0] = msgs[0];
    bad[1] = msgs[1];
    bad[1].role = NULL;
    EXPECT_MSG(CHORD_E_INVALID_ARGUMENT, "messages[1].role", chord_chat_apply(m, NULL, 0, bad, 2, 1, buf, sizeof buf, &n, &err_));
    bad[1] = msgs[1];
    bad[0].struct_size = 4;
    EXPECT_MSG(CHORD_E_INVALID_ARGUMENT, "struct_size", chord_chat_apply(m, NULL, 0, bad, 2, 1, buf, sizeof buf, &n, &err_));
    bad[0] = msgs[0];
    bad[1].struct_size = (uint32_t)sizeof(chord_chat_message) + 8;
    EXPECT_MSG(CHORD_E_INVALID_ARGUMENT, "messages[1].struct_size", chord_chat_apply(m, NULL, 0, bad, 2, 1, buf, sizeof buf, &n, &err_));

    /* Invalid UTF-8 in a content, a role, the template. */
    bad[1] = msg("user", "caf\xc3(");
    EXPECT_MSG(CHORD_E_INVALID_UTF8, "messages[1].content", chord_chat_apply(m, NULL, 0, bad, 2, 1, buf, sizeof buf, &n, &err_));
    bad[1] = msg("us\xff", "Hi");
    EXPECT_MSG(CHORD_E_INVALID_UTF8, "messages[1].role", chord_chat_apply(m, NULL, 0, bad, 2, 1, buf, sizeof buf, &n, &err_));
    const char *bad_tmpl = "{{ '\xe2\x28\xa1' }}";
    EXPECT_MSG(CHORD_E_INVALID_UTF8, "template", chord_chat_apply(m, bad_tmpl, strlen(bad_tmpl), msgs, 2, 1, buf, sizeof buf, &n, &err_));

    /* Template errors: syntax (with its line), the template's own exception, a failing expression. */
    const char *syntax = "{% for m in messages %}\n{{ m.content }\n{% endfor %}";
    EXPECT_MSG(CHORD_E_TEMPLATE, "line 2", chord_chat_apply(m, syntax, strlen(syntax), msgs, 2, 1, buf, sizeof buf, &n, &err_));
    const char *unclosed = "{% if add_generation_prompt %}x";
    EXPECT_MSG(CHORD_E_TEMPLATE, "does not parse", chord_chat_apply(m, unclosed, strlen(unclosed), msgs, 2, 1, buf, sizeof buf, &n, &err_));
    const char *raises = "{% for m in messages %}{{ m.content }}{% endfor %}"
                         "{% if messages|length > 1 %}{{ raise_exception('Too many messages') }}{% endif %}";
    EXPECT_MSG(CHORD_E_TEMPLATE, "Too many messages",
               chord_chat_apply(m, raises, strlen(raises), msgs, 2, 1, buf, sizeof buf, &n, &err_));
    EXPECT(CHORD_OK, chord_chat_apply(m, raises, strlen(raises), msgs, 1, 1, buf, sizeof buf, &n, &err_));
    const char *undefined_attr = "{{ nothing.here }}";
    EXPECT(CHORD_E_TEMPLATE, chord_chat_apply(m, undefined_attr, strlen(undefined_attr), msgs, 2, 1, buf, sizeof buf, &n, &err_));
}

/* Writes a copy of `model` whose chat-template key is renamed; returns its path (static) or NULL. */
static const char *copy_without_template(const char *model) {
    static char path[64];
    FILE *f = fopen(model, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size);
    size_t got = data ? fread(data, 1, (size_t)size, f) : 0;
    fclose(f);
    const char *key = "tokenizer.chat_template";
    size_t klen = strlen(key);
    char *hit = NULL;
    for (size_t i = 0; got == (size_t)size && i + klen <= got && !hit; i++) {
        if (data[i] == 't' && !memcmp(data + i, key, klen)) hit = data + i;
    }
    if (!hit) {
        free(data);
        return NULL;
    }
    hit[klen - 1] = 'X'; /* "tokenizer.chat_templatX": same length, no longer the template key */
    strcpy(path, "/tmp/chord-test-chat-XXXXXX");
    int fd = mkstemp(path);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    int ok = out && fwrite(data, 1, got, out) == got;
    if (out) ok = (fclose(out) == 0) && ok;
    free(data);
    return ok ? path : NULL;
}

static void test_no_template(const char *model) {
    const char *path = copy_without_template(model);
    CHECK(path != NULL, "cannot write a copy of %s without its template", model);
    if (!path) return;
    chord_model_options *mo = NULL;
    chord_model_options_new(&mo, NULL);
    chord_model_options_set_vocab_only(mo, 1, NULL);
    chord_model *m = NULL;
    EXPECT(CHORD_OK, chord_model_load(path, strlen(path), mo, &m, &err_));
    chord_model_options_free(mo);
    if (m) {
        char buf[256];
        size_t n = 0;
        EXPECT(CHORD_E_NOT_FOUND, chord_model_chat_template(m, buf, sizeof buf, &n, &err_));
        chord_chat_message u = msg("user", "Hi");
        EXPECT_MSG(CHORD_E_NOT_FOUND, "chat template", chord_chat_apply(m, NULL, 0, &u, 1, 1, buf, sizeof buf, &n, &err_));
        /* A caller template still works with this model. */
        EXPECT(CHORD_OK, chord_chat_apply(m, CHATML, strlen(CHATML), &u, 1, 1, buf, sizeof buf, &n, &err_));
        CHECK(!strcmp(buf, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "caller template \"%s\"", buf);
        chord_model_free(m);
    }
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [BAD_GGUF_DIR]\n", argv[0]);
        return 2;
    }
    const char *model = argv[1];
    chord_model *m = NULL;
    EXPECT(CHORD_OK, chord_model_load(model, strlen(model), NULL, &m, &err_));
    if (m) {
        test_model_template(m);
        test_apply(m);
        test_apply_errors(m);
        chord_model_free(m);
    }
    test_no_template(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
