#!/usr/bin/env python3
"""Writes a GGUF with the shape of a real model, a real vocabulary and seeded random weights.

No model of these shapes and families is shipped by a package registry, so the test models are made
here (shared/reference/test-data.md), in the tensor layout llama.cpp reads for the architecture:

* `tinyllama` (llama): TinyLlama-1.1B's hyperparameters (hidden 2048, 22 layers, FFN 5632, 32 heads,
  4 KV heads, separate output head, rope base 10000) with the LLaMA SentencePiece vocabulary.
* `llama2-7b` (llama): Llama-2-7B's hyperparameters (hidden 4096, 32 layers, FFN 11008, 32 heads,
  32 KV heads, separate output head) with the LLaMA SentencePiece vocabulary: the model larger
  than the machine of issue 16 (F16 13.5 GB, Q4_K_M about 3.9 GB; scripts/make-7b-shape.sh).
* `llama3` (llama): Llama-3.2-1B's widths (hidden 2048, FFN 8192, 32 heads, 8 KV heads, rope base
  500000, tied head) over 2 layers, with the `rope_freqs` tensor of its llama3 RoPE scaling
  (factor 32, low/high frequency factors 1 and 4, original context 8192; computed as
  convert_hf_to_gguf.py does) and the Llama 3 BPE vocabulary (llama-bpe).
* `qwen2` (qwen2): Qwen2.5-0.5B's widths (hidden 896, FFN 4864, 14 heads, 2 KV heads of 64, rope
  base 1e6, RMS epsilon 1e-6, output head tied to the embeddings, q/k/v biases) over 4 layers, with
  the Qwen2 BPE vocabulary (151,936 tokens padded as the real file's embedding is).
* `qwen3` (qwen3): Qwen3-0.6B's widths (hidden 1024, FFN 3072, 16 heads of 128, wider than
  hidden / heads, 8 KV heads, per-head q/k RMS norms, tied head, no biases) over 4 layers, with the
  same vocabulary (Qwen 3 keeps Qwen 2's tokenizer).
* `gemma`, `gemma2`, `gemma3`: Gemma 3 270M's widths (hidden 640, FFN 2048, 4 heads of 256, one KV
  head, tied head; the smallest Gemma there is) in each family's layout, with the real Gemma 3
  file's SentencePiece vocabulary (262,144 tokens): gemma over 4 layers; gemma2 over 4 layers with
  post-norms, a 256-token sliding window on even layers and soft caps set where this model's values
  are (scores 1.0, logits 5.0; real files say 50 and 30, which random weights never reach, so the
  caps would not be tested); gemma3 over 6 layers (five windowed, one global, as in the real file)
  with per-head q/k norms, post-norms and a 128-token window.
* `tiny` (llama): a llama of hidden 64, 2 layers, FFN 128, 4 heads of 16, 2 KV heads, tied head,
  with SmolLM2's vocabulary and chat template (copied from the SmolLM2 file): the model the C tests
  run under valgrind, where every multiply-add costs ~50x and a real model's forward passes took
  most of CI's time; the API, tokenizer, template and kernel paths are those of the real file.
* `phi3` (phi3): Phi-3-mini's widths (hidden 3072, FFN 8192, 32 heads of 96 without grouping,
  separate output head, the 2047-token sliding window key that llama.cpp ignores) over 2 layers,
  with the fused `attn_qkv` and `ffn_up` (gate rows, then up rows) of real Phi-3 files and the
  Phi-3 SentencePiece vocabulary.

The vocabulary is copied from one of llama.cpp's `models/ggml-vocab-*.gguf` files (or a model). Matrices are
N(0, 0.02), biases N(0, 0.2), norms near 1, from a fixed seed, so a file is byte-for-byte
reproducible; a tied head is N(0, 0.1) so that next-token distributions are neither uniform nor
one-hot. Its text is meaningless, but its logits are a deterministic function that llama.cpp
computes too, and its size and speed are real. llama-quantize then makes the other formats.

Usage: make-random-model.py SHAPE VOCAB_GGUF OUT_GGUF [--seed N] [--layers N]
"""
import argparse

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType

