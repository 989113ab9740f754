#!/usr/bin/env python3
"""Cost of grammar-constrained decoding, chord beside llama.cpp, on the same files and grammar.

    scripts/bench-grammar.py [-r 3] [-n 128] [-t 2] [--temp 0.8] MODEL...

For each model, decode tok/s without and with a grammar, median of -r runs each (alternating),
for chord (`chord generate`, its decode figure) and for llama.cpp (the native build through
llama-cpp-python: `create_completion(grammar=...)`, its decode time: the wall time of N tokens minus
that of 1). The grammar is chord's conversion of a JSON Schema (an array of at least 40 objects
with a bounded string, an integer range and an enum array) that keeps the output going for all N
tokens, given to both (the runs without it ban the end-of-sequence token, so that both make N
tokens). The cost is (time per token with the grammar) / (without) - 1.

Run from the project root with `. scripts/env.sh` done (CHORD_VENV, LLAMA_CPP_NATIVE_BIN); needs
build/bin/chord. Sampling is llama.cpp's default chain (top-k 40, top-p 0.95, min-p 0.05) at
--temp; `--temp 0` measures greedy.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

SCHEMA = (
    '{"type":"array","minItems":40,"items":{"type":"object","properties":{'
    '"name":{"type":"string","maxLength":12},'
    '"age":{"type":"integer","minimum":0,"maximum":120},'
    '"tags":{"type":"array","items":{"enum":["brave","cruel","wise"]}}},'
    '"required":["name","age","tags"],"additionalProperties":false}}'
)
PROMPT = "Here are the characters of the story, as JSON:\n"


def chord_rate(chord, model, n, threads, temp, grammar_file, eos):
    cmd = [chord, "generate", "-m", model, "-p", PROMPT, "-n", str(n), "--threads", str(threads),
           "--temp", str(temp), "--seed", "1"]
    if grammar_file:
        cmd += ["--grammar", grammar_file]
    else:
        cmd += ["--logit-bias", f"{eos}=-inf"]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    # "chord: prompt P tokens, X tok/s; generated N tokens, Y tok/s; ..."
    part = err.split("generated ")[1]
    tokens = int(part.split(" tokens")[0])
    rate = float(part.split(", ")[1].split(" tok/s")[0])
    if tokens != n:
        sys.exit(f"chord generated {tokens} tokens, not {n}")
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--temp", type=float, default=0.8)
    ap.add_argument("--chord", default="build/bin/chord")
    a = ap.parse_args()

    gbnf = subprocess.run([a.chord, "grammar", "--json-schema", SCHEMA], capture_output=True,
                          text=True, check=True).stdout
    grammar_file = "/tmp/chord-bench-grammar.gbnf"
    with open(grammar_file, "w") as f:
        f.write(gbnf)

    os.environ.setdefault("LLAMA_CPP_LIB_PATH", os.environ["LLAMA_CPP_NATIVE_BIN"])
    import llama_cpp  # noqa: E402 (after the library path is set)

    print(f"{'model':40} {'':8} {'plain tok/s':>12} {'grammar tok/s':>14} {'cost':>7}")
    for model in a.models:
        llm = llama_cpp.Llama(model_path=model, n_threads=a.t, n_threads_batch=a.t, n_ctx=1024,
                              verbose=False)
        grammar = llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
        eos = llm.token_eos()

        def llama_time(g, n):
            llm.reset()
            t = time.perf_counter()
            out = llm.create_completion(PROMPT, max_tokens=n, temperature=a.temp, top_k=40,
                                        top_p=0.95, min_p=0.05, seed=1, grammar=g,
                                        logit_bias=None if g else {eos: float("-inf")})
            dt = time.perf_counter() - t
            return dt, out["usage"]["completion_tokens"]

        def llama_rate(g):
            t1, _ = llama_time(g, 1)
            tn, n = llama_time(g, a.n)
            if n != a.n:
                sys.exit(f"llama.cpp generated {n} tokens, not {a.n}")
            return (n - 1) / (tn - t1)

        rows = {"chord": ([], []), "llama.cpp": ([], [])}
        for _ in range(a.r):
            rows["chord"][0].append(chord_rate(a.chord, model, a.n, a.t, a.temp, None, eos))
            rows["chord"][1].append(chord_rate(a.chord, model, a.n, a.t, a.temp, grammar_file, eos))
            rows["llama.cpp"][0].append(llama_rate(None))
            rows["llama.cpp"][1].append(llama_rate(grammar))
        for who, (plain, constrained) in rows.items():
            p, c = statistics.median(plain), statistics.median(constrained)
            print(f"{os.path.basename(model):40} {who:8} {p:12.1f} {c:14.1f} {p / c - 1:7.1%}")
        del llm


if __name__ == "__main__":
    main()
