//! Grammar-constrained generation: GBNF grammars with llama.cpp's syntax and semantics, compiled
//! once into a [`Grammar`] (immutable, shared by any number of generations), each generation
//! following it with its own [`GrammarState`].
//!
//! * `parse`: the GBNF text to rules, element for element as llama.cpp's parser builds them.
//! * `state`: the pushdown stacks of a generation: which tokens may come next, and accepting one.
//! * `trie`: the vocabulary as a trie of code points, to check many tokens at once.
//! * `schema`, [`json_schema`]: JSON Schema documents read and converted to GBNF as llama.cpp's
//!   `json_schema_to_grammar` converts them (rule for rule), with a strict mode that refuses what
//!   the grammar could only loosen.
//!
//! Written here rather than taken from a library: the grammar engines in Rust (llguidance, the
//! `gbnf` crates) implement other semantics (llguidance lexes greedily, which rejects strings that
//! llama.cpp's grammars accept), and hosts bring llama.cpp's grammars and expect llama.cpp's
//! behaviour, token elements (`<[id]>`, `!<[id]>`) included. The engine is llama.cpp's algorithm: a
//! set of stacks of grammar positions, advanced one code point at a time, with a UTF-8 decoder that
//! carries a character split between tokens.

pub mod json_schema;
mod parse;
mod schema;
mod state;
mod trie;

pub use state::GrammarState;
pub use trie::TokenTrie;

use crate::error::{Error, ErrorCode, Result};
use crate::tokenizer::Tokenizer;
use parse::ParseError;
pub use parse::TokenLookup;

/// One element of a rule, as llama.cpp's `llama_grammar_element`: a rule is a list of
/// alternatives separated by `Alt` and closed by `End`; a character class is a `Char` or
/// `CharNot` followed by `CharAlt` and `RangeUpper` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Elem {
    /// End of the rule.
    End,
    /// Start of the next alternative.
    Alt,
    /// A reference to the rule with this id.
    Rule(u32),
    /// A character (code point), or the first of a class.
    Char(u32),
    /// The first character of a negated class (`[^...]`).
    CharNot(u32),
    /// Makes the preceding character the lower end of an inclusive range up to this one.
    RangeUpper(u32),
    /// Another character of the same class.
    CharAlt(u32),
    /// Any character (`.`).
    Any,
    /// This token (`<[id]>`).
    Token(u32),
    /// Any token but this one (`!<[id]>`).
    NotToken(u32),
}

impl Elem {
    fn is_end(self) -> bool {
        matches!(self, Elem::End | Elem::Alt)
    }
    fn is_token(self) -> bool {
        matches!(self, Elem::Token(_) | Elem::NotToken(_))
    }
}

/// A compiled grammar: its rules laid end to end, and the stacks a generation starts from.
#[derive(Debug)]
pub struct Grammar {
    /// Every rule's elements, rule after rule.
    elems: Vec<Elem>,
    /// Where each rule (by symbol id) starts in `elems`.
    rule_start: Vec<u32>,
    /// Symbol names by id.
    names: Vec<String>,
    /// The stacks before anything was generated.
    initial: Vec<Vec<u32>>,
}

/// `line L, column C` (both from 1, the column in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn grammar_error(text: &str, e: ParseError) -> Error {
    let (line, col) = line_col(text, e.offset);
    Error::new(
        ErrorCode::Grammar,
        format!("grammar line {line}, column {col}: {}", e.message),
    )
}

impl Grammar {
    /// Parses and compiles `text` with `root` as the start rule. `lookup` resolves `<text>` token
    /// references (pass the model's vocabulary; without it only `<[id]>` tokens parse). A syntax
    /// error, an undefined rule, a missing root and left recursion are `Grammar` errors that give
    /// the line and column.
    pub fn new(text: &str, root: &str, lookup: Option<TokenLookup<'_>>) -> Result<Grammar> {
        let parsed = parse::parse(text, lookup).map_err(|e| grammar_error(text, e))?;
        if parsed.rules.is_empty() {
            crate::bail!(Grammar, "the grammar has no rules");
        }
        let Some(root_id) = parsed.names.iter().position(|n| n == root) else {
            crate::bail!(Grammar, "the grammar has no rule named '{root}'");
        };
        if let Some(r) = left_recursive(&parsed.rules).or_else(|| growing_left_cycle(&parsed.rules))
        {
            return Err(grammar_error(
                text,
                ParseError {
                    offset: parsed.defined_at[r],
                    message: format!("rule '{}' is left-recursive", parsed.names[r]),
                },
            ));
        }
        let mut elems = Vec::new();
        let mut rule_start = Vec::with_capacity(parsed.rules.len());
        for r in &parsed.rules {
            rule_start.push(elems.len() as u32);
            elems.extend_from_slice(r);
        }
        let mut g = Grammar {
            elems,
            rule_start,
            names: parsed.names,
            initial: Vec::new(),
        };
        let mut initial = state::Stacks::default();
        let mut pos = g.rule_start[root_id];
        loop {
            let stack = if g.elems[pos as usize].is_end() {
                vec![]
            } else {
                vec![pos]
            };
            g.advance(stack, &mut initial)?;
            while !g.elems[pos as usize].is_end() {
                pos += 1;
            }
            if g.elems[pos as usize] == Elem::Alt {
                pos += 1;
            } else {
                break;
            }
        }
        g.initial = initial.into_vec();
        Ok(g)
    }

