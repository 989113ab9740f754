# Builds the chord library (cargo) and the C programs against its public header.
#   make            release library + build/bin/chord
#   make demo       also fetches the default model and generates text with it
#   make test       installs what the tests need, then runs every test (Rust, C, llama.cpp oracle)
#   make fuzz [FUZZ_SECONDS=600] every fuzz target (fuzz/) for that long; make test runs each 60 s
#   make soak [SOAK_SECONDS=1800] 8 threads of random C API calls over two models: statuses,
#                   deadlocks (watchdog), resident memory flat over the second half
#   make test-tsan  the C API tests under ThreadSanitizer, Rust side instrumented (nightly)
#   make test-scalar the Rust tests with the kernels on their portable path (CHORD_ISA=scalar; slower)
#   make test-c     the C API tests (tests/c): plain, under AddressSanitizer, under valgrind
#   make test-bindings the bindings' tests: C++ plain, ASan+UBSan, TSan, valgrind; Go with -race and
#                   cgocheck=2; C# under the Mono JIT (NUnit) and full AOT; the Godot 3 GDNative
#                   library headless in godot3-server; the Swift package's module map (clang -fmodules)
#   make unity-package the C# binding as a Unity package with the stripped libchord (build/unity)
#   make test-pager peak resident memory of `chord generate` under memory budgets stays within
#                   budget + KV cache + 64 MiB (scripts/check-pager-rss.py)
#   make header-check  fails when include/chord.h differs from what build.rs generates
#   make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=] [INCLUDEDIR=]   header, libchord.so/.a,
#                   chord.pc, CMake package (chord::chord, chord::chord_static); make uninstall
#   make test-pkg   packaging: symbols, header as C99/C++17, install + out-of-tree consumers
SHELL := /bin/bash
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c99 -Wall -Wextra -Werror -pedantic
CARGO_TARGET_DIR ?= target
LIB := $(CARGO_TARGET_DIR)/release/libchord.a
LDLIBS := -lpthread -ldl -lm
BIN := build/bin
TEST := build/test
PKG := build/pkg
CACHE := $(shell . scripts/env.sh && echo $$CHORD_CACHE)
MODEL := $(CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf
BAD_GGUF := $(TEST)/bad-gguf
VALGRIND := CHORD_TEST_LIGHT=1 valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --quiet

.PHONY: all lib demo test test-data test-rust fuzz test-fuzz soak test-soak test-tsan test-scalar test-c test-bindings test-corpus test-oracle test-pager test-gpu header-check clean FORCE
.PHONY: install uninstall test-pkg check-symbols check-header-compile unity-package

all: $(BIN)/chord

lib: $(LIB) $(PKG)/native-static-libs

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
	s=$$(date +%s) && scripts/install-deps.sh && echo "== install-deps: $$(( $$(date +%s) - s )) s"
	s=$$(date +%s) && scripts/fetch-test-data.sh && echo "== fetch-test-data: $$(( $$(date +%s) - s )) s"

# Each step prints how long it took (CI must finish in 60 minutes from an empty cache).
TEST_STEPS := test-rust header-check test-c test-bindings test-corpus test-pager test-gpu test-fuzz test-soak test-oracle test-pkg
test: test-data
	cargo fmt --all -- --check
	s=$$(date +%s) && cargo clippy --release --all-targets -- -D warnings && echo "== clippy: $$(( $$(date +%s) - s )) s"
	set -e; for t in $(TEST_STEPS); do s=$$(date +%s); $(MAKE) --no-print-directory $$t; \
	  echo "== $$t: $$(( $$(date +%s) - s )) s"; done

test-rust:
	cargo test --release

# Coverage-guided fuzzing (fuzz/, cargo-fuzz + libFuzzer + ASan, nightly): every target for
# FUZZ_SECONDS each (make fuzz), or 60 s each from the committed corpus (make test).
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

test-fuzz:
	FUZZ_CI=1 scripts/fuzz.sh 60

test-scalar:
	CHORD_ISA=scalar cargo test --release

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

# Under valgrind the programs that generate much run on the tiny random model (SmolLM2's vocabulary
# and template, hidden size 64; scripts/make-random-model.py): on SmolLM2 they took 14 of CI's minutes.
# The others check facts of the real file (layer count, pager budgets) and stay on it.
TINY_MODEL := $(CACHE)/models/tiny-random.Q4_1.gguf
VALGRIND_ON_TINY := test_sampling test_session_api test_threads

test-c: $(addprefix $(TEST)/,$(C_TESTS)) $(addprefix $(TEST)/,$(addsuffix _asan,$(C_TESTS))) $(BAD_GGUF)/expected.tsv
	set -e; for t in $(C_TESTS); do \
	  echo "== $$t"; \
	  $(TEST)/$$t $(MODEL) $(BAD_GGUF); \
	  ASAN_OPTIONS=detect_leaks=1 $(TEST)/$${t}_asan $(MODEL) $(BAD_GGUF); \
	  vm=$(MODEL); case " $(VALGRIND_ON_TINY) " in *" $$t "*) vm=$(TINY_MODEL) ;; esac; \
	  $(VALGRIND) $(TEST)/$$t $$vm $(BAD_GGUF); \
	done

