//! chord's grammar engine against llama.cpp's own grammar tests, read from the llama.cpp source
//! that the test setup fetches (`$LLAMA_CPP_DIR/tests`, the version pinned in scripts/env.sh):
//!
//! * `test-grammar-parser.cpp`: every `verify_parsing` grammar gives the same symbol ids and the
//!   same element lists, element for element; every `verify_failure` grammar is refused.
//! * `test-grammar-integration.cpp`: every `test_grammar` and `test_schema` case, each string
//!   matched as llama.cpp's test matches it (characters as token 0, `token(N)` as token N, then
//!   "some stack is empty"); and the failure cases (missing root, undefined rule, left recursion,
//!   custom root symbol).
//! * `test-json-schema-to-grammar.cpp`: every schema converts (lenient mode) to exactly the
//!   expected grammar text, or fails where llama.cpp fails; strict mode gives the same grammar or
//!   refuses the schema with the feature it would have loosened.
//!
//! The C++ files are read with a small lexer for the literals they use (raw strings, strings and
//! characters with escapes, `token(N)`); a case it cannot read fails the test.

mod common;

use chord::grammar::{json_schema_to_gbnf, Elem, Grammar, GrammarState};
use std::path::PathBuf;

fn llama_tests_dir() -> PathBuf {
    let dir = std::env::var_os("LLAMA_CPP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::cache_dir().join("llama.cpp-0.3.36"))
        .join("tests");
    assert!(
        dir.join("test-grammar-integration.cpp").exists(),
        "llama.cpp's tests are missing at {}: run scripts/fetch-test-data.sh",
        dir.display()
    );
    dir
}

/// A lexical token of the C++ test files.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(Vec<u8>),
    Char(u32),
    Ident(String),
    Num(u64),
    Punct(char),
}

fn lex(src: &str) -> Vec<Tok> {
    let s = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if s[i..].starts_with(b"//") {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
        } else if s[i..].starts_with(b"/*") {
            i += 2 + src[i + 2..].find("*/").expect("comment closes") + 2;
        } else if s[i..].starts_with(b"R\"") {
            let open = i + 2 + src[i + 2..].find('(').expect("raw string delimiter");
            let delim = format!("){}\"", &src[i + 2..open]);
            let end = open + 1 + src[open + 1..].find(&delim).expect("raw string closes");
            out.push(Tok::Str(s[open + 1..end].to_vec()));
            i = end + delim.len();
        } else if c == b'"' || c == b'\'' {
            let mut v = Vec::new();
            i += 1;
            while s[i] != c {
                if s[i] == b'\\' {
                    let (bytes, n) = escape(&s[i + 1..]);
                    v.extend(bytes);
                    i += 1 + n;
                } else {
                    v.push(s[i]);
                    i += 1;
                }
            }
            i += 1;
            if c == b'"' {
                out.push(Tok::Str(v));
            } else {
                let ch = std::str::from_utf8(&v)
                    .expect("char literal")
                    .chars()
                    .next();
                out.push(Tok::Char(ch.expect("one char") as u32));
            }
        } else if c.is_ascii_digit() {
            let start = i;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Num(src[start..i].parse().unwrap()));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_string()));
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(Tok::Punct(ch));
            i += ch.len_utf8();
        }
    }
    out
}