SHAPES = {
    "tinyllama": dict(arch="llama", name="TinyLlama-1.1B-shape random (chord test model)",
                      hidden=2048, layers=22, ffn=5632, heads=32, kv_heads=4, ctx=2048,
                      rope_base=10000.0, eps=1e-5, tied=False, bias=False, n_vocab=None),
    "qwen2": dict(arch="qwen2", name="Qwen2.5-0.5B-shape random (chord test model)",
                  hidden=896, layers=4, ffn=4864, heads=14, kv_heads=2, ctx=32768,
                  rope_base=1000000.0, eps=1e-6, tied=True, bias=True, n_vocab=151936),
    "qwen3": dict(arch="qwen3", name="Qwen3-0.6B-shape random (chord test model)",
                  hidden=1024, layers=4, ffn=3072, heads=16, kv_heads=8, head_dim=128, ctx=40960,
                  rope_base=1000000.0, eps=1e-6, tied=True, bias=False, qk_norm=True,
                  n_vocab=151936),
}
_GEMMA = dict(name="Gemma-3-270M-shape random (chord test model)", hidden=640, ffn=2048, heads=4,
              kv_heads=1, head_dim=256, ctx=32768, rope_base=10000.0, eps=1e-6, tied=True,
              bias=False, n_vocab=None)
SHAPES.update({
    "llama3": dict(arch="llama", name="Llama-3.2-1B-shape random (chord test model)", hidden=2048,
                   layers=2, ffn=8192, heads=32, kv_heads=8, ctx=131072, rope_base=500000.0,
                   eps=1e-5, tied=True, bias=False, n_vocab=None,
                   llama3_rope=dict(factor=32.0, low=1.0, high=4.0, original=8192)),
    "phi3": dict(arch="phi3", name="Phi-3-mini-shape random (chord test model)", hidden=3072,
                 layers=2, ffn=8192, heads=32, kv_heads=32, ctx=4096, rope_base=10000.0, eps=1e-5,
                 tied=False, bias=False, n_vocab=32064, fused=True,
                 meta={"attention.sliding_window": 2047}),
    "llama2-7b": dict(arch="llama", name="Llama-2-7B-shape random (chord test model)", hidden=4096,
                      layers=32, ffn=11008, heads=32, kv_heads=32, ctx=4096, rope_base=10000.0,
                      eps=1e-5, tied=False, bias=False, n_vocab=None),
    "tiny": dict(arch="llama", name="tiny llama random (chord memory-check model)", hidden=64,
                 layers=2, ffn=128, heads=4, kv_heads=2, ctx=8192, rope_base=100000.0, eps=1e-5,
                 tied=True, bias=False, n_vocab=None),
    "gemma": dict(_GEMMA, arch="gemma", layers=4, ctx=8192),
    "gemma2": dict(_GEMMA, arch="gemma2", layers=4, ctx=8192, post_norms=True,
                   meta={"attention.sliding_window": 256, "attn_logit_softcapping": 1.0,
                         "final_logit_softcapping": 5.0}),
    "gemma3": dict(_GEMMA, arch="gemma3", layers=6, rope_base=1000000.0, post_norms=True,
                   qk_norm=True, meta={"attention.sliding_window": 128}),
})


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