# The soak (tests/soak/soak.c): host threads doing random C API calls over SmolLM2 and Gemma 3.
# make soak runs it for SOAK_SECONDS (memory growth is checked from 600 s); make test runs a short
# form, plain and under ASan+UBSan with leak checking.
SOAK_SECONDS ?= 1800
SOAK_MODELS := $(MODEL) $(shell . scripts/env.sh && echo $$CHORD_GEMMA3_MODEL)
SOAK_WARN := -std=c11 -Wall -Wextra -Werror -pedantic

$(TEST)/soak: tests/soak/soak.c include/chord.h $(LIB)
	@mkdir -p $(TEST)
	$(CC) $(CFLAGS) $(SOAK_WARN) -Iinclude -o $@ $< $(LIB) $(LDLIBS)

$(TEST)/soak_asan: tests/soak/soak.c include/chord.h $(LIB)
	@mkdir -p $(TEST)
	$(CC) $(CFLAGS) $(SOAK_WARN) -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude -o $@ $< $(LIB) $(LDLIBS)

# The C API tests under ThreadSanitizer with libchord built by nightly -Zsanitizer=thread (not in
# make test: a second instrumented build of chord and Burn; scripts/tsan.sh says what std needs).
test-tsan: $(BAD_GGUF)/expected.tsv
	scripts/tsan.sh

soak: $(TEST)/soak
	$(TEST)/soak $(SOAK_MODELS) $(SOAK_SECONDS)

test-soak: $(TEST)/soak $(TEST)/soak_asan
	$(TEST)/soak $(SOAK_MODELS) 60
	ASAN_OPTIONS=detect_leaks=1 $(TEST)/soak_asan $(SOAK_MODELS) 60

# bindings/cpp: chord.hpp's tests built plain, with ASan+UBSan and with TSan (Rust frames suppressed:
# bindings/cpp/test/tsan.supp says why), run each, and the plain build under valgrind (on the tiny
# random model, as test-c does); the ABI check;
# the README's C++ example compiled and run. The expected text is the chord program's greedy output
# for the tests' prompt.
CXX ?= c++
CXXWARN := -std=c++17 -Wall -Wextra -Werror -pedantic
CPP_TEST_SRC := bindings/cpp/test/test_chord.cpp bindings/cpp/chord.hpp include/chord.h $(LIB)
CPP_PROMPT := The three primary colors are

$(TEST)/cpp/test_chord: $(CPP_TEST_SRC)
	@mkdir -p $(TEST)/cpp
	$(CXX) -O1 -g $(CXXWARN) -Iinclude -Ibindings/cpp -o $@ $< $(LIB) $(LDLIBS)

