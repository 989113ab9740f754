#!/usr/bin/env python3
"""Extracts the chat-template reference cases of llama.cpp into tests/data/chat/llama_cpp_cases.json.

Source: tests/test-chat-template.cpp of llama.cpp 0.3.36 (MIT licence, (c) the ggml authors),
function main_automated_tests(): the `conversation` and every entry of `test_cases`
(name, template source, expected output of the legacy formatter, expected output of the Jinja
path, bos/eos, supported_with_jinja, extra_conversation). The Jinja path expects
`expected_output_jinja`, or `expected_output` when that is empty (as the .cpp file does).

Usage: scripts/extract_chat_cases.py [LLAMA_CPP_SRC_DIR] > tests/data/chat/llama_cpp_cases.json
(LLAMA_CPP_SRC_DIR defaults to $LLAMA_CPP_SRC or ~/.cache/chord/llama.cpp-0.3.36.)
"""
import json
import os
import re
import sys

FIELDS = ["name", "template", "expected_output", "expected_output_jinja", "bos_token",
          "eos_token", "supported_with_jinja", "extra_conversation"]
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0",
           "a": "\a", "b": "\b", "f": "\f", "v": "\v", "?": "?"}


def tokens(src):
    """C++ tokens: ('str', text), ('{',), ('}',), (',',), ('id', name); comments dropped."""
    i = 0
    while i < len(src):
        c = src[i]
        if src.startswith("//", i):
            i = src.index("\n", i)
        elif src.startswith("/*", i):
            i = src.index("*/", i) + 2
        elif c in " \t\r\n()":
            i += 1
        elif c in "{},":
            yield (c,)
            i += 1
        elif c == '"':
            j = i + 1
            out = []
            while src[j] != '"':
                if src[j] == "\\":
                    e = src[j + 1]
                    if e == "u":
                        out.append(chr(int(src[j + 2:j + 6], 16)))
                        j += 6
                        continue
                    if e == "x":
                        m = re.match(r"[0-9a-fA-F]+", src[j + 2:])
                        out.append(chr(int(m.group(0), 16)))
                        j += 2 + len(m.group(0))
                        continue
                    out.append(ESCAPES[e])
                    j += 2
                else:
                    out.append(src[j])
                    j += 1
            yield ("str", "".join(out))
            i = j + 1
        else:
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", src[i:])
            if not m:
                raise SystemExit(f"unexpected character {c!r} at offset {i}")
            name = m.group(0)
            i += len(name)
            if name in ("u8", "U8C"):
                continue  # string prefix / macro: the literal follows
            yield ("id", name)


def parse(toks):
    """Nested brace lists; adjacent string literals are concatenated."""
    out = []
    joinable = False  # the last item is a string literal not yet followed by a comma
    while True:
        t = next(toks)
        if t[0] == "}":
            return out
        if t[0] == ",":
            joinable = False
            continue
        if t[0] == "{":
            out.append(parse(toks))
        elif t[0] == "str":
            if joinable:
                out[-1] = Str(out[-1] + t[1])
            else:
                out.append(Str(t[1]))
            joinable = True
            continue
        elif t[1] in ("true", "false"):
            out.append(t[1] == "true")
        else:
            raise SystemExit(f"unexpected identifier {t[1]}")
        joinable = False


class Str(str):
    pass


def block(src, start_marker):
    i = src.index(start_marker)
    j = src.index("{", i + len(start_marker) - 1)
    return parse(tokens(src[j + 1:]))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "LLAMA_CPP_SRC", os.path.expanduser("~/.cache/chord/llama.cpp-0.3.36"))
    src = open(os.path.join(root, "tests", "test-chat-template.cpp"), encoding="utf-8").read()
    body = src[src.index("int main_automated_tests(void)"):]
    conversation = [{"role": r, "content": c} for r, c in block(body, "conversation {")]
    cases = []
    for raw in block(body, "test_cases {"):
        case = dict(zip(FIELDS, raw))
        case.setdefault("bos_token", "")
        case.setdefault("eos_token", "")
        case.setdefault("supported_with_jinja", True)
        case["extra_conversation"] = [{"role": r, "content": c}
                                      for r, c in case.get("extra_conversation", [])]
        case["expected_jinja"] = case["expected_output_jinja"] or case["expected_output"]
        cases.append(case)
    json.dump({
        "source": "llama.cpp 0.3.36 tests/test-chat-template.cpp (MIT licence), "
                  "main_automated_tests(); extracted by scripts/extract_chat_cases.py",
        "conversation": conversation,
        "add_generation_prompt": True,
        "cases": cases,
    }, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
