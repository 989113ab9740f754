//! Pre-tokenization for byte-level BPE: splits text into words the way llama.cpp's
//! `unicode_regex_split` does, before merges run inside each word.
//!
//! llama.cpp applies a list of regexes in turn, each one splitting the pieces left by the previous
//! one (matches and the gaps between them both become pieces). Three of its regexes (GPT-2's,
//! LLaMA 3's and Qwen2's) run through hand-written matchers in llama.cpp rather than through a regex
//! engine, and those matchers differ from the regexes in corner cases; chord ports the matchers
//! line by line instead of running the regexes, so that it splits exactly as llama.cpp does. Every
//! other regex runs through `fancy-regex` on the same "collapsed" text that llama.cpp feeds to
//! `std::regex`: each non-ASCII code point is replaced by one stand-in character for its Unicode
//! category, with llama.cpp's own category table (`unicode_data.rs`).

use super::unicode::{
    flags_of, ACCENT_MARK, LETTER, MASK_CATEGORIES, NUMBER, PUNCTUATION, SYMBOL, WHITESPACE,
};
use crate::error::{Error, ErrorCode, Result};
use fancy_regex::Regex;

/// GPT-2's regex (llama.cpp runs it through `unicode_regex_split_custom_gpt2`).
pub(super) const GPT2_RE: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// LLaMA 3's regex (llama.cpp runs it through `unicode_regex_split_custom_llama3`).
pub(super) const LLAMA3_RE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's regex (llama.cpp runs it through `unicode_regex_split_custom_qwen2`).
pub(super) const QWEN2_RE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const DEFAULT: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    GPT2_RE,
    r"\p{N}+",
    "[0-9][0-9][0-9]",
];
const FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2_RE, "[0-9][0-9][0-9]"];
const STARCODER: &[&str] = &[r"\p{N}", GPT2_RE];
const GPT2: &[&str] = &[GPT2_RE];
const LLAMA3: &[&str] = &[LLAMA3_RE];
const QWEN2: &[&str] = &[QWEN2_RE];
// Copied from llama.cpp's llm_tokenizer_bpe with gen-style escapes for the non-ASCII ranges.
#[rustfmt::skip]
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+",
    "\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+",
    "\\s+$",
    "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
    "\\p{N}+",
];
#[rustfmt::skip]
const DEEPSEEK_CODER: &[&str] = &[
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
    "\\p{N}",
];

/// What a `tokenizer.ggml.pre` name means to llama.cpp (`llama_vocab::impl::load`).
#[derive(Debug, Clone, Copy)]
pub(super) struct PreConfig {
    /// The regexes, applied in turn.
    pub exprs: &'static [&'static str],
    /// `clean_up_tokenization_spaces` when detokenizing.
    pub clean_spaces: bool,
    /// A word that is a whole token is emitted as is, without merges.
    pub ignore_merges: bool,
    /// The default of `add_bos` (overridden by `tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
}

/// The configuration for a pre-tokenizer name; `None` for names chord does not support.
pub(super) fn config_for(name: &str) -> Option<PreConfig> {
    let cfg = |exprs, clean_spaces| PreConfig {
        exprs,
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
    };
    Some(match name {
        "" | "default" => cfg(DEFAULT, true),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreConfig {
            exprs: LLAMA3,
            clean_spaces: true,
            ignore_merges: true,
            add_bos: true,
        },
        "dbrx" | "smaug-bpe" => cfg(LLAMA3, true),
        "deepseek-llm" => cfg(DEEPSEEK_LLM, false),
        "deepseek-coder" => cfg(DEEPSEEK_CODER, false),
        "falcon" => cfg(FALCON, true),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            cfg(STARCODER, true)
        }
        "command-r" | "smollm" => cfg(STARCODER, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "exaone4" => {
            cfg(GPT2, true)
        }
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" => cfg(QWEN2, false),
        "megrez" | "stablelm2" => cfg(QWEN2, true),
        _ => return None,
    })
}

