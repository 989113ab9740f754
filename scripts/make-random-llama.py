#!/usr/bin/env python3
"""Writes a llama-architecture GGUF with the shape of TinyLlama-1.1B and seeded random F16 weights.

No llama-family model larger than SmolLM2-135M is shipped by a package registry, so the larger test
model is made here (shared/reference/test-data.md): the hyperparameters of TinyLlama-1.1B (hidden
2048, 22 layers, FFN 5632, 32 heads, 4 KV heads, separate output head, rope base 10000) and the real
LLaMA SentencePiece vocabulary (32,000 tokens) copied from llama.cpp's `ggml-vocab-llama-spm.gguf`.
Weights are N(0, 0.02) matrices and norms near 1, from a fixed seed, so the file is byte-for-byte
reproducible. Its text is meaningless, but its logits are a deterministic function that llama.cpp
computes too, and its size and speed are real. llama-quantize then makes the Q4_K_M/Q8_0/Q4_0 files.

Usage: make-random-llama.py VOCAB_GGUF OUT_GGUF [--seed N] [--layers N]
"""
import argparse

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType

HIDDEN, LAYERS, FFN, HEADS, KV_HEADS, CTX = 2048, 22, 5632, 32, 4, 2048


def copy_tokenizer(vocab_path: str, w: GGUFWriter) -> int:
    """Copies every tokenizer.* key of the vocab file; returns the vocabulary size."""
    r = GGUFReader(vocab_path)
    n_vocab = 0
    for key, field in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = field.types[0]
        value = field.contents()
        if main == GGUFValueType.ARRAY:
            w.add_key_value(key, value, main, sub_type=field.types[1])
            if key == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        else:
            w.add_key_value(key, value, main)
    if n_vocab == 0:
        raise SystemExit(f"{vocab_path}: no tokenizer.ggml.tokens")
    return n_vocab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--layers", type=int, default=LAYERS)
    args = ap.parse_args()

    w = GGUFWriter(args.out, "llama")
    w.add_name("TinyLlama-1.1B-shape random (chord test model)")
    w.add_context_length(CTX)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    n_vocab = copy_tokenizer(args.vocab, w)
    w.add_vocab_size(n_vocab)

    # (name, numpy shape [rows, cols], kind): GGUF dims are reversed numpy dims.
    plan = [("token_embd.weight", (n_vocab, HIDDEN), "mat")]
    kv = HIDDEN // HEADS * KV_HEADS
    for i in range(args.layers):
        b = f"blk.{i}."
        plan += [
            (b + "attn_norm.weight", (HIDDEN,), "norm"),
            (b + "attn_q.weight", (HIDDEN, HIDDEN), "mat"),
            (b + "attn_k.weight", (kv, HIDDEN), "mat"),
            (b + "attn_v.weight", (kv, HIDDEN), "mat"),
            (b + "attn_output.weight", (HIDDEN, HIDDEN), "mat"),
            (b + "ffn_norm.weight", (HIDDEN,), "norm"),
            (b + "ffn_gate.weight", (FFN, HIDDEN), "mat"),
            (b + "ffn_up.weight", (FFN, HIDDEN), "mat"),
            (b + "ffn_down.weight", (HIDDEN, FFN), "mat"),
        ]
    plan += [("output_norm.weight", (HIDDEN,), "norm"), ("output.weight", (n_vocab, HIDDEN), "mat")]

    # Norms stay F32, as converted models keep them; matrices are F16.
    for name, shape, kind in plan:
        dtype = np.float32 if kind == "norm" else np.float16
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(args.seed)
    for name, shape, kind in plan:
        if kind == "norm":
            t = (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        else:
            t = (0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float16)
        w.write_tensor_data(t)
    w.close()


if __name__ == "__main__":
    main()