$(TEST)/cpp/test_chord_asan: $(CPP_TEST_SRC)
	@mkdir -p $(TEST)/cpp
	$(CXX) -O1 -g $(CXXWARN) -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude -Ibindings/cpp -o $@ $< $(LIB) $(LDLIBS)

$(TEST)/cpp/test_chord_tsan: $(CPP_TEST_SRC)
	@mkdir -p $(TEST)/cpp
	$(CXX) -O1 -g $(CXXWARN) -fsanitize=thread -Iinclude -Ibindings/cpp -o $@ $< $(LIB) $(LDLIBS)

$(TEST)/cpp/test_abi: bindings/cpp/test/test_abi.cpp bindings/cpp/chord.hpp include/chord.h $(LIB)
	@mkdir -p $(TEST)/cpp
	$(CXX) -O1 -g $(CXXWARN) -Iinclude -Ibindings/cpp -o $@ $< $(LIB) $(LDLIBS)

# bindings/go: against libchord installed into a temporary prefix (found by pkg-config, as users
# find it), `go vet`, then the tests with the race detector and cgocheck=2.
GO := $(firstword $(wildcard /usr/lib/go-1.19/bin/go) go)
GOFMT := $(firstword $(wildcard /usr/lib/go-1.19/bin/gofmt) gofmt)
BINDINGS_PREFIX := $(abspath $(TEST)/bindings-prefix)
# bindings/csharp: Chord.cs compiled as a plain assembly (warnings are errors), its NUnit tests run
# by nunit-console under the Mono JIT and by a direct runner under `mono --full-aot` (IL2CPP's rules),
# against the installed (stripped) libchord.
NUNIT := /usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll
CS_TEST_ENV := LD_LIBRARY_PATH=$(BINDINGS_PREFIX)/lib CHORD_TEST_MODEL=$(MODEL) CHORD_TEST_EXPECTED=$(abspath $(TEST)/cpp/expected.txt)

