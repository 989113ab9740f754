//! GBNF text to rules: llama.cpp's grammar syntax (`llama_grammar_parser`), compiled into the same
//! element lists, rule for rule and symbol id for symbol id, so that the parser tests of llama.cpp
//! check this parser too.
//!
//! Syntax: `name ::= alternatives` rules separated by newlines (inside parentheses newlines are
//! free), `|` alternatives, `"literal"`, `[a-z]` and `[^...]` classes, `.` any character, `( )`
//! groups, `* + ? {m} {m,} {m,n}` repetitions (rewritten into helper rules as llama.cpp does,
//! with its limit of 2000), `<[id]>` and `<text>` tokens and `!` before a token for "any token
//! but", `#` comments, escapes `\x.. \u.... \U........ \t \r \n \\ \" \[ \] \-`.

use super::Elem;
use std::collections::HashMap;

/// llama.cpp's bound on repetition counts and on the rules a nested repetition generates.
const MAX_REPETITIONS: u64 = 2000;

/// A parse error at a byte offset of the grammar text.
#[derive(Debug)]
pub struct ParseError {
    /// Byte offset in the text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

type PResult<T> = std::result::Result<T, ParseError>;

/// The rules of a grammar text by symbol id.
#[derive(Debug)]
pub struct Parsed {
    /// Symbol name of each id, as llama.cpp names them (`root`, `root_1`, ...).
    pub names: Vec<String>,
    /// The rule of each id, ending with [`Elem::End`].
    pub rules: Vec<Vec<Elem>>,
    /// Where each rule is defined (its own, or for a helper rule its parent's, definition).
    pub defined_at: Vec<usize>,
}

/// Resolves `<text>` token references to one token id (`None`: not exactly one token).
pub type TokenLookup<'a> = &'a dyn Fn(&str) -> Option<u32>;

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    ids: HashMap<String, u32>,
    names: Vec<String>,
    first_use: Vec<usize>,
    rules: Vec<Option<Vec<Elem>>>,
    defined_at: Vec<usize>,
    lookup: Option<TokenLookup<'a>>,
    /// The definition being parsed (for the helper rules it generates).
    current_def: usize,
    /// How deep the groups being parsed are nested.
    depth: usize,
}

/// Deepest nesting of groups (the parser recurses into each).
const MAX_DEPTH: usize = 256;