/// How one regex of the list runs.
enum Step {
    /// llama.cpp's hand-written GPT-2 matcher.
    Gpt2,
    /// llama.cpp's hand-written LLaMA 3 matcher (`max_digits` 3) or Qwen2 matcher (1).
    Llama3 { max_digits: usize },
    /// A regex run on the collapsed text (`collapsed`) or on the code points themselves.
    Regex { re: Regex, collapsed: bool },
}

/// A compiled list of pre-tokenizer regexes.
pub(super) struct PreTokenizer {
    steps: Vec<Step>,
}

/// The regex text of a code point on the collapsed path (llama.cpp's `text_collapsed`).
fn collapse(cpt: u32, flags: u16) -> char {
    if cpt < 128 {
        return char::from(cpt as u8);
    }
    if flags & WHITESPACE != 0 {
        return '\u{0B}';
    }
    match flags & MASK_CATEGORIES {
        NUMBER => '\u{D1}',
        LETTER => '\u{D2}',
        PUNCTUATION => '\u{D3}',
        ACCENT_MARK => '\u{D4}',
        SYMBOL => '\u{D5}',
        _ => '\u{D0}',
    }
}

/// The categories llama.cpp collapses, their stand-in and their ASCII members (as regex class text).
const CATEGORIES: &[(&str, char, &str)] = &[
    (r"\p{N}", '\u{D1}', "0-9"),
    (r"\p{L}", '\u{D2}', "A-Za-z"),
    (r"\p{P}", '\u{D3}', r"!-#%-*,-/:-;?-@\[-\]_\{\}"),
    (r"\p{M}", '\u{D4}', ""),
    (r"\p{S}", '\u{D5}', r"\$\+<->^`\|~"),
    (r"\p{Lu}", '\u{D2}', "A-Za-z"),
    (r"\p{Ll}", '\u{D2}', "A-Za-z"),
    (r"\p{Lt}", '\u{D2}', "A-Za-z"),
    (r"\p{Lm}", '\u{D2}', "A-Za-z"),
    (r"\p{Lo}", '\u{D2}', "A-Za-z"),
];

