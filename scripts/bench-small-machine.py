#!/usr/bin/env python3
"""A machine with less memory than the model, simulated honestly (issue 16): chord and llama.cpp in
one memory cgroup, page cache dropped before each program.

Needs root (it creates a cgroup and drops the page cache) and fails, saying why, without it. The
cgroup is v1's memory controller (`/sys/fs/cgroup/memory`, as on this project's machines) or v2's;
page cache is charged to it, so file pages count against the limit for both programs alike.

For each limit it prints, per program: decode tok/s, bytes read from storage per token
(`/proc/PID/io` read_bytes, sampled while it runs, less what its load read), peak RSS, and the
fraction of the bound

    tokens/s <= 1 / max((W - R) / B_io, 1 / resident tok/s)

with W the weight bytes a token reads (every layer and the output head), R the bytes chord keeps
resident (from its `-v` plan; 0 for llama.cpp), B_io the cold read bandwidth of the file measured
here (after dropping the cache: four threads each reading 8 MiB pieces), and the resident rate
measured here (chord, no limit, warm cache). chord runs with a budget fitted to the limit (the limit
less the KV cache and 128 MiB); llama.cpp's `llama-bench` as users run it (mapped, repacking on x86)
and with `--repack 0`.

Usage: scripts/bench-small-machine.py [--model FILE] [--limits 450M 2G ...] [-n 16]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

PLAN_RE = re.compile(r"pager: (\d+) of (\d+) units pinned, (\d+) slots of (\d+) bytes, (\d+) bytes resident")
MIB = 1 << 20


def size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        sys.exit(f"cannot drop the page cache ({e}): run as root")


class Cgroup:
    """A memory cgroup of its own, v1 or v2, removed at the end."""

    def __init__(self, name):
        v1 = "/sys/fs/cgroup/memory"
        v2 = next((m.split()[4] for m in open("/proc/self/mountinfo") if " - cgroup2 " in m), None)
        if os.path.isdir(v1):
            self.dir, self.v2 = os.path.join(v1, name), False
        elif v2 and "memory" in open(os.path.join(v2, "cgroup.controllers")).read().split():
            self.dir, self.v2 = os.path.join(v2, name), True
        else:
            sys.exit("no cgroup memory controller (v1 /sys/fs/cgroup/memory or v2 with memory enabled)")
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as e:
            sys.exit(f"cannot create the cgroup {self.dir} ({e}): run as root")

    def limit(self, nbytes):
        self._write("memory.max" if self.v2 else "memory.limit_in_bytes", str(nbytes))
        if not self.v2:
            self._write("memory.max_usage_in_bytes", "0")

    def peak(self):
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int(open(os.path.join(self.dir, name)).read())
        except OSError:
            return None

    def _write(self, name, value):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(value)

    def enter(self):
        """For preexec_fn: moves the child into the cgroup."""
        self._write("cgroup.procs", str(os.getpid()))

    def remove(self):
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def read_bytes(pid):
    try:
        for line in open(f"/proc/{pid}/io"):
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None


def run(cmd, cgroup=None):
    """Runs `cmd` (in `cgroup`), sampling its storage reads every 50 ms. Returns (status, stdout,
    stderr, bytes read in all, peak RSS bytes)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=cgroup.enter if cgroup else None)
    last = [0]
    err_lines = []

    def sample():
        while p.poll() is None:
            r = read_bytes(p.pid)
            if r is not None:
                last[0] = r
            time.sleep(0.05)

    def drain_err():
        for line in p.stderr:
            err_lines.append(line)

    ts = [threading.Thread(target=sample), threading.Thread(target=drain_err)]
    for t in ts:
        t.start()
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in ts:
        t.join()
    return p.returncode, out, "".join(err_lines), last[0], usage.ru_maxrss * 1024


def cold_bandwidth(path, threads=4, piece=8 * MIB, limit=1 << 30):
    """Bytes/s reading the first `limit` bytes of `path` from storage, `threads` threads taking
    `piece`-byte reads in turn."""
    drop_caches()
    fd = os.open(path, os.O_RDONLY)
    end = min(os.fstat(fd).st_size, limit)
    nxt = [0]
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                off = nxt[0]
                nxt[0] += piece
            if off >= end:
                return
            os.pread(fd, min(piece, end - off), off)

    t0 = time.monotonic()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    os.close(fd)
    return end / (time.monotonic() - t0)