test-bindings: $(BIN)/chord $(addprefix $(TEST)/cpp/,test_chord test_chord_asan test_chord_tsan test_abi)
	$(BIN)/chord generate -m $(MODEL) -p "$(CPP_PROMPT)" --temp 0 -n 32 > $(TEST)/cpp/expected.txt
	$(TEST)/cpp/test_chord $(MODEL) $(TEST)/cpp/expected.txt
	ASAN_OPTIONS=detect_leaks=1 $(TEST)/cpp/test_chord_asan $(MODEL) $(TEST)/cpp/expected.txt
	TSAN_OPTIONS="suppressions=$(abspath bindings/cpp/test/tsan.supp) halt_on_error=1" $(TEST)/cpp/test_chord_tsan $(MODEL) $(TEST)/cpp/expected.txt
	$(BIN)/chord generate -m $(TINY_MODEL) -p "$(CPP_PROMPT)" --temp 0 -n 32 > $(TEST)/cpp/expected-tiny.txt
	$(VALGRIND) $(TEST)/cpp/test_chord $(TINY_MODEL) $(TEST)/cpp/expected-tiny.txt
	$(TEST)/cpp/test_abi $(MODEL)
	sed -n '/^```cpp$$/,/^```$$/p' README.md | sed '1d;$$d' > $(TEST)/cpp/readme_example.cpp
	$(CXX) -O1 $(CXXWARN) -Iinclude -Ibindings/cpp -o $(TEST)/cpp/readme_example $(TEST)/cpp/readme_example.cpp $(LIB) $(LDLIBS)
	$(TEST)/cpp/readme_example $(MODEL) > /dev/null
	@mkdir -p $(TEST)/swift
	clang -fmodules -fmodules-cache-path=$(TEST)/swift/modules \
	  -fmodule-map-file=bindings/swift/Sources/CChord/module.modulemap -Iinclude -Wall -Werror \
	  -o $(TEST)/swift/import_module bindings/swift/test/import_module.c $(LIB) $(LDLIBS)
	$(TEST)/swift/import_module
	$(MAKE) --no-print-directory install PREFIX=$(BINDINGS_PREFIX) > /dev/null
	cd bindings/go && test -z "$$($(GOFMT) -l .)" && export PKG_CONFIG_PATH=$(BINDINGS_PREFIX)/lib/pkgconfig \
	  LD_LIBRARY_PATH=$(BINDINGS_PREFIX)/lib CHORD_TEST_MODEL=$(MODEL) CHORD_TEST_EXPECTED=$(abspath $(TEST)/cpp/expected.txt) \
	  GODEBUG=cgocheck=2 && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	rm -rf $(TEST)/go/example && mkdir -p $(TEST)/go/example
	sed -n '/^```go$$/,/^```$$/p' README.md | sed '1d;$$d' > $(TEST)/go/example/main.go
	printf 'module example\n\ngo 1.19\n\nrequire chord v0.0.0\n\nreplace chord => %s\n' $(abspath bindings/go) > $(TEST)/go/example/go.mod
	cd $(TEST)/go/example && PKG_CONFIG_PATH=$(BINDINGS_PREFIX)/lib/pkgconfig GOFLAGS=-mod=mod $(GO) build -o example . \
	  && LD_LIBRARY_PATH=$(BINDINGS_PREFIX)/lib ./example $(MODEL) > /dev/null
	@mkdir -p $(TEST)/csharp
	mcs -langversion:7.2 -warnaserror -target:library -out:$(TEST)/csharp/Chord.dll bindings/csharp/Runtime/Chord.cs
	mcs -langversion:7.2 -warnaserror -target:library -r:$(NUNIT) -out:$(TEST)/csharp/ChordTests.dll \
	  bindings/csharp/Runtime/Chord.cs bindings/csharp/test/ChordTests.cs
	$(CS_TEST_ENV) nunit-console -nologo -noresult $(TEST)/csharp/ChordTests.dll
	$(CS_TEST_ENV) bindings/csharp/test/run-full-aot.sh $(abspath $(TEST)/csharp/full-aot)
	sed -n '/^```csharp$$/,/^```$$/p' README.md | sed '1d;$$d' > $(TEST)/csharp/Example.cs
	mcs -langversion:7.2 -warnaserror -r:$(TEST)/csharp/Chord.dll -out:$(TEST)/csharp/Example.exe $(TEST)/csharp/Example.cs
	cd $(TEST)/csharp && LD_LIBRARY_PATH=$(BINDINGS_PREFIX)/lib mono Example.exe $(MODEL) > /dev/null
	rm -rf $(TEST)/godot && mkdir -p $(TEST)/godot/home && cp -r bindings/godot/project $(TEST)/godot/project
	mkdir -p $(TEST)/godot/project/bin
	$(CC) -std=c99 -O2 -Wall -Wextra -Werror -fPIC -shared -Iinclude -I$$(scripts/fetch-godot-headers.sh) \
	  -o $(TEST)/godot/project/bin/libchord_godot.so bindings/godot/src/chord_godot.c \
	  -L$(BINDINGS_PREFIX)/lib -lchord -Wl,-rpath,'$$ORIGIN'
	cp -L $(BINDINGS_PREFIX)/lib/libchord.so.1 $(TEST)/godot/project/bin/
	cd $(TEST)/godot/project && HOME=$(abspath $(TEST)/godot/home) LC_ALL=C.UTF-8 CHORD_TEST_MODEL=$(MODEL) \
	  CHORD_TEST_EXPECTED=$(abspath $(TEST)/cpp/expected.txt) timeout 600 godot3-server --path . -s test_runner.gd
	$(CC) -std=c99 -O2 -Wall -Wextra -Werror -fPIC -shared -Iinclude -I$$(scripts/fetch-godot-headers.sh) \
	  -o $(TEST)/godot/project/bin/libchord_godot.so bindings/godot/test/abi_mismatch.c \
	  -L$(BINDINGS_PREFIX)/lib -lchord -Wl,-rpath,'$$ORIGIN'
	cd $(TEST)/godot/project && HOME=$(abspath $(TEST)/godot/home) LC_ALL=C.UTF-8 CHORD_TEST_MODEL=$(MODEL) \
	  CHORD_TEST_ABI=$(ABI) timeout 120 godot3-server --path . -s test_abi.gd

