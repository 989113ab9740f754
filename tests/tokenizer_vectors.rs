//! chord's tokenizer against ids, text and vocabulary facts that llama.cpp itself produced
//! (`tests/data/tokenizer/vectors.json`, written by `scripts/tokenizer-vectors.py` through
//! llama.cpp's Python bindings): SmolLM2's and Gemma 3's vocabularies with a few hundred strings,
//! and llama.cpp's llama-spm and llama-bpe vocab files with a handful, each with every
//! combination of add_special and parse_special. Missing files fail the test.

mod common;

use chord::gguf::GgufFile;
use chord::tokenizer::{Tokenizer, Utf8Stream};
use std::collections::BTreeMap;

/// A minimal JSON value (the crate has no JSON dependency).
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(key).unwrap_or_else(|| panic!("no key {key}")),
            _ => panic!("not an object"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
    fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            other => panic!("not a bool: {other:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }
    fn obj(&self) -> &BTreeMap<String, Json> {
        match self {
            Json::Obj(m) => m,
            other => panic!("not an object: {other:?}"),
        }
    }
    fn u32(&self) -> u32 {
        match self {
            Json::Num(n) => *n as u32,
            other => panic!("not a number: {other:?}"),
        }
    }
    fn opt_u32(&self) -> Option<u32> {
        match self {
            Json::Null => None,
            other => Some(other.u32()),
        }
    }
    fn ids(&self) -> Vec<u32> {
        self.arr().iter().map(Json::u32).collect()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s[self.i], c,
            "JSON: expected '{}' at {}",
            c as char, self.i
        );
        self.i += 1;
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(m);
                }
                loop {
                    self.ws();
                    let k = self.string();
                    self.eat(b':');
                    let v = self.value();
                    m.insert(k, v);
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b'}' {
                        return Json::Obj(m);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value());
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b']' {
                        return Json::Arr(a);
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b't' => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(t.parse().unwrap_or_else(|_| panic!("JSON: bad number {t}")))
            }
        }
    }
    fn hex4(&mut self) -> u32 {
        let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
        self.i += 4;
        u32::from_str_radix(h, 16).unwrap()
    }
    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = String::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return out,
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let mut cp = self.hex4();
                            if (0xD800..0xDC00).contains(&cp) {
                                assert_eq!(&self.s[self.i..self.i + 2], b"\\u");
                                self.i += 2;
                                let lo = self.hex4();
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            out.push(char::from_u32(cp).expect("valid code point"));
                        }
                        other => out.push(other as char),
                    }
                }
                _ => {
                    // Copy a whole UTF-8 sequence.
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                        end += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..end]).unwrap());
                    self.i = end;
                }
            }
        }
    }
}

fn load_vectors() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tokenizer/vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("tests/data/tokenizer/vectors.json");
    Parser {
        s: text.as_bytes(),
        i: 0,
    }
    .value()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fnv1a(h: &mut u64, data: &[u8]) {
    for &b in data {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100000001B3);
    }
}

fn open(rel: &str) -> Tokenizer {
    let path = common::cache_dir().join(rel);
    assert!(path.exists(), "{} is missing", path.display());
    let gguf = GgufFile::open(&path).unwrap();
    Tokenizer::from_gguf(&gguf).unwrap()
}

fn vocab(name: &str) -> (Tokenizer, Json) {
    let all = load_vectors();
    let v = all
        .get("vocabs")
        .arr()
        .iter()
        .find(|v| v.get("name").str() == name)
        .unwrap_or_else(|| panic!("no vectors for {name}"))
        .clone();
    (open(v.get("file").str()), v)
}