def llama3_rope_factors(base, dim, factor, low, high, original):
    """Llama 3.1's RoPE frequency divisors, as convert_hf_to_gguf.py writes rope_freqs.weight."""
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    out = []
    for freq in freqs:
        wavelen = 2 * np.pi / freq
        if wavelen < original / high:
            out.append(1.0)
        elif wavelen > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("vocab")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--layers", type=int)
    args = ap.parse_args()
    s = SHAPES[args.shape]
    hidden, ffn, heads, kv_heads = s["hidden"], s["ffn"], s["heads"], s["kv_heads"]
    layers = args.layers or s["layers"]
    head_dim = s.get("head_dim", hidden // heads)

    w = GGUFWriter(args.out, s["arch"])
    w.add_name(s["name"])
    w.add_context_length(s["ctx"])
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    if head_dim != hidden // heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    for key, value in s.get("meta", {}).items():
        if isinstance(value, float):
            w.add_float32(f"{s['arch']}.{key}", value)
        else:
            w.add_uint32(f"{s['arch']}.{key}", value)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(s["rope_base"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    n_tokens = copy_tokenizer(args.vocab, w)
    # Real files may pad the embedding past the token list (Qwen2: 151,936 rows for 151,665).
    n_vocab = max(n_tokens, s["n_vocab"] or 0)
    w.add_vocab_size(n_vocab)

    # (name, numpy shape [rows, cols], kind): GGUF dims are reversed numpy dims.
    plan = [("token_embd.weight", (n_vocab, hidden), "head" if s["tied"] else "mat")]
    kv = head_dim * kv_heads
    for i in range(layers):
        b = f"blk.{i}."
        q = head_dim * heads
        plan += [(b + "attn_norm.weight", (hidden,), "norm")]
        if s.get("fused"):
            plan += [(b + "attn_qkv.weight", (q + 2 * kv, hidden), "mat")]
        else:
            plan += [(b + "attn_q.weight", (q, hidden), "mat")]
        if s["bias"]:
            plan += [(b + "attn_q.bias", (q,), "bias")]
        if not s.get("fused"):
            plan += [(b + "attn_k.weight", (kv, hidden), "mat")]
        if s["bias"]:
            plan += [(b + "attn_k.bias", (kv,), "bias")]
        if not s.get("fused"):
            plan += [(b + "attn_v.weight", (kv, hidden), "mat")]
        if s["bias"]:
            plan += [(b + "attn_v.bias", (kv,), "bias")]
        if s.get("qk_norm"):
            plan += [(b + "attn_q_norm.weight", (head_dim,), "norm"),
                     (b + "attn_k_norm.weight", (head_dim,), "norm")]
        plan += [(b + "attn_output.weight", (hidden, q), "mat")]
        if s.get("post_norms"):
            plan += [(b + "post_attention_norm.weight", (hidden,), "norm")]
        plan += [(b + "ffn_norm.weight", (hidden,), "norm")]
        if s.get("fused"):
            plan += [(b + "ffn_up.weight", (2 * ffn, hidden), "mat")]
        else:
            plan += [(b + "ffn_gate.weight", (ffn, hidden), "mat"),
                     (b + "ffn_up.weight", (ffn, hidden), "mat")]
        plan += [(b + "ffn_down.weight", (hidden, ffn), "mat")]
        if s.get("post_norms"):
            plan += [(b + "post_ffw_norm.weight", (hidden,), "norm")]
    plan += [("output_norm.weight", (hidden,), "norm")]
    if s.get("llama3_rope"):
        plan += [("rope_freqs.weight", (head_dim // 2,), "rope_freqs")]
    if not s["tied"]:
        plan += [("output.weight", (n_vocab, hidden), "mat")]

    # Norms and biases stay F32, as converted models keep them; matrices are F16.
    f32 = ("norm", "bias", "rope_freqs")
    for name, shape, kind in plan:
        dtype = np.float32 if kind in f32 else np.float16
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(args.seed)
    for name, shape, kind in plan:
        if kind == "rope_freqs":
            t = llama3_rope_factors(s["rope_base"], head_dim, **s["llama3_rope"])
        elif kind == "norm":
            t = (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        elif kind == "bias":
            t = (0.2 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        else:
            scale = 0.1 if kind == "head" else 0.02
            t = (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float16)
        w.write_tensor_data(t)
    w.close()


if __name__ == "__main__":
    main()