# The Unity package of bindings/csharp with the stripped libchord for Linux x86-64 in
# Runtime/Plugins (build/unity/com.chord.runtime: add it to a project through "Add package from disk").
unity-package: lib
	rm -rf build/unity/com.chord.runtime && mkdir -p build/unity
	cp -r bindings/csharp build/unity/com.chord.runtime && rm -rf build/unity/com.chord.runtime/test
	$(MAKE) --no-print-directory install PREFIX=$(abspath build/unity/prefix) > /dev/null
	mkdir -p build/unity/com.chord.runtime/Runtime/Plugins/x86_64
	cp -L build/unity/prefix/lib/libchord.so build/unity/com.chord.runtime/Runtime/Plugins/x86_64/libchord.so
	@echo "build/unity/com.chord.runtime: $$(du -b build/unity/com.chord.runtime/Runtime/Plugins/x86_64/libchord.so | cut -f1) bytes libchord.so"

test-corpus: $(BIN)/chord $(BAD_GGUF)/expected.tsv
	scripts/check-inspect-corpus.sh $(BIN)/chord $(BAD_GGUF)

# chord's GPU kernels (tests/gpu_kernels.rs: the products; tests/gpu_ops.rs: norms, RoPE, the
# f16 KV cache and attention) and the transformer on them (tests/gpu_model.rs) on wgpu over Mesa's
# lavapipe, no GPU needed, in a build with both GPU backends: the CUDA tests are built here and
# run on a GPU by scripts/device-check.sh.
# The GPU tests on Mesa's lavapipe (wgpu), then the `chord` program built with the GPU features
# against llama.cpp on SmolLM2's F16 and BF16 files (scripts/compare-llamacpp.py --mode device:
# 256 tokens' logits, and F16's greedy continuations of 10 prompts). The feature build replaces
# $(LIB) until the next step's plain build puts it back.
DEVICE_COMPARE = . scripts/env.sh && LLAMA_CPP_LIB_PATH="$$LLAMA_CPP_NATIVE_BIN" "$$CHORD_VENV/bin/python" \
	scripts/compare-llamacpp.py --mode device --backend wgpu --chord $(BIN)/chord-gpu \
	--text tests/data/text/gpl-3.0-excerpt.txt --tokens 256 --greedy-tokens 32
test-gpu:
	cargo test --release --features wgpu,cuda --test gpu_kernels --test gpu_ops --test gpu_model -- wgpu_ repack_ backend_choice_
	cargo build --release --features wgpu,cuda --lib
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $(BIN)/chord-gpu examples_c/chord.c $(LIB) $(LDLIBS)
	$(DEVICE_COMPARE) --greedy-prompts 10 $(CACHE)/models/SmolLM2-135M-Instruct.F16.gguf
	$(DEVICE_COMPARE) --greedy-prompts 0 $(CACHE)/models/SmolLM2-135M-Instruct.BF16.gguf

test-oracle: $(BIN)/chord
	scripts/run-oracle-tests.sh $(BIN)/chord

# Peak RSS (VmHWM) of a child `chord generate` at budgets of 15/40/70% of the weight bytes, on
# SmolLM2 and the TinyLlama-shape test model, with each way of holding streamed layers (mapped, the
# default on Linux, and read into buffers with --no-mmap). The throughput bounds:
# scripts/bench-small-machine.py.
test-pager: $(BIN)/chord
	. scripts/env.sh && python3 scripts/check-pager-rss.py --chord $(BIN)/chord
	. scripts/env.sh && python3 scripts/check-pager-rss.py --chord $(BIN)/chord --no-mmap

