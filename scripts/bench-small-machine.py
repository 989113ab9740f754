#!/usr/bin/env python3
"""A machine with less memory than the model, simulated honestly (issue 16): chord and llama.cpp in
one memory cgroup, page cache dropped before each program.

Needs root (it creates a cgroup and drops the page cache) and fails, saying why, without it. The
cgroup is v1's memory controller (`/sys/fs/cgroup/memory`, as on this project's machines) or v2's;
page cache is charged to it, so file pages count against the limit for both programs alike.

For each limit it prints, per program: decode tok/s, bytes read from storage per token (chord:
its own process's `read_bytes` of /proc/self/io over the measured decode, `chord bench`'s
`decode_storage_bytes`; llama-bench: `/proc/PID/io` read_bytes, sampled while it runs, over all its
tokens, load included), peak RSS, and the fraction of the bound

    tokens/s <= 1 / max((W - R) / B_io, 1 / resident tok/s)

with W the weight bytes a token reads (every layer and the output head), R the bytes chord keeps
resident (from its `-v` plan; 0 for llama.cpp), B_io the cold read bandwidth of the file measured
here (after dropping the cache: four threads each reading 8 MiB pieces, through the page cache
and past it with `O_DIRECT`, the faster), and the resident rate
measured here (chord, no limit, warm cache). chord runs with a budget fitted to the limit (the limit
less the KV cache and `--headroom`, 128 MiB); llama.cpp's `llama-bench` as users run it (mapped, repacking on x86)
and with `--repack 0`. Every row is the best of `--tries` runs (3), B_io the best of its passes: this
machine's disk switches between about 1.3 and 2.3 GB/s by itself.

With `--fractions 15 40 70`, chord alone at budgets of those percentages of the weight bytes, warm
(no cgroup; before each warm run the file is read into the page cache again, through a 2 MiB-advised
map as chord's mapped slots read it and, for a second set of rows, front to back as a copy may leave
it (`--warm-fill`), the note saying how much of it the page cache holds in 2 MiB folios; B_io read
from the page cache; each run paired with a resident run right after it, the row showing the pair
of the median ratio: the CPUs here drift by up to 25% from one minute to the next) and cold (a
cgroup of the budget + KV + headroom, page cache dropped). In every cgroup, `--greedy N` tokens of `chord generate` under the budget are compared
with the resident run's (token ids and log-probabilities). The "prefill MB" column is what the
prefill of the `-p` prompt (one batch) read from storage: each streamed layer once is W - R.

Usage: scripts/bench-small-machine.py [--model FILE] [--limits 450M 2G ...] [--fractions 15 40 70]
                                      [-n 16] [-p 16] [--greedy 16] [--no-llama] [--loaders map read]
                                      [--tries 3] [--warm-fill map read]
"""
import argparse
import json
import mmap
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
    done = threading.Event()

    def sample():
        # Not p.poll(): it may reap the child before os.wait4 below, which then fails (ECHILD).
        while not done.is_set():
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
    done.set()
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in ts:
        t.join()
    return p.returncode, out, "".join(err_lines), last[0], usage.ru_maxrss * 1024


MADV_HUGEPAGE, MADV_POPULATE_READ = 14, 22


