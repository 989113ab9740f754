#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/), from the project's test data
and llama.cpp's sources. Run once; the corpus is committed and grows with what fuzzing finds.

* gguf: small valid GGUF files written here, and the hand-made malformed files of
  tests/gguf_malformed.rs (`make fuzz-corpus` adds those).
* tokenizer: the strings of tests/data/tokenizer/vectors.json, each with a flags byte.
* chat_template: the templates of tests/data/chat/templates with the conversations of
  tests/data/chat/jinja2_cases.json, in the target's `template NUL role SOH content NUL ...` form.
* state: one input per mode (the target builds valid states itself).
* grammar: llama.cpp's grammars/*.gbnf, each with a text the grammar accepts.
* json_schema: the schemas of llama.cpp's tests/test-json-schema-to-grammar.cpp.

The GGUF seeds: each is a complete model llama.cpp's layout would load: one layer, hidden 32, FFN 64, two heads of
16 and one KV head, F16 matrices and F32 norms, with a 300-token vocabulary made here (real
vocabularies are megabytes; libFuzzer mutates small inputs far faster). One file per tokenizer kind
and per architectural feature the loader checks: BPE llama, SentencePiece llama, gemma3 (q/k norms,
post-norms, sliding window), phi3 (fused matrices), qwen2 (biases). The hand-made malformed files
of tests/gguf_malformed.rs seed the rest of the corpus.

Usage: make-seeds.py CORPUS_DIR LLAMA_CPP_SOURCE_DIR
"""
import hashlib
import json
import os
import re
import sys

import numpy as np
from gguf import GGUFWriter, TokenType

HIDDEN, FFN, HEADS, KV_HEADS, HEAD = 32, 64, 2, 1, 16


def gpt2_bytes():
    """GPT-2's byte-to-character table (the byte-level BPE alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return [table[b] for b in range(256)]


def bpe_vocab(w):
    alpha = gpt2_bytes()
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "r e", "a t"]
    tokens = alpha + ["".join(m.split()) for m in merges]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens += specials
    tokens += [f"x{i}" for i in range(300 - len(tokens))]
    types = [TokenType.NORMAL] * len(tokens)
    for i in range(len(alpha) + len(merges), len(alpha) + len(merges) + len(specials)):
        types[i] = TokenType.CONTROL
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    return len(tokens)


def spm_vocab(w):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces = ["▁", "▁the", "▁a", "e", "t", "th", "he", "in", "▁in", "er", "on", "▁s", "re"]
    tokens += pieces + [f"▁w{i}" for i in range(300 - len(tokens) - len(pieces))]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    types += [TokenType.NORMAL] * (len(tokens) - len(types))
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    return len(tokens)


