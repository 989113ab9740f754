//! Chat messages and how templates see them: each message is a map `{role, content}` (in that
//! order, as a Python dict built from JSON) that can record whether the template read its content.
//! That record drives the system-role check in [`super::caps`].

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The speaker: `system`, `user`, `assistant`, `tool`, or any role the template knows.
    pub role: String,
    /// The text of the message.
    pub content: String,
}

impl ChatMessage {
    /// A message from a role and its content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A message as the template engine sees it.
#[derive(Debug)]
pub(crate) struct MessageValue {
    role: Value,
    content: Value,
    content_read: AtomicBool,
}

impl MessageValue {
    /// Wraps `m` for a render.
    pub(crate) fn new(m: &ChatMessage) -> Arc<MessageValue> {
        Arc::new(MessageValue {
            role: Value::from(m.role.as_str()),
            content: Value::from(m.content.as_str()),
            content_read: AtomicBool::new(false),
        })
    }

    /// Whether the template has looked up `content` since this value was made.
    pub(crate) fn content_was_read(&self) -> bool {
        self.content_read.load(Ordering::Relaxed)
    }
}

impl Object for MessageValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "role" => Some(self.role.clone()),
            "content" => {
                self.content_read.store(true, Ordering::Relaxed);
                Some(self.content.clone())
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["role", "content"])
    }
}

/// The `messages` variable for a render, and the objects behind it.
pub(crate) fn to_values(messages: &[ChatMessage]) -> (Value, Vec<Arc<MessageValue>>) {
    let objs: Vec<Arc<MessageValue>> = messages.iter().map(MessageValue::new).collect();
    let seq: Vec<Value> = objs
        .iter()
        .map(|o| Value::from_dyn_object(o.clone()))
        .collect();
    (Value::from(seq), objs)
}

/// A render context (a map of variable names to values).
pub(crate) fn context<const N: usize>(vars: [(&str, Value); N]) -> Value {
    Value::from_object(
        vars.into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<std::collections::BTreeMap<String, Value>>(),
    )
}
