//! The minijinja environment configured like the Python Jinja2 that chat templates are written
//! for (Hugging Face transformers' `ImmutableSandboxedEnvironment(trim_blocks=True,
//! lstrip_blocks=True, extensions=[loopcontrols])`, which is also what llama.cpp's engine
//! mimics): Python string/dict/list methods, `raise_exception`, Python-style `tojson`, no
//! auto-escaping, a step limit; `strftime_now` is added per render (see [`strftime_now`]). Also
//! maps minijinja errors to chord's `Template` error.

use super::{clock, json};
use crate::error::{Error as ChordError, ErrorCode};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Value};

/// The name the template carries in error messages.
pub(crate) const TEMPLATE_NAME: &str = "chat_template";

/// Engine steps one render may take. Real templates take a few hundred per message; the limit
/// stops a template (which comes from a model file) that would loop for minutes.
pub(crate) const MAX_STEPS: u64 = 20_000_000;

/// Prefix of the detail of errors raised by `raise_exception`.
const RAISED: &str = "raise_exception: ";

/// A fresh environment holding `source` as [`TEMPLATE_NAME`].
pub(crate) fn environment(source: String) -> Result<Environment<'static>, ChordError> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| template_error(&e))?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(MAX_STEPS));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{RAISED}{msg}"),
        ))
    });
    env.add_filter("tojson", json::tojson);
    env.add_template_owned(TEMPLATE_NAME, source)
        .map_err(|e| template_error(&e))?;
    Ok(env)
}

/// The `strftime_now(format)` function of one render, fixed at `now` (Unix seconds) when given.
pub(crate) fn strftime_now(now: Option<i64>) -> Value {
    Value::from_function(move |fmt: String| clock::strftime_now(now, &fmt))
}

/// A chord `Template` error naming what failed and, when known, the line.
pub(crate) fn template_error(e: &Error) -> ChordError {
    let detail = e.detail().unwrap_or("");
    let mut msg = match detail.strip_prefix(RAISED) {
        Some(raised) => format!("the chat template raised an exception: {raised}"),
        None if e.kind() == ErrorKind::OutOfFuel => {
            format!("the chat template takes too long (more than {MAX_STEPS} steps)")
        }
        None if e.kind() == ErrorKind::SyntaxError => {
            format!("the chat template does not parse: {detail}")
        }
        None if detail.is_empty() => format!("the chat template failed: {}", e.kind()),
        None => format!("the chat template failed: {}: {detail}", e.kind()),
    };
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        msg.push_str(&format!("; caused by: {inner}"));
        source = inner.source();
    }
    ChordError::new(ErrorCode::Template, msg)
}
