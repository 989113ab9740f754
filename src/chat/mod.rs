//! Chat templates: turns a conversation into the prompt text a model was trained on by rendering
//! the model's Jinja template (GGUF key `tokenizer.chat_template`) or one the caller gives, with
//! minijinja configured like Python Jinja2 (module `env`). The output equals what llama.cpp's Jinja
//! path (`common_chat_templates_apply`) produces for the same inputs, including its fix-up for
//! templates without a system role (module `caps`, [`Caps`]).
//!
//! Variables a template sees: `messages` (a list of `{role, content}` maps),
//! `add_generation_prompt`, `bos_token` and `eos_token` (the text of the model's BOS/EOS tokens),
//! as Hugging Face transformers passes them. Functions: `raise_exception(msg)`,
//! `strftime_now(fmt)`, `namespace`, `range`, `dict`, plus Python string/list/dict methods.

mod caps;
mod clock;
mod env;
mod json;
mod message;

pub use caps::Caps;
pub use message::ChatMessage;

use crate::error::Result;
use crate::model::Model;
use minijinja::{Environment, Value};

/// The inputs of a render besides the messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// End the prompt with the opening of an assistant turn.
    pub add_generation_prompt: bool,
    /// The value of `bos_token` (the model's BOS text, or empty).
    pub bos_token: String,
    /// The value of `eos_token` (the model's EOS text, or empty).
    pub eos_token: String,
    /// The time `strftime_now` formats, in Unix seconds (UTC); `None` for the current time.
    pub now: Option<i64>,
}

impl ChatOptions {
    /// Options carrying `model`'s BOS and EOS token text (empty when the vocabulary has none).
    pub fn for_model(model: &Model, add_generation_prompt: bool) -> ChatOptions {
        let tok = model.tokenizer();
        let text = |id: Option<u32>| {
            id.filter(|&t| (t as usize) < tok.n_vocab())
                .map(|t| String::from_utf8_lossy(&tok.token_to_piece(t, true)).into_owned())
                .unwrap_or_default()
        };
        ChatOptions {
            add_generation_prompt,
            bos_token: text(tok.bos()),
            eos_token: text(tok.eos()),
            now: None,
        }
    }
}

/// A parsed chat template. Parse once, apply many times; shareable between threads.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    caps: Caps,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("caps", &self.caps)
            .finish()
    }
}

impl ChatTemplate {
    /// Parses `source`; a syntax error is a `Template` error naming the problem and its line.
    pub fn new(source: &str) -> Result<ChatTemplate> {
        let env = env::environment(source.to_string())?;
        let caps = caps::probe(&env, env::TEMPLATE_NAME);
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            caps,
        })
    }

    /// The embedded template of `model`, or a `NotFound` error when its file has none.
    pub fn from_model(model: &Model) -> Result<ChatTemplate> {
        match model.chat_template() {
            Some(src) => ChatTemplate::new(src),
            None => crate::bail!(
                NotFound,
                "the model has no chat template (GGUF key tokenizer.chat_template)"
            ),
        }
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What the template supports, as found when it was parsed.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Renders `messages`. A failure while rendering (including the template's own
    /// `raise_exception`) is a `Template` error naming what failed and, when known, the line.
    pub fn apply(&self, messages: &[ChatMessage], opts: &ChatOptions) -> Result<String> {
        let merged;
        let messages = if self.caps.supports_system_role {
            messages
        } else {
            merged = caps::merge_system_message(messages);
            &merged
        };
        let (values, _) = message::to_values(messages);
        let ctx = message::context([
            ("messages", values),
            (
                "add_generation_prompt",
                Value::from(opts.add_generation_prompt),
            ),
            ("bos_token", Value::from(opts.bos_token.as_str())),
            ("eos_token", Value::from(opts.eos_token.as_str())),
            ("strftime_now", env::strftime_now(opts.now)),
        ]);
        let tmpl = self
            .env
            .get_template(env::TEMPLATE_NAME)
            .map_err(|e| env::template_error(&e))?;
        tmpl.render(ctx).map_err(|e| env::template_error(&e))
    }
}

/// Parses `source` and renders `messages` in one step.
pub fn apply_template(
    source: &str,
    messages: &[ChatMessage],
    opts: &ChatOptions,
) -> Result<String> {
    ChatTemplate::new(source)?.apply(messages, opts)
}
