//! A chat template and messages from arbitrary bytes, rendered as `chord_chat_apply` renders
//! them. The input is `template \0 role \x01 content \0 role \x01 content ...`; the first byte
//! of the messages part also sets `add_generation_prompt`. Templates run under minijinja's fuel
//! and recursion limits: a template that loops must end in a `Template` error, not a hang.
#![no_main]

#[path = "common.rs"]
mod common;

use chord::chat::{ChatMessage, ChatOptions, ChatTemplate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (template, mut rest) = common::split(data, 0);
    let Ok(template) = std::str::from_utf8(template) else {
        return;
    };
    let agp = rest.first().is_some_and(|b| b & 1 != 0);
    let mut messages = Vec::new();
    while !rest.is_empty() && messages.len() < 16 {
        let (msg, tail) = common::split(rest, 0);
        rest = tail;
        let (role, content) = common::split(msg, 1);
        messages.push(ChatMessage::new(
            String::from_utf8_lossy(role),
            String::from_utf8_lossy(content),
        ));
    }
    let Ok(t) = ChatTemplate::new(template) else {
        return;
    };
    let opts = ChatOptions {
        add_generation_prompt: agp,
        bos_token: "<s>".into(),
        eos_token: "</s>".into(),
        now: Some(1_700_000_000),
    };
    let _ = t.apply(&messages, &opts);
});