def weights_per_token(chord, model):
    """W: bytes of every layer's matrices and the output head (`chord inspect`)."""
    r = subprocess.run([chord, "inspect", "-m", model], capture_output=True, text=True, check=True)
    total = 0
    names = set()
    for m in re.finditer(r"^tensor (\S+) (\S+) \[[^\]]*\] (\d+) bytes$", r.stdout, re.M):
        names.add(m.group(1))
        if m.group(1).startswith("blk.") and m.group(2) != "F32":
            total += int(m.group(3))
        if m.group(1) == "output.weight":
            total += int(m.group(3))
    if "output.weight" not in names:
        m = re.search(r"^tensor token_embd\.weight \S+ \[[^\]]*\] (\d+) bytes$", r.stdout, re.M)
        total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chord", default="build/bin/chord")
    ap.add_argument("--llama-bench", default=os.path.join(os.environ.get("LLAMA_CPP_NATIVE_BIN", ""), "llama-bench"))
    ap.add_argument("--model", default=os.path.join(os.environ.get("CHORD_MODELS", ""), "tinyllama-shape-random.Q4_K_M.gguf"))
    ap.add_argument("--limits", nargs="*", type=size, default=[size("450M")])
    ap.add_argument("-n", type=int, default=16, help="decode tokens")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    model, n = a.model, a.n
    w = weights_per_token(a.chord, model)
    b_io = cold_bandwidth(model)
    info = json.loads(subprocess.run([a.chord, "bench", "-m", model, "-p", "16", "-n", str(n), "-r", "1",
                                      "--threads", str(a.threads), "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    resident = info["decode_tok_s"]
    hp = subprocess.run([a.chord, "inspect", "-m", model], capture_output=True, text=True, check=True).stdout
    dims = {k: int(v) for k, v in re.findall(r"\b(n_layer|n_head_kv|head_dim)=(\d+)", hp)}
    # The f16 KV cache of the positions a run holds: keys and values of every layer.
    kv = 2 * 2 * dims["n_layer"] * dims["n_head_kv"] * dims["head_dim"] * (16 + n + 1)
    print(f"{os.path.basename(model)}: file {os.path.getsize(model) / MIB:.0f} MiB, W {w / MIB:.0f} MiB per token; "
          f"B_io cold (4 threads x 8 MiB reads) {b_io / 1e9:.2f} GB/s; resident decode {resident:.2f} tok/s "
          f"({a.threads} threads, warm, no limit)")
    print(f"{'limit':>7} {'program':<22} {'tok/s':>6} {'read/tok MB':>11} {'W-R MB':>7} {'bound':>6} {'frac':>5} "
          f"{'peak RSS MB':>11} {'cgroup peak MB':>14}  note")
    cg = Cgroup(f"chord-small-{os.getpid()}")
    try:
        for limit in a.limits:
            budget = max(limit - kv - 128 * MIB, 64 * MIB)
            rows = [("chord --budget %dM" % (budget // MIB),
                     [a.chord, "bench", "-m", model, "-p", "16", "-n", str(n), "-r", "1", "--threads",
                      str(a.threads), "--budget", str(budget), "--json", "-v"]),
                    ("llama-bench", [a.llama_bench, "-m", model, "-p", "0", "-n", str(n), "-r", "1", "-t",
                                     str(a.threads), "--no-warmup", "-o", "json"]),
                    ("llama-bench --repack 0", [a.llama_bench, "-m", model, "-p", "0", "-n", str(n), "-r", "1",
                                                "-t", str(a.threads), "--no-warmup", "--repack", "0", "-o", "json"])]
            for name, cmd in rows:
                drop_caches()
                cg.limit(limit)
                rc, out, err, total, rss = run(cmd, cg)
                peak = cg.peak()
                if rc != 0:
                    why = "killed (OOM)" if rc in (-9, 137) else f"exit {rc}"
                    print(f"{limit // MIB:>6}M {name:<22} {'-':>6} {total / n / 1e6:>11.1f} {'':>7} {'':>6} {'':>5} "
                          f"{rss / MIB:>11.0f} {(peak or 0) / MIB:>14.0f}  {why}")
                    continue
                if name.startswith("chord"):
                    j = json.loads(out)
                    tok_s = j["decode_tok_s"]
                    plan = PLAN_RE.search(err)
                    r_bytes = int(plan.group(5)) - int(plan.group(3)) * int(plan.group(4)) if plan else 0
                    per_tok = j["decode_bytes_read"] / max(j["decode_tokens"], 1)
                    note = f"decode reads: chord's counter; {total / 1e6:.0f} MB read in all (load, prompt, warm-up)"
                else:
                    j = json.loads(out)
                    tok_s = next(t["avg_ts"] for t in j if t.get("n_gen", 0) > 0)
                    r_bytes = 0
                    per_tok = total / n
                    note = f"all {total / 1e6:.0f} MB read (load included) / tokens"
                bound = 1.0 / max((w - r_bytes) / b_io, 1.0 / resident)
                print(f"{limit // MIB:>6}M {name:<22} {tok_s:>6.2f} {per_tok / 1e6:>11.1f} {(w - r_bytes) / 1e6:>7.1f} "
                      f"{bound:>6.2f} {tok_s / bound:>5.2f} {rss / MIB:>11.0f} {(peak or 0) / MIB:>14.0f}  {note}")
    finally:
        cg.remove()


if __name__ == "__main__":
    main()
