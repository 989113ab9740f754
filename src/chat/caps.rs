//! What a template can do, found by rendering it on probe conversations (as llama.cpp's
//! `jinja::caps_get` does), and the input fix-ups that follow from it: a template that never
//! reads a system message's content gets the system prompt merged into the next message.

use super::message::{self, ChatMessage};
use minijinja::{Environment, Value};

/// Capabilities of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// The template renders a leading `system` message's content.
    pub supports_system_role: bool,
}

/// Probes the template held in `env` under `name`.
pub(crate) fn probe(env: &Environment<'static>, name: &str) -> Caps {
    let probe = [
        ChatMessage::new("system", "System message"),
        ChatMessage::new("user", "User message"),
    ];
    let (messages, objs) = message::to_values(&probe);
    let ctx = message::context([
        ("messages", messages),
        ("tools", Value::from(Vec::<Value>::new())),
        ("bos_token", Value::from("")),
        ("eos_token", Value::from("")),
        ("add_generation_prompt", Value::from(true)),
        ("strftime_now", super::env::strftime_now(None)),
    ]);
    // A failure (e.g. `raise_exception('System role not supported')`) is an answer, not an error.
    let _ = env.get_template(name).and_then(|t| t.render(ctx));
    Caps {
        supports_system_role: objs[0].content_was_read(),
    }
}

/// llama.cpp's `system_message_not_supported` workaround: a leading system message is joined to
/// the next message's content with a newline, or dropped when it is the only message.
pub(crate) fn merge_system_message(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut out = messages.to_vec();
    if out.first().is_some_and(|m| m.role == "system") {
        let sys = out.remove(0);
        if let Some(next) = out.first_mut() {
            next.content = format!("{}\n{}", sys.content, next.content);
        }
    }
    out
}
