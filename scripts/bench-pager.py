#!/usr/bin/env python3
"""Measures the layer pager against its bounds (issue 4, criteria 3-5); run by scripts/bench-pager.sh.

For each model: the bandwidths B_io (pread from the page cache into a buffer, one thread, the way
the pager reads; and cold, after dropping the file from the page cache) and B_mem (2 threads summing
large buffers), then `chord bench` at budgets of 15%, 40% and 70% of the weight bytes and fully
resident. Prints per budget: R (pinned bytes), W (weight bytes read per token: every layer's
matrices and the output head), the bound 1 / max((W - R) / B_io, W / B_mem), the measured decode
rate and its fraction of the bound ("frac"), its fraction of 1 / max((W - R) / B_io, 1 / fully
resident rate) ("f/res": the bound when compute, not memory bandwidth, limits the resident run), and
the pager's counters over the measured decode runs. Then the prefill of a 512-token prompt at 40%
against fully resident, and what a loader thread costs two computing threads when it copies with
pread (as the pager does) or maps pages with MADV_POPULATE_READ (pager-bw contend).
"""
import argparse
import json
import os
import re
import subprocess
import sys

MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf", "tinyllama-shape-random.Q4_K_M.gguf"]
PLAN_RE = re.compile(r"pager: (\d+) of (\d+) units pinned, (\d+) slots of (\d+) bytes, (\d+) bytes resident")


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout, r.stderr


def tensors(chord, model):
    """(weight bytes, W: bytes of the pager's units, largest layer's bytes) from `chord inspect`."""
    out, _ = sh([chord, "inspect", "-m", model])
    weight = int(re.search(r"tensor data: (\d+) bytes", out).group(1))
    t = {}
    for m in re.finditer(r"^tensor (\S+) (\S+) \[[^\]]*\] (\d+) bytes$", out, re.M):
        t[m.group(1)] = (m.group(2), int(m.group(3)))
    layers = {}
    for name, (ty, b) in t.items():
        if name.startswith("blk.") and ty != "F32":
            layers[name.split(".")[1]] = layers.get(name.split(".")[1], 0) + b
    head = t["output.weight"][1] if "output.weight" in t else t["token_embd.weight"][1]
    return weight, sum(layers.values()) + head, max(layers.values())


def kv(out):
    return dict(line.split() for line in out.strip().splitlines())


