#!/usr/bin/env python3
"""Reference dequantization of every tensor of a GGUF file with gguf-py (gguf.quants.dequantize).

Usage:
  quant-reference.py MODEL OUT            write one line per tensor to OUT:
                                          name<TAB>type<TAB>n_values<TAB>h1<TAB>h2
  quant-reference.py MODEL --dump NAME OUT  write tensor NAME's dequantized values (little-endian f32)
  quant-reference.py --raw TYPE IN OUT      dequantize the raw blocks of GGML type TYPE (a name such
                                          as Q4_K) in file IN; write little-endian f32 to OUT

h1 and h2 are checksums of the values' f32 bit patterns u[i] (mod 2^64):
  h1 = sum(u[i] * (2*i + 1)),  h2 = sum(u[i] * u[i])
tests/quant_real.rs computes the same over chord's dequantization and compares.
"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def values(t):
    return np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype="<f4").reshape(-1)


def checksums(v):
    u = v.view("<u4").astype(np.uint64)
    idx = np.arange(u.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        h1 = int(np.sum(u * idx, dtype=np.uint64))
        h2 = int(np.sum(u * u, dtype=np.uint64))
    return h1, h2


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "--raw":
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        qtype = GGMLQuantizationType[args[1]]
        block, size = GGML_QUANT_SIZES[qtype]
        raw = np.fromfile(args[2], dtype=np.uint8)
        if qtype == GGMLQuantizationType.F32:
            data = raw.view("<f4")
        elif qtype == GGMLQuantizationType.F16:
            data = raw.view("<f2")
        else:
            data = raw.reshape(-1, size)
        v = np.ascontiguousarray(dequantize(data, qtype), dtype="<f4").reshape(-1)
        v.tofile(args[3])
        return
    if len(args) == 4 and args[1] == "--dump":
        reader = GGUFReader(args[0])
        for t in reader.tensors:
            if t.name == args[2]:
                values(t).tofile(args[3])
                return
        sys.exit(f"no tensor {args[2]} in {args[0]}")
    if len(args) != 2:
        sys.exit(__doc__)
    reader = GGUFReader(args[0])
    lines = []
    for t in reader.tensors:
        v = values(t)
        h1, h2 = checksums(v)
        lines.append(f"{t.name}\t{t.tensor_type.name}\t{v.size}\t{h1}\t{h2}\n")
    tmp = args[1] + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    import os

    os.replace(tmp, args[1])


if __name__ == "__main__":
    main()
