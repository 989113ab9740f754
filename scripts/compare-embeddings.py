#!/usr/bin/env python3
"""chord's text embeddings (`chord embed`) against llama.cpp's (llama-cpp-python's `embed`, the
pooled output of llama.cpp's embedding mode) on the same file: 20 varied texts, each pooled as the
mean, the first token (CLS) and the last token, raw and normalised to unit length. Every component
must be within 1e-4 relative error of llama.cpp's; a component smaller than 1% of the vector's
largest is held to 1e-6 of that largest instead (see below).

    CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH=$LLAMA_CPP_PINNED_BIN python scripts/compare-embeddings.py \
        --chord build/bin/chord MODEL...

llama-cpp-python tokenizes with the model's BOS and without parsing special-token text, so the texts
hold none. Exits 1 on any difference beyond the tolerance.

The first and last tokens' states are bit-identical to the pinned oracle's, and chord's mean follows
ggml's f32 dot product (src/model/pooling.rs): it is bit-identical to llama.cpp's mean for texts of
a multiple of 4 tokens (and to the mean that the same order gives over llama.cpp's own per-token
states, pooling none, for every length), but for other lengths llama.cpp's pooled mean differs in
the last bits (not found why). A mean is a sum with cancellation, so a last-bit difference is a
large relative error on a component near zero (at most 1.04e-4, on a component of 5e-5 in a vector
whose largest is 3 orders of magnitude larger): hence the floor for small components.
"""
import argparse
import math
import struct
import subprocess
import sys

TOL = 1e-4

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    "SELECT name, price FROM products WHERE price > 100 ORDER BY price DESC;",
    '{"name": "Ada", "age": 36, "skills": ["math", "engines"]}',
    "3.14159 2.71828 1.41421 1729 65536 -42 0x1F",
    "Le chat dort sur le canapé pendant que la pluie tombe.",
    "Die Würde des Menschen ist unantastbar.",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "I love this! 😀🎉👍",
    "   leading spaces, \ttabs\tand\nnew lines\n\n",
    "!!! ??? ... ;;; ---",
    "https://example.com/path?query=value&other=1#anchor",
    "E = mc^2, and the integral of x dx from 0 to 1 is 1/2.",
    "- eggs\n- flour\n- milk\n- sugar",
    "The merchant leaned over the counter and whispered that the king's guards were looking for "
    "a thief who had stolen a silver chalice from the cathedral, and that anyone who helped them "
    "would be rewarded with enough gold to buy a farm in the valley beyond the river.",
    "a",
]

POOLINGS = {"mean": 1, "cls": 2, "last": 3}  # llama.cpp's LLAMA_POOLING_TYPE_*


def chord_embed(chord, model, text, pooling, normalize):
    cmd = [chord, "embed", "-m", model, "-p", text, "--pooling", pooling]
    if not normalize:
        cmd.append("--no-normalize")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    # %.9g round-trips an f32: back to the same f32 value (llama-cpp-python hands out f32 values).
    return [f32(float(v)) for v in out.split()]


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def normalized(v):
    # llama.cpp's common_embd_normalize: f32 squares summed in double, scaled by the f32 of 1/norm.
    norm = math.sqrt(sum(f32(x * x) for x in v))
    scale = f32(1.0 / norm) if norm > 0 else 0.0
    return [f32(x * scale) for x in v]


def worst_relative(ours, theirs):
    """The largest error relative to the tolerance's scale: |b|, or 1% of max |b| when larger."""
    floor = 0.01 * max(abs(b) for b in theirs)
    return max(abs(a - b) / max(abs(b), floor) if b != 0 or floor > 0 else (0.0 if a == 0 else math.inf)
               for a, b in zip(ours, theirs))


def pure_relative(ours, theirs):
    return max(abs(a - b) / abs(b) if b != 0 else (0.0 if a == 0 else math.inf)
               for a, b in zip(ours, theirs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--chord", default="build/bin/chord")
    a = ap.parse_args()
    import llama_cpp

    status = 0
    for model in a.models:
        for name, ptype in POOLINGS.items():
            llm = llama_cpp.Llama(model_path=model, embedding=True, pooling_type=ptype, n_ctx=512,
                                  verbose=False)
            worst = {True: 0.0, False: 0.0}
            pure = 0.0
            exact = 0
            for text in TEXTS:
                theirs = llm.embed(text, normalize=False)
                for norm in (False, True):
                    ref = normalized(theirs) if norm else theirs
                    ours = chord_embed(a.chord, model, text, name, norm)
                    if len(ours) != len(ref):
                        print(f"{model}: {name}: {text!r}: {len(ours)} values, llama.cpp {len(ref)}")
                        status = 1
                        continue
                    w = worst_relative(ours, ref)
                    worst[norm] = max(worst[norm], w)
                    if not norm:
                        pure = max(pure, pure_relative(ours, ref))
                        exact += ours == ref
                    if w > TOL:
                        i = max(range(len(ref)), key=lambda j: abs(ours[j] - ref[j]) / max(abs(ref[j]), 1e-30))
                        print(f"{model}: {name}{' normalised' if norm else ''}: {text!r}: component {i}: "
                              f"chord {ours[i]!r}, llama.cpp {ref[i]!r} (relative error {w:.2e})")
                        status = 1
            print(f"{model}: {len(TEXTS)} texts, {name} pooling: {exact} bit-identical; largest error {worst[False]:.2e} raw, "
                  f"{worst[True]:.2e} normalised (tolerance {TOL}); largest relative error of any component {pure:.2e}")
            del llm
    sys.exit(status)


if __name__ == "__main__":
    main()
