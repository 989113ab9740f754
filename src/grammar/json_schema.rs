//! JSON Schema to GBNF, following llama.cpp's `json_schema_to_grammar` rule for rule: the same
//! rule names and texts, so that llama.cpp's conversion tests check this one, and a grammar made
//! by either runtime means the same. Whitespace between tokens is llama.cpp's `space` rule (at most
//! one space, or up to two newlines and 20 blanks).
//!
//! The pieces: [`build_repetition`] (counted items with separators), [`min_max_int`] (integer
//! ranges as digit patterns), `pattern` (a regular expression to rules: literals, classes, groups,
//! alternation, `* + ? {m,n}`, `.`), `not_strings` (object keys other than the named ones) and the
//! visitor over a [`Document`].

use super::schema::{Document, Format, Node};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

const SPACE_RULE: &str = r#"| " " | "\n"{1,2} [ \t]{0,20}"#;

/// A rule of the built-in library: its text and the rules it uses.
struct Builtin {
    content: &'static str,
    deps: &'static [&'static str],
}

fn primitive(name: &str) -> Option<Builtin> {
    let (content, deps): (&str, &[&str]) = match name {
        "boolean" => (r#"("true" | "false")"#, &[]),
        "decimal-part" => ("[0-9]{1,16}", &[]),
        "integral-part" => ("[0] | [1-9] [0-9]{0,15}", &[]),
        "number" => (
            r#"("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)?"#,
            &["integral-part", "decimal-part"],
        ),
        "integer" => (r#"("-"? integral-part)"#, &["integral-part"]),
        "value" => (
            "object | array | string | number | boolean | null",
            &["object", "array", "string", "number", "boolean", "null"],
        ),
        "object" => (
            r#""{" space ( string ":" space value ("," space string ":" space value)* )? space "}""#,
            &["string", "value"],
        ),
        "array" => (
            r#""[" space ( value ("," space value)* )? space "]""#,
            &["value"],
        ),
        "uuid" => (
            r#""\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"""#,
            &[],
        ),
        "char" => (
            r#"[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})"#,
            &[],
        ),
        "string" => (r#""\"" char* "\"""#, &["char"]),
        "null" => (r#""null""#, &[]),
        _ => return None,
    };
    Some(Builtin { content, deps })
}

fn string_format(name: &str) -> Option<Builtin> {
    let (content, deps): (&str, &[&str]) = match name {
        "date" => (
            r#"[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )"#,
            &[],
        ),
        "time" => (
            r#"([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )"#,
            &[],
        ),
        "date-time" => (r#"date "T" time"#, &["date", "time"]),
        "date-string" => (r#""\"" date "\"""#, &["date"]),
        "time-string" => (r#""\"" time "\"""#, &["time"]),
        "date-time-string" => (r#""\"" date-time "\"""#, &["date-time"]),
        _ => return None,
    };
    Some(Builtin { content, deps })
}

fn is_reserved(name: &str) -> bool {
    name == "root" || primitive(name).is_some() || string_format(name).is_some()
}

/// `item{min,max}` in GBNF, with `separator` between items (`max` `i32::MAX`: unbounded).
pub fn build_repetition(item: &str, min: i32, max: i32, separator: &str) -> String {
    let has_max = max != i32::MAX;
    if max == 0 {
        return String::new();
    }
    if min == 0 && max == 1 {
        return format!("{item}?");
    }
    if separator.is_empty() {
        if min == 1 && !has_max {
            return format!("{item}+");
        }
        if min == 0 && !has_max {
            return format!("{item}*");
        }
        let max_s = if has_max {
            max.to_string()
        } else {
            String::new()
        };
        return format!("{item}{{{min},{max_s}}}");
    }
    let rest = build_repetition(
        &format!("({separator} {item})"),
        if min == 0 { 0 } else { min - 1 },
        if has_max { max - 1 } else { max },
        "",
    );
    let result = format!("{item} {rest}");
    if min == 0 {
        format!("({result})?")
    } else {
        result
    }
}

/// A GBNF literal: `s` quoted, with `\r \n " \\` escaped.
fn format_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A rule name: each run of characters other than letters, digits and `-` becomes one `-`.
fn rule_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// Integers from `min` to `max` (`i64::MIN`/`i64::MAX`: unbounded) as digit patterns, with at
/// most `decimals_left` digits where a side is unbounded.
pub fn min_max_int(min: i64, max: i64, out: &mut String, decimals_left: i32, top_level: bool) {
    let has_min = min != i64::MIN;
    let has_max = max != i64::MAX;
    let digit_range = |out: &mut String, from: u8, to: u8| {
        out.push('[');
        out.push(from as char);
        if from != to {
            out.push('-');
            out.push(to as char);
        }
        out.push(']');
    };
    let more_digits = |out: &mut String, min_d: i32, max_d: i32| {
        out.push_str("[0-9]");
        if min_d == max_d && min_d == 1 {
            return;
        }
        let _ = write!(out, "{{{min_d}");
        if max_d != min_d {
            out.push(',');
            if max_d != i32::MAX {
                let _ = write!(out, "{max_d}");
            }
        }
        out.push('}');
    };
    fn uniform_range(
        out: &mut String,
        from: &[u8],
        to: &[u8],
        digit_range: &dyn Fn(&mut String, u8, u8),
        more_digits: &dyn Fn(&mut String, i32, i32),
    ) {
        let mut i = 0;
        while i < from.len() && i < to.len() && from[i] == to[i] {
            i += 1;
        }
        if i > 0 {
            out.push('"');
            out.push_str(std::str::from_utf8(&from[..i]).expect("digits"));
            out.push('"');
        }
        if i < from.len() && i < to.len() {
            if i > 0 {
                out.push(' ');
            }
            let sub_len = from.len() - i - 1;
            if sub_len > 0 {
                let from_sub = &from[i + 1..];
                let to_sub = &to[i + 1..];
                let zeros = vec![b'0'; sub_len];
                let nines = vec![b'9'; sub_len];
                let mut to_reached = false;
                out.push('(');
                if from_sub == zeros.as_slice() {
                    digit_range(out, from[i], to[i] - 1);
                    out.push(' ');
                    more_digits(out, sub_len as i32, sub_len as i32);
                } else {
                    out.push('[');
                    out.push(from[i] as char);
                    out.push_str("] (");
                    uniform_range(out, from_sub, &nines, digit_range, more_digits);
                    out.push(')');
                    if from[i] < to[i] - 1 {
                        out.push_str(" | ");
                        if to_sub == nines.as_slice() {
                            digit_range(out, from[i] + 1, to[i]);
                            to_reached = true;
                        } else {
                            digit_range(out, from[i] + 1, to[i] - 1);
                        }
                        out.push(' ');
                        more_digits(out, sub_len as i32, sub_len as i32);
                    }
                }
                if !to_reached {
                    out.push_str(" | ");
                    digit_range(out, to[i], to[i]);
                    out.push(' ');
                    uniform_range(out, &zeros, to_sub, digit_range, more_digits);
                }
                out.push(')');
            } else {
                out.push('[');
                out.push(from[i] as char);
                out.push('-');
                out.push(to[i] as char);
                out.push(']');
            }
        }
    }
    let mut min = min;
    if has_min && has_max {
        if min < 0 && max < 0 {
            out.push_str("\"-\" (");
            min_max_int(-max, -min, out, decimals_left, true);
            out.push(')');
            return;
        }
        if min < 0 {
            out.push_str("\"-\" (");
            min_max_int(0, -min, out, decimals_left, true);
            out.push_str(") | ");
            min = 0;
        }
        let mut min_s = min.to_string();
        let max_s = max.to_string();
        for digits in min_s.len()..max_s.len() {
            uniform_range(
                out,
                min_s.as_bytes(),
                &vec![b'9'; digits],
                &digit_range,
                &more_digits,
            );
            min_s = format!("1{}", "0".repeat(digits));
            out.push_str(" | ");
        }
        uniform_range(
            out,
            min_s.as_bytes(),
            max_s.as_bytes(),
            &digit_range,
            &more_digits,
        );
        return;
    }
    let less_decimals = (decimals_left - 1).max(1);
    if has_min {
        if min < 0 {
            out.push_str("\"-\" (");
            min_max_int(i64::MIN, -min, out, decimals_left, false);
            out.push_str(") | [0] | [1-9] ");
            more_digits(out, 0, decimals_left - 1);
        } else if min == 0 {
            if top_level {
                out.push_str("[0] | [1-9] ");
                more_digits(out, 0, less_decimals);
            } else {
                more_digits(out, 1, decimals_left);
            }
        } else if min <= 9 {
            let c = b'0' + min as u8;
            let start = if top_level { b'1' } else { b'0' };
            if c > start {
                digit_range(out, start, c - 1);
                out.push(' ');
                more_digits(out, 1, less_decimals);
                out.push_str(" | ");
            }
            digit_range(out, c, b'9');
            out.push(' ');
            more_digits(out, 0, less_decimals);
        } else {
            let min_s = min.to_string();
            let len = min_s.len() as i32;
            let c = min_s.as_bytes()[0];
            if c > b'1' {
                digit_range(out, if top_level { b'1' } else { b'0' }, c - 1);
                out.push(' ');
                more_digits(out, len, less_decimals);
                out.push_str(" | ");
            }
            digit_range(out, c, c);
            out.push_str(" (");
            let rest: i64 = min_s[1..].parse().expect("digits");
            min_max_int(rest, i64::MAX, out, less_decimals, false);
            out.push(')');
            if c < b'9' {
                out.push_str(" | ");
                digit_range(out, c + 1, b'9');
                out.push(' ');
                more_digits(out, len - 1, less_decimals);
            }
        }
        return;
    }
    if has_max {
        if max >= 0 {
            if top_level {
                out.push_str("\"-\" [1-9] ");
                more_digits(out, 0, less_decimals);
                out.push_str(" | ");
            }
            min_max_int(0, max, out, decimals_left, true);
        } else {
            out.push_str("\"-\" (");
            min_max_int(-max, i64::MAX, out, decimals_left, false);
            out.push(')');
        }
    }
}

/// The length of a GBNF escape at `pos` (`\x..`, `\u....`, `\U........`, `\t` ...), 0 if none.
fn gbnf_escape_len(p: &[u8], pos: usize) -> usize {
    if pos + 1 >= p.len() || p[pos] != b'\\' {
        return 0;
    }
    let n_hex = match p[pos + 1] {
        b'x' => 2,
        b'u' => 4,
        b'U' => 8,
        b't' | b'r' | b'n' | b'\\' | b'"' | b'[' | b']' | b'-' => return 2,
        _ => return 0,
    };
    if pos + 2 + n_hex > p.len()
        || !p[pos + 2..pos + 2 + n_hex]
            .iter()
            .all(u8::is_ascii_hexdigit)
    {
        return 0;
    }
    2 + n_hex
}

/// Why a pattern did not convert.
enum PatternError {
    /// A valid regular expression with no grammar equivalent here.
    Unsupported(String),
    /// Not a valid regular expression.
    Invalid(String),
}

/// C's `atoi`-like `std::stoi`: leading blanks, a sign, digits; trailing text ignored.
fn stoi(s: &str) -> Option<i32> {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let v: i64 = digits[..n].parse().ok()?;
    i32::try_from(if neg { -v } else { v }).ok()
}

const MAX_PATTERN_DEPTH: i32 = 100;

/// The converter's state: the rules by name (sorted, as printed) and what went wrong.
pub struct Converter<'d> {
    doc: &'d Document,
    rules: BTreeMap<String, String>,
    refs_being_resolved: HashSet<String>,
    errors: Vec<String>,
    depth: usize,
    /// Parts that lenient mode made looser (patterns it cannot convert).
    pub warnings: Vec<String>,
}

impl<'d> Converter<'d> {
    /// A converter over `doc` with only the `space` rule.
    pub fn new(doc: &'d Document) -> Self {
        let mut rules = BTreeMap::new();
        rules.insert("space".to_string(), SPACE_RULE.to_string());
        Converter {
            doc,
            rules,
            refs_being_resolved: HashSet::new(),
            errors: Vec::new(),
            depth: 0,
            warnings: Vec::new(),
        }
    }

    fn add_rule(&mut self, name: &str, rule: &str) -> String {
        let esc = rule_name(name);
        match self.rules.get(&esc) {
            None => {}
            Some(r) if r == rule => {}
            Some(_) => {
                let mut i = 0;
                loop {
                    let key = format!("{esc}{i}");
                    match self.rules.get(&key) {
                        Some(r) if r != rule => i += 1,
                        _ => {
                            self.rules.insert(key.clone(), rule.to_string());
                            return key;
                        }
                    }
                }
            }
        }
        self.rules.insert(esc.clone(), rule.to_string());
        esc
    }

    fn add_builtin(&mut self, name: &str, rule: &Builtin) -> String {
        let n = self.add_rule(name, rule.content);
        for dep in rule.deps {
            let Some(d) = primitive(dep).or_else(|| string_format(dep)) else {
                self.errors.push(format!("Rule {dep} not known"));
                continue;
            };
            if !self.rules.contains_key(*dep) {
                self.add_builtin(dep, &d);
            }
        }
        n
    }

    fn add_primitive(&mut self, name: &str, kind: &str) -> String {
        self.add_builtin(name, &primitive(kind).expect("a known primitive"))
    }

    fn visit_primitive(&mut self, rule_name: &str, kind: &str) -> String {
        let name = if rule_name == "root" { "root" } else { kind };
        self.add_primitive(name, kind)
    }

    fn constant(v: &Value) -> String {
        format_literal(&serde_json::to_string(v).expect("a JSON value serializes"))
    }

    fn union(&mut self, name: &str, alts: &[Node]) -> String {
        let rules: Vec<String> = alts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let sub = format!(
                    "{name}{}{i}",
                    if name.is_empty() { "alternative-" } else { "-" }
                );
                self.visit(a, &sub)
            })
            .collect();
        rules.join(" | ")
    }

    fn visit_pattern(&mut self, pattern: &str, name: &str) -> String {
        let snapshot = self.rules.clone();
        match self.pattern_to_rule(pattern, name) {
            Ok(r) => r,
            Err(PatternError::Unsupported(why)) => {
                self.rules = snapshot;
                self.warnings
                    .push(format!("pattern {pattern} is not supported ({why})"));
                let s = self.add_primitive("string", "string");
                self.add_rule(name, &s)
            }
            Err(PatternError::Invalid(why)) => {
                self.rules = snapshot;
                self.errors
                    .push(format!("Invalid pattern {pattern}: {why}"));
                String::new()
            }
        }
    }

    fn pattern_to_rule(&mut self, pattern: &str, name: &str) -> Result<String, PatternError> {
        use PatternError::{Invalid, Unsupported};
        let p = pattern.as_bytes();
        if p.len() < 2 || p[0] != b'^' || p[p.len() - 1] != b'$' {
            return Err(Unsupported("not anchored with '^' and '$'".into()));
        }
        let sub = &p[1..p.len() - 1];
        struct St<'s> {
            sub: &'s [u8],
            i: usize,
            depth: i32,
            sub_rule_ids: HashMap<String, String>,
        }
        fn to_rule(item: &(String, bool)) -> String {
            if item.1 {
                format!("\"{}\"", item.0)
            } else {
                item.0.clone()
            }
        }
        fn join_seq(seq: &[(String, bool)]) -> (String, bool) {
            let mut out: Vec<String> = Vec::new();
            let mut literal = String::new();
            for item in seq {
                if item.1 {
                    literal.push_str(&item.0);
                } else {
                    if !literal.is_empty() {
                        out.push(to_rule(&(std::mem::take(&mut literal), true)));
                    }
                    out.push(to_rule(item));
                }
            }
            if !literal.is_empty() {
                out.push(to_rule(&(literal, true)));
            }
            (out.join(" "), false)
        }
        fn lossy(b: &[u8]) -> String {
            String::from_utf8_lossy(b).into_owned()
        }
        const NON_LITERAL: &[u8] = b"|.()[]{}*+?^$";
        const ESCAPED_IN_REGEX: &[u8] = b"^$.[]()|{}*+?";
        fn transform(
            c: &mut Converter<'_>,
            st: &mut St<'_>,
            name: &str,
        ) -> Result<(String, bool), PatternError> {
            let mut seq: Vec<(String, bool)> = Vec::new();
            let len = st.sub.len();
            while st.i < len {
                let ch = st.sub[st.i];
                match ch {
                    b'.' => {
                        let dot = c.add_rule("dot", "[^\\x0A\\x0D]");
                        seq.push((dot, false));
                        st.i += 1;
                    }
                    b'(' => {
                        st.i += 1;
                        if st.i < len && st.sub[st.i] == b'?' {
                            if st.i + 1 < len && st.sub[st.i + 1] == b':' {
                                st.i += 2;
                            } else {
                                return Err(Unsupported("unsupported group syntax".into()));
                            }
                        }
                        st.depth += 1;
                        if st.depth > MAX_PATTERN_DEPTH {
                            return Err(Unsupported("pattern nesting too deep".into()));
                        }
                        let inner = transform(c, st, name)?;
                        seq.push((format!("({})", to_rule(&inner)), false));
                    }
                    b')' => {
                        st.i += 1;
                        if st.depth == 0 {
                            return Err(Invalid("unbalanced parentheses".into()));
                        }
                        st.depth -= 1;
                        return Ok(join_seq(&seq));
                    }
                    b'^' | b'$' => return Err(Unsupported("anchor inside the pattern".into())),
                    b'[' => {
                        let mut sq = vec![b'['];
                        st.i += 1;
                        while st.i < len && st.sub[st.i] != b']' {
                            if st.sub[st.i] == b'\\' {
                                let n = gbnf_escape_len(st.sub, st.i);
                                if n == 0 {
                                    let end = (st.i + 2).min(len);
                                    return Err(Unsupported(format!(
                                        "unsupported escape in character class: {}",
                                        lossy(&st.sub[st.i..end])
                                    )));
                                }
                                sq.extend_from_slice(&st.sub[st.i..st.i + n]);
                                st.i += n;
                            } else {
                                sq.push(st.sub[st.i]);
                                st.i += 1;
                            }
                        }
                        if st.i >= len {
                            return Err(Invalid("unterminated character class".into()));
                        }
                        sq.push(b']');
                        st.i += 1;
                        if sq == b"[]" || sq == b"[^]" {
                            // ECMAScript's empty class (matches nothing) and `[^]` (anything);
                            // GBNF has neither, and llama.cpp writes `[]` into a grammar that does
                            // not parse (found by fuzzing).
                            return Err(Unsupported("an empty character class".into()));
                        }
                        seq.push((lossy(&sq), false));
                    }
                    b'|' => {
                        seq.push(("|".into(), false));
                        st.i += 1;
                    }
                    b'*' | b'+' | b'?' => {
                        // After `|` there is nothing to repeat either (`a|?`; llama.cpp writes
                        // `|?` into the grammar, whose parser then refuses it).
                        let Some(last) = seq.last_mut().filter(|l| l.1 || l.0 != "|") else {
                            return Err(Invalid("nothing to repeat".into()));
                        };
                        // An item repeated zero times (`a{0}`) is empty text: it matches only
                        // the empty string, and so does any repetition of it.
                        if last.1 || !last.0.is_empty() {
                            *last = (format!("{}{}", to_rule(last), ch as char), false);
                        }
                        st.i += 1;
                    }
                    b'{' => {
                        let start = st.i + 1;
                        st.i += 1;
                        while st.i < len && st.sub[st.i] != b'}' {
                            st.i += 1;
                        }
                        if st.i >= len {
                            return Err(Unsupported("unterminated curly brackets".into()));
                        }
                        let inside = lossy(&st.sub[start..st.i]);
                        st.i += 1;
                        let nums: Vec<&str> = inside.split(',').collect();
                        let bad = || Unsupported("invalid number in curly brackets".into());
                        let (min, max) = match nums.as_slice() {
                            [one] => {
                                let n = stoi(one).ok_or_else(bad)?;
                                (n, n)
                            }
                            [a, b] => (
                                if a.is_empty() {
                                    0
                                } else {
                                    stoi(a).ok_or_else(bad)?
                                },
                                if b.is_empty() {
                                    i32::MAX
                                } else {
                                    stoi(b).ok_or_else(bad)?
                                },
                            ),
                            _ => {
                                return Err(Unsupported(
                                    "wrong number of values in curly brackets".into(),
                                ))
                            }
                        };
                        if min < 0 || max < 0 {
                            return Err(Invalid(format!(
                                "the repetition {{{inside}}} has a negative count"
                            )));
                        }
                        if max < min {
                            // Regular expression engines refuse `{6,5}` (llama.cpp copies it
                            // into the grammar, whose parser then fails on it).
                            return Err(Invalid(format!(
                                "the repetition {{{inside}}} has its maximum below its minimum"
                            )));
                        }
                        let Some(last) = seq.last().filter(|l| l.1 || l.0 != "|") else {
                            return Err(Invalid("nothing to repeat".into()));
                        };
                        let (text, is_literal) = last.clone();
                        if !is_literal && text.is_empty() {
                            // Repeating what matches only the empty string (`[0-9]{0}{3,5}`; an
                            // empty rule would not parse, found by fuzzing).
                            continue;
                        }
                        let item = if is_literal {
                            format!("\"{text}\"")
                        } else {
                            let n = st.sub_rule_ids.len();
                            match st.sub_rule_ids.get(&text) {
                                Some(id) => id.clone(),
                                None => {
                                    let id = c.add_rule(&format!("{name}-{}", n + 1), &text);
                                    st.sub_rule_ids.insert(text.clone(), id.clone());
                                    id
                                }
                            }
                        };
                        *seq.last_mut().expect("checked") =
                            (build_repetition(&item, min, max, ""), false);
                    }
                    _ => {
                        let mut literal: Vec<u8> = Vec::new();
                        let non_literal = |b: u8| NON_LITERAL.contains(&b);
                        while st.i < len {
                            let b = st.sub[st.i];
                            if b == b'\\' {
                                if st.i == len - 1 {
                                    return Err(Invalid("trailing backslash".into()));
                                }
                                let next = st.sub[st.i + 1];
                                if ESCAPED_IN_REGEX.contains(&next) {
                                    literal.push(next);
                                    st.i += 2;
                                } else {
                                    let n = gbnf_escape_len(st.sub, st.i);
                                    if n == 0 {
                                        return Err(Unsupported(format!(
                                            "unsupported escape: {}",
                                            lossy(&st.sub[st.i..st.i + 2])
                                        )));
                                    }
                                    literal.extend_from_slice(&st.sub[st.i..st.i + n]);
                                    st.i += n;
                                }
                            } else if b == b'"' {
                                literal.extend_from_slice(b"\\\"");
                                st.i += 1;
                            } else if !non_literal(b)
                                && (st.i == len - 1
                                    || literal.is_empty()
                                    || st.sub[st.i + 1] == b'.'
                                    || !non_literal(st.sub[st.i + 1]))
                            {
                                literal.push(b);
                                st.i += 1;
                            } else {
                                break;
                            }
                        }
                        if literal.is_empty() {
                            return Err(Unsupported(format!(
                                "unsupported character: {}",
                                ch as char
                            )));
                        }
                        seq.push((lossy(&literal), true));
                    }
                }
            }
            Ok(join_seq(&seq))
        }
        let mut st = St {
            sub,
            i: 0,
            depth: 0,
            sub_rule_ids: HashMap::new(),
        };
        let r = transform(self, &mut st, name)?;
        let rule = to_rule(&r);
        if st.depth != 0 {
            return Err(Invalid("unbalanced parentheses".into()));
        }
        Ok(self.add_rule(name, &format!("\"\\\"\" ({rule}) \"\\\"\"")))
    }

    /// A JSON string other than each of `strings`, through a trie of them.
    fn not_strings(&mut self, strings: &[String]) -> String {
        /// `c` as a character of a GBNF class. llama.cpp writes it as it is, so a key with `]`,
        /// `\`, `-` or `^` gave a class that does not parse or means something else (found by
        /// fuzzing); those and control characters are escaped here.
        fn class_char(c: char) -> String {
            match c {
                ']' | '[' | '\\' | '-' => format!("\\{c}"),
                '^' => "\\x5E".into(),
                c if (c as u32) < 0x20 || c == '\u{7f}' => format!("\\x{:02X}", c as u32),
                c => c.to_string(),
            }
        }
        #[derive(Default)]
        struct TrieNode {
            children: BTreeMap<u32, usize>,
            end: bool,
        }
        let mut nodes = vec![TrieNode::default()];
        for s in strings {
            let mut at = 0;
            for c in s.chars() {
                let next = nodes.len();
                at = *nodes[at].children.entry(c as u32).or_insert(next);
                if at == next {
                    nodes.push(TrieNode::default());
                }
            }
            nodes[at].end = true;
        }
        let char_rule = self.add_primitive("char", "char");
        let mut out = String::from("[\"] ( ");
        fn visit(nodes: &[TrieNode], idx: usize, char_rule: &str, out: &mut String) {
            let node = &nodes[idx];
            let mut rejects = String::new();
            for (k, (&cpt, &child)) in node.children.iter().enumerate() {
                let c = class_char(char::from_u32(cpt).expect("from a str"));
                rejects.push_str(&c);
                if k > 0 {
                    out.push_str(" | ");
                }
                let _ = write!(out, "[{c}]");
                if !nodes[child].children.is_empty() {
                    out.push_str(" (");
                    visit(nodes, child, char_rule, out);
                    out.push(')');
                } else {
                    let _ = write!(out, " {char_rule}+");
                }
            }
            if !node.children.is_empty() {
                let _ = write!(out, " | [^\"{rejects}] {char_rule}*");
            }
        }
        visit(&nodes, 0, &char_rule, &mut out);
        out.push_str(" )");
        if !nodes[0].end {
            out.push('?');
        }
        out.push_str(" [\"]");
        out
    }

    fn resolve_ref(&mut self, r: &str) -> String {
        let fragment = r.find('#').map_or(r, |i| &r[i + 1..]);
        let mut name = format!("ref{}", rule_name(fragment));
        if !self.rules.contains_key(&name) && !self.refs_being_resolved.contains(r) {
            let doc = self.doc;
            let Some(target) = doc.refs.get(r) else {
                self.errors.push(format!("Unresolved $ref {r}"));
                return String::new();
            };
            self.refs_being_resolved.insert(r.to_string());
            name = self.visit(target, &name);
            self.refs_being_resolved.remove(r);
        }
        name
    }

    fn object_rule(
        &mut self,
        props: &[(&str, &Node)],
        required: &HashSet<&str>,
        name: &str,
        additional: Option<&Node>,
    ) -> String {
        let dash = if name.is_empty() { "" } else { "-" };
        let mut required_props: Vec<String> = Vec::new();
        let mut optional_props: Vec<String> = Vec::new();
        let mut kv: HashMap<String, String> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for &(prop, schema) in props {
            let prop_rule = self.visit(schema, &format!("{name}{dash}{prop}"));
            let key = Self::constant(&Value::String(prop.to_string()));
            let r = self.add_rule(
                &format!("{name}{dash}{prop}-kv"),
                &format!("{key} space \":\" space {prop_rule}"),
            );
            kv.insert(prop.to_string(), r);
            if required.contains(prop) {
                required_props.push(prop.to_string());
            } else {
                optional_props.push(prop.to_string());
            }
            names.push(prop.to_string());
        }
        if let Some(add) = additional {
            let sub = format!("{name}{dash}additional");
            let value = match add {
                Node::Any => self.add_primitive("value", "value"),
                n => self.visit(n, &format!("{sub}-value")),
            };
            let key = if names.is_empty() {
                self.add_primitive("string", "string")
            } else {
                let ns = self.not_strings(&names);
                self.add_rule(&format!("{sub}-k"), &ns)
            };
            let r = self.add_rule(&format!("{sub}-kv"), &format!("{key} \":\" space {value}"));
            kv.insert("*".into(), r);
            optional_props.push("*".into());
        }
        if required_props.is_empty() && optional_props.is_empty() {
            return "\"{\" space \"}\"".into();
        }
        let mut rule = String::from("\"{\" space ");
        for (i, p) in required_props.iter().enumerate() {
            if i > 0 {
                rule.push_str(" \",\" space ");
            }
            rule.push_str(&kv[p]);
        }
        if !optional_props.is_empty() {
            rule.push_str(" (");
            if !required_props.is_empty() {
                rule.push_str(" \",\" space ( ");
            }
            fn recursive_refs(
                c: &mut Converter<'_>,
                ks: &[String],
                first_optional: bool,
                kv: &HashMap<String, String>,
                name: &str,
                dash: &str,
            ) -> String {
                let Some(k) = ks.first() else {
                    return String::new();
                };
                let kv_rule = &kv[k];
                let comma = format!("( \",\" space {kv_rule} )");
                let mut res = if first_optional {
                    format!("{comma}{}", if k == "*" { "*" } else { "?" })
                } else if k == "*" {
                    format!("{kv_rule} {comma}*")
                } else {
                    kv_rule.clone()
                };
                if ks.len() > 1 {
                    let rest = recursive_refs(c, &ks[1..], true, kv, name, dash);
                    let r = c.add_rule(&format!("{name}{dash}{k}-rest"), &rest);
                    res.push(' ');
                    res.push_str(&r);
                }
                res
            }
            for i in 0..optional_props.len() {
                if i > 0 {
                    rule.push_str(" | ");
                }
                let r = recursive_refs(self, &optional_props[i..], false, &kv, name, dash);
                rule.push_str(&r);
            }
            if !required_props.is_empty() {
                rule.push_str(" )");
            }
            rule.push_str(" )?");
        }
        rule.push_str(" space \"}\"");
        rule
    }

    fn visit_all_of(&mut self, children: &[Node], name: &str, rule_name: &str) -> String {
        let doc = self.doc;
        let mut required: HashSet<&str> = HashSet::new();
        let mut props: Vec<(&str, &Node)> = Vec::new();
        let mut enums: BTreeMap<String, usize> = BTreeMap::new();
        fn add<'n>(
            doc: &'n Document,
            comp: &'n Node,
            is_required: bool,
            props: &mut Vec<(&'n str, &'n Node)>,
            required: &mut HashSet<&'n str>,
            enums: &mut BTreeMap<String, usize>,
        ) {
            match comp {
                Node::Ref(r) => {
                    if let Some(t) = doc.refs.get(r) {
                        add(doc, t, is_required, props, required, enums);
                    }
                }
                Node::Object { props: ps, .. } => {
                    for (n, s, _) in ps {
                        props.push((n.as_str(), s));
                        if is_required {
                            required.insert(n.as_str());
                        }
                    }
                }
                Node::Enum(values) => {
                    for v in values {
                        *enums.entry(Converter::constant(v)).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        for child in children {
            if let Node::AnyOf(alts) = child {
                for a in alts {
                    add(doc, a, false, &mut props, &mut required, &mut enums);
                }
            } else {
                add(doc, child, true, &mut props, &mut required, &mut enums);
            }
        }
        if !enums.is_empty() {
            let inter: Vec<&str> = enums
                .iter()
                .filter(|e| *e.1 == children.len())
                .map(|e| e.0.as_str())
                .collect();
            if !inter.is_empty() {
                return self.add_rule(rule_name, &format!("({})", inter.join(" | ")));
            }
        }
        let r = self.object_rule(&props, &required, name, None);
        self.add_rule(rule_name, &r)
    }

    /// The rule for `node`, named after `name` (`""`: the root), and every rule it needs.
    pub fn visit(&mut self, node: &Node, name: &str) -> String {
        if self.depth == super::schema::MAX_DEPTH {
            self.errors.push(format!(
                "schemas nested or referenced more than {} deep",
                super::schema::MAX_DEPTH
            ));
            return String::new();
        }
        self.depth += 1;
        let r = self.visit_inner(node, name);
        self.depth -= 1;
        r
    }

    fn visit_inner(&mut self, node: &Node, name: &str) -> String {
        let rule_name = if is_reserved(name) {
            format!("{name}-")
        } else if name.is_empty() {
            "root".to_string()
        } else {
            name.to_string()
        };
        let sub_name = if name.is_empty() {
            String::new()
        } else {
            format!("{name}-")
        };
        match node {
            Node::Ref(r) => {
                let t = self.resolve_ref(r);
                self.add_rule(&rule_name, &t)
            }
            Node::AnyOf(alts) => {
                let u = self.union(name, alts);
                self.add_rule(&rule_name, &u)
            }
            Node::AllOf(children) => self.visit_all_of(children, name, &rule_name),
            Node::Const(v) => self.add_rule(&rule_name, &Self::constant(v)),
            Node::Enum(values) => {
                let alts: Vec<String> = values.iter().map(Self::constant).collect();
                self.add_rule(&rule_name, &format!("({})", alts.join(" | ")))
            }
            Node::Object { props, additional } => {
                if props.is_empty() && matches!(additional.as_deref(), Some(Node::Any)) {
                    let o = self.add_primitive("object", "object");
                    return self.add_rule(&rule_name, &o);
                }
                let ps: Vec<(&str, &Node)> = props.iter().map(|p| (p.0.as_str(), &p.1)).collect();
                let required: HashSet<&str> =
                    props.iter().filter(|p| p.2).map(|p| p.0.as_str()).collect();
                let r = self.object_rule(&ps, &required, name, additional.as_deref());
                self.add_rule(&rule_name, &r)
            }
            Node::Tuple(items) => {
                let mut rule = String::from("\"[\" space ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        rule.push_str(" \",\" space ");
                    }
                    let r = self.visit(item, &format!("{sub_name}tuple-{i}"));
                    rule.push_str(&r);
                }
                rule.push_str(" space \"]\"");
                self.add_rule(&rule_name, &rule)
            }
            Node::Array { items, min, max } => {
                if matches!(**items, Node::Any) && *min == 0 && *max < 0 {
                    return self.visit_primitive(&rule_name, "array");
                }
                let item = self.visit(items, &format!("{sub_name}item"));
                let max = if *max < 0 { i32::MAX } else { *max };
                let rep = build_repetition(&item, *min, max, "\",\" space");
                self.add_rule(&rule_name, &format!("\"[\" space {rep} space \"]\""))
            }
            Node::String {
                pattern,
                format,
                min_len,
                max_len,
            } => {
                if let Some(p) = pattern {
                    return self.visit_pattern(p, &rule_name);
                }
                let prim = match format {
                    Format::Uuid => return self.visit_primitive(&rule_name, "uuid"),
                    Format::Date => "date-string",
                    Format::Time => "time-string",
                    Format::DateTime => "date-time-string",
                    Format::None => "",
                };
                if !prim.is_empty() {
                    let f = self.add_builtin(prim, &string_format(prim).expect("known"));
                    return self.add_rule(&rule_name, &f);
                }
                if *min_len > 0 || *max_len >= 0 {
                    let c = self.add_primitive("char", "char");
                    let max = if *max_len < 0 { i32::MAX } else { *max_len };
                    let rep = build_repetition(&c, *min_len, max, "");
                    return self.add_rule(&rule_name, &format!("\"\\\"\" {rep} \"\\\"\""));
                }
                self.visit_primitive(&rule_name, "string")
            }
            Node::Integer { min, max } => {
                if *min == i64::MIN && *max == i64::MAX {
                    return self.visit_primitive(&rule_name, "integer");
                }
                let mut out = String::from("(");
                min_max_int(*min, *max, &mut out, 16, true);
                out.push(')');
                self.add_rule(&rule_name, &out)
            }
            Node::Number => self.visit_primitive(&rule_name, "number"),
            Node::Boolean => self.visit_primitive(&rule_name, "boolean"),
            Node::Null => self.visit_primitive(&rule_name, "null"),
            Node::Any => {
                let v = self.add_primitive("value", "value");
                self.add_rule(&rule_name, &v)
            }
        }
    }

    /// The errors met, if any.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The grammar: every rule as `name ::= rule`, by name.
    pub fn grammar(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.rules {
            let _ = writeln!(s, "{k} ::= {v}");
        }
        s
    }
}