/// Ids, then both detokenizations, for every case.
fn check_cases(name: &str, min_strings: usize) {
    let (tok, v) = vocab(name);
    let cases = v.get("cases").arr();
    let mut failures = Vec::new();
    let mut strings = std::collections::BTreeSet::new();
    for c in cases {
        let text = c.get("text").str();
        strings.insert(text.to_string());
        let (add, parse) = (c.get("add_special").bool(), c.get("parse_special").bool());
        let want = c.get("ids").ids();
        let got = tok.encode(text, add, parse).unwrap();
        if got != want {
            failures.push(format!(
                "encode({text:?}, add_special={add}, parse_special={parse})\n   want {want:?}\n   got  {got:?}"
            ));
            continue;
        }
        for (key, remove, unparse) in [("detok", false, false), ("detok_special", true, true)] {
            let want = c.get(key).str();
            let got = hex(&tok.decode(&want_ids(c), remove, unparse));
            if got != want {
                failures.push(format!(
                    "decode({:?}, remove_special={remove}, unparse_special={unparse}) of {text:?}\n   want {want}\n   got  {got}",
                    want_ids(c)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        strings.len() >= min_strings,
        "{name}: only {} strings",
        strings.len()
    );
    eprintln!(
        "{name}: {} cases over {} strings match",
        cases.len(),
        strings.len()
    );
}

fn want_ids(c: &Json) -> Vec<u32> {
    c.get("ids").ids()
}

/// Special ids, flags, EOG and control sets, attributes and every token's piece.
fn check_meta(name: &str) {
    let (tok, v) = vocab(name);
    let m = v.get("meta");
    assert_eq!(tok.n_vocab() as u32, m.get("n_vocab").u32());
    assert_eq!(tok.bos(), m.get("bos").opt_u32(), "bos");
    assert_eq!(tok.eos(), m.get("eos").opt_u32(), "eos");
    assert_eq!(tok.add_bos(), m.get("add_bos").bool(), "add_bos");
    assert_eq!(tok.add_eos(), m.get("add_eos").bool(), "add_eos");
    assert_eq!(tok.eog_tokens(), m.get("eog").ids(), "eog set");
    // llama.cpp picks the EOT token by walking a hash map when several candidates exist; chord
    // prefers the first in its list. Both are end-of-generation tokens.
    match m.get("eot").opt_u32() {
        Some(want) => {
            let got = tok.eot().expect("an EOT token");
            assert!(tok.is_eog(got) && tok.is_eog(want), "eot {got} vs {want}");
        }
        None => assert_eq!(tok.eot(), None),
    }
    let n = tok.n_vocab() as u32;
    let control: Vec<u32> = (0..n).filter(|&i| tok.is_control(i)).collect();
    assert_eq!(control, m.get("control").ids(), "control tokens");
    let attrs = m.get("attrs").obj();
    for id in 0..n {
        let want = attrs.get(&id.to_string()).map_or(4, Json::u32);
        assert_eq!(
            tok.token_attr(id),
            want,
            "attr of {id} {:?}",
            tok.token_text(id)
        );
    }
    for (key, special) in [("plain", false), ("special", true)] {
        let mut h = 0xCBF29CE484222325u64;
        for id in 0..n {
            let p = tok.token_to_piece(id, special);
            fnv1a(&mut h, &(p.len() as u32).to_le_bytes());
            fnv1a(&mut h, &p);
        }
        assert_eq!(
            format!("{h:016x}"),
            m.get("pieces_fnv1a").get(key).str(),
            "pieces with special={special}"
        );
    }
}

#[test]
fn smollm2_matches_llama_cpp() {
    check_cases("smollm2", 200);
}

#[test]
fn smollm2_vocabulary_facts() {
    check_meta("smollm2");
    let (tok, _) = vocab("smollm2");
    assert_eq!(tok.pre_tokenizer(), "smollm");
    assert_eq!(tok.find_token("<|im_start|>"), Some(1));
    assert!(tok.is_eog(tok.find_token("<|im_end|>").unwrap()));
}

/// The real Gemma 3 270M file's SentencePiece vocabulary (no space prefix, byte fallback, 262,144
/// tokens, `<start_of_turn>` markers).
#[test]
fn gemma3_matches_llama_cpp() {
    check_cases("gemma3", 200);
    check_meta("gemma3");
}

#[test]
fn llama_spm_matches_llama_cpp() {
    check_cases("llama-spm", 15);
    check_meta("llama-spm");
}

#[test]
fn llama_bpe_matches_llama_cpp() {
    check_cases("llama-bpe", 15);
    check_meta("llama-bpe");
}

#[test]
fn streaming_pieces_rebuilds_text() {
    let (tok, _) = vocab("smollm2");
    let text = "Streaming: café 中文 😀👍🏽 done";
    let ids = tok.encode(text, false, false).unwrap();
    let mut stream = Utf8Stream::new();
    let mut out = String::new();
    for &id in &ids {
        out.push_str(&stream.push(&tok.token_to_piece(id, false)));
    }
    out.push_str(&stream.finish());
    assert_eq!(out, text);
}