/// A C escape after the backslash: its bytes and how many input bytes it took.
fn escape(s: &[u8]) -> (Vec<u8>, usize) {
    match s[0] {
        b'n' => (vec![b'\n'], 1),
        b't' => (vec![b'\t'], 1),
        b'r' => (vec![b'\r'], 1),
        b'0' => (vec![0], 1),
        b'x' => {
            let n = s[1..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
            let v = u32::from_str_radix(std::str::from_utf8(&s[1..1 + n]).unwrap(), 16).unwrap();
            (vec![v as u8], 1 + n)
        }
        b'u' => {
            let v = u32::from_str_radix(std::str::from_utf8(&s[1..5]).unwrap(), 16).unwrap();
            let ch = char::from_u32(v).expect("valid \\u escape");
            (ch.to_string().into_bytes(), 5)
        }
        c => (vec![c], 1),
    }
}

/// One piece of a test input: text (each character as token 0) or a token id.
#[derive(Debug, Clone)]
enum Piece {
    Text(Vec<u8>),
    Token(u32),
}

struct Reader {
    t: Vec<Tok>,
    i: usize,
}

impl Reader {
    fn next(&mut self) -> Tok {
        self.i += 1;
        self.t[self.i - 1].clone()
    }
    fn peek(&self) -> &Tok {
        &self.t[self.i]
    }
    fn expect(&mut self, p: char) {
        let t = self.next();
        assert_eq!(t, Tok::Punct(p), "at token {}", self.i);
    }
    /// Adjacent string literals joined.
    fn string(&mut self) -> Vec<u8> {
        let Tok::Str(mut v) = self.next() else {
            panic!(
                "expected a string at token {}: {:?}",
                self.i,
                self.t[self.i - 1]
            )
        };
        while let Tok::Str(more) = self.peek().clone() {
            self.i += 1;
            v.extend(more);
        }
        v
    }
    /// `"text" + token(N) + ...`
    fn input(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::Str(_) => out.push(Piece::Text(self.string())),
                Tok::Ident(f) if f == "token" => {
                    self.i += 1;
                    self.expect('(');
                    let Tok::Num(n) = self.next() else {
                        panic!("token(N) expected")
                    };
                    self.expect(')');
                    out.push(Piece::Token(n as u32));
                }
                t => panic!("unexpected {t:?} in a test string"),
            }
            if self.peek() == &Tok::Punct('+') {
                self.i += 1;
            } else {
                return out;
            }
        }
    }
    /// `{ input, input, ... }` (a trailing comma allowed).
    fn inputs(&mut self) -> Vec<Vec<Piece>> {
        self.expect('{');
        let mut out = Vec::new();
        while self.peek() != &Tok::Punct('}') {
            out.push(self.input());
            if self.peek() == &Tok::Punct(',') {
                self.i += 1;
            }
        }
        self.i += 1;
        out
    }
}

/// Matches `input` as llama.cpp's `match_string`: every piece accepted, then some stack empty.
fn matches(g: &std::sync::Arc<Grammar>, input: &[Piece]) -> bool {
    let mut st = GrammarState::new(g.clone());
    for p in input {
        match p {
            Piece::Token(id) => {
                let piece = format!("<[{id}]>");
                if st.accept(*id, piece.as_bytes()).is_err() {
                    return false;
                }
            }
            Piece::Text(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                for ch in text.chars() {
                    let mut buf = [0; 4];
                    if st.accept(0, ch.encode_utf8(&mut buf).as_bytes()).is_err() {
                        return false;
                    }
                }
            }
        }
    }
    st.can_end()
}

fn show(input: &[Piece]) -> String {
    input
        .iter()
        .map(|p| match p {
            Piece::Text(b) => format!("{:?}", String::from_utf8_lossy(b)),
            Piece::Token(t) => format!("token({t})"),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The body of `static void NAME(...) { ... }` as tokens.
fn function_body(toks: &[Tok], name: &str) -> Vec<Tok> {
    let at = toks
        .iter()
        .position(|t| t == &Tok::Ident(name.into()))
        .unwrap_or_else(|| panic!("{name} not found"));
    let open = at
        + toks[at..]
            .iter()
            .position(|t| t == &Tok::Punct('{'))
            .unwrap();
    let mut depth = 0;
    for (j, t) in toks[open..].iter().enumerate() {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return toks[open + 1..open + j].to_vec();
                }
            }
            _ => {}
        }
    }
    panic!("{name} does not close")
}

fn strings_in(toks: &[Tok]) -> Vec<String> {
    toks.iter()
        .filter_map(|t| match t {
            Tok::Str(s) => Some(String::from_utf8(s.clone()).unwrap()),
            _ => None,
        })
        .filter(|s| s.contains("::="))
        .collect()
}