fn err<T>(offset: usize, message: impl Into<String>) -> PResult<T> {
    Err(ParseError {
        offset,
        message: message.into(),
    })
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Parses a grammar text. `lookup` resolves `<text>` tokens; without it only `<[id]>` works.
pub fn parse(text: &str, lookup: Option<TokenLookup<'_>>) -> PResult<Parsed> {
    if let Some(i) = text.bytes().position(|b| b == 0) {
        return err(i, "the grammar contains a NUL byte");
    }
    let mut p = Parser {
        text,
        s: text.as_bytes(),
        ids: HashMap::new(),
        names: Vec::new(),
        first_use: Vec::new(),
        rules: Vec::new(),
        defined_at: Vec::new(),
        lookup,
        current_def: 0,
        depth: 0,
    };
    let mut pos = p.space(0, true);
    while pos < p.s.len() {
        pos = p.rule(pos)?;
    }
    let mut rules = Vec::with_capacity(p.names.len());
    for (id, r) in p.rules.iter_mut().enumerate() {
        match r.take() {
            Some(r) => rules.push(r),
            None => return err(p.first_use[id], format!("undefined rule '{}'", p.names[id])),
        }
    }
    if rules.len() < p.names.len() {
        let id = rules.len();
        return err(p.first_use[id], format!("undefined rule '{}'", p.names[id]));
    }
    Ok(Parsed {
        names: p.names,
        rules,
        defined_at: p.defined_at,
    })
}

impl<'a> Parser<'a> {
    /// The byte at `i`, or 0 past the end (the C parser's terminator).
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn new_id(&mut self, name: String, offset: usize) -> u32 {
        let id = self.names.len() as u32;
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        self.first_use.push(offset);
        self.defined_at.push(self.current_def);
        id
    }

    /// The id of a named symbol, created at its first mention.
    fn symbol(&mut self, name: &str, offset: usize) -> u32 {
        match self.ids.get(name) {
            Some(&id) => id,
            None => self.new_id(name.to_string(), offset),
        }
    }

    /// A new helper symbol `base_N`, N being its id.
    fn generated(&mut self, base: &str, offset: usize) -> u32 {
        let name = format!("{base}_{}", self.names.len());
        self.new_id(name, offset)
    }

    fn add_rule(&mut self, id: u32, rule: Vec<Elem>) {
        let id = id as usize;
        if self.rules.len() <= id {
            self.rules.resize(id + 1, None);
        }
        self.rules[id] = Some(rule);
    }

    /// Skips blanks and `#` comments, and newlines when `newline_ok`.
    fn space(&self, mut pos: usize, newline_ok: bool) -> usize {
        loop {
            match self.at(pos) {
                b' ' | b'\t' => pos += 1,
                b'\r' | b'\n' if newline_ok => pos += 1,
                b'#' => {
                    while !matches!(self.at(pos), 0 | b'\r' | b'\n') {
                        pos += 1;
                    }
                }
                _ => return pos,
            }
        }
    }

    fn name(&self, pos: usize) -> PResult<usize> {
        let mut end = pos;
        while is_word(self.at(end)) {
            end += 1;
        }
        if end == pos {
            return err(pos, "expecting a rule name");
        }
        Ok(end)
    }

    fn int(&self, pos: usize) -> PResult<(u64, usize)> {
        let mut end = pos;
        while self.at(end).is_ascii_digit() {
            end += 1;
        }
        if end == pos {
            return err(pos, "expecting an integer");
        }
        match self.text[pos..end].parse::<u64>() {
            Ok(v) => Ok((v, end)),
            Err(_) => err(pos, "integer out of range"),
        }
    }

    fn hex(&self, pos: usize, size: usize) -> PResult<(u32, usize)> {
        let mut v = 0u32;
        for i in 0..size {
            let Some(d) = (self.at(pos + i) as char).to_digit(16) else {
                return err(pos, format!("expecting {size} hex digits"));
            };
            v = (v << 4) | d;
        }
        Ok((v, pos + size))
    }

    /// One character of a literal or class, escapes decoded.
    fn char(&self, pos: usize) -> PResult<(u32, usize)> {
        match self.at(pos) {
            0 => err(pos, "unexpected end of input"),
            b'\\' => match self.at(pos + 1) {
                b'x' => self.hex(pos + 2, 2),
                b'u' => self.hex(pos + 2, 4),
                b'U' => self.hex(pos + 2, 8),
                b't' => Ok(('\t' as u32, pos + 2)),
                b'r' => Ok(('\r' as u32, pos + 2)),
                b'n' => Ok(('\n' as u32, pos + 2)),
                c @ (b'\\' | b'"' | b'[' | b']' | b'-') => Ok((c as u32, pos + 2)),
                _ => err(pos, "unknown escape"),
            },
            _ => {
                let c = self.text[pos..].chars().next().expect("not at the end");
                Ok((c as u32, pos + c.len_utf8()))
            }
        }
    }

    /// `<[id]>` or `<text>` (one token of the vocabulary) at `pos`.
    fn token(&self, pos: usize) -> PResult<(u32, usize)> {
        if self.at(pos) != b'<' {
            return err(pos, "expecting '<'");
        }
        if self.at(pos + 1) == b'[' {
            let (id, end) = self.int(pos + 2)?;
            let Ok(id) = u32::try_from(id) else {
                return err(pos + 2, "token id out of range");
            };
            if self.at(end) != b']' {
                return err(end, "expecting ']'");
            }
            if self.at(end + 1) != b'>' {
                return err(end + 1, "expecting '>'");
            }
            return Ok((id, end + 2));
        }
        let Some(close) = self.s[pos..].iter().position(|&b| b == b'>') else {
            return err(pos, "expecting '>'");
        };
        let end = pos + close + 1;
        let tok_text = &self.text[pos..end];
        let Some(lookup) = self.lookup else {
            return err(
                pos,
                format!("no vocabulary to resolve token {tok_text}: give the grammar a model, or write <[id]>"),
            );
        };
        match lookup(tok_text) {
            Some(id) => Ok((id, end)),
            None => err(
                pos,
                format!("{tok_text} is not one token of the vocabulary"),
            ),
        }
    }

    fn rule(&mut self, pos: usize) -> PResult<usize> {
        let name_end = self.name(pos)?;
        let name = self.text[pos..name_end].to_string();
        let id = self.symbol(&name, pos);
        self.current_def = pos;
        self.defined_at[id as usize] = pos;
        let p = self.space(name_end, false);
        if !self.s[p..].starts_with(b"::=") {
            return err(p, "expecting ::=");
        }
        let p = self.space(p + 3, true);
        let mut p = self.alternates(p, &name, id, false)?;
        match self.at(p) {
            b'\r' => p += if self.at(p + 1) == b'\n' { 2 } else { 1 },
            b'\n' => p += 1,
            0 => {}
            _ => return err(p, "expecting newline or end"),
        }
        Ok(self.space(p, true))
    }

    fn alternates(&mut self, pos: usize, name: &str, id: u32, nested: bool) -> PResult<usize> {
        let mut rule = Vec::new();
        let mut p = self.sequence(pos, name, &mut rule, nested)?;
        while self.at(p) == b'|' {
            rule.push(Elem::Alt);
            p = self.space(p + 1, true);
            p = self.sequence(p, name, &mut rule, nested)?;
        }
        rule.push(Elem::End);
        self.add_rule(id, rule);
        Ok(p)
    }

    fn sequence(
        &mut self,
        pos: usize,
        name: &str,
        rule: &mut Vec<Elem>,
        nested: bool,
    ) -> PResult<usize> {
        let mut last_start = rule.len();
        // How many rules the last item stands for (a group's helper rules, times the repetitions
        // already applied): llama.cpp refuses a repetition that would copy more than 2000.
        let mut n_prev: u64 = 1;
        let mut p = pos;
        loop {
            let c = self.at(p);
            match c {
                b'"' => {
                    p += 1;
                    last_start = rule.len();
                    n_prev = 1;
                    while self.at(p) != b'"' {
                        let (ch, next) = self.char(p)?;
                        rule.push(Elem::Char(ch));
                        p = next;
                    }
                    p = self.space(p + 1, nested);
                }
                b'[' => {
                    p += 1;
                    let negated = self.at(p) == b'^';
                    if negated {
                        p += 1;
                    }
                    last_start = rule.len();
                    n_prev = 1;
                    while self.at(p) != b']' {
                        let (ch, next) = self.char(p)?;
                        p = next;
                        rule.push(match (rule.len() > last_start, negated) {
                            (true, _) => Elem::CharAlt(ch),
                            (false, true) => Elem::CharNot(ch),
                            (false, false) => Elem::Char(ch),
                        });
                        if self.at(p) == b'-' && self.at(p + 1) != b']' {
                            if self.at(p + 1) == 0 {
                                return err(p + 1, "unexpected end of input");
                            }
                            let (hi, next) = self.char(p + 1)?;
                            p = next;
                            rule.push(Elem::RangeUpper(hi));
                        }
                    }
                    p = self.space(p + 1, nested);
                }
                b'<' | b'!' => {
                    let not = c == b'!';
                    let (id, end) = self.token(if not { p + 1 } else { p })?;
                    last_start = rule.len();
                    n_prev = 1;
                    rule.push(if not {
                        Elem::NotToken(id)
                    } else {
                        Elem::Token(id)
                    });
                    p = self.space(end, nested);
                }
                c if is_word(c) => {
                    let end = self.name(p)?;
                    let text = self.text;
                    let id = self.symbol(&text[p..end], p);
                    p = self.space(end, nested);
                    last_start = rule.len();
                    n_prev = 1;
                    rule.push(Elem::Rule(id));
                }
                b'(' => {
                    let open = p;
                    if self.depth == MAX_DEPTH {
                        return err(p, format!("groups nested more than {MAX_DEPTH} deep"));
                    }
                    p = self.space(p + 1, true);
                    let before = self.names.len() as u64;
                    let sub = self.generated(name, open);
                    self.depth += 1;
                    p = self.alternates(p, name, sub, true)?;
                    self.depth -= 1;
                    n_prev = (self.names.len() as u64 - before).max(1);
                    last_start = rule.len();
                    rule.push(Elem::Rule(sub));
                    if self.at(p) != b')' {
                        return err(p, "expecting ')'");
                    }
                    p = self.space(p + 1, nested);
                }
                b'.' => {
                    last_start = rule.len();
                    n_prev = 1;
                    rule.push(Elem::Any);
                    p = self.space(p + 1, nested);
                }
                b'*' | b'+' | b'?' => {
                    let at = p;
                    p = self.space(p + 1, nested);
                    let (min, max) = match c {
                        b'*' => (0, None),
                        b'+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    self.repeat(at, name, rule, last_start, &mut n_prev, min, max)?;
                }
                b'{' => {
                    let at = p;
                    p = self.space(p + 1, nested);
                    if !self.at(p).is_ascii_digit() {
                        return err(p, "expecting an integer");
                    }
                    let (min, end) = self.int(p)?;
                    p = self.space(end, nested);
                    let mut max = None;
                    match self.at(p) {
                        b'}' => {
                            max = Some(min);
                            p = self.space(p + 1, nested);
                        }
                        b',' => {
                            p = self.space(p + 1, nested);
                            if self.at(p).is_ascii_digit() {
                                let (m, end) = self.int(p)?;
                                max = Some(m);
                                p = self.space(end, nested);
                            }
                            if self.at(p) != b'}' {
                                return err(p, "expecting '}'");
                            }
                            p = self.space(p + 1, nested);
                        }
                        _ => return err(p, "expecting ',' or '}'"),
                    }
                    if min > MAX_REPETITIONS {
                        return err(at, format!("more than {MAX_REPETITIONS} repetitions"));
                    }
                    if max.is_some_and(|m| m < min) {
                        return err(at, "the maximum repetition count is below the minimum");
                    }
                    // As llama.cpp: a larger maximum means no maximum.
                    let max = max.filter(|&m| m <= MAX_REPETITIONS);
                    self.repeat(at, name, rule, last_start, &mut n_prev, min, max)?;
                }
                _ => return Ok(p),
            }
        }
    }

    /// Rewrites the last item `S` (from `last_start`) for `S{min,max}`: `min` copies, then a chain
    /// of optional helper rules (`S'(k) ::= S S'(k-1) |`), or one recursive helper for no maximum.
    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &mut self,
        at: usize,
        name: &str,
        rule: &mut Vec<Elem>,
        last_start: usize,
        n_prev: &mut u64,
        min: u64,
        max: Option<u64>,
    ) -> PResult<()> {
        if last_start == rule.len() {
            return err(at, "expecting an item before */+/?/{");
        }
        let item: Vec<Elem> = rule[last_start..].to_vec();
        let total = match max {
            Some(m) if m > 0 => m,
            _ if min > 0 => min,
            _ => 1,
        };
        if n_prev.saturating_mul(total) > MAX_REPETITIONS {
            return err(
                at,
                format!("this repetition would generate more than {MAX_REPETITIONS} rules"),
            );
        }
        if min == 0 {
            rule.truncate(last_start);
        } else {
            for _ in 1..min {
                rule.extend_from_slice(&item);
            }
        }
        let n_opt = match max {
            None => 1,
            Some(m) => m.saturating_sub(min),
        };
        let mut last_rec = 0;
        for i in 0..n_opt {
            let id = self.generated(name, at);
            let mut rec = item.clone();
            if max.is_none() {
                rec.push(Elem::Rule(id));
            } else if i > 0 {
                rec.push(Elem::Rule(last_rec));
            }
            rec.extend([Elem::Alt, Elem::End]);
            self.add_rule(id, rec);
            last_rec = id;
        }
        if n_opt > 0 {
            rule.push(Elem::Rule(last_rec));
        }
        *n_prev = n_prev.saturating_mul(total);
        Ok(())
    }
}