clean:
	rm -rf build

# ---- Installation -------------------------------------------------------------------------------
# The shared library is named after two numbers: the ABI (CHORD_ABI_VERSION in include/chord.h,
# bumped on every incompatible change; it is the SONAME) and the library version (Cargo.toml).
# On ELF systems: libchord.so.<ABI>.<VERSION> (the file), libchord.so.<ABI> (the SONAME link that
# programs load) and libchord.so (the link that `-lchord` finds); on Apple systems
# libchord.<ABI>.dylib and libchord.dylib.
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/chord
INSTALL ?= install
ABI := $(shell sed -n 's/^\#define CHORD_ABI_VERSION \([0-9][0-9]*\)$$/\1/p' include/chord.h)
VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
ifeq ($(shell uname -s),Darwin)
SHARED_BUILT := libchord.dylib
SHARED_REAL := libchord.$(ABI).dylib
SHARED_ABI := libchord.$(ABI).dylib
SHARED_DEV := libchord.dylib
else
SHARED_BUILT := libchord.so
SHARED_REAL := libchord.so.$(ABI).$(VERSION)
SHARED_ABI := libchord.so.$(ABI)
SHARED_DEV := libchord.so
endif
# Builds the libraries (when cargo is here) and writes what a static link needs besides
# libchord.a, as rustc reports it for this target (cargo replays the note when the crate is fresh),
# plus the libraries the C programs here always name. Without cargo (`make lib && sudo make install`,
# where root has no Rust toolchain) it keeps what `make lib` built.
$(PKG)/native-static-libs: FORCE
	@mkdir -p $(@D)
	@if ! command -v cargo >/dev/null 2>&1; then \
	  [ -s $@ ] && [ -f $(LIB) ] && [ -f $(CARGO_TARGET_DIR)/release/$(SHARED_BUILT) ] \
	    || { echo "cargo is not in PATH and chord is not built: run \`make lib\` first" >&2; exit 1; }; \
	  echo "cargo is not in PATH: using the libraries built before in $(CARGO_TARGET_DIR)/release"; \
	  exit 0; \
	fi; \
	set -eo pipefail; \
	echo "cargo build --release --lib"; cargo build --release --lib; \
	echo "cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs"; \
	libs=$$(cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs 2>&1 \
	  | sed -n 's/^note: native-static-libs: //p' | tail -n 1); \
	[ -n "$$libs" ] || { echo "rustc printed no native-static-libs" >&2; exit 1; }; \
	for l in $(LDLIBS); do case " $$libs " in *" $$l "*) ;; *) libs="$$libs $$l" ;; esac; done; \
	echo "$$libs" > $@

# Writes $(PKG)/<name> from packaging/<name>.in for this PREFIX/LIBDIR/INCLUDEDIR (absolute paths,
# without DESTDIR: they are where the files will be used).
$(PKG)/%: packaging/%.in $(PKG)/native-static-libs FORCE
	@echo "writing $@ for PREFIX=$(PREFIX)"
	@libs="$$(cat $(PKG)/native-static-libs)"; \
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@ABI@|$(ABI)|g' \
	    -e 's|@SHARED_REAL@|$(SHARED_REAL)|g' -e 's|@SHARED_ABI@|$(SHARED_ABI)|g' \
	    -e "s|@LIBS_PRIVATE@|$$libs|g" -e "s|@CMAKE_LIBS_PRIVATE@|$$(echo $$libs | sed 's/-l//g; s/ /;/g')|g" \
	    $< > $@.tmp
	@! grep -n '@[A-Z_]*@' $@.tmp || { echo "$<: unknown placeholder" >&2; exit 1; }
	@mv $@.tmp $@