def write(path, arch, vocab, fused=False, bias=False, gemma3=False):
    w = GGUFWriter(path, arch)
    w.add_name(f"micro {arch} (chord fuzz seed)")
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(1)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    if gemma3:
        w.add_uint32(f"{arch}.attention.sliding_window", 8)
    n_vocab = vocab(w)
    q, kv = HEADS * HEAD, KV_HEADS * HEAD
    plan = [("token_embd.weight", (n_vocab, HIDDEN), np.float16),
            ("blk.0.attn_norm.weight", (HIDDEN,), np.float32)]
    if fused:
        plan += [("blk.0.attn_qkv.weight", (q + 2 * kv, HIDDEN), np.float16)]
    else:
        plan += [("blk.0.attn_q.weight", (q, HIDDEN), np.float16),
                 ("blk.0.attn_k.weight", (kv, HIDDEN), np.float16),
                 ("blk.0.attn_v.weight", (kv, HIDDEN), np.float16)]
    if bias:
        plan += [("blk.0.attn_q.bias", (q,), np.float32), ("blk.0.attn_k.bias", (kv,), np.float32),
                 ("blk.0.attn_v.bias", (kv,), np.float32)]
    if gemma3:
        plan += [("blk.0.attn_q_norm.weight", (HEAD,), np.float32),
                 ("blk.0.attn_k_norm.weight", (HEAD,), np.float32),
                 ("blk.0.post_attention_norm.weight", (HIDDEN,), np.float32),
                 ("blk.0.post_ffw_norm.weight", (HIDDEN,), np.float32)]
    plan += [("blk.0.attn_output.weight", (HIDDEN, q), np.float16),
             ("blk.0.ffn_norm.weight", (HIDDEN,), np.float32)]
    if fused:
        plan += [("blk.0.ffn_up.weight", (2 * FFN, HIDDEN), np.float16)]
    else:
        plan += [("blk.0.ffn_gate.weight", (FFN, HIDDEN), np.float16),
                 ("blk.0.ffn_up.weight", (FFN, HIDDEN), np.float16)]
    plan += [("blk.0.ffn_down.weight", (HIDDEN, FFN), np.float16),
             ("output_norm.weight", (HIDDEN,), np.float32)]
    rng = np.random.default_rng(7)
    for name, shape, dtype in plan:
        w.add_tensor(name, (0.05 * rng.standard_normal(shape)).astype(dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def put(d, data):
    """Writes `data` under d named by its hash, as libFuzzer names corpus files."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def c_strings(src):
    """The string literals of C++ source, adjacent ones joined (enough for llama.cpp's tests)."""
    out, lit = [], re.compile(r'R"""\((.*?)\)"""|"((?:[^"\\\n]|\\.)*)"', re.S)
    for m in lit.finditer(src):
        raw = m.group(1)
        out.append(raw if raw is not None else bytes(m.group(2), "utf-8").decode("unicode_escape"))
    return out


def main():
    corpus, llama = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "..", "tests", "data")
    g = os.path.join(corpus, "gguf")
    os.makedirs(g, exist_ok=True)
    write(f"{g}/micro-llama-bpe.gguf", "llama", bpe_vocab)
    write(f"{g}/micro-llama-spm.gguf", "llama", spm_vocab)
    write(f"{g}/micro-gemma3.gguf", "gemma3", spm_vocab, gemma3=True)
    write(f"{g}/micro-phi3.gguf", "phi3", spm_vocab, fused=True)
    write(f"{g}/micro-qwen2.gguf", "qwen2", bpe_vocab, bias=True)

    vectors = json.load(open(os.path.join(data, "tokenizer", "vectors.json")))
    texts = sorted({c["text"] for v in vectors["vocabs"] for c in v["cases"]})
    for i, t in enumerate(texts):
        put(os.path.join(corpus, "tokenizer"), bytes([i % 64]) + t.encode())

    cases = json.load(open(os.path.join(data, "chat", "jinja2_cases.json")))
    convs = cases["conversations"]
    for c in cases["cases"]:
        src = open(os.path.join(data, "chat", "templates", c["file"]), "rb").read()
        msgs = b"".join(m["role"].encode() + b"\x01" + str(m.get("content", "")).encode() + b"\0"
                        for m in convs[c["conversation"]])
        put(os.path.join(corpus, "chat_template"), src + b"\0" + msgs)

    for mode in range(4):
        put(os.path.join(corpus, "state"), bytes([mode]) + b"CHORDSS\0\x01\0\0\0")

    accepts = {"arithmetic": "(1+2)*3-4/5", "c": "int main() { return 0; }", "chess": "1. e4 e5 2. Nf3 Nc6 ",
               "english": "The cat sat.", "japanese": "こんにちは", "json": '{"a": [1, 2.5, "x", true, null]}',
               "json_arr": '[{"a": 1}]', "list": "- one\n- two\n"}
    gdir = os.path.join(llama, "grammars")
    for f in sorted(os.listdir(gdir)):
        if f.endswith(".gbnf"):
            text = accepts.get(f[:-5], "")
            put(os.path.join(corpus, "grammar"), open(os.path.join(gdir, f), "rb").read() + b"\0" + text.encode())

    src = open(os.path.join(llama, "tests", "test-json-schema-to-grammar.cpp")).read()
    for s in c_strings(src):
        if s.lstrip().startswith("{") and '"' in s:
            try:
                json.loads(s)
            except ValueError:
                continue
            put(os.path.join(corpus, "json_schema"), s.encode())


if __name__ == "__main__":
    main()
