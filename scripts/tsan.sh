#!/usr/bin/env bash
# The C API tests under ThreadSanitizer with the Rust side instrumented too (issue 19): builds
# libchord with nightly's -Zsanitizer=thread into its own target dir, compiles tests/c/test_*.c
# with clang -fsanitize=thread, links them with nightly's TSan runtime (Debian's GCC and clang 14
# runtimes lack the __tsan_memcpy/__tsan_memset entry points that nightly's LLVM emits), and runs
# them as `make test-c` runs them under valgrind (CHORD_TEST_LIGHT=1; the generating programs on the
# tiny random model, the others on SmolLM2). Not part of `make test`.
#
# With the rust-src component installed (rustup component add rust-src --toolchain nightly) the
# standard library is rebuilt instrumented (-Zbuild-std). Without it, std's Mutex and Condvar
# (futex-based, not generic, so compiled into the uninstrumented std) hide their happens-before
# edges from TSan, and every hand-off through rayon's LockLatch (a job's result written by a worker
# and read by the caller after the latch) is reported as a race: expect those reports, and read
# the others.
#
# Usage: scripts/tsan.sh [TEST ...]   (default: every tests/c/test_*.c)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
triple=x86_64-unknown-linux-gnu
tdir=${CHORD_TSAN_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/tsan}
flags="-Zsanitizer=thread"
std=()
sysroot=$(rustc +nightly --print sysroot)
if [ -d "$sysroot/lib/rustlib/src/rust/library" ]; then
  std=(-Zbuild-std)
else
  flags="$flags -Cunsafe-allow-abi-mismatch=sanitizer"
  echo "tsan: no rust-src for the nightly toolchain: std is not instrumented (see this script's comment)" >&2
fi
RUSTFLAGS="$flags" cargo +nightly build --release --lib --target $triple --target-dir "$tdir" "${std[@]}"
lib=$tdir/$triple/release/libchord.a
rt=$sysroot/lib/rustlib/$triple/lib/librustc-nightly_rt.tsan.a
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=($(cd tests/c && ls test_*.c | sed 's/\.c$//'))
mkdir -p build/tsan
failed=()
for t in "${tests[@]}"; do
  clang -O1 -g -std=c99 -Wall -Wextra -Werror -fsanitize=thread -Iinclude -c -o build/tsan/$t.o tests/c/$t.c
  clang -o build/tsan/$t build/tsan/$t.o "$lib" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
    -lpthread -ldl -lm -lstdc++ -rdynamic
  model=$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
  case " test_sampling test_session_api test_threads " in *" $t "*) model=$CHORD_MODELS/tiny-random.Q4_1.gguf ;; esac
  rc=0
  CHORD_TEST_LIGHT=1 TSAN_OPTIONS="halt_on_error=0 ${TSAN_OPTIONS:-}" \
    build/tsan/$t "$model" build/test/bad-gguf >build/tsan/$t.log 2>&1 || rc=$?
  # Reports whose stacks do not pass through rayon's job hand-off are the ones to read.
  other=$(awk '/WARNING: ThreadSanitizer/{if (r && !ry) n++; r=1; ry=0} /rayon_core::(latch|job)/{ry=1} END{if (r && !ry) n++; print n+0}' build/tsan/$t.log)
  echo "== $t: exit $rc, $(grep -c 'WARNING: ThreadSanitizer' build/tsan/$t.log) reports ($other not through rayon's latch), $(grep -a 'passed,' build/tsan/$t.log | tail -1)"
  [ $rc -eq 0 ] || failed+=("$t")
done
[ ${#failed[@]} -eq 0 ] || { echo "tsan: failed: ${failed[*]} (logs in build/tsan/)" >&2; exit 1; }
