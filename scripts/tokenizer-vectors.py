#!/usr/bin/env python3
"""Writes tests/data/tokenizer/vectors.json: token ids, detokenized text and vocabulary facts that
llama.cpp itself produces, for chord's tokenizer tests (tests/tokenizer_vectors.rs).

Run from the repository root, with llama.cpp's Python bindings and its freshly built library:

    . scripts/env.sh
    LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" scripts/tokenizer-vectors.py

Vocabularies: SmolLM2 (the default test model, `smollm` pre-tokenizer) and the real Gemma 3 270M
file (SentencePiece without a space prefix, 262,144 tokens) with a few hundred varied strings each,
and llama.cpp's own llama-spm and llama-bpe vocab files with a handful. Every string runs
with all four combinations of add_special and parse_special. Paths in the JSON are relative to
$CHORD_CACHE.
"""

import ctypes
import json
import os
import random
import sys

import llama_cpp

CACHE = os.environ.get("CHORD_CACHE", os.path.expanduser("~/.cache/chord"))
LLAMA_CPP = "llama.cpp-" + os.environ.get("LLAMA_CPP_PY_VERSION", "0.3.36")
OUT = os.path.join("tests", "data", "tokenizer", "vectors.json")

BASIC = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n",
    " \n",
    "\r\n",
    "\t\n\t",
    "a",
    "Hello",
    "Hello world",
    " Hello world",
    "Hello world ",
    "Hello  world",
    "Hello   world   ",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\tbetween\twords",
    "\t\tindented with tabs",
    "line one\nline two\n",
    "windows\r\nline\r\nendings",
    "mixed \t \n whitespace \u00a0 runs",
    "Hello, world! How are you?",
    "What's up? I'm fine, you're late, they'll come, we've seen, he'd go, it's",
    "DON'T SHOUT, I'LL LISTEN",
    "' quoted ' text ' here",
    "He said: \"no\" -- and left...",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX",
    "CamelCaseIdentifier and snake_case_identifier",
    "e-mail: someone@example.com, url: https://example.org/path?q=1&r=2#frag",
]

NUMBERS = [
    "0",
    "7",
    "42",
    "123",
    "1234",
    "12345",
    "123456789",
    "12345678901234567890123",
    "3.14159",
    "-273.15",
    "1,000,000",
    "1e-10",
    "0x1F 0b1010 0o777",
    "v1.2.3-beta+build.5",
    "2024-01-31T23:59:59Z",
    "Call 555-0100 or +1 (555) 010-0199",
    "Order #12345 costs $99.99 (20% off)",
    "1st 2nd 3rd 4th",
    "½ ¾ ² ³ ⅓ Ⅻ",
    "٣٤٥ ५६७ ໑໒",
]

CODE = [
    "def add(a, b):\n    return a + b\n",
    "fn main() {\n    println!(\"Hello, {}!\", name);\n}\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "if x == 1:\n\tprint('one')\nelif x != 2:\n\tpass",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "ls -la | grep \"*.rs\" && echo $HOME > /dev/null 2>&1",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "const re = /^[a-z]+\\d{2,}$/gi;",
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "    four spaces\n        eight spaces\n",
    "a->b; c::d; e=>f; g<=h; i>=j; k!=l; m==n; o&&p; q||r",
    "// comment\n/* block */\n# hash\n-- dash",
    "$$ \\frac{a}{b} = \\sum_{i=0}^{n} x_i^2 $$",
    "```python\nprint(1)\n```",
    "~!@#$%^&*()_+`-=[]\\{}|;':\",./<>?",
    "...!!!???,,,;;;:::",
    "__init__ __name__ __main__",
    "TODO(alice): fix #123 -> see PR!456",
]

ACCENTS = [
    "café naïve résumé",
    "Ångström Zürich Øresund",
    "façade coöperate jalapeño",
    "e\u0301 a\u0300 o\u0308",
    "Ça va? Très bien!",
    "Straße groß",
    "İstanbul ıi",
    "Łódź Kraków",
    "Ελληνικά γράμματα",
    "Привет, мир!",
    "Україна і Київ",
    "Tiếng Việt có dấu",
]