install: $(PKG)/chord.pc $(PKG)/chordConfig.cmake $(PKG)/chordConfigVersion.cmake
	@[ -n "$(ABI)" ] && [ -n "$(VERSION)" ] || { echo "cannot read ABI ($(ABI)) or VERSION ($(VERSION))" >&2; exit 1; }
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR)
	$(INSTALL) -m 644 include/chord.h $(DESTDIR)$(INCLUDEDIR)/chord.h
	$(INSTALL) -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libchord.a
	$(INSTALL) -m 755 $(CARGO_TARGET_DIR)/release/$(SHARED_BUILT) $(DESTDIR)$(LIBDIR)/$(SHARED_REAL)
ifeq ($(shell uname -s),Darwin)
	install_name_tool -id $(LIBDIR)/$(SHARED_ABI) $(DESTDIR)$(LIBDIR)/$(SHARED_REAL)
else
	# As distributions ship them: the shared library stripped, its debug information in
	# LIBDIR/.debug/ (where gdb looks, through the .gnu_debuglink section); the static library
	# without debug information.
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)/.debug
	objcopy --only-keep-debug $(DESTDIR)$(LIBDIR)/$(SHARED_REAL) $(DESTDIR)$(LIBDIR)/.debug/$(SHARED_REAL).debug
	chmod 644 $(DESTDIR)$(LIBDIR)/.debug/$(SHARED_REAL).debug
	strip --strip-unneeded $(DESTDIR)$(LIBDIR)/$(SHARED_REAL)
	cd $(DESTDIR)$(LIBDIR) && objcopy --add-gnu-debuglink=.debug/$(SHARED_REAL).debug $(SHARED_REAL)
	strip --strip-debug $(DESTDIR)$(LIBDIR)/libchord.a
	ln -sfn $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/$(SHARED_ABI)
endif
	ln -sfn $(SHARED_ABI) $(DESTDIR)$(LIBDIR)/$(SHARED_DEV)
	$(INSTALL) -m 644 $(PKG)/chord.pc $(DESTDIR)$(PKGCONFIGDIR)/chord.pc
	$(INSTALL) -m 644 $(PKG)/chordConfig.cmake $(PKG)/chordConfigVersion.cmake $(DESTDIR)$(CMAKEDIR)/

# Removes what `install` wrote (with the same PREFIX/LIBDIR/... and DESTDIR), and the CMake folder
# when it is left empty.
uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/chord.h $(DESTDIR)$(LIBDIR)/libchord.a \
	  $(DESTDIR)$(LIBDIR)/$(SHARED_REAL) $(DESTDIR)$(LIBDIR)/$(SHARED_ABI) $(DESTDIR)$(LIBDIR)/$(SHARED_DEV) \
	  $(DESTDIR)$(LIBDIR)/.debug/$(SHARED_REAL).debug \
	  $(DESTDIR)$(PKGCONFIGDIR)/chord.pc \
	  $(DESTDIR)$(CMAKEDIR)/chordConfig.cmake $(DESTDIR)$(CMAKEDIR)/chordConfigVersion.cmake
	rmdir $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(LIBDIR)/.debug 2>/dev/null || true

# ---- Packaging checks ---------------------------------------------------------------------------
# libchord.so exports chord_* and nothing else.
check-symbols: $(LIB)
	tests/pkg/check-symbols.sh $(CARGO_TARGET_DIR)/release/$(SHARED_BUILT)

# include/chord.h compiles on its own as C99 and C++17 (pedantic, warnings are errors), and C++
# calls into it link (extern "C").
check-header-compile: $(LIB)
	tests/pkg/check-header.sh include/chord.h $(LIB) "$(LDLIBS)"

# Installs into a temporary prefix (and a DESTDIR staging tree), then builds and runs the
# out-of-tree consumers in tests/pkg (C and C++, pkg-config and CMake, shared and static).
test-pkg: check-symbols check-header-compile
	tests/pkg/run.sh $(MODEL)

FORCE:
