#!/usr/bin/env bash
# Runs the C# tests under `mono --full-aot`, the headless stand-in for IL2CPP: every assembly the
# tests load is compiled ahead of time, and the runtime may not JIT anything, so a callback that
# IL2CPP would reject (a closure, a method without [MonoPInvokeCallback]) aborts the run.
# Usage: run-full-aot.sh OUT_DIR   (environment: LD_LIBRARY_PATH with libchord, CHORD_TEST_MODEL,
# CHORD_TEST_EXPECTED)
set -euo pipefail
out=${1:?usage: run-full-aot.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
nunit=/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll
rm -rf "$out" && mkdir -p "$out"
mcs -langversion:7.2 -warnaserror -r:"$nunit" -out:"$out/runner.exe" \
  "$here/../Runtime/Chord.cs" "$here/ChordTests.cs" "$here/FullAotRunner.cs"
cp "$nunit" "$out/"
# The closure of what the tests load (found by running until nothing is missing).
for a in mscorlib System System.Core System.Configuration System.Xml System.Security System.Numerics Mono.Security; do
  cp "/usr/lib/mono/4.5/$a.dll" "$out/"
done
for f in "$out"/*.dll "$out/runner.exe"; do
  MONO_PATH="$out" mono --aot=full "$f" >"$f.aot.log" 2>&1 || { cat "$f.aot.log" >&2; exit 1; }
done
MONO_PATH="$out" mono --full-aot "$out/runner.exe"
