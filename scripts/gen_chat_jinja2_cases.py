#!/usr/bin/env python3
"""Renders real chat templates with Python Jinja2 configured as Hugging Face transformers does
(ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
raise_exception, strftime_now, tojson = json.dumps(ensure_ascii=False, ...)) and writes the
outputs as reference cases for tests/chat_templates.rs.

Templates: copied from llama.cpp 0.3.36 models/templates/ (MIT licence; each file there is the
model's tokenizer_config.json chat_template, see that folder's README) into
tests/data/chat/templates/, plus Zephyr (HuggingFaceH4/zephyr-7b-beta's chat_template, written
out below). For Zephyr (eos_token <|endoftext|>) the script also checks that the output equals
llama.cpp's built-in (non-Jinja) "zephyr" formatter, called through libllama (llama-cpp-python
with LLAMA_CPP_LIB_PATH set), when that is available.

strftime_now is fixed at 2024-07-26 13:05:09 UTC (Unix 1721999109); the Rust test passes the same
time through ChatOptions::now.

Usage: ~/.cache/chord/venv/bin/python scripts/gen_chat_jinja2_cases.py
       (needs jinja2; writes tests/data/chat/jinja2_cases.json and tests/data/chat/templates/)
"""
import datetime
import json
import os
import shutil
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "chat")
LLAMA = os.environ.get("LLAMA_CPP_SRC", os.path.expanduser("~/.cache/chord/llama.cpp-0.3.36"))
NOW = 1721999109

ZEPHYR = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
          "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
          "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
          "{% endfor %}")

# (file in llama.cpp models/templates or None, name, bos, eos, system role rendered by the template)
TEMPLATES = [
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "Llama 3.1", "<|begin_of_text|>", "<|eot_id|>", True),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "Llama 3.2", "<|begin_of_text|>", "<|eot_id|>", True),
    ("meta-llama-Llama-3.3-70B-Instruct.jinja", "Llama 3.3", "<|begin_of_text|>", "<|eot_id|>", True),
    ("google-gemma-2-2b-it.jinja", "Gemma 2", "<bos>", "<eos>", False),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "Phi-3.5", "<s>", "<|endoftext|>", True),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "Mistral Nemo", "<s>", "</s>", True),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen 2.5 (ChatML)", "", "<|im_end|>", True),
    ("Qwen-Qwen3-0.6B.jinja", "Qwen 3 (ChatML)", "", "<|im_end|>", True),
    ("HuggingFaceTB-SmolLM3-3B.jinja", "SmolLM3", "", "<|im_end|>", True),
    ("ibm-granite-granite-3.3-2B-Instruct.jinja", "Granite 3.3", "", "<|end_of_text|>", True),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "Hermes 3 tool_use", "<|begin_of_text|>",
     "<|im_end|>", True),
    ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "DeepSeek R1 Distill", "<｜begin▁of▁sentence｜>",
     "<｜end▁of▁sentence｜>", True),
    (None, "Zephyr", "<s>", "<|endoftext|>", True),
]

CONVERSATIONS = {
    "with_system": [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Who are you"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "Another question, with \"quotes\" & <tags> and é"},
    ],
    "no_system": [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "single_user": [{"role": "user", "content": "Hi"}],
}


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def llama_cpp_legacy(template, messages, add_ass):
    """llama.cpp's built-in formatter for `template` through libllama, or None if unavailable."""
    try:
        import ctypes
        import llama_cpp
    except Exception:
        return None
    arr = (llama_cpp.llama_chat_message * len(messages))()
    for i, m in enumerate(messages):
        arr[i].role = m["role"].encode()
        arr[i].content = m["content"].encode()
    buf = ctypes.create_string_buffer(1 << 16)
    n = llama_cpp.llama_chat_apply_template(template.encode(), arr, len(messages), add_ass, buf, len(buf))
    return buf.raw[:n].decode() if n >= 0 else None


def main():
    env = environment()
    tmpl_dir = os.path.join(OUT_DIR, "templates")
    os.makedirs(tmpl_dir, exist_ok=True)
    cases = []
    for fname, name, bos, eos, system in TEMPLATES:
        if fname:
            shutil.copyfile(os.path.join(LLAMA, "models", "templates", fname), os.path.join(tmpl_dir, fname))
            src = open(os.path.join(tmpl_dir, fname), encoding="utf-8").read()
        else:
            fname = "zephyr.jinja"
            with open(os.path.join(tmpl_dir, fname), "w", encoding="utf-8") as f:
                f.write(ZEPHYR)
            src = ZEPHYR
        t = env.from_string(src)
        for conv, msgs in CONVERSATIONS.items():
            if conv == "with_system" and not system:
                continue  # HF raises here; chord merges the system prompt as llama.cpp does
            for agp in (True, False):
                case = {"name": name, "file": fname, "conversation": conv, "bos_token": bos,
                        "eos_token": eos, "add_generation_prompt": agp}
                try:
                    case["expected"] = t.render(messages=msgs, add_generation_prompt=agp,
                                                bos_token=bos, eos_token=eos)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                if name == "Zephyr" and "expected" in case:
                    # By name: llama.cpp's source detection maps this template to GLMEdge.
                    legacy = llama_cpp_legacy("zephyr", msgs, agp)
                    if legacy is not None and legacy != case["expected"]:
                        sys.exit(f"zephyr: Jinja2 {case['expected']!r} != llama.cpp {legacy!r}")
                    case["llama_cpp_legacy_checked"] = legacy is not None
                cases.append(case)
    with open(os.path.join(OUT_DIR, "jinja2_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "rendered by scripts/gen_chat_jinja2_cases.py with Python Jinja2 "
                             + jinja2.__version__ + " configured as Hugging Face transformers",
                   "now_unix": NOW, "conversations": CONVERSATIONS, "cases": cases},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
