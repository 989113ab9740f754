#!/usr/bin/env python3
"""Peak resident memory under a memory budget (issue 4, criterion 2); `make test-pager` runs it.

For each model and each budget (15%, 40%, 70% of the weight bytes) runs, as a child process,
`chord generate --budget B --ctx N -n 32 --stats` on a prompt of at least 256 tokens of
tests/data/text/gpl-3.0-excerpt.txt, reads the child's peak resident set (VmHWM, from wait4's
ru_maxrss) and checks

    VmHWM <= B + KV + 64 MiB,   KV = 2 * n_layer * n_ctx * n_head_kv * head_dim * 2 (f16 K and V).

Prints what the rest of the peak is (VmHWM - pager bytes resident - KV) to find out where memory
goes when the bound fails. Exits 1 when any run misses the bound or is not paged.
"""
import argparse
import os
import re
import subprocess
import sys

MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf", "tinyllama-shape-random.Q4_K_M.gguf"]
OVERHEAD = 64 << 20
MIB = float(1 << 20)


def out_of(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def facts(chord, model):
    """Weight bytes and the hyperparameters from `chord inspect`."""
    out = out_of([chord, "inspect", "-m", model])
    weight = int(re.search(r"tensor data: (\d+) bytes", out).group(1))
    hp = dict(re.findall(r"(\w+)=(\d+)", re.search(r"^hyperparameters: (.*)$", out, re.M).group(1)))
    return weight, {k: int(v) for k, v in hp.items()}


def prompt_of(chord, model, text, n_tokens):
    """The shortest prefix of `text` (in 100-character steps) of at least `n_tokens` tokens."""
    for n_chars in range(800, len(text) + 100, 100):
        p = text[:n_chars]
        got = len(out_of([chord, "tokenize", "-m", model, "-p", p]).split())
        if got >= n_tokens:
            return p, got
    sys.exit(f"{model}: the text has fewer than {n_tokens} tokens")


def run_child(cmd):
    """Runs `cmd`; returns (exit status, stderr, peak RSS in bytes) from wait4."""
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(cmd, stdout=null, stderr=subprocess.PIPE)
        err = p.stderr.read().decode(errors="replace")
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, err, ru.ru_maxrss * 1024  # Linux: KiB


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache = os.environ.get("CHORD_CACHE", os.path.expanduser("~/.cache/chord"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chord", default=os.path.join(root, "build/bin/chord"))
    ap.add_argument("--models", nargs="*", default=[os.path.join(cache, "models", m) for m in MODELS])
    ap.add_argument("--budgets", nargs="*", type=int, default=[15, 40, 70])
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--no-mmap", action="store_true",
                    help="chord --no-mmap: streamed layers read into buffers instead of mapped")
    a = ap.parse_args()
    with open(os.path.join(root, "tests/data/text/gpl-3.0-excerpt.txt")) as f:
        text = f.read()
    failed = []
    print(f"{'model':<36} {'budget':>7} {'B MiB':>7} {'KV MiB':>7} {'limit':>7} {'VmHWM':>7} "
          f"{'resid.':>7} {'rest':>6} {'prompt':>6} {'gen':>4}")
    for model in a.models:
        name = os.path.basename(model)
        weight, hp = facts(a.chord, model)
        prompt, n_prompt = prompt_of(a.chord, model, text, a.prompt_tokens)
        if n_prompt + 32 > a.ctx:
            sys.exit(f"{name}: prompt of {n_prompt} tokens + 32 does not fit --ctx {a.ctx}")
        kv = 2 * hp["n_layer"] * a.ctx * hp["n_head_kv"] * hp["head_dim"] * 2
        for pct in a.budgets:
            budget = weight * pct // 100
            cmd = [a.chord, "generate", "-m", model, "-p", prompt, "--budget", str(budget),
                   "--ctx", str(a.ctx), "-n", "32", "--seed", "1", "--stats"] + (["--no-mmap"] if a.no_mmap else [])
            rc, err, peak = run_child(cmd)
            if rc != 0:
                failed.append(f"{name} {pct}%: chord exited {rc}: {err.strip()}")
                continue
            plan = re.search(r"pager: paged (\d+), .*? resident (\d+) bytes", err)
            gen = re.search(r"generated (\d+) tokens", err)
            paged, resident = (int(plan.group(1)), int(plan.group(2))) if plan else (0, 0)
            limit = budget + kv + OVERHEAD
            rest = peak - resident - kv
            print(f"{name:<36} {pct:>6}% {budget / MIB:7.1f} {kv / MIB:7.1f} {limit / MIB:7.1f} {peak / MIB:7.1f} "
                  f"{resident / MIB:7.1f} {rest / MIB:6.1f} {n_prompt:>6} {gen.group(1) if gen else '?':>4}")
            if not paged:
                failed.append(f"{name} {pct}%: the model was not paged")
            if peak > limit:
                failed.append(f"{name} {pct}%: VmHWM {peak} > budget {budget} + KV {kv} + 64 MiB = {limit}")
    for f in failed:
        print("FAILED:", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