    /// [`Grammar::new`] with `<text>` tokens resolved in `vocab` (text that tokenizes, special
    /// tokens recognised, to exactly one token, as llama.cpp resolves them). The vocabulary's
    /// token trie is made now if it was not (tens of milliseconds for 150,000 tokens), so that
    /// the first generation under the grammar does not pay it.
    pub fn for_vocab(text: &str, root: &str, vocab: Option<&Tokenizer>) -> Result<Grammar> {
        let Some(vocab) = vocab else {
            return Grammar::new(text, root, None);
        };
        let lookup = |t: &str| match vocab.encode(t, false, true) {
            Ok(ids) if ids.len() == 1 => Some(ids[0]),
            _ => None,
        };
        let g = Grammar::new(text, root, Some(&lookup))?;
        vocab.token_trie();
        Ok(g)
    }

    /// Compiles the grammar of a JSON Schema (see [`json_schema_to_gbnf`]); with `vocab`, its
    /// token trie is made now, as in [`Grammar::for_vocab`].
    pub fn from_json_schema(
        schema: &str,
        strict: bool,
        vocab: Option<&Tokenizer>,
    ) -> Result<Grammar> {
        let text = json_schema_to_gbnf(schema, strict)?;
        // A pattern that repeats what can match nothing (`(a?)*`, `(a)?+`) converts, as in
        // llama.cpp, to a left-recursive grammar that the compiler refuses; say where it came from.
        Grammar::for_vocab(&text, "root", vocab).map_err(|e| {
            Error::new(
                e.code(),
                format!(
                    "the grammar converted from the JSON Schema does not compile: {}",
                    e.message()
                ),
            )
        })
    }

    /// The rules by symbol id with their names, as llama.cpp's parser lists them (for tests and
    /// printing).
    pub fn rules(&self) -> Vec<(&str, &[Elem])> {
        let mut out = Vec::with_capacity(self.names.len());
        for (id, name) in self.names.iter().enumerate() {
            let start = self.rule_start[id] as usize;
            let end = self
                .rule_start
                .get(id + 1)
                .map_or(self.elems.len(), |&e| e as usize);
            out.push((name.as_str(), &self.elems[start..end]));
        }
        out
    }
}

/// Converts a JSON Schema document (JSON text) into GBNF text with the rule `root`, as llama.cpp's
/// `json_schema_to_grammar`. `{}` is any JSON value.
/// Strict mode (`strict`) refuses the features the grammar cannot express (see `schema`) and
/// patterns it cannot convert, instead of accepting more than the schema does; lenient mode
/// accepts and converts exactly what llama.cpp does, and logs a warning for each place where the
/// grammar is looser than the schema. Errors are `Grammar`, with the line and column of a JSON
/// syntax error or the JSON path of a schema error.
pub fn json_schema_to_gbnf(schema: &str, strict: bool) -> Result<String> {
    let value: serde_json::Value = serde_json::from_str(schema).map_err(|e| {
        let msg = e.to_string();
        let at = format!(" at line {} column {}", e.line(), e.column());
        Error::new(
            ErrorCode::Grammar,
            format!(
                "JSON Schema line {}, column {}: {}",
                e.line(),
                e.column(),
                msg.strip_suffix(&at).unwrap_or(&msg)
            ),
        )
    })?;
    let doc = schema::read(&value, strict).map_err(|e| Error::new(ErrorCode::Grammar, e))?;
    let mut conv = json_schema::Converter::new(&doc);
    conv.visit(&doc.root, "");
    if !conv.errors().is_empty() {
        crate::bail!(
            Grammar,
            "JSON Schema conversion failed: {}",
            conv.errors().join("; ")
        );
    }
    if strict && !conv.warnings.is_empty() {
        crate::bail!(Grammar, "JSON Schema: {}", conv.warnings.join("; "));
    }
    for w in &conv.warnings {
        crate::log!(Warn, "JSON Schema: {w}: any string is accepted there");
    }
    Ok(conv.grammar())
}