/// Rewrites a regex for the collapsed text, as llama.cpp's `unicode_regex_split` does.
fn collapse_regex(expr: &str) -> Result<String> {
    if !expr.is_ascii() {
        return Err(Error::new(
            ErrorCode::Unsupported,
            format!("pre-tokenizer regex mixes unicode categories and non-ASCII text: {expr}"),
        ));
    }
    let b = expr.as_bytes();
    let mut out = String::new();
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' && (i == 0 || b[i - 1] != b'\\') {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && b[i] == b']' && b[i - 1] != b'\\' {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'p' && b[i + 2] == b'{' {
            if let Some(close) = expr[i + 3..].find('}').map(|p| p + i + 3) {
                if close <= i + 10 {
                    let pat = &expr[i..=close];
                    if let Some(&(_, stand_in, ascii)) = CATEGORIES.iter().find(|c| c.0 == pat) {
                        if !inside {
                            out.push('[');
                        }
                        out.push(stand_in);
                        out.push_str(ascii);
                        if !inside {
                            out.push(']');
                        }
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    Ok(out)
}

impl PreTokenizer {
    /// Compiles a list of regexes.
    pub(super) fn new(exprs: &[&str]) -> Result<Self> {
        let mut steps = Vec::with_capacity(exprs.len());
        for &expr in exprs {
            let step = if expr == GPT2_RE {
                Step::Gpt2
            } else if expr == LLAMA3_RE {
                Step::Llama3 { max_digits: 3 }
            } else if expr == QWEN2_RE {
                Step::Llama3 { max_digits: 1 }
            } else {
                let collapsed = CATEGORIES.iter().any(|c| expr.contains(c.0));
                let pattern = if collapsed {
                    collapse_regex(expr)?
                } else {
                    expr.to_string()
                };
                let re = Regex::new(&pattern).map_err(|e| {
                    Error::new(
                        ErrorCode::Internal,
                        format!("pre-tokenizer regex {expr:?} does not compile: {e}"),
                    )
                })?;
                Step::Regex { re, collapsed }
            };
            steps.push(step);
        }
        Ok(PreTokenizer { steps })
    }

    /// Splits `text` into words; returns the byte range of each word, in order, covering the text.
    pub(super) fn split(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let mut cpts = Vec::with_capacity(text.len());
        let mut byte_pos = Vec::with_capacity(text.len() + 1);
        for (i, c) in text.char_indices() {
            cpts.push(c as u32);
            byte_pos.push(i);
        }
        byte_pos.push(text.len());
        let flags = flags_of(&cpts);

        // The texts the regex steps run on, built when first needed: (text, byte offset of each
        // code point, plus the end).
        let mut collapsed_text: Option<(String, Vec<usize>)> = None;
        let mut wide_text: Option<(String, Vec<usize>)> = None;

        let mut offsets = vec![cpts.len()];
        for step in &self.steps {
            offsets = match step {
                Step::Gpt2 => split_gpt2(&cpts, &flags, &offsets),
                Step::Llama3 { max_digits } => split_llama3(&cpts, &flags, &offsets, *max_digits),
                Step::Regex { re, collapsed } => {
                    let slot = if *collapsed {
                        &mut collapsed_text
                    } else {
                        &mut wide_text
                    };
                    let (rtext, rpos) = slot.get_or_insert_with(|| {
                        let mut s = String::with_capacity(cpts.len());
                        let mut pos = Vec::with_capacity(cpts.len() + 1);
                        for (&c, &f) in cpts.iter().zip(&flags) {
                            pos.push(s.len());
                            let ch = if *collapsed {
                                collapse(c, f)
                            } else if c > 0x7F && f & WHITESPACE != 0 {
                                // std::wregex's \s misses non-ASCII spaces; llama.cpp substitutes.
                                '\u{0B}'
                            } else {
                                char::from_u32(c).unwrap_or('\u{FFFD}')
                            };
                            s.push(ch);
                        }
                        pos.push(s.len());
                        (s, pos)
                    });
                    split_regex(re, rtext, rpos, &offsets)?
                }
            };
        }

        let mut words = Vec::with_capacity(offsets.len());
        let mut start = 0;
        for len in offsets {
            words.push((byte_pos[start], byte_pos[start + len]));
            start += len;
        }
        Ok(words)
    }
}

/// llama.cpp's `unicode_regex_split_stl`: matches and the gaps between them become pieces.
fn split_regex(re: &Regex, text: &str, pos: &[usize], offsets: &[usize]) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    let to_cpt = |byte: usize| pos.partition_point(|&p| p < byte);
    for &len in offsets {
        let base = pos[start];
        let piece = &text[base..pos[start + len]];
        let mut prev = start;
        for m in re.find_iter(piece) {
            let m = m.map_err(|e| {
                Error::new(
                    ErrorCode::Internal,
                    format!("pre-tokenizer regex failed: {e}"),
                )
            })?;
            let (ms, me) = (to_cpt(base + m.start()), to_cpt(base + m.end()));
            if ms > prev {
                out.push(ms - prev);
            }
            out.push(me - ms);
            prev = me;
        }
        if prev < start + len {
            out.push(start + len - prev);
        }
        start += len;
    }
    Ok(out)
}

const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;

/// Accessors of one piece, returning "nothing" outside it, as llama.cpp's `_get_cpt`/`_get_flags`.
struct Piece<'a> {
    cpts: &'a [u32],
    flags: &'a [u16],
    ini: usize,
    end: usize,
    prev_end: usize,
}

impl Piece<'_> {
    fn cpt(&self, pos: usize) -> u32 {
        if self.ini <= pos && pos < self.end {
            self.cpts[pos]
        } else {
            OUT_OF_RANGE
        }
    }

    fn flags(&self, pos: usize) -> u16 {
        if self.ini <= pos && pos < self.end {
            self.flags[pos]
        } else {
            0
        }
    }

    /// Ends the current word at `end`; returns its length.
    fn add(&mut self, end: usize, out: &mut Vec<usize>) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            out.push(len);
        }
        self.prev_end = end;
        len
    }
}

fn is(c: u32, ch: char) -> bool {
    c == ch as u32
}

