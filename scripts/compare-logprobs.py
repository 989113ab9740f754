#!/usr/bin/env python3
"""chord's log-probabilities (`chord generate --logprobs N`) against llama.cpp's (`logprobs=N` of
llama-cpp-python's completion, the log-softmax of llama.cpp's logits) on the same file, prompt and
greedy tokens: the chosen tokens equal, and every log-probability (the chosen token's and the N
alternatives', matched by token id) within 1e-4.

    CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH=$LLAMA_CPP_PINNED_BIN python scripts/compare-logprobs.py \
        --chord build/bin/chord MODEL...

With the pinned oracle and CHORD_ISA=avx2 the logits are bit-identical (scripts/compare-llamacpp.py
--mode strict), so the figures differ only by how each side computes the log-softmax.
Exits 1 on any difference beyond the tolerance.
"""
import argparse
import re
import subprocess
import sys

TOL = 1e-4
PROMPTS = ["The capital of France is", "def fibonacci(n):"]


def chord_logprobs(chord, model, prompt, n, k):
    err = subprocess.run([chord, "generate", "-m", model, "-p", prompt, "-n", str(n), "--temp", "0",
                          "--logprobs", str(k)], capture_output=True, text=True, check=True).stderr
    steps = []
    for m in re.finditer(r"\[token (\d+) logprob (\S+):((?: \d+=\S+)*)\]", err):
        top = {int(t): float(v) for t, v in (p.split("=") for p in m.group(3).split())}
        steps.append((int(m.group(1)), float(m.group(2)), top))
    return steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--chord", default="build/bin/chord")
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("-k", type=int, default=5)
    a = ap.parse_args()
    import llama_cpp

    status = 0
    for model in a.models:
        llm = llama_cpp.Llama(model_path=model, n_ctx=512, logits_all=True, verbose=False)
        worst = 0.0
        for prompt in PROMPTS:
            ours = chord_logprobs(a.chord, model, prompt, a.n, a.k)
            llm.reset()
            out = llm.create_completion(prompt, max_tokens=a.n, temperature=0.0, logprobs=a.k)
            lp = out["choices"][0]["logprobs"]
            ids = llm.tokenize(prompt.encode(), add_bos=True, special=False)
            n_prompt = len(ids)
            theirs_ids = list(llm._input_ids[n_prompt:n_prompt + len(lp["token_logprobs"])])
            if [s[0] for s in ours][: len(theirs_ids)] != theirs_ids:
                print(f"{model}: {prompt!r}: tokens differ: chord {[s[0] for s in ours]}, llama.cpp {theirs_ids}")
                status = 1
                continue
            for i, (tok, chosen, top) in enumerate(ours[: len(theirs_ids)]):
                d = abs(chosen - lp["token_logprobs"][i])
                worst = max(worst, d)
                # llama-cpp-python keys its alternatives by their text; compare by value, sorted.
                theirs_top = sorted(lp["top_logprobs"][i].values(), reverse=True)
                ours_top = sorted(top.values(), reverse=True)[: len(theirs_top)]
                for x, y in zip(ours_top, theirs_top):
                    worst = max(worst, abs(x - y))
                if d > TOL or any(abs(x - y) > TOL for x, y in zip(ours_top, theirs_top)):
                    print(f"{model}: {prompt!r} step {i}: chord {chosen} {ours_top}, llama.cpp {lp['token_logprobs'][i]} {theirs_top}")
                    status = 1
        print(f"{model}: {len(PROMPTS)} prompts x {a.n} tokens, top {a.k}: largest difference {worst:.2e} (tolerance {TOL})")
        del llm
    sys.exit(status)


if __name__ == "__main__":
    main()
