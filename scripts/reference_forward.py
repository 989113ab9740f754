#!/usr/bin/env python3
"""An exact reference forward pass for GGUF models, in float64 with numpy: the judge that neither
chord nor llama.cpp is.

chord and llama.cpp both round on the way: activations are quantized to 8 bits per block before each
product with a quantized weight, the KV cache is f16, sums run in f32 in an order that depends on the
CPU's vector width. Two correct implementations therefore differ in the last bits, and on small
quantized models those differences grow to a mean KL divergence of about 5e-3 per token. Comparing
chord with one llama.cpp build bit for bit only works where chord reproduces that build's order
(scripts/env.sh: the pinned AVX2 oracle). Everywhere else both are held against this pass: the
weights dequantized exactly as ggml defines them (gguf-py's `gguf.quants.dequantize`, f32 values),
then every step in float64 with no activation quantization and no f16 cache. An implementation is as
good as llama.cpp when its mean KL divergence from these logits is no larger than llama.cpp's own
(scripts/compare-llamacpp.py --reference).

Architectures (`ARCHS`): `llama` (RMS norm, normal-mode RoPE with optional rope_freqs and linear
scaling, grouped-query attention with optional q/k/v/o biases, SwiGLU feed-forward, tied or separate
output), `qwen2` (the same with NEOX-mode RoPE, which rotates value i with value i + n_rot/2),
`qwen3` (NEOX, each query and key head RMS-normalized before RoPE, heads of `key_length` values),
`gemma` (GELU feed-forward in its tanh form, embeddings times sqrt(n_embd)), `gemma2` (post-norms
of the attention and feed-forward outputs, a sliding window on some layers, soft-capped attention
scores and logits), `gemma3` (per-head q/k norms, windowed layers with their own RoPE base) and
`phi3` (NEOX, fused `ffn_up` of gate then up rows). A fused `attn_qkv` is split for any of them.
Another architecture is another entry there and what differs; an unknown one is an error, never a
guess.

Library use:  Reference(path).logits(tokens) -> float64 array [len(tokens), n_vocab]
Command line: reference_forward.py MODEL --tokens "ID ID ..." [--out FILE]   (writes f64 logits)
"""
import argparse
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


# What each architecture the reference implements does, as llama.cpp's src/models/<arch>.cpp reads
# it: the RoPE pairing (rope_type), GELU instead of SiLU, embeddings scaled, post-norms, the sliding
# window (every layer but the last of each `period`; `window` when the file gives none, None: no
# window then; `own_base`: windowed layers rotate with rope.freq_base_swa, default 10000), the
# soft caps used when the file gives none (0: no cap), and the layer count at which the attention
# scale is 1/sqrt(n_embd / n_head) (Gemma 27B).
_GEMMA = dict(rope="neox", gelu=True, embed_scale=True)
ARCHS = {
    "llama": dict(rope="normal"),
    "qwen2": dict(rope="neox"),
    "qwen3": dict(rope="neox"),
    "gemma": _GEMMA,
    "gemma2": dict(_GEMMA, post_norms=True, swa=dict(period=2, window=4096, own_base=False),
                   attn_softcap=50.0, final_softcap=30.0, wide_scale_layers=46),
    "gemma3": dict(_GEMMA, post_norms=True, swa=dict(period=6, window=None, own_base=True),
                   final_softcap=0.0, wide_scale_layers=62),
    "phi3": dict(rope="neox", fused_gate_up=True),
}


class Unsupported(Exception):
    """The file uses an architecture or feature that this reference does not implement."""


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise Unsupported(f"missing metadata key {key}")
        return default
    return f.contents()