/// The first rule found on a left-recursive cycle (a rule that can reach itself before any
/// terminal), with llama.cpp's notion of "may be empty": a rule with an empty alternative.
/// Depth-first with an explicit stack, so that a long chain of rules cannot overflow the thread's.
fn left_recursive(rules: &[Vec<Elem>]) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        New,
        Open,
        Done,
    }
    let may_be_empty = |r: &[Elem]| {
        let mut at_start = true;
        for e in r {
            if e.is_end() {
                if at_start {
                    return true;
                }
                at_start = true;
            } else {
                at_start = false;
            }
        }
        false
    };
    let n = rules.len();
    let mut color = vec![Color::New; n];
    let empty: Vec<bool> = rules.iter().map(|r| may_be_empty(r)).collect();
    for start in 0..n {
        if color[start] != Color::New {
            continue;
        }
        // (rule, next element, still at the left edge of the alternative)
        let mut stack = vec![(start, 0usize, true)];
        color[start] = Color::Open;
        while let Some(top) = stack.last_mut() {
            let (r, i, left) = *top;
            if i == rules[r].len() {
                color[r] = Color::Done;
                stack.pop();
                if let Some(parent) = stack.last_mut() {
                    if !empty[r] {
                        parent.2 = false;
                    }
                }
                continue;
            }
            top.1 += 1;
            match rules[r][i] {
                Elem::Rule(x) if left => {
                    let x = x as usize;
                    match color[x] {
                        Color::Open => return Some(x),
                        Color::Done => {
                            if !empty[x] {
                                top.2 = false;
                            }
                        }
                        Color::New => {
                            color[x] = Color::Open;
                            stack.push((x, 0, true));
                        }
                    }
                }
                e if e.is_end() => top.2 = true,
                _ => top.2 = false,
            }
        }
    }
    None
}

/// A rule on a cycle of leftmost references that grows the parse stack: `r` refers to `x` with
/// more elements after the reference, and `x` leads back to `r` through leftmost references,
/// where "leftmost" looks past rules that can match nothing, directly or through other such rules.
/// Expanding such a cycle never ends. [`left_recursive`] (llama.cpp's check) misses the cycles
/// that pass through a rule that can match nothing only through another rule: `t ::= ws e ")"`,
/// `e ::= t "+"`, `ws ::= [ ]*` (found by fuzzing; llama.cpp expands it until memory runs out).
/// A cycle of references in last position alone (`a ::= b`, `b ::= a | "x"`) does not grow the
/// stack, and is left to the expansion's check for repeated stacks, as llama.cpp accepts it.
fn growing_left_cycle(rules: &[Vec<Elem>]) -> Option<usize> {
    let n = rules.len();
    let mut empty = vec![false; n];
    let mut changed = true;
    while changed {
        changed = false;
        for (r, rule) in rules.iter().enumerate() {
            if empty[r] {
                continue;
            }
            let mut all_empty = true;
            for &e in rule {
                match e {
                    e if e.is_end() => {
                        if all_empty {
                            empty[r] = true;
                            changed = true;
                            break;
                        }
                        all_empty = true;
                    }
                    Elem::Rule(x) if empty[x as usize] => {}
                    _ => all_empty = false,
                }
            }
        }
    }
    // Leftmost references: (to, grows the stack).
    let mut edges: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    for (r, rule) in rules.iter().enumerate() {
        let mut leftmost = true;
        for (i, &e) in rule.iter().enumerate() {
            match e {
                e if e.is_end() => leftmost = true,
                Elem::Rule(x) if leftmost => {
                    edges[r].push((x as usize, !rule[i + 1].is_end()));
                    leftmost = empty[x as usize];
                }
                _ => leftmost = false,
            }
        }
    }
    let mut seen = vec![usize::MAX; n];
    for (r, out) in edges.iter().enumerate() {
        for &(x, grows) in out {
            if !grows {
                continue;
            }
            // Is r reachable from x? (`seen` marks the rules visited for this r.)
            let mut todo = vec![x];
            while let Some(y) = todo.pop() {
                if y == r {
                    return Some(r);
                }
                if seen[y] != r {
                    seen[y] = r;
                    todo.extend(edges[y].iter().map(|&(z, _)| z));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