def fill_cache(path, how="map", piece=8 * MIB):
    """Drops the page cache and reads all of `path` into it again, and returns the fraction of the
    file the page cache then holds in 2 MiB folios, which a mapped slot maps for one page-table
    entry each (0.013 ms for a 3 MB span of SmolLM2's file against 0.28 ms in 4 KiB pages, on
    Zen 4). `how`: "map" reads it through a map advised `MADV_HUGEPAGE`, as chord's mapped slots
    read a file that is not cached (2 MiB folios throughout); "read" reads it front to back on one
    thread in 8 MiB reads, as a copy or a download may leave it (Linux 6.18 on ext4: folios grow
    with the read-ahead window, about 55% of SmolLM2's file in 2 MiB ones; `cp` left none). Pages
    already cached keep their size, hence the drop."""
    drop_caches()
    # In a child process: a map of the whole file raises this process's peak RSS, which every
    # program it starts afterwards inherits into its own ru_maxrss (Linux counts the forked copy
    # before exec).
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, str(_fill(path, how, piece)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read()
    os.waitpid(pid, 0)
    return float(got)


def _fill(path, how, piece):
    with open(path, "rb") as f:
        if how == "map":
            m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            m.madvise(MADV_HUGEPAGE)
            m.madvise(MADV_POPULATE_READ)
            m.close()
        else:
            while f.raw.read(piece):
                pass
        # Map it all again (Linux places a map of 2 MiB or more on a 2 MiB boundary) and count
        # what the kernel maps in 2 MiB entries.
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            m.madvise(MADV_POPULATE_READ)
            with open("/proc/self/smaps_rollup") as r:
                pmd = int(re.search(r"FilePmdMapped:\s+(\d+) kB", r.read()).group(1)) * 1024
        finally:
            m.close()
    return pmd / os.path.getsize(path)


def read_bandwidth(path, cold, threads=4, piece=8 * MIB, limit=1 << 30):
    """Bytes/s reading the first `limit` bytes of `path` (warm: `limit` bytes, round and round a
    smaller file), `threads` threads taking `piece`-byte reads in turn: from storage after
    dropping the page cache (`cold`), else from the page cache (filled by `fill_cache` first, through
    a map). Cold, the reads go through the page cache and, separately,
    past it (`O_DIRECT`, as chord streams a file larger than memory), and B_io is the faster. The
    best of three passes each: the bound is an upper bound, and this machine's disk gave 0.9 to
    2.1 GB/s to the same pass minutes apart."""
    def once(direct):
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
        size = os.fstat(fd).st_size // 4096 * 4096
        # Warm, a file smaller than `limit` is read round and round: a few pieces of a small file
        # time thread start-up more than the reads.
        end = min(size, limit) if cold else limit
        nxt = [0]
        lock = threading.Lock()

        def work():
            buf = mmap.mmap(-1, piece)  # page-aligned, as O_DIRECT needs
            while True:
                with lock:
                    off = nxt[0]
                    nxt[0] += piece
                if off >= end:
                    return
                at = off % size
                os.preadv(fd, [memoryview(buf)[:min(piece, end - off, size - at)]], at)

        t0 = time.monotonic()
        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        os.close(fd)
        return end / (time.monotonic() - t0)

    best = 0
    for direct in ([False, True] if cold else [False]):
        for _ in range(3):
            if cold:
                drop_caches()
            else:
                fill_cache(path)
            best = max(best, once(direct))
    return best


def rate_of(name, out):
    """Decode tok/s of a program's JSON output: `chord bench`'s or `llama-bench`'s."""
    j = json.loads(out)
    if name.startswith("chord"):
        return j["decode_tok_s"]
    return next(t["avg_ts"] for t in j if t.get("n_gen", 0) > 0)


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


def greedy(chord, model, threads, n, budget=None, cgroup=None, loader="map"):
    """`n` greedy tokens of a fixed prompt, with each token's id and log-probability (stdout of
    `chord generate --logprobs 1`); under `budget` in `cgroup` with the page cache dropped."""
    cmd = [chord, "generate", "-m", model, "-p", "The old lighthouse keeper opened the door and",
           "-n", str(n), "--temp", "0", "--logprobs", "1", "--threads", str(threads)]
    if budget:
        drop_caches()
        cmd += ["--budget", str(budget)] + (["--no-mmap"] if loader == "read" else [])
    rc, out, err, _, _ = run(cmd, cgroup)
    if rc != 0:
        sys.exit(f"{' '.join(cmd)} failed ({rc}):\n{err}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chord", default="build/bin/chord")
    ap.add_argument("--llama-bench", default=os.path.join(os.environ.get("LLAMA_CPP_NATIVE_BIN", ""), "llama-bench"))
    ap.add_argument("--model", default=os.path.join(os.environ.get("CHORD_MODELS", ""), "tinyllama-shape-random.Q4_K_M.gguf"))
    ap.add_argument("--limits", nargs="*", type=size, default=[size("450M")],
                    help="cgroup limits: chord (budget = limit - KV - headroom) and llama-bench in each")
    ap.add_argument("--fractions", nargs="*", type=int, default=[],
                    help="budgets in %% of the weight bytes: chord alone, warm (no cgroup) and cold "
                         "(cgroup of budget + KV + headroom, page cache dropped)")
    ap.add_argument("-n", type=int, default=16, help="decode tokens")
    ap.add_argument("-p", type=int, default=16, help="prompt tokens (one batch: its prefill's bytes read are shown)")
    ap.add_argument("--greedy", type=int, default=16,
                    help="greedy tokens compared with the resident run's in each cgroup (0: none)")
    ap.add_argument("--headroom", type=size, default=size("128M"),
                    help="memory left to chord beyond its budget and KV cache: scratch of a batch, code, "
                         "allocator (a 512-token prefill of the 7B shape needs about 340 MiB of scratch)")
    ap.add_argument("--no-llama", action="store_true", help="chord only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tries", type=int, default=3, help="runs per row, the fastest shown")
    ap.add_argument("--loaders", nargs="*", default=["map"], choices=["map", "read"],
                    help="chord with use_mmap (the default) or --no-mmap, a set of rows for each: a "
                         "file that fits in memory (warm rows) has its streamed layers mapped or read "
                         "into buffers; one that does not (cgroup rows) read past the page cache either way")
    ap.add_argument("--warm-fill", nargs="*", default=["map", "read"], choices=["map", "read"],
                    help="how the page cache is filled before each warm row, a set of rows for each: "
                         "through a map advised MADV_HUGEPAGE (as chord's mapped slots read an uncached "
                         "file: 2 MiB folios) or front to back with read() (as a copy may leave it)")
    a = ap.parse_args()

    model, n = a.model, a.n
    w = weights_per_token(a.chord, model)
    weight_bytes = int(re.search(r"tensor data: (\d+) bytes",
                                 subprocess.run([a.chord, "inspect", "-m", model], capture_output=True, text=True,
                                                check=True).stdout).group(1))
    b_cold = read_bandwidth(model, cold=True)
    b_warm = read_bandwidth(model, cold=False) if a.fractions else None
    resident_cmd = [a.chord, "bench", "-m", model, "-p", "16", "-n", str(n), "-r", "1", "--threads",
                    str(a.threads), "--json"]
    info = json.loads(subprocess.run(resident_cmd, capture_output=True, text=True, check=True).stdout)
    resident = info["decode_tok_s"]
    hp = subprocess.run([a.chord, "inspect", "-m", model], capture_output=True, text=True, check=True).stdout
    dims = {k: int(v) for k, v in re.findall(r"\b(n_layer|n_head_kv|head_dim)=(\d+)", hp)}
    # The f16 KV cache of the positions a run holds: keys and values of every layer.
    kv = 2 * 2 * dims["n_layer"] * dims["n_head_kv"] * dims["head_dim"] * (a.p + n + 1)
    want = greedy(a.chord, model, a.threads, a.greedy) if a.greedy else None
    print(f"{os.path.basename(model)}: file {os.path.getsize(model) / MIB:.0f} MiB, W {w / MIB:.0f} MiB per token; "
          f"B_io (4 threads x 8 MiB reads; cold: buffered or O_DIRECT, the faster) {b_cold / 1e9:.2f} GB/s"
          + (f", warm {b_warm / 1e9:.2f} GB/s" if b_warm else "")
          + f"; resident decode {resident:.2f} tok/s ({a.threads} threads, warm, no limit)")
    print(f"{'limit':>7} {'program':<24} {'tok/s':>6} {'read/tok MB':>11} {'W-R MB':>7} {'bound':>6} {'frac':>5} "
          f"{'peak RSS MB':>11} {'cgroup peak MB':>14} {'prefill MB':>10}  note")

    def resident_rate():
        return json.loads(subprocess.run(resident_cmd, capture_output=True, text=True, check=True).stdout)["decode_tok_s"]

    def row(label, name, cmd, b_io, cgroup=None, limit=None, fill="map"):
        # This machine's disk switches between about 1.3 and 2.3 GB/s by itself and its CPUs drift
        # by up to 25% from one minute to the next: every row is the best of `--tries` runs (as
        # B_io is the best of its passes), except a warm chord row, whose bound is the resident
        # rate: each of its runs has a resident run right after it, in the same state of the
        # machine, and the row shows the pair of the median ratio (the best of each, taken apart,
        # could pair a fast minute with a slow one).
        warm = cgroup is None and name.startswith("chord")
        res_rate = 0 if warm else resident
        best = None
        pairs = []
        for _ in range(a.tries):
            if cgroup:
                drop_caches()
                cgroup.limit(limit)
            else:
                # Warm, and the same way for every run whatever ran before.
                huge = fill_cache(model, fill)
            got = run(cmd, cgroup)
            if warm:
                if got[0] != 0:
                    best = got
                    break
                pairs.append((rate_of(name, got[1]) / resident_rate(), got))
                continue
            if best is None or (got[0] == 0 and (best[0] != 0 or rate_of(name, got[1]) > rate_of(name, best[1]))):
                best = got
            if got[0] != 0:
                break  # killed or failed: so it stays
        if warm and pairs:
            pairs.sort(key=lambda p: p[0])
            ratio, best = pairs[len(pairs) // 2]
            res_rate = rate_of(name, best[1]) / ratio
        rc, out, err, total, rss = best
        peak = (cgroup.peak() or 0) / MIB if cgroup else 0
        if rc != 0:
            why = "killed (OOM)" if rc in (-9, 137) else f"exit {rc}"
            print(f"{label:>7} {name:<24} {'-':>6} {total / n / 1e6:>11.1f} {'':>7} {'':>6} {'':>5} "
                  f"{rss / MIB:>11.0f} {peak:>14.0f} {'':>10}  {why}")
            return
        j = json.loads(out)
        tok_s = rate_of(name, out)
        prefill = ""
        if name.startswith("chord"):
            plan = PLAN_RE.search(err)
            r_bytes = int(plan.group(5)) - int(plan.group(3)) * int(plan.group(4)) if plan else 0
            tokens = max(j["decode_tokens"], 1)
            per_tok = j["decode_storage_bytes"] / tokens
            prefill = f"{j['prefill_storage_bytes'] / 1e6:.0f}"
            note = (f"pager {j['decode_bytes_read'] / tokens / 1e6:.1f} MB/token (page cache or storage); "
                    f"{total / 1e6:.0f} MB from storage in all (load, prompt, warm-up)")
        else:
            r_bytes = 0
            per_tok = total / n
            note = f"all {total / 1e6:.0f} MB read (load included) / tokens"
        if warm:
            note += (f"; resident {res_rate:.2f} tok/s right after (ratios of the {len(pairs)} pairs: "
                     f"{' '.join(f'{r:.2f}' for r, _ in pairs)}); page cache {100 * huge:.0f}% in 2 MiB folios")
        bound = 1.0 / max((w - r_bytes) / b_io, 1.0 / res_rate)
        print(f"{label:>7} {name:<24} {tok_s:>6.2f} {per_tok / 1e6:>11.1f} {(w - r_bytes) / 1e6:>7.1f} "
              f"{bound:>6.2f} {tok_s / bound:>5.2f} {rss / MIB:>11.0f} {peak:>14.0f} {prefill:>10}  {note}")

    def chord_cmd(budget, loader):
        return [a.chord, "bench", "-m", model, "-p", str(a.p), "-n", str(n), "-r", "1", "--threads",
                str(a.threads), "--budget", str(budget), "--json", "-v"] + (["--no-mmap"] if loader == "read" else [])

    def check_greedy(budget, cg, loader):
        if want is None:
            return
        got = greedy(a.chord, model, a.threads, a.greedy, budget, cg, loader)
        print(f"{'':>7} greedy {a.greedy} tokens under --budget {budget // MIB}M: "
              + ("identical to the resident run (ids and log-probabilities)" if got == want
                 else f"DIFFER from the resident run:\n{got}\nresident:\n{want}"))

    cg = Cgroup(f"chord-small-{os.getpid()}")
    try:
        for pct in a.fractions:
            budget = weight_bytes * pct // 100
            for loader in a.loaders:
                for fill in a.warm_fill:
                    row(f"{pct}%", f"chord warm {loader} ({fill})", chord_cmd(budget, loader), b_warm, fill=fill)
                row(f"{pct}%", f"chord cold {loader} (cg)", chord_cmd(budget, loader), b_cold, cg,
                    budget + kv + a.headroom)
                check_greedy(budget, cg, loader)
        for limit in a.limits:
            budget = max(limit - kv - a.headroom, 64 * MIB)
            label = f"{limit // MIB}M"
            for loader in a.loaders:
                row(label, f"chord {loader} --budget {budget // MIB}M", chord_cmd(budget, loader), b_cold, cg,
                    limit)
                check_greedy(budget, cg, loader)
            if a.no_llama:
                continue
            for name, extra in [("llama-bench", []), ("llama-bench --repack 0", ["--repack", "0"])]:
                row(label, name, [a.llama_bench, "-m", model, "-p", "0", "-n", str(n), "-r", "1", "-t",
                                  str(a.threads), "--no-warmup", "-o", "json"] + extra, b_cold, cg, limit)
    finally:
        cg.remove()


if __name__ == "__main__":
    main()