class Reference:
    """The float64 forward pass of one GGUF file. Weights are dequantized per use, layer by layer,
    so memory stays at one layer's weights plus the activations of the token sequence."""

    def __init__(self, path):
        self.reader = GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        arch = _field(self.reader, "general.architecture")
        if arch not in ARCHS:
            raise Unsupported(f"architecture {arch!r}: the reference implements {', '.join(ARCHS)}")
        a = ARCHS[arch]
        self.rope_mode = a["rope"]
        self.gelu = a.get("gelu", False)
        self.post_norms = a.get("post_norms", False)
        self.fused_gate_up = a.get("fused_gate_up", False)
        # llama.cpp reads rope_freqs for llama only.
        self.rope_freqs = arch == "llama" and "rope_freqs.weight" in self.tensors
        p = arch + "."
        g = lambda k, d=None: _field(self.reader, p + k, d)  # noqa: E731
        self.n_layer = int(g("block_count"))
        self.n_embd = int(g("embedding_length"))
        self.n_head = int(g("attention.head_count"))
        self.n_head_kv = int(g("attention.head_count_kv", self.n_head))
        self.head_dim = int(g("attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(g("rope.dimension_count", self.head_dim))
        self.eps = float(g("attention.layer_norm_rms_epsilon"))
        self.freq_base = float(g("rope.freq_base", 10000.0))
        scaling = g("rope.scaling.type", "none")
        if scaling not in ("none", "linear"):
            raise Unsupported(f"RoPE scaling {scaling!r}")
        factor = float(g("rope.scaling.factor", 1.0)) if scaling == "linear" else 1.0
        self.freq_scale = 1.0 / factor if factor else 1.0
        self.embed_scale = np.sqrt(self.n_embd) if a.get("embed_scale") else 1.0
        wide = a.get("wide_scale_layers") == self.n_layer
        self.attn_scale = 1.0 / np.sqrt(self.n_embd // self.n_head if wide else self.head_dim)
        self.attn_softcap = float(g("attn_logit_softcapping", a["attn_softcap"])) if "attn_softcap" in a else 0.0
        self.final_softcap = float(g("final_logit_softcapping", a["final_softcap"])) if "final_softcap" in a else 0.0
        # Per layer: the sliding window (0: none) and the RoPE (base, position scale).
        self.window = [0] * self.n_layer
        self.rope_of = [(self.freq_base, self.freq_scale)] * self.n_layer
        swa = a.get("swa")
        window = int(g("attention.sliding_window", swa["window"] or 0)) if swa else 0
        if window:
            pattern = g("attention.sliding_window_pattern", swa["period"])
            if isinstance(pattern, list):
                windowed = [bool(f) for f in pattern]
            else:
                windowed = [pattern == 0 or i % pattern < pattern - 1 for i in range(self.n_layer)]
            base_swa = float(g("rope.freq_base_swa", 10000.0 if swa["own_base"] else self.freq_base))
            for i in range(self.n_layer):
                if windowed[i]:
                    self.window[i] = window
                    self.rope_of[i] = (base_swa, 1.0)

    def weight(self, name):
        """Tensor `name` as float64, shape [rows, row length] (ggml's ne[1], ne[0])."""
        t = self.tensors.get(name)
        if t is None:
            raise Unsupported(f"missing tensor {name}")
        w = dequantize(t.data, t.tensor_type).astype(np.float64)
        ne = [int(x) for x in t.shape]
        return w.reshape(-1, ne[0]) if len(ne) > 1 else w.reshape(ne[0])

    def _linear(self, x, name):
        y = x @ self.weight(name + ".weight").T
        if name + ".bias" in self.tensors:
            y += self.weight(name + ".bias")
        return y

    def _rms_norm(self, x, name):
        x = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps)
        return x * self.weight(name)

    def _rope(self, x, pos, i):
        """RoPE of x [n_tok, heads, head_dim] at positions pos in layer i: pair p is values
        (2p, 2p + 1) in normal mode, (p, p + n_rot/2) in NEOX mode."""
        half = self.n_rot // 2
        base, scale = self.rope_of[i]
        inv = base ** (-2.0 * np.arange(half, dtype=np.float64) / self.n_rot)
        if self.rope_freqs:
            inv = inv / self.weight("rope_freqs.weight")[:half]
        theta = (pos.astype(np.float64) * scale)[:, None] * inv[None, :]
        cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        out = x.copy()
        if self.rope_mode == "neox":
            lo, hi = slice(0, half), slice(half, self.n_rot)
        else:
            lo, hi = slice(0, self.n_rot, 2), slice(1, self.n_rot, 2)
        x0, x1 = x[..., lo], x[..., hi]
        out[..., lo] = x0 * cos - x1 * sin
        out[..., hi] = x0 * sin + x1 * cos
        return out

    def _attention(self, x, i, pos):
        n = x.shape[0]
        if f"blk.{i}.attn_qkv.weight" in self.tensors:
            qkv = self._linear(x, f"blk.{i}.attn_qkv")
            nq, nkv = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
            q, k, v = qkv[:, :nq], qkv[:, nq:nq + nkv], qkv[:, nq + nkv:]
        else:
            q, k = self._linear(x, f"blk.{i}.attn_q"), self._linear(x, f"blk.{i}.attn_k")
            v = self._linear(x, f"blk.{i}.attn_v")
        q = q.reshape(n, self.n_head, self.head_dim)
        k = k.reshape(n, self.n_head_kv, self.head_dim)
        if f"blk.{i}.attn_q_norm.weight" in self.tensors:
            q = self._rms_norm(q, f"blk.{i}.attn_q_norm.weight")
            k = self._rms_norm(k, f"blk.{i}.attn_k_norm.weight")
        v = v.reshape(n, self.n_head_kv, self.head_dim)
        q, k = self._rope(q, pos, i), self._rope(k, pos, i)
        group = self.n_head // self.n_head_kv
        mask = np.triu(np.full((n, n), -np.inf), 1)
        if self.window[i]:
            mask += np.tril(np.full((n, n), -np.inf), -self.window[i])
        out = np.empty((n, self.n_head, self.head_dim))
        for h in range(self.n_head):
            kv = h // group
            s = q[:, h, :] @ k[:, kv, :].T * self.attn_scale
            if self.attn_softcap:
                s = self.attn_softcap * np.tanh(s / self.attn_softcap)
            s = s + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            out[:, h, :] = (s / s.sum(axis=-1, keepdims=True)) @ v[:, kv, :]
        return self._linear(out.reshape(n, self.n_head * self.head_dim), f"blk.{i}.attn_output")

    def _feed_forward(self, x, i):
        if self.fused_gate_up:
            gate_up = self._linear(x, f"blk.{i}.ffn_up")
            half = gate_up.shape[-1] // 2
            gate, up = gate_up[:, :half], gate_up[:, half:]
        else:
            gate = self._linear(x, f"blk.{i}.ffn_gate")
            up = self._linear(x, f"blk.{i}.ffn_up")
        if self.gelu:
            act = 0.5 * gate * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (gate + 0.044715 * gate**3)))
        else:
            act = gate / (1.0 + np.exp(-gate))
        return self._linear(act * up, f"blk.{i}.ffn_down")

    def logits(self, tokens):
        """The logits of every position of `tokens` (one sequence from position 0), float64."""
        tokens = np.asarray(tokens, dtype=np.int64)
        pos = np.arange(len(tokens))
        x = self.weight("token_embd.weight")[tokens] * self.embed_scale
        for i in range(self.n_layer):
            a = self._attention(self._rms_norm(x, f"blk.{i}.attn_norm.weight"), i, pos)
            if self.post_norms:
                a = self._rms_norm(a, f"blk.{i}.post_attention_norm.weight")
            x = x + a
            f = self._feed_forward(self._rms_norm(x, f"blk.{i}.ffn_norm.weight"), i)
            if self.post_norms:
                f = self._rms_norm(f, f"blk.{i}.post_ffw_norm.weight")
            x = x + f
        x = self._rms_norm(x, "output_norm.weight")
        head = "output.weight" if "output.weight" in self.tensors else "token_embd.weight"
        logits = x @ self.weight(head).T
        if self.final_softcap:
            logits = self.final_softcap * np.tanh(logits / self.final_softcap)
        return logits


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def kl_divergence(ref, got):
    """Per-position KL(ref || got) of two logit arrays [positions, vocab]."""
    lp, lq = log_softmax(ref), log_softmax(got)
    return (np.exp(lp) * (lp - lq)).sum(axis=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="token ids separated by spaces")
    ap.add_argument("--out", help="write the logits here as little-endian f64 [positions x vocab]")
    a = ap.parse_args()
    try:
        logits = Reference(a.model).logits([int(t) for t in a.tokens.split()])
    except Unsupported as e:
        sys.exit(f"reference_forward: {a.model}: {e}")
    if a.out:
        logits.astype("<f8").tofile(a.out)
    else:
        for row in logits:
            top = np.argsort(-row)[:5]
            print(" ".join(f"{t}:{row[t]:.4f}" for t in top))


if __name__ == "__main__":
    main()