CJK = [
    "你好，世界！",
    "我爱北京天安门。",
    "日本語のテキストです。",
    "カタカナとひらがな",
    "한국어 텍스트입니다",
    "中文English混合text",
    "東京2024年オリンピック",
    "１２３ ＡＢＣ ｱｲｳ",
    "「引用」『二重』【括弧】",
]

EMOJI = [
    "😀",
    "😀😃😄",
    "I love 🍕 and 🍣!",
    "👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈",
    "🇫🇷🇯🇵🇺🇸",
    "❤️ ✔️ ☀️",
    "emoji at end 🎉",
    "🤖: beep boop",
]

SCRIPTS = [
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "ሰላም ለዓለም",
    "Բարեւ աշխարհ",
    "გამარჯობა",
    "Hello мир 世界 عالم 🌍",
    "abc123def456",
    "x²+y²=z²",
    "Zero\u200bwidth\u200bspace",
    "BOM\ufeffinside",
    "ideographic\u3000space",
    "nbsp\u00a0here",
    "control\x01\x02\x7fchars",
    "null\x00byte",
    "non-characters \uffff \U0010ffff",
    "private use \ue000\U000f0000",
    "unassigned \u0378 \U000e0080",
    "math 𝔸𝔹ℂ 𝟘𝟙",
]

SPECIAL = [
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "<|im_start|>user\n<|im_end|>",
    "<|im_end|><|im_end|>",
    "text<|im_start|>text",
    " <|im_start|> spaced ",
    "<|im_start",
    "im_start|>",
    "<|im_start|<|im_end|>>",
    "<|endoftext|>Hello<|endoftext|>",
    "<reponame>chord<file_sep>src/lib.rs",
    "<fim_prefix>def f(<fim_suffix>):<fim_middle>",
    "<s>hello</s>",
    "<s> hello </s>",
    "<unk>",
    "[INST] hi [/INST]",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|eot_id|>",
    "<|end|><|user|>\nHi<|end|>\n<|assistant|>",
    "<pad> <mask> <|fim_pad|>",
    "<|im_start|>user\n你好 🌍<|im_end|>",
]

LONG = (
    "Large language models are trained on vast amounts of text. Tokenizers split that text "
    "into pieces: words, sub-words, bytes. A good tokenizer balances vocabulary size against "
    "sequence length.\n\n"
    "    def tokenize(text):\n        return [vocab[w] for w in text.split()]\n\n"
    "Numbers like 3.14159, 2718281828 and 1,000,000 get special treatment; so do emoji 🎉, "
    "CJK 中文字符 and accents (café, naïve). Whitespace   runs,\ttabs and\nnewlines matter too.\n"
) * 3

PIECES = [
    "Hello", " world", "  ", "\t", "\n", "123", "4567", "don't", "I'M", "café", "中文", "😀",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "!", "?", "...", " ,", " '",
    "' ", "é", "e\u0301", "\u00a0", "\u3000", "x", "_", "$", "ß", "ı", "Ω", "𝔸", "//", "->",
]


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 8)
        out.append("".join(rng.choice(PIECES) for _ in range(k)))
    return out


SMOLLM_STRINGS = (
    BASIC + NUMBERS + CODE + ACCENTS + CJK + EMOJI + SCRIPTS + SPECIAL + [LONG]
    + random_strings(70, 1234)
)

# Gemma's turn markers and its other special tokens, plain and inside text.
GEMMA_SPECIAL = [
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
    "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn>",
    "<end_of_turn><eos>",
    "text<start_of_turn>text",
    " <start_of_turn> spaced ",
    "<start_of_turn",
    "<start_of_image> an image <end_of_image>",
    "<pad><unk><mask>",
    "    \n\n\t\t code    indented",
]

SMALL_STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "  two leading spaces",
    "line\nbreak\n\n",
    "What's up? I'M fine",
    "12345678 3.14",
    "café 中文 😀",
    "<s>hello</s>",
    " <s> spaced </s> ",
    "<unk> [INST] hi [/INST]",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|eot_id|><|eot_id|>",
    "Hello , world ! it 's ' quoted '",
    "\t\tindent\n    code()",
    "null\x00byte and \x01 control",
    "e\u0301 combining",
]


