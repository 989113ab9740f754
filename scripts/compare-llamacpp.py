#!/usr/bin/env python3
"""Compares chord with llama.cpp on the same GGUF file and the same tokens.

For each model given:
  * logits: the text is tokenized by llama.cpp, the first N tokens are evaluated by both, and the
    per-position distributions are compared: mean KL(llama.cpp || chord) and top-1 agreement;
  * greedy: for each prompt, 64 tokens generated greedily by both must give the same text.
Each check must meet the strict bar of issue 2: mean KL <= 1e-3, top-1 >= 99%, greedy equal for
>= 9 of 10 prompts. chord reproduces the floating-point order of llama.cpp's CPU backend built for
AVX2 (scripts/build-llamacpp.sh) in every tensor format, so on an AVX2 machine the logits are
bit-identical (KL 0).
For information, each line also shows llama.cpp's own spread on the same file and tokens, measured
in the same run by comparing its two CPU attention paths (flash attention on vs off): on small
quantized models, 8-bit activation rounding amplifies last-bit differences, and that spread alone
is above the strict bar (SmolLM2-135M Q4_1: mean KL ~5.6e-3, top-1 ~94%).

Run with the venv from scripts/build-llamacpp.sh and LLAMA_CPP_LIB_PATH set (see run-oracle-tests.sh).
Prints one line per check and ends with 'N passed, N failed'; exits 1 on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import llama_cpp

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a small village by the sea,",
    "1, 2, 3, 4, 5,",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWrite a haiku about autumn.<|im_end|>\n<|im_start|>assistant\n",
    "The three primary colors are",
    "Question: Why is the sky blue?\nAnswer:",
    "import numpy as np\n\n# Compute the mean of an array\n",
    "Les fleurs du printemps sont",
]


def llama_greedy(llm, prompt, n):
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llm._model.vocab))
    toks = llm.tokenize(prompt.encode(), add_bos=add_bos, special=True)
    llm.reset()
    llm.eval(toks)
    out = []
    for _ in range(n):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        t = int(np.argmax(logits))
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, t):
            break
        out.append(t)
        llm.eval([t])
    return llm.detokenize(out).decode("utf-8", errors="replace")


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def divergence(ref, got):
    """Per-position KL(ref || got) and the top-1 agreement."""
    lp, lq = log_softmax(ref), log_softmax(got)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return kl, float((ref.argmax(-1) == got.argmax(-1)).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chord", required=True, help="path of the chord program")
    ap.add_argument("--text", required=True, help="text file for the logits comparison")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--greedy-tokens", type=int, default=64)
    ap.add_argument("--max-kl", type=float, default=1e-3)
    ap.add_argument("--min-top1", type=float, default=0.99)
    ap.add_argument("--min-greedy", type=int, default=9)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    text = open(a.text, encoding="utf-8").read()
    passed = failed = 0
    for model in a.models:
        name = os.path.basename(model)
        n_ctx = a.tokens + 16

        def llama_logits(flash):
            llm = llama_cpp.Llama(model, n_ctx=n_ctx, n_batch=512, n_threads=a.threads, logits_all=True, verbose=False, flash_attn=flash)
            add_bos = llama_cpp.llama_vocab_get_add_bos(llm._model.vocab)
            toks = llm.tokenize(text.encode(), add_bos=bool(add_bos), special=False)[: a.tokens]
            if len(toks) < a.tokens:
                sys.exit(f"{a.text} gives only {len(toks)} tokens, {a.tokens} wanted")
            llm.eval(toks)
            return toks, np.array(llm.scores[: len(toks)], dtype=np.float32)

        toks, ref = llama_logits(False)
        _, ref_fa = llama_logits(True)
        with tempfile.NamedTemporaryFile(suffix=".f32") as f:
            cmd = [a.chord, "logits", "-m", model, "--threads", str(a.threads), "--tokens", " ".join(map(str, toks)), "--out", f.name]
            subprocess.run(cmd, check=True)
            got = np.fromfile(f.name, dtype=np.float32).reshape(ref.shape)
        kl, top1 = divergence(ref, got)
        kl_fa, top1_fa = divergence(ref, ref_fa)
        ok = kl.mean() <= a.max_kl and top1 >= a.min_top1
        print(f"{'PASS' if ok else 'FAIL'} logits {name}: {len(toks)} tokens, mean KL {kl.mean():.3e} (max {kl.max():.3e}), "
              f"top-1 {100 * top1:.2f}%, max |dlogit| {np.abs(ref - got).max():.3f}; llama.cpp FA on vs off: mean KL {kl_fa.mean():.3e}, "
              f"top-1 {100 * top1_fa:.2f}%", flush=True)
        passed, failed = passed + ok, failed + (not ok)
        del ref, got, ref_fa

        llm = llama_cpp.Llama(model, n_ctx=512, n_threads=a.threads, logits_all=True, verbose=False)
        llm_fa = llama_cpp.Llama(model, n_ctx=512, n_threads=a.threads, logits_all=True, verbose=False, flash_attn=True)
        same = same_fa = 0
        for p in PROMPTS:
            want = llama_greedy(llm, p, a.greedy_tokens)
            same_fa += llama_greedy(llm_fa, p, a.greedy_tokens) == want
            r = subprocess.run([a.chord, "generate", "-m", model, "-p", p, "-n", str(a.greedy_tokens), "--temp", "0", "--threads", str(a.threads)],
                               check=True, capture_output=True)
            have = r.stdout.decode("utf-8", errors="replace")
            have = have[:-1] if have.endswith("\n") else have
            if have == want:
                same += 1
            else:
                print(f"  greedy differs for {p!r}:\n    llama.cpp: {want!r}\n    chord:     {have!r}")
        ok = same >= a.min_greedy
        print(f"{'PASS' if ok else 'FAIL'} greedy {name}: {same}/{len(PROMPTS)} continuations of {a.greedy_tokens} tokens equal; "
              f"llama.cpp FA on vs off: {same_fa}/{len(PROMPTS)}", flush=True)
        passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