#[test]
fn integration_cases_match_as_in_llama_cpp() {
    let src = std::fs::read_to_string(llama_tests_dir().join("test-grammar-integration.cpp"))
        .expect("read test-grammar-integration.cpp");
    let toks = lex(&src);
    let mut r = Reader { t: toks, i: 0 };
    let (mut cases, mut strings, mut schemas) = (0, 0, 0);
    let mut failures = Vec::new();
    while r.i < r.t.len() {
        // A call: `test_grammar(` or `test_schema(` and a string (not the function's definition).
        let kind = r.next();
        let schema = kind == Tok::Ident("test_schema".into());
        if !(schema || kind == Tok::Ident("test_grammar".into()))
            || r.peek() != &Tok::Punct('(')
            || !matches!(r.t.get(r.i + 1), Some(Tok::Str(_)))
        {
            continue;
        }
        r.i += 1;
        let desc = String::from_utf8(r.string()).unwrap();
        r.expect(',');
        let mut text = String::from_utf8(r.string()).unwrap();
        if schema {
            schemas += 1;
            match json_schema_to_gbnf(&text, false) {
                Ok(g) => text = g,
                Err(e) => {
                    failures.push(format!("{desc}: schema refused: {e}"));
                    text = String::new();
                }
            }
        }
        r.expect(',');
        let pass = r.inputs();
        r.expect(',');
        let fail = r.inputs();
        r.expect(')');
        cases += 1;
        let g = match Grammar::new(&text, "root", None) {
            Ok(g) => std::sync::Arc::new(g),
            Err(e) => {
                failures.push(format!("{desc}: grammar refused: {e}"));
                continue;
            }
        };
        for (inputs, want) in [(&pass, true), (&fail, false)] {
            for input in inputs.iter() {
                strings += 1;
                if matches(&g, input) != want {
                    failures.push(format!(
                        "{desc}: {} should {}match",
                        show(input),
                        if want { "" } else { "not " }
                    ));
                }
            }
        }
    }
    println!("{cases} grammars ({schemas} from JSON schemas), {strings} strings");
    assert!(
        cases >= 45 && schemas >= 30,
        "only {cases} cases ({schemas} schemas) found"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The failure cases, with the grammars of their functions.
    let toks = lex(&src);
    let missing_root = strings_in(&function_body(&toks, "test_failure_missing_root"));
    let e = Grammar::new(&missing_root[0], "root", None).unwrap_err();
    assert!(e.message().contains("no rule named 'root'"), "{e}");
    let missing_ref = strings_in(&function_body(&toks, "test_failure_missing_reference"));
    let e = Grammar::new(&missing_ref[0], "root", None).unwrap_err();
    assert!(e.message().contains("undefined rule 'numero'"), "{e}");
    let left = strings_in(&function_body(&toks, "test_failure_left_recursion"));
    assert_eq!(left.len(), 4);
    for text in &left {
        let e = Grammar::new(text, "root", None).unwrap_err();
        assert!(e.message().contains("left-recursive"), "{text}: {e}");
    }
    let root_sym = strings_in(&function_body(&toks, "test_failure_missing_root_symbol"));
    assert!(Grammar::new(&root_sym[0], "nonexistent", None).is_err());
    let custom = strings_in(&function_body(&toks, "test_custom_root_symbol_check"));
    assert!(Grammar::new(&custom[0], "root", None).is_err());
    Grammar::new(&custom[0], "foobar", None).expect("custom root");
}

fn elem_of(kind: &str, v: u32) -> Elem {
    match kind {
        "LLAMA_GRETYPE_END" => Elem::End,
        "LLAMA_GRETYPE_ALT" => Elem::Alt,
        "LLAMA_GRETYPE_RULE_REF" => Elem::Rule(v),
        "LLAMA_GRETYPE_CHAR" => Elem::Char(v),
        "LLAMA_GRETYPE_CHAR_NOT" => Elem::CharNot(v),
        "LLAMA_GRETYPE_CHAR_RNG_UPPER" => Elem::RangeUpper(v),
        "LLAMA_GRETYPE_CHAR_ALT" => Elem::CharAlt(v),
        "LLAMA_GRETYPE_CHAR_ANY" => Elem::Any,
        "LLAMA_GRETYPE_TOKEN" => Elem::Token(v),
        "LLAMA_GRETYPE_TOKEN_NOT" => Elem::NotToken(v),
        k => panic!("unknown element type {k}"),
    }
}

#[test]
fn parser_cases_compile_as_in_llama_cpp() {
    let src = std::fs::read_to_string(llama_tests_dir().join("test-grammar-parser.cpp"))
        .expect("read test-grammar-parser.cpp");
    let main = function_body(&lex(&src), "main");
    let mut r = Reader { t: main, i: 0 };
    let (mut parsed, mut refused) = (0, 0);
    while r.i < r.t.len() {
        match r.next() {
            Tok::Ident(f) if f == "verify_failure" => {
                r.expect('(');
                let text = String::from_utf8(r.string()).unwrap();
                r.expect(')');
                refused += 1;
                assert!(
                    Grammar::new(&text, "root", None).is_err(),
                    "should be refused: {text}"
                );
            }
            Tok::Ident(f) if f == "verify_parsing" => {
                r.expect('(');
                let text = String::from_utf8(r.string()).unwrap();
                r.expect(',');
                r.expect('{');
                let mut symbols = Vec::new();
                while r.peek() != &Tok::Punct('}') {
                    r.expect('{');
                    let name = String::from_utf8(r.string()).unwrap();
                    r.expect(',');
                    let Tok::Num(id) = r.next() else {
                        panic!("symbol id")
                    };
                    r.expect('}');
                    if r.peek() == &Tok::Punct(',') {
                        r.i += 1;
                    }
                    symbols.push((name, id as usize));
                }
                r.i += 1;
                r.expect(',');
                r.expect('{');
                let mut elems = Vec::new();
                while r.peek() != &Tok::Punct('}') {
                    r.expect('{');
                    let Tok::Ident(kind) = r.next() else {
                        panic!("element type")
                    };
                    r.expect(',');
                    let v = match r.next() {
                        Tok::Num(n) => n as u32,
                        Tok::Char(c) => c,
                        t => panic!("element value {t:?}"),
                    };
                    r.expect('}');
                    if r.peek() == &Tok::Punct(',') {
                        r.i += 1;
                    }
                    elems.push(elem_of(&kind, v));
                }
                r.i += 1;
                r.expect(')');
                parsed += 1;
                // The grammars name their start rule `root`, except where there is none.
                let root = symbols
                    .iter()
                    .find(|s| s.0 == "root")
                    .map_or(symbols[0].0.as_str(), |s| s.0.as_str());
                let g = Grammar::new(&text, root, None).unwrap_or_else(|e| panic!("{text}: {e}"));
                let rules = g.rules();
                let mut got_symbols: Vec<(String, usize)> = rules
                    .iter()
                    .enumerate()
                    .map(|(id, r)| (r.0.to_string(), id))
                    .collect();
                got_symbols.sort();
                symbols.sort();
                assert_eq!(got_symbols, symbols, "symbols of {text}");
                let got: Vec<Elem> = rules.iter().flat_map(|r| r.1.iter().copied()).collect();
                assert_eq!(got, elems, "elements of {text}");
            }
            _ => {}
        }
    }
    println!("{parsed} grammars parsed, {refused} refused");
    assert!(
        parsed >= 15 && refused >= 6,
        "{parsed} parsed, {refused} refused"
    );
}

/// llama.cpp's trim of grammar texts: no blanks around, none at the start of a line.
fn trim(s: &str) -> String {
    s.trim()
        .lines()
        .map(|l| l.trim_start_matches([' ', '\t']))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn json_schema_conversion_as_in_llama_cpp() {
    let src = std::fs::read_to_string(llama_tests_dir().join("test-json-schema-to-grammar.cpp"))
        .expect("read test-json-schema-to-grammar.cpp");
    let body = function_body(&lex(&src), "test_all");
    let mut r = Reader { t: body, i: 0 };
    let (mut ok, mut refused, mut strict_refused) = (0, 0, Vec::new());
    let mut failures = Vec::new();
    while r.i < r.t.len() {
        if r.next() != Tok::Ident("test".into()) || r.peek() != &Tok::Punct('(') {
            continue;
        }
        r.expect('(');
        r.expect('{');
        let Tok::Ident(status) = r.next() else {
            panic!("status")
        };
        r.expect(',');
        let name = String::from_utf8(r.string()).unwrap();
        r.expect(',');
        let schema = String::from_utf8(r.string()).unwrap();
        r.expect(',');
        let expected = String::from_utf8(r.string()).unwrap();
        let got = json_schema_to_gbnf(&schema, false);
        match (status.as_str(), &got) {
            ("SUCCESS", Ok(g)) => {
                ok += 1;
                if trim(g) != trim(&expected) {
                    failures.push(format!(
                        "{name}:\n--- expected\n{}\n--- got\n{}",
                        trim(&expected),
                        trim(g)
                    ));
                }
                // The expected grammar compiles here too.
                if let Err(e) = Grammar::new(g, "root", None) {
                    failures.push(format!("{name}: the grammar does not compile: {e}"));
                }
            }
            ("FAILURE", Err(_)) => refused += 1,
            (s, g) => failures.push(format!("{name}: expected {s}, got {g:?}")),
        }
        match (json_schema_to_gbnf(&schema, true), &got) {
            (Ok(s), Ok(l)) if &s != l => {
                failures.push(format!("{name}: strict and lenient grammars differ"))
            }
            (Err(e), Ok(_)) => strict_refused.push(format!("{name}: {}", e.message())),
            (Ok(_), Err(_)) => {
                failures.push(format!("{name}: strict accepts what lenient refuses"))
            }
            _ => {}
        }
    }
    println!("{ok} schemas converted, {refused} refused as in llama.cpp");
    println!("strict mode refuses {}:", strict_refused.len());
    for s in &strict_refused {
        println!("  {s}");
    }
    assert!(
        ok >= 70 && refused >= 3,
        "{ok} converted, {refused} refused"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
