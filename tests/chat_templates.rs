//! Chat templates against reference outputs: every Jinja case of llama.cpp's
//! tests/test-chat-template.cpp (tests/data/chat/llama_cpp_cases.json, extracted by
//! scripts/extract_chat_cases.py), plus errors, Python-compatible helpers, and the embedded
//! template of the real SmolLM2 model.

mod common;

use chord::chat::{apply_template, ChatMessage, ChatOptions, ChatTemplate};
use chord::model::{Model, ModelOptions};
use chord::ErrorCode;
use serde_json::Value as Json;
use std::path::Path;

fn data(name: &str) -> Json {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/chat")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn messages(v: &Json) -> Vec<ChatMessage> {
    v.as_array()
        .expect("a list of messages")
        .iter()
        .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

fn opts(bos: &str, eos: &str, add_generation_prompt: bool) -> ChatOptions {
    ChatOptions {
        add_generation_prompt,
        bos_token: bos.into(),
        eos_token: eos.into(),
        now: None,
    }
}

fn user(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new("user", text)]
}

fn render(src: &str, msgs: &[ChatMessage]) -> chord::Result<String> {
    apply_template(src, msgs, &opts("<s>", "</s>", true))
}

#[test]
fn llama_cpp_reference_cases() {
    let d = data("llama_cpp_cases.json");
    let conversation = messages(&d["conversation"]);
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in d["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !case["supported_with_jinja"].as_bool().unwrap() {
            // llama.cpp only checks these with its hard-coded formatter.
            continue;
        }
        let mut msgs = conversation.clone();
        msgs.extend(messages(&case["extra_conversation"]));
        let o = opts(
            case["bos_token"].as_str().unwrap(),
            case["eos_token"].as_str().unwrap(),
            d["add_generation_prompt"].as_bool().unwrap(),
        );
        let want = case["expected_jinja"].as_str().unwrap();
        match apply_template(case["template"].as_str().unwrap(), &msgs, &o) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}")),
            Err(e) => failures.push(format!("{name}: error {e}")),
        }
        ran += 1;
    }
    assert!(ran >= 30, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn real_templates_match_python_jinja2() {
    let d = data("jinja2_cases.json");
    let now = d["now_unix"].as_i64().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat/templates");
    let mut failures = Vec::new();
    let cases = d["cases"].as_array().unwrap();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let src = std::fs::read_to_string(dir.join(file)).unwrap();
        let conv = case["conversation"].as_str().unwrap();
        let msgs = messages(&d["conversations"][conv]);
        let o = ChatOptions {
            now: Some(now),
            ..opts(
                case["bos_token"].as_str().unwrap(),
                case["eos_token"].as_str().unwrap(),
                case["add_generation_prompt"].as_bool().unwrap(),
            )
        };
        let what = format!("{file} {conv} agp={}", o.add_generation_prompt);
        let got = apply_template(&src, &msgs, &o);
        match (
            &got,
            case.get("expected").and_then(|v| v.as_str()),
            case.get("error"),
        ) {
            (Ok(g), Some(want), _) if g == want => {}
            (Ok(g), Some(want), _) => {
                failures.push(format!("{what}:\n  want {want:?}\n  got  {g:?}"))
            }
            (Err(e), None, Some(msg)) if e.message().contains(msg.as_str().unwrap()) => {}
            (r, _, _) => failures.push(format!("{what}: got {r:?}, reference {case}")),
        }
    }
    assert!(cases.len() >= 70, "only {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn families_named_in_the_issue_are_covered() {
    let d = data("llama_cpp_cases.json");
    let names: Vec<&str> = d["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["supported_with_jinja"].as_bool().unwrap())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for family in [
        "OpenHermes",
        "Mistral",
        "Llama-3",
        "gemma",
        "Phi-3",
        "vigogne",
    ] {
        assert!(names.iter().any(|n| n.contains(family)), "no {family} case");
    }
    let d = data("jinja2_cases.json");
    let names: Vec<&str> = d["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for family in ["Llama 3", "Gemma", "Phi-3", "Mistral", "ChatML", "Zephyr"] {
        assert!(
            names.iter().any(|n| n.contains(family)),
            "no {family} template"
        );
    }
}

#[test]
fn templates_are_shareable_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let t = ChatTemplate::new("{{ messages[0].content }}").unwrap();
    send_sync(&t);
    let outs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let t = &t;
                s.spawn(move || {
                    t.apply(&user(&format!("m{i}")), &ChatOptions::default())
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outs, ["m0", "m1", "m2", "m3"]);
}

#[test]
fn system_role_support_is_probed() {
    let chatml =
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
    assert!(
        ChatTemplate::new(chatml)
            .unwrap()
            .caps()
            .supports_system_role
    );
    let gemma = "{% if messages and messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}";
    let t = ChatTemplate::new(gemma).unwrap();
    assert!(!t.caps().supports_system_role);
    // A lone system message is dropped; a leading one is merged into the next message.
    let only_sys = [ChatMessage::new("system", "S")];
    assert_eq!(t.apply(&only_sys, &ChatOptions::default()).unwrap(), "");
    let two = [
        ChatMessage::new("system", "S"),
        ChatMessage::new("user", "U"),
    ];
    assert_eq!(t.apply(&two, &ChatOptions::default()).unwrap(), "S\nU");
}

#[test]
fn syntax_errors_name_the_problem_and_line() {
    let e = ChatTemplate::new("hello\n{% for m in messages %}{{ m.content }}").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(e.message().contains("does not parse"), "{e}");
    assert!(e.message().contains("line"), "{e}");
    let e = ChatTemplate::new("{{ messages[0 }}").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(e.message().contains("line 1"), "{e}");
}

#[test]
fn render_errors_are_template_errors() {
    let e = render(
        "a\nb\n{{ raise_exception('Only user and assistant roles are supported!') }}",
        &user("x"),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(
        e.message()
            .contains("raised an exception: Only user and assistant roles are supported!"),
        "{e}"
    );
    assert!(e.message().contains("line 3"), "{e}");
    // Attribute of an undefined value, unknown method, unknown filter.
    let e = render("{{ foo.bar }}", &user("x")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    let e = render("{{ messages[0].content.nosuchmethod() }}", &user("x")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(
        e.message().contains("nosuchmethod") || e.message().contains("unknown method"),
        "{e}"
    );
    let e = ChatTemplate::new("{{ 'x' | nosuchfilter }}")
        .and_then(|t| t.apply(&user("x"), &ChatOptions::default()))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(
        e.message().contains("nosuchfilter") || e.message().contains("unknown filter"),
        "{e}"
    );
}

#[test]
fn endless_templates_are_stopped() {
    let src = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let e = render(src, &user("x")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(e.message().contains("takes too long"), "{e}");
    // Long conversations with the heaviest real templates stay well inside the step limit.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat/templates");
    let long: Vec<ChatMessage> = (0..2000)
        .map(|i| {
            ChatMessage::new(
                if i % 2 == 0 { "user" } else { "assistant" },
                format!("message {i}"),
            )
        })
        .collect();
    for file in [
        "HuggingFaceTB-SmolLM3-3B.jinja",
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "ibm-granite-granite-3.3-2B-Instruct.jinja",
    ] {
        let src = std::fs::read_to_string(dir.join(file)).unwrap();
        let out = apply_template(&src, &long, &opts("", "", true))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(out.contains("message 1999"), "{file}");
    }
}

#[test]
fn python_string_methods_and_loop_controls() {
    let msgs = user("  Hello World  ");
    let src = "{% set c = messages[0].content %}[{{ c.strip() }}][{{ c.lstrip() }}][{{ c.rstrip() }}]\
               [{{ c.strip().split(' ') | join('|') }}][{{ c.strip().startswith('Hell') }}]\
               [{{ c.strip().endswith('x') }}][{{ c.upper() }}][{{ c.strip().lower() }}]\
               [{{ c.replace('World', 'there') }}][{{ 'ab cd'.title() }}]\
               {% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}";
    assert_eq!(
        render(src, &msgs).unwrap(),
        "[Hello World][Hello World  ][  Hello World][Hello|World][True][False][  HELLO WORLD  ]\
         [hello world][  Hello there  ][Ab Cd]02"
    );
    let dict = "{% set d = {'a': 1, 'b': 2} %}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('c', 'none') }}";
    assert_eq!(render(dict, &msgs).unwrap(), "a=1;b=2;none");
    let msg = "{% set m = messages[0] %}{{ m.get('tool_calls', 'none') }}|{{ m.get('role') }}|\
               {{ m.tool_calls is defined }}|{{ m.keys() | list | join(',') }}|{{ m['content'] is string }}";
    assert_eq!(
        render(msg, &msgs).unwrap(),
        "none|user|False|role,content|True"
    );
    let ns = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}";
    assert_eq!(render(ns, &msgs).unwrap(), "1");
}

#[test]
fn tojson_matches_python_json_dumps() {
    let msgs = [ChatMessage::new("user", "<a & 'b'> \"q\"\n é")];
    assert_eq!(
        render("{{ messages[0] | tojson }}", &msgs).unwrap(),
        r#"{"role": "user", "content": "<a & 'b'> \"q\"\n é"}"#
    );
    assert_eq!(
        render(
            "{{ {'x': [1, 2.5, true, none]} | tojson(indent=2) }}",
            &msgs
        )
        .unwrap(),
        "{\n  \"x\": [\n    1,\n    2.5,\n    true,\n    null\n  ]\n}"
    );
    assert_eq!(
        render("{{ {'b': 1, 'a': 'é'} | tojson(sort_keys=true, ensure_ascii=true, separators=(',', ':')) }}", &msgs)
            .unwrap(),
        r#"{"a":"\u00e9","b":1}"#
    );
}

#[test]
fn variables_and_whitespace_follow_hugging_face() {
    // trim_blocks and lstrip_blocks are on, as in transformers and llama.cpp.
    let src = "{% for m in messages %}\n    {% if true %}\n{{ bos_token }}{{ m.content }}{{ eos_token }}\n    {% endif %}\n{% endfor %}\n{% if add_generation_prompt %}\nGEN\n{% endif %}";
    assert_eq!(render(src, &user("hi")).unwrap(), "<s>hi</s>\nGEN\n");
    let t = ChatTemplate::new(src).unwrap();
    assert_eq!(t.apply(&user("hi"), &opts("", "", false)).unwrap(), "hi\n");
    // Undefined variables print as nothing and test as undefined; tools are not defined;
    // booleans print as Python writes them.
    assert_eq!(
        render("[{{ nothing }}]{{ tools is defined }}", &user("x")).unwrap(),
        "[]False"
    );
}

#[test]
fn strftime_now_gives_a_date() {
    let out = render("{{ strftime_now('%Y-%m-%d') }}", &user("x")).unwrap();
    assert_eq!(out.len(), 10, "{out}");
    assert!(out[..4].parse::<u32>().unwrap() >= 2024, "{out}");
    let t = ChatTemplate::new("{{ strftime_now('%d %b %Y %H:%M') }}").unwrap();
    let at = ChatOptions {
        now: Some(1_721_999_109),
        ..ChatOptions::default()
    };
    assert_eq!(t.apply(&user("x"), &at).unwrap(), "26 Jul 2024 13:05");
    let e = render("{{ strftime_now('%Q') }}", &user("x")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Template);
    assert!(e.message().contains("%Q"), "{e}");
}

#[test]
fn smollm2_embedded_template() {
    let model = Model::load(
        common::default_model(),
        &ModelOptions {
            vocab_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let src = model.chat_template().expect("SmolLM2 has a chat template");
    assert!(src.contains("<|im_start|>"));
    let t = ChatTemplate::from_model(&model).unwrap();
    let o = ChatOptions::for_model(&model, true);
    assert_eq!(o.bos_token, "<|im_start|>");
    assert_eq!(o.eos_token, "<|im_end|>");
    let msgs = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Hi"),
    ];
    assert_eq!(
        t.apply(&msgs, &o).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // Without a system message the template adds its default one.
    let out = t.apply(&user("Hi"), &o).unwrap();
    assert!(
        out.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
        "{out}"
    );
    assert!(
        out.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        "{out}"
    );
}
