# Builds the chord library (cargo) and the C programs against its public header.
#   make            release library + build/bin/chord
#   make demo       also fetches the default model and generates text with it
#   make test       installs what the tests need, then runs every test (Rust, C, llama.cpp oracle)
#   make test-c     the C API tests (tests/c): plain, under AddressSanitizer, under valgrind
#   make header-check  fails when include/chord.h differs from what build.rs generates
SHELL := /bin/bash
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c99 -Wall -Wextra -Werror -pedantic
CARGO_TARGET_DIR ?= target
LIB := $(CARGO_TARGET_DIR)/release/libchord.a
LDLIBS := -lpthread -ldl -lm
BIN := build/bin
TEST := build/test
CACHE := $(shell . scripts/env.sh && echo $$CHORD_CACHE)
MODEL := $(CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf
BAD_GGUF := $(TEST)/bad-gguf
VALGRIND := CHORD_TEST_LIGHT=1 valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --quiet

.PHONY: all lib demo test test-data test-rust test-c test-corpus test-oracle check-wgpu header-check clean FORCE

all: $(BIN)/chord

lib: $(LIB)

$(LIB): FORCE
	cargo build --release --lib

$(BIN)/chord: examples_c/chord.c include/chord.h $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $@ examples_c/chord.c $(LIB) $(LDLIBS)

demo: $(BIN)/chord
	scripts/fetch-model.sh
	$(BIN)/chord generate -m $(MODEL) -n 96 \
	  -p "<|im_start|>user"$$'\n'"Write a short poem about the sea.<|im_end|>"$$'\n'"<|im_start|>assistant"$$'\n'

test-data:
	scripts/install-deps.sh
	scripts/fetch-test-data.sh

test: test-data
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	$(MAKE) test-rust header-check test-c test-corpus check-wgpu test-oracle

test-rust:
	cargo test --release

header-check: $(LIB)
	git diff --exit-code -- include/chord.h

$(BAD_GGUF)/expected.tsv: FORCE
	CHORD_BAD_GGUF_DIR=$(abspath $(BAD_GGUF)) cargo test --release --test gguf_malformed write_corpus_for_c_tests -q

# Every tests/c/test_*.c is one C test program, built plain and with ASan+UBSan, and run plain,
# under ASan and under valgrind memcheck with the model and the malformed-GGUF corpus as arguments.
C_TESTS := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))

$(TEST)/%: tests/c/%.c include/chord.h $(LIB)
	@mkdir -p $(TEST)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $@ $< $(LIB) $(LDLIBS)

$(TEST)/%_asan: tests/c/%.c include/chord.h $(LIB)
	@mkdir -p $(TEST)
	$(CC) $(CFLAGS) $(WARN) -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude -o $@ $< $(LIB) $(LDLIBS)

test-c: $(addprefix $(TEST)/,$(C_TESTS)) $(addprefix $(TEST)/,$(addsuffix _asan,$(C_TESTS))) $(BAD_GGUF)/expected.tsv
	set -e; for t in $(C_TESTS); do \
	  echo "== $$t"; \
	  $(TEST)/$$t $(MODEL) $(BAD_GGUF); \
	  ASAN_OPTIONS=detect_leaks=1 $(TEST)/$${t}_asan $(MODEL) $(BAD_GGUF); \
	  $(VALGRIND) $(TEST)/$$t $(MODEL) $(BAD_GGUF); \
	done

test-corpus: $(BIN)/chord $(BAD_GGUF)/expected.tsv
	scripts/check-inspect-corpus.sh $(BIN)/chord $(BAD_GGUF)

check-wgpu:
	cargo check --release --features wgpu

test-oracle: $(BIN)/chord
	scripts/run-oracle-tests.sh $(BIN)/chord

clean:
	rm -rf build

FORCE:
