// chord.hpp: a header-only C++17 wrapper over chord.h.
//
// Move-only RAII types own the C handles (Model, Session, Grammar, GenerateParams, Generation);
// every failure throws chord::Error, which carries the chord_status and chord's message; strings go
// in as std::string_view. Two ways to stream a generation:
//   * Session::generate(params, on_text): on the calling thread; the callback may return false to
//     stop, and an exception it throws stops the generation and is rethrown from generate().
//   * Session::start(params) -> Generation: chord generates on its own thread and poll() hands the
//     events to the caller's thread (no callback crosses threads); cancel() stops it; the
//     destructor cancels and drains it, so the session is usable again afterwards.
// Session::cancel() may be called from any thread. A Model may be shared by any number of
// sessions and threads; a Session is used by one thread at a time (another gets CHORD_E_BUSY).
//
// Before anything else, Model::load checks that the loaded libchord has the ABI version this
// header was compiled against and throws an Error naming both when it does not.
#ifndef CHORD_HPP
#define CHORD_HPP

#include "chord.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chord {

/// A chord failure: the status (`CHORD_E_*`) and chord's message.
class Error : public std::runtime_error {
public:
    Error(chord_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    /// The `CHORD_E_*` status.
    chord_status status() const noexcept { return status_; }
    /// The status' symbolic name, e.g. "IO".
    const char *status_name() const noexcept { return chord_status_name(status_); }

private:
    chord_status status_;
};

namespace detail {

/// Throws an Error for a failed call, taking the message from (and freeing) `err`.
inline void check(chord_status st, chord_error *err) {
    if (st == CHORD_OK) {
        chord_error_free(err);
        return;
    }
    std::string msg = err ? chord_error_message(err) : chord_status_name(st);
    chord_error_free(err);
    throw Error(st, msg);
}

/// Runs `call(&err)` and throws on failure.
template <typename F> void call(F &&f) {
    chord_error *err = nullptr;
    chord_status st = f(&err);
    check(st, err);
}

/// A string that chord writes into a caller buffer: asks for the size, then fills it.
template <typename F> std::string read_string(F &&f) {
    size_t len = 0;
    chord_error *err = nullptr;
    chord_status st = f(nullptr, 0, &len, &err);
    if (st != CHORD_E_BUFFER_TOO_SMALL) {
        check(st, err);
        return std::string();
    }
    chord_error_free(err);
    std::string out(len + 1, '\0');  // room for a NUL where the call writes one
    call([&](chord_error **e) { return f(out.data(), out.size(), &len, e); });
    out.resize(len);
    return out;
}

/// Throws unless the loaded library has this header's ABI version.
inline void check_abi() {
    uint32_t lib = chord_abi_version();
    if (lib != CHORD_ABI_VERSION) {
        throw Error(CHORD_E_UNSUPPORTED,
                    "libchord has ABI version " + std::to_string(lib) + " but chord.hpp was built for ABI version " +
                        std::to_string(CHORD_ABI_VERSION));
    }
}

/// Move-only ownership of a C handle freed by `Free`.
template <typename T, void (*Free)(T *)> class Handle {
public:
    Handle() = default;
    explicit Handle(T *p) : p_(p) {}
    Handle(Handle &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Handle &operator=(Handle &&o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    ~Handle() { reset(); }
    T *get() const noexcept { return p_; }
    void reset() noexcept {
        if (p_) Free(std::exchange(p_, nullptr));
    }

private:
    T *p_ = nullptr;
};

}  // namespace detail

/// Options for Model::load.
class ModelOptions {
public:
    ModelOptions() {
        chord_model_options *p = nullptr;
        detail::call([&](chord_error **e) { return chord_model_options_new(&p, e); });
        h_ = Handle(p);
    }
    /// Worker threads; 0 = one per core.
    ModelOptions &threads(uint32_t n) { return set(chord_model_options_set_threads, n); }
    /// A memory budget in bytes (larger models are paged); 0 = none.
    ModelOptions &memory_budget(uint64_t bytes) { return set(chord_model_options_set_memory_budget, bytes); }
    /// Map the file (default) or read it into memory.
    ModelOptions &use_mmap(bool on) { return set(chord_model_options_set_use_mmap, uint32_t(on)); }
    const chord_model_options *get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<chord_model_options, chord_model_options_free>;
    template <typename F, typename V> ModelOptions &set(F f, V v) {
        detail::call([&](chord_error **e) { return f(h_.get(), v, e); });
        return *this;
    }
    Handle h_;
};

/// A loaded model: immutable, shared by any number of sessions and threads.
class Model {
public:
    /// Loads a GGUF file. Throws Error (e.g. CHORD_E_IO, CHORD_E_UNKNOWN_ARCHITECTURE).
    static Model load(std::string_view path, const ModelOptions *opts = nullptr) {
        detail::check_abi();
        chord_model *m = nullptr;
        detail::call([&](chord_error **e) {
            return chord_model_load(path.data(), path.size(), opts ? opts->get() : nullptr, &m, e);
        });
        return Model(m);
    }
    /// A `CHORD_INFO_*` value.
    uint64_t info(uint32_t key) const {
        uint64_t v = 0;
        detail::call([&](chord_error **e) { return chord_model_info(h_.get(), key, &v, e); });
        return v;
    }
    /// Text to tokens; `add_special` adds BOS/EOS as the file asks, `parse_special` reads
    /// special-token text such as `<|im_start|>`.
    std::vector<chord_token> tokenize(std::string_view text, bool add_special = true, bool parse_special = true) const {
        size_t n = 0;
        chord_error *err = nullptr;
        chord_status st = chord_tokenize(h_.get(), text.data(), text.size(), add_special, parse_special, nullptr, 0, &n, &err);
        if (st != CHORD_E_BUFFER_TOO_SMALL) detail::check(st, err);
        else chord_error_free(err);
        std::vector<chord_token> out(n);
        if (n) {
            detail::call([&](chord_error **e) {
                return chord_tokenize(h_.get(), text.data(), text.size(), add_special, parse_special, out.data(), n, &n, e);
            });
        }
        return out;
    }
    /// Tokens to text (bytes; may split a UTF-8 character at the ends).
    std::string detokenize(const std::vector<chord_token> &tokens, bool remove_special = false, bool unparse_special = false) const {
        return detail::read_string([&](char *buf, size_t cap, size_t *len, chord_error **e) {
            return chord_detokenize(h_.get(), tokens.data(), tokens.size(), remove_special, unparse_special, buf, cap, len, e);
        });
    }
    /// Whether generation ends at this token.
    bool is_eog(chord_token t) const noexcept { return chord_token_is_eog(h_.get(), t) != 0; }
    /// The `general.architecture` name.
    std::string architecture() const {
        return detail::read_string([&](char *buf, size_t cap, size_t *len, chord_error **e) {
            return chord_model_architecture(h_.get(), buf, cap, len, e);
        });
    }
    const chord_model *get() const noexcept { return h_.get(); }

private:
    explicit Model(chord_model *m) : h_(m) {}
    detail::Handle<chord_model, chord_model_free> h_;
};

/// A compiled grammar (GBNF, or the grammar of a JSON Schema); immutable, shareable.
class Grammar {
public:
    /// GBNF text, starting at `root`; `model` resolves `<text>` tokens. Throws CHORD_E_GRAMMAR with
    /// the line and column.
    static Grammar gbnf(std::string_view text, const Model *model = nullptr, std::string_view root = "root") {
        chord_grammar *g = nullptr;
        detail::call([&](chord_error **e) {
            return chord_grammar_new(model ? model->get() : nullptr, text.data(), text.size(), root.data(), root.size(), &g, e);
        });
        return Grammar(g);
    }
    /// A JSON Schema (strict unless `lenient`); an empty schema is any JSON value.
    static Grammar json_schema(std::string_view schema, const Model *model = nullptr, bool lenient = false) {
        chord_grammar *g = nullptr;
        detail::call([&](chord_error **e) {
            return chord_grammar_from_json_schema(model ? model->get() : nullptr, schema.empty() ? nullptr : schema.data(),
                                                  schema.size(), lenient ? CHORD_SCHEMA_LENIENT : 0, &g, e);
        });
        return Grammar(g);
    }
    const chord_grammar *get() const noexcept { return h_.get(); }

private:
    explicit Grammar(chord_grammar *g) : h_(g) {}
    detail::Handle<chord_grammar, chord_grammar_free> h_;
};

/// Generation settings: length, stop strings, sampling, grammar.
class GenerateParams {
public:
    GenerateParams() {
        chord_generate_params *p = nullptr;
        detail::call([&](chord_error **e) { return chord_generate_params_new(&p, e); });
        h_ = Handle(p);
    }
    GenerateParams &max_tokens(uint32_t n) { return set(chord_generate_params_set_max_tokens, n); }
    GenerateParams &temperature(float t) { return set(chord_generate_params_set_temperature, t); }
    GenerateParams &top_k(uint32_t k) { return set(chord_generate_params_set_top_k, k); }
    GenerateParams &top_p(float p) { return set(chord_generate_params_set_top_p, p); }
    GenerateParams &min_p(float p) { return set(chord_generate_params_set_min_p, p); }
    GenerateParams &repeat_penalty(float p) { return set(chord_generate_params_set_repeat_penalty, p); }
    GenerateParams &seed(uint64_t s) { return set(chord_generate_params_set_seed, s); }
    GenerateParams &stop(std::string_view s) {
        detail::call([&](chord_error **e) { return chord_generate_params_add_stop(h_.get(), s.data(), s.size(), e); });
        return *this;
    }
    /// Only text the grammar allows (the parameters keep their own reference).
    GenerateParams &grammar(const Grammar &g) {
        detail::call([&](chord_error **e) { return chord_generate_params_set_grammar(h_.get(), g.get(), e); });
        return *this;
    }
    GenerateParams &logit_bias(chord_token t, float bias) {
        detail::call([&](chord_error **e) { return chord_generate_params_add_logit_bias(h_.get(), t, bias, e); });
        return *this;
    }
    const chord_generate_params *get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<chord_generate_params, chord_generate_params_free>;
    template <typename F, typename V> GenerateParams &set(F f, V v) {
        detail::call([&](chord_error **e) { return f(h_.get(), v, e); });
        return *this;
    }
    Handle h_;
};

/// One event of a background generation.
struct Event {
    enum Kind { Token = CHORD_EVENT_TOKEN, Done = CHORD_EVENT_DONE, Failed = CHORD_EVENT_ERROR };
    Kind kind;
    /// The token of a Token event.
    chord_token token = 0;
    /// Text: completed by the token, held back until the end (Done), or the error message.
    std::string text;
    /// `CHORD_STOP_*` of Done, the status of Failed (`CHORD_E_CANCELLED` after a cancel).
    uint32_t detail = 0;
    bool is_final() const noexcept { return kind != Token; }
};

class Session;

/// A background generation (Session::start): poll() for its events on any one thread; cancel()
/// from any thread. The destructor cancels and drains it.
class Generation {
public:
    Generation(Generation &&o) noexcept : s_(std::exchange(o.s_, nullptr)), done_(o.done_.exchange(true)) {}
    Generation &operator=(Generation &&o) noexcept {
        if (this != &o) {
            finish();
            s_ = std::exchange(o.s_, nullptr);
            done_ = o.done_.exchange(true);
        }
        return *this;
    }
    Generation(const Generation &) = delete;
    Generation &operator=(const Generation &) = delete;
    ~Generation() { finish(); }

    /// The next event, waiting up to `timeout` (0: not at all, for a game loop's frame);
    /// std::nullopt when none came, or the final event was already delivered.
    std::optional<Event> poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
    /// The next event, waiting as long as it takes; std::nullopt once the final event was
    /// delivered: `while (auto ev = gen.next()) ...`.
    std::optional<Event> next() {
        while (!done_) {
            if (auto ev = poll(std::chrono::milliseconds(100))) return ev;
        }
        return std::nullopt;
    }
    /// Asks the generation to stop; its final event is then Failed with CHORD_E_CANCELLED.
    /// Any thread; after the final event it does nothing.
    void cancel() noexcept;
    /// Whether the final event has been delivered.
    bool done() const noexcept { return done_; }

private:
    friend class Session;
    explicit Generation(const chord_session *s) : s_(s), done_(false) {}
    void finish() noexcept;
    const chord_session *s_;  // fixed for the object's life: cancel() reads it from any thread
    std::atomic<bool> done_;
};

/// A context over a model. One thread at a time; cancel() from any thread.
class Session {
public:
    /// A session with `n_ctx` tokens of context (0: the model's, at most 4096).
    explicit Session(const Model &model, uint32_t n_ctx = 0) {
        detail::Handle<chord_session_options, chord_session_options_free> opts;
        chord_session_options *o = nullptr;
        detail::call([&](chord_error **e) { return chord_session_options_new(&o, e); });
        opts = decltype(opts)(o);
        detail::call([&](chord_error **e) { return chord_session_options_set_n_ctx(o, n_ctx, e); });
        chord_session *s = nullptr;
        detail::call([&](chord_error **e) { return chord_session_new(model.get(), o, &s, e); });
        h_ = Handle(s);
    }
    /// Tokenizes and evaluates `text` after the context; returns the number of tokens.
    size_t append(std::string_view text, bool add_special = true, bool parse_special = true) {
        size_t n = 0;
        uint32_t flags = (add_special ? CHORD_APPEND_ADD_SPECIAL : 0) | (parse_special ? CHORD_APPEND_PARSE_SPECIAL : 0);
        detail::call([&](chord_error **e) { return chord_session_append_text(h_.get(), text.data(), text.size(), flags, &n, e); });
        return n;
    }
    void append(const std::vector<chord_token> &tokens) {
        detail::call([&](chord_error **e) { return chord_session_append_tokens(h_.get(), tokens.data(), tokens.size(), 0, e); });
    }
    /// Generates on this thread, calling `on_text` with whole UTF-8 pieces; it returns false to
    /// stop. An exception from `on_text` stops the generation and is rethrown here. Returns the
    /// `CHORD_STOP_*` reason.
    uint32_t generate(const GenerateParams &params, const std::function<bool(std::string_view)> &on_text) {
        struct Ctx {
            const std::function<bool(std::string_view)> *f;
            std::exception_ptr error;
        } ctx{&on_text, nullptr};
        auto tramp = [](const char *text, size_t len, void *ud) -> uint32_t {
            auto *c = static_cast<Ctx *>(ud);
            try {
                return (*c->f)(std::string_view(text, len)) ? 1 : 0;
            } catch (...) {
                c->error = std::current_exception();  // never across the C ABI
                return 0;
            }
        };
        uint32_t reason = 0;
        detail::call([&](chord_error **e) { return chord_session_generate(h_.get(), params.get(), tramp, &ctx, &reason, e); });
        if (ctx.error) std::rethrow_exception(ctx.error);
        return reason;
    }
    /// Starts generating on chord's thread; the Generation delivers the events.
    Generation start(const GenerateParams &params) {
        detail::call([&](chord_error **e) { return chord_session_generate_start(h_.get(), params.get(), e); });
        return Generation(h_.get());
    }
    /// Stops the running call at its next token or layer. Any thread.
    void cancel() noexcept { chord_session_cancel(h_.get()); }
    void reset() {
        detail::call([&](chord_error **e) { return chord_session_reset(h_.get(), e); });
    }
    size_t n_tokens() const {
        size_t n = 0;
        detail::call([&](chord_error **e) { return chord_session_n_tokens(h_.get(), &n, e); });
        return n;
    }
    std::vector<chord_token> tokens() const {
        std::vector<chord_token> out(n_tokens());
        size_t n = 0;
        detail::call([&](chord_error **e) { return chord_session_tokens(h_.get(), out.data(), out.size(), &n, e); });
        out.resize(n);
        return out;
    }
    void truncate(size_t n) {
        detail::call([&](chord_error **e) { return chord_session_truncate(h_.get(), n, e); });
    }
    const chord_session *get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<chord_session, chord_session_free>;
    Handle h_;
};

inline std::optional<Event> Generation::poll(std::chrono::milliseconds timeout) {
    if (done_) return std::nullopt;
    uint32_t kind = 0, detail_v = 0;
    chord_token tok = 0;
    std::string buf(256, '\0');
    size_t len = 0;
    for (;;) {
        chord_error *err = nullptr;
        chord_status st = chord_session_poll(s_, uint32_t(timeout.count()), &kind, &tok, &detail_v, buf.data(), buf.size(), &len, &err);
        if (st == CHORD_E_BUFFER_TOO_SMALL) {  // the event stays queued: poll again with room
            chord_error_free(err);
            buf.resize(len);
            continue;
        }
        detail::check(st, err);
        break;
    }
    if (kind == CHORD_EVENT_NONE) return std::nullopt;
    Event ev{Event::Kind(kind), tok, std::string(buf.data(), len), detail_v};
    if (ev.is_final()) done_ = true;
    return ev;
}

inline void Generation::cancel() noexcept {
    if (!done_) chord_session_cancel(s_);
}

inline void Generation::finish() noexcept {
    if (done_) return;
    chord_session_cancel(s_);
    while (!done_) {
        try {
            poll(std::chrono::milliseconds(1000));
        } catch (...) {
            done_ = true;  // another thread is polling: nothing left that this object may do
        }
    }
}

}  // namespace chord

#endif  // CHORD_HPP