def fnv1a(data, h=0xCBF29CE484222325):
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class Vocab:
    def __init__(self, path):
        self.llm = llama_cpp.Llama(path, vocab_only=True, verbose=False)
        self.v = self.llm._model.vocab

    def tokenize(self, text, add_special, parse_special):
        data = text.encode("utf-8")
        n_max = len(data) + 8
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(self.v, data, len(data), buf, n_max, add_special, parse_special)
        assert n >= 0, (text, n)
        return list(buf[:n])

    def detokenize(self, ids, remove_special, unparse_special):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        size = 64 + 64 * len(ids)
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(self.v, arr, len(ids), buf, size, remove_special, unparse_special)
        assert n >= 0, (ids, n)
        return buf.raw[:n]

    def piece(self, token, special):
        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(self.v, token, buf, 256, 0, special)
        assert 0 <= n <= 256, (token, n)
        return buf.raw[:n]

    def meta(self):
        v = self.v
        n = llama_cpp.llama_vocab_n_tokens(v)
        opt = lambda t: None if t < 0 else t  # noqa: E731
        pieces = {}
        for special in (False, True):
            h = 0xCBF29CE484222325
            for t in range(n):
                p = self.piece(t, special)
                h = fnv1a(len(p).to_bytes(4, "little") + p, h)
            pieces["special" if special else "plain"] = "%016x" % h
        return {
            "n_vocab": n,
            "bos": opt(llama_cpp.llama_vocab_bos(v)),
            "eos": opt(llama_cpp.llama_vocab_eos(v)),
            "eot": opt(llama_cpp.llama_vocab_eot(v)),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(v)),
            "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(v)),
            "eog": [t for t in range(n) if llama_cpp.llama_vocab_is_eog(v, t)],
            "control": [t for t in range(n) if llama_cpp.llama_vocab_is_control(v, t)],
            "attrs": {str(t): a for t in range(n) if (a := llama_cpp.llama_vocab_get_attr(v, t)) != 4},
            "pieces_fnv1a": pieces,
        }


def cases(vocab, strings):
    out = []
    for text in strings:
        for add_special in (False, True):
            for parse_special in (False, True):
                ids = vocab.tokenize(text, add_special, parse_special)
                out.append({
                    "text": text,
                    "add_special": add_special,
                    "parse_special": parse_special,
                    "ids": ids,
                    # llama_detokenize(ids, remove_special, unparse_special) for (false, false)
                    # and (true, true), as hex: a split character is not valid UTF-8.
                    "detok": vocab.detokenize(ids, False, False).hex(),
                    "detok_special": vocab.detokenize(ids, True, True).hex(),
                })
    return out


def main():
    if not os.path.isdir(os.path.join("tests", "data")):
        sys.exit("run from the repository root")
    vocabs = [
        ("smollm2", os.path.join("models", "SmolLM2-135M-Instruct.Q4_1.gguf"), SMOLLM_STRINGS),
        ("gemma3", os.path.join("models", "gemma-3-270m-Q4_K_M.gguf"), SMOLLM_STRINGS + GEMMA_SPECIAL),
        ("llama-spm", os.path.join(LLAMA_CPP, "models", "ggml-vocab-llama-spm.gguf"), SMALL_STRINGS),
        ("llama-bpe", os.path.join(LLAMA_CPP, "models", "ggml-vocab-llama-bpe.gguf"), SMALL_STRINGS),
    ]
    doc = {"generator": "scripts/tokenizer-vectors.py", "llama_cpp": LLAMA_CPP, "vocabs": []}
    for name, rel, strings in vocabs:
        path = os.path.join(CACHE, rel)
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run scripts/fetch-test-data.sh")
        vocab = Vocab(path)
        entry = {"name": name, "file": rel, "meta": vocab.meta(), "cases": cases(vocab, strings)}
        print(f"{name}: {len(strings)} strings, {len(entry['cases'])} cases", file=sys.stderr)
        doc["vocabs"].append(entry)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
