// Out-of-tree C++ consumer of an installed chord (built by tests/pkg/run.sh with pkg-config and
// with CMake, against libchord.so and libchord.a). Usage: consumer MODEL [TEXT]
// Does what tests/pkg/c/main.c does, with RAII owners and exceptions, and prints the same lines:
// the library version, the prompt tokens, 4 greedy next tokens and their text.
#include <chord.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kSteps = 4;

struct ModelFree {
    void operator()(chord_model *m) const { chord_model_free(m); }
};
struct SessionFree {
    void operator()(chord_session *s) const { chord_session_free(s); }
};
struct SessionOptionsFree {
    void operator()(chord_session_options *o) const { chord_session_options_free(o); }
};
using Model = std::unique_ptr<chord_model, ModelFree>;
using Session = std::unique_ptr<chord_session, SessionFree>;
using SessionOptions = std::unique_ptr<chord_session_options, SessionOptionsFree>;

// Throws when `st` is not CHORD_OK (except `allowed`), with the error object's message.
void check(chord_status st, chord_error *err, const char *what, chord_status allowed = CHORD_OK) {
    std::string message = err ? chord_error_message(err) : "";
    chord_error_free(err);
    if (st != CHORD_OK && st != allowed)
        throw std::runtime_error(std::string(what) + ": " + chord_status_name(st) + " (" + message + ")");
}

// `s` as the inside of a C string literal (escapes quotes, backslashes, control bytes).
std::string escaped(const std::string &s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n') {
            out += "\\n";
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::vector<chord_token> tokenize(const chord_model *model, const std::string &text) {
    std::size_t n = 0;
    chord_error *err = nullptr;
    check(chord_tokenize(model, text.data(), text.size(), 1, 0, nullptr, 0, &n, &err), err, "tokenize (size)",
          CHORD_E_BUFFER_TOO_SMALL);
    std::vector<chord_token> tokens(n);
    err = nullptr;
    check(chord_tokenize(model, text.data(), text.size(), 1, 0, tokens.data(), tokens.size(), &n, &err), err,
          "tokenize");
    tokens.resize(n);
    return tokens;
}

int run(const std::string &path, const std::string &text) {
    if (chord_abi_version() != CHORD_ABI_VERSION)
        throw std::runtime_error("library ABI " + std::to_string(chord_abi_version()) + ", header ABI " +
                                 std::to_string(CHORD_ABI_VERSION));
    std::cout << "chord " << chord_version_string() << " abi " << chord_abi_version() << "\n";

    chord_error *err = nullptr;
    chord_model *raw_model = nullptr;
    check(chord_model_load(path.data(), path.size(), nullptr, &raw_model, &err), err, "load");
    Model model(raw_model);
    std::uint64_t n_vocab = 0;
    err = nullptr;
    check(chord_model_info(model.get(), CHORD_INFO_N_VOCAB, &n_vocab, &err), err, "info");

    std::vector<chord_token> tokens = tokenize(model.get(), text);
    std::cout << "prompt";
    for (chord_token t : tokens) std::cout << " " << t;
    std::cout << "\n";

    chord_session_options *raw_opts = nullptr;
    err = nullptr;
    check(chord_session_options_new(&raw_opts, &err), err, "session options");
    SessionOptions opts(raw_opts);
    err = nullptr;
    check(chord_session_options_set_n_ctx(opts.get(), 64, &err), err, "n_ctx");
    chord_session *raw_session = nullptr;
    err = nullptr;
    check(chord_session_new(model.get(), opts.get(), &raw_session, &err), err, "session");
    Session session(raw_session);

    // Evaluate the prompt, then feed back the most likely token kSteps times.
    std::vector<float> logits(static_cast<std::size_t>(n_vocab));
    std::vector<chord_token> feed = tokens, greedy;
    for (std::size_t step = 0; step < kSteps; step++) {
        err = nullptr;
        check(chord_session_append_tokens(session.get(), feed.data(), feed.size(), 0, &err), err, "append");
        std::size_t n_logits = 0;
        err = nullptr;
        check(chord_session_logits(session.get(), logits.data(), logits.size(), &n_logits, &err), err, "logits");
        if (n_logits != logits.size()) throw std::runtime_error("logits: wrong count");
        auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
        greedy.push_back(static_cast<chord_token>(best));
        feed.assign(1, greedy.back());
    }
    std::cout << "greedy";
    for (chord_token t : greedy) std::cout << " " << t;
    std::cout << "\n";

    std::string piece(256, '\0');
    std::size_t n_piece = 0;
    err = nullptr;
    check(chord_detokenize(model.get(), greedy.data(), greedy.size(), 1, 0, &piece[0], piece.size(), &n_piece, &err),
          err, "detokenize");
    piece.resize(n_piece);
    std::cout << "text \"" << escaped(piece) << "\"\n";
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: consumer MODEL [TEXT]\n";
        return 2;
    }
    try {
        return run(argv[1], argc > 2 ? argv[2] : "The capital of France is");
    } catch (const std::exception &e) {
        std::cerr << "consumer: " << e.what() << "\n";
        return 1;
    }
}