/// Port of llama.cpp's `unicode_regex_split_custom_gpt2`.
fn split_gpt2(cpts: &[u32], flags: &[u16], offsets: &[usize]) -> Vec<usize> {
    const WLN: u16 = WHITESPACE | LETTER | NUMBER;
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut p = Piece {
            cpts,
            flags,
            ini: start,
            end: start + len,
            prev_end: start,
        };
        start += len;
        let end = p.end;
        let mut pos = p.ini;
        while pos < end {
            let cpt = p.cpt(pos);
            let f = p.flags(pos);

            // 's|'t|'re|'ve|'m|'ll|'d
            if is(cpt, '\'') && pos + 1 < end {
                let next = p.cpt(pos + 1);
                if is(next, 's') || is(next, 't') || is(next, 'm') || is(next, 'd') {
                    pos += p.add(pos + 2, &mut out);
                    continue;
                }
                if pos + 2 < end {
                    let next2 = p.cpt(pos + 2);
                    if (is(next, 'r') && is(next2, 'e'))
                        || (is(next, 'v') && is(next2, 'e'))
                        || (is(next, 'l') && is(next2, 'l'))
                    {
                        pos += p.add(pos + 3, &mut out);
                        continue;
                    }
                }
            }

            let space = is(cpt, ' ');
            let mut f2 = if space { p.flags(pos + 1) } else { f };
            // <space>?\p{L}+
            if f2 & LETTER != 0 {
                pos += space as usize;
                while f2 & LETTER != 0 {
                    pos += 1;
                    f2 = p.flags(pos);
                }
                p.add(pos, &mut out);
                continue;
            }
            // <space>?\p{N}+
            if f2 & NUMBER != 0 {
                pos += space as usize;
                while f2 & NUMBER != 0 {
                    pos += 1;
                    f2 = p.flags(pos);
                }
                p.add(pos, &mut out);
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+
            if f2 & WLN == 0 && f2 != 0 {
                pos += space as usize;
                while f2 & WLN == 0 && f2 != 0 {
                    pos += 1;
                    f2 = p.flags(pos);
                }
                p.add(pos, &mut out);
                continue;
            }

            let mut n_ws = 0;
            while p.flags(pos + n_ws) & WHITESPACE != 0 {
                n_ws += 1;
            }
            // \s+(?!\S)
            if n_ws > 1 && p.cpt(pos + n_ws) != OUT_OF_RANGE {
                pos += n_ws - 1;
                p.add(pos, &mut out);
                continue;
            }
            // \s+
            if n_ws > 0 {
                pos += n_ws;
                p.add(pos, &mut out);
                continue;
            }
            // no match
            pos += 1;
            p.add(pos, &mut out);
        }
    }
    out
}

