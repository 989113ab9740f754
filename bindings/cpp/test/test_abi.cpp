// chord.hpp built for another ABI version than the loaded libchord's: Model::load refuses with a
// message naming both versions, before touching the model.
// Usage: test_abi MODEL
#include "chord.h"
#undef CHORD_ABI_VERSION
#define CHORD_ABI_VERSION 999  // as if this binding had been built against a future chord.h
#include "chord.hpp"

#include <cstdio>
#include <string>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    try {
        chord::Model::load(argv[1]);
    } catch (const chord::Error &e) {
        std::string msg = e.what();
        std::string lib = "ABI version " + std::to_string(chord_abi_version());
        bool ok = e.status() == CHORD_E_UNSUPPORTED && msg.find(lib) != std::string::npos &&
                  msg.find("ABI version 999") != std::string::npos;
        std::printf("%s: %s\n", ok ? "ok" : "FAIL", msg.c_str());
        return ok ? 0 : 1;
    }
    std::printf("FAIL: loaded a model across ABI versions\n");
    return 1;
}