def bench(chord, model, budget, n_prompt, n_gen, reps, ctx=0):
    cmd = [chord, "bench", "-m", model, "-p", str(n_prompt), "-n", str(n_gen), "-r", str(reps), "--json", "-v"]
    if budget:
        cmd += ["--budget", str(budget)]
    if ctx:
        cmd += ["--ctx", str(ctx)]
    out, err = sh(cmd)
    j = json.loads(out)
    m = PLAN_RE.search(err)
    j["plan"] = tuple(int(x) for x in m.groups()) if m else None
    return j


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chord", default="build/bin/chord")
    ap.add_argument("--bw", default="build/bin/pager-bw")
    ap.add_argument("--models", nargs="*", default=[os.path.join(os.environ["CHORD_CACHE"], "models", m) for m in MODELS])
    ap.add_argument("--budgets", nargs="*", type=int, default=[15, 40, 70])
    ap.add_argument("-r", type=int, default=3, help="measured runs (median), after one warm-up")
    ap.add_argument("-n", type=int, default=32, help="decode tokens per run")
    ap.add_argument("--prefill", type=int, default=512, help="prompt tokens of the prefill comparison (0: skip)")
    ap.add_argument("--prefill-budget", type=int, default=40)
    a = ap.parse_args()

    mem = kv(sh([a.bw, "mem", "2", "256", "5"])[0])
    b_mem = float(mem["mem_bps"])
    print(f"load average at start: {loadavg()}; cores: {os.cpu_count()}")
    print(f"B_mem (2 threads summing 256 MiB each, median of 5): {b_mem / 1e9:.2f} GB/s")
    failures = []
    for model in a.models:
        weight, w, layer = tensors(a.chord, model)
        cold = kv(sh([a.bw, "cold", model, str(layer)])[0])
        b_io = float(kv(sh([a.bw, "io", model, str(layer), "5"])[0])["io_bps"])
        b_map = float(kv(sh([a.bw, "map", model, str(layer), "5"])[0])["map_bps"])
        print(f"\n== {os.path.basename(model)}: weight bytes {weight}, W (layers + output head) {w}")
        print(f"B_io warm (pread of {layer}-byte units into one buffer, 1 thread, median of 5 passes): "
              f"{b_io / 1e9:.2f} GB/s; cold (posix_fadvise DONTNEED first; {float(cold['cached_before']):.0%} "
              f"still cached): {float(cold['cold_bps']) / 1e9:.2f} GB/s; through a map (MADV_POPULATE_READ then "
              f"MADV_DONTNEED, no copy): {b_map / 1e9:.2f} GB/s")
        print(f"{'budget':>7} {'R MB':>7} {'W MB':>7} {'B_io':>5} {'B_mem':>5} {'bound':>6} {'tok/s':>6} {'frac':>5} "
              f"{'f/res':>5} {'sync/t':>6} {'hit/t':>6} {'read/t MB':>9} {'W-R MB':>7} {'stall%':>6} {'RSS MB':>7}")
        resident = None
        need = 0.0
        for pct in [100] + a.budgets:
            budget = weight * pct // 100 if pct < 100 else 0
            j = bench(a.chord, model, budget, 16, a.n, a.r)
            toks = j["decode_tokens"]
            if pct < 100:
                if not j["paged"] or j["plan"] is None:
                    sys.exit(f"{model} at {pct}%: not paged")
                _, _, slots, slot_bytes, res = j["plan"]
                r = res - slots * slot_bytes
            else:
                if j["paged"]:
                    sys.exit(f"{model}: paged without a budget")
                r = w
                resident = j
            bound = 1.0 / max((w - r) / b_io, w / b_mem)
            frac = j["decode_tok_s"] / bound
            frac_res = j["decode_tok_s"] * max((w - r) / b_io, 1.0 / resident["decode_tok_s"])
            stall = j["decode_stall_ns"] / max(j["decode_ns"], 1)
            read_t = j["decode_bytes_read"] / toks
            print(f"{pct:>6}% {r / 1e6:7.1f} {w / 1e6:7.1f} {b_io / 1e9:5.2f} {b_mem / 1e9:5.2f} {bound:6.2f} "
                  f"{j['decode_tok_s']:6.2f} {frac:5.2f} {frac_res:5.2f} {j['decode_sync_loads'] / toks:6.2f} "
                  f"{j['decode_prefetch_hits'] / toks:6.2f} {read_t / 1e6:9.2f} {(w - r) / 1e6:7.2f} "
                  f"{100 * stall:6.1f} {j['peak_rss_bytes'] / 1e6:7.1f}")
            if pct < 100:
                need = max(need, read_t * j["decode_tok_s"])
                if frac < 0.8:
                    failures.append(f"{os.path.basename(model)} {pct}%: decode {frac:.2f} of the bound (< 0.80)")
                if stall >= 0.10:
                    failures.append(f"{os.path.basename(model)} {pct}%: stalls {100 * stall:.1f}% of decode (>= 10%)")
                # Each streamed unit once per token: the bytes read per token are W - R, give or take
                # the look-ahead of the slots at the ends of the runs.
                if abs(read_t - (w - r)) > 2 * layer * (a.r + 1) / toks + 0.01 * (w - r):
                    failures.append(f"{os.path.basename(model)} {pct}%: {read_t:.0f} bytes read per token, "
                                    f"expected W - R = {w - r}")
        if resident:
            res_frac = resident["decode_tok_s"] * w / b_mem
            print(f"fully resident decode: {resident['decode_tok_s']:.2f} tok/s = {res_frac:.2f} of W / B_mem "
                  f"(how far compute is from the memory-bandwidth bound on this machine)")
        if need:
            line = []
            for mode in ["none", "pread", "map"]:
                c = kv(sh([a.bw, "contend", mode, model, str(layer), "4", f"{need:.0f}"])[0])
                line.append(f"{mode}: compute {float(c['compute_bps']) / 1e9:.2f} GB/s, loaded {float(c['load_bps']) / 1e9:.2f} GB/s")
            print(f"2 summing threads + 1 loader asked for {need / 1e9:.2f} GB/s (the most a paged decode above "
                  f"read): " + "; ".join(line))
        if a.prefill:
            budget = weight * a.prefill_budget // 100
            p = bench(a.chord, model, budget, a.prefill, 0, a.r)
            q = bench(a.chord, model, 0, a.prefill, 0, a.r)
            ratio = p["prefill_tok_s"] / q["prefill_tok_s"]
            print(f"prefill {a.prefill} tokens: {a.prefill_budget}% budget {p['prefill_tok_s']:.2f} tok/s, "
                  f"fully resident {q['prefill_tok_s']:.2f} tok/s: {ratio:.2f} (criterion >= 0.85); "
                  f"stall {100 * p['prefill_stall_ns'] / max(p['prefill_ns'], 1):.1f}% of prefill")
            if ratio < 0.85:
                failures.append(f"{os.path.basename(model)}: prefill at {a.prefill_budget}% is {ratio:.2f} of resident")
    print(f"\nload average at end: {loadavg()}")
    for f in failures:
        print("MISSED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