/// Lower-cases ASCII letters: the only code points whose lower case is one of the letters the
/// contraction rules test (checked against llama.cpp's `unicode_map_lowercase`).
fn ascii_lower(c: u32) -> u32 {
    if (b'A' as u32..=b'Z' as u32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// Port of llama.cpp's `unicode_regex_split_custom_llama3` (`max_digits` 3) and
/// `unicode_regex_split_custom_qwen2` (`max_digits` 1).
fn split_llama3(cpts: &[u32], flags: &[u16], offsets: &[usize], max_digits: usize) -> Vec<usize> {
    const WLN: u16 = WHITESPACE | LETTER | NUMBER;
    let is_rn = |c: u32| is(c, '\r') || is(c, '\n');
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut p = Piece {
            cpts,
            flags,
            ini: start,
            end: start + len,
            prev_end: start,
        };
        start += len;
        let end = p.end;
        let mut pos = p.ini;
        while pos < end {
            let cpt = p.cpt(pos);
            let f = p.flags(pos);

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if is(cpt, '\'') && pos + 1 < end {
                let next = ascii_lower(p.cpt(pos + 1));
                if is(next, 's') || is(next, 't') || is(next, 'm') || is(next, 'd') {
                    pos += p.add(pos + 2, &mut out);
                    continue;
                }
                if pos + 2 < end {
                    let next2 = ascii_lower(p.cpt(pos + 2));
                    if (is(next, 'r') && is(next2, 'e'))
                        || (is(next, 'v') && is(next2, 'e'))
                        || (is(next, 'l') && is(next2, 'l'))
                    {
                        pos += p.add(pos + 3, &mut out);
                        continue;
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(is_rn(cpt) || f & NUMBER != 0)
                && (f & LETTER != 0 || p.flags(pos + 1) & LETTER != 0)
            {
                pos += 1;
                while p.flags(pos) & LETTER != 0 {
                    pos += 1;
                }
                p.add(pos, &mut out);
                continue;
            }

            // \p{N}{1,3} (LLaMA 3) or \p{N} (Qwen2)
            if f & NUMBER != 0 {
                if max_digits == 1 {
                    pos += 1;
                } else {
                    let mut ini = pos;
                    while p.flags(pos) & NUMBER != 0 {
                        pos += 1;
                        if pos - ini >= max_digits {
                            p.add(pos, &mut out);
                            ini = pos;
                        }
                    }
                }
                p.add(pos, &mut out);
                continue;
            }

            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            let space = is(cpt, ' ');
            let mut f2 = if space { p.flags(pos + 1) } else { f };
            if f2 & WLN == 0 && f != 0 {
                pos += space as usize;
                while f2 & WLN == 0 && f2 != 0 {
                    pos += 1;
                    f2 = p.flags(pos);
                }
                while is_rn(p.cpt(pos)) {
                    pos += 1;
                }
                p.add(pos, &mut out);
                continue;
            }

            let mut n_ws = 0;
            let mut last_rn_end = 0;
            while p.flags(pos + n_ws) & WHITESPACE != 0 {
                if is_rn(p.cpt(pos + n_ws)) {
                    last_rn_end = pos + n_ws + 1;
                }
                n_ws += 1;
            }
            // \s*[\r\n]+
            if last_rn_end > 0 {
                pos = last_rn_end;
                p.add(pos, &mut out);
                continue;
            }
            // \s+(?!\S)
            if n_ws > 1 && p.cpt(pos + n_ws) != OUT_OF_RANGE {
                pos += n_ws - 1;
                p.add(pos, &mut out);
                continue;
            }
            // \s+
            if n_ws > 0 {
                pos += n_ws;
                p.add(pos, &mut out);
                continue;
            }
            // no match
            pos += 1;
            p.add(pos, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(exprs: &[&str], text: &str) -> Vec<String> {
        let pre = PreTokenizer::new(exprs).unwrap();
        pre.split(text)
            .unwrap()
            .into_iter()
            .map(|(a, b)| text[a..b].to_string())
            .collect()
    }

    #[test]
    fn gpt2_splits_words_spaces_and_contractions() {
        assert_eq!(
            words(GPT2, "Hello world's  end 123!!"),
            ["Hello", " world", "'s", " ", " end", " 123", "!!"]
        );
    }

    #[test]
    fn llama3_groups_digits_by_three() {
        assert_eq!(words(LLAMA3, "1234567 x"), ["123", "456", "7", " x"]);
        assert_eq!(words(QWEN2, "123"), ["1", "2", "3"]);
    }

    #[test]
    fn every_config_compiles() {
        for name in [
            "default",
            "llama-bpe",
            "deepseek-llm",
            "deepseek-coder",
            "falcon",
            "smollm",
            "gpt-2",
            "qwen2",
        ] {
            let cfg = config_for(name).unwrap();
            PreTokenizer::new(cfg.exprs).unwrap();
        }
    }

    #[test]
    fn starcoder_isolates_digits() {
        assert_eq!(words(STARCODER, "ab 12"), ["ab", " ", "1", "2"]);
    }

    #[test]
    fn collapsed_regex_matches_llama_cpp() {
        assert_eq!(collapse_regex(r"\p{N}").unwrap(), "[\u{D1}0-9]");
        assert_eq!(collapse_regex(r"[^\s\p{L}]").unwrap(), "[^\\s\u{D2}A-Za-z]");
    }
}
