//! The state of one generation under a grammar: llama.cpp's pushdown stacks (each a list of
//! positions in the grammar's elements, the top one a terminal) and the bytes of a character that
//! the last token left unfinished.
//!
//! A token is allowed when, from at least one stack, its code points can be consumed one by one
//! and its unfinished last character (if any) can still begin a character the grammar accepts
//! there; a stack whose top is a token element consumes a whole token by its id instead.

use super::{Elem, Grammar};
use crate::bail;
use crate::error::Result;
use std::collections::HashSet;
use std::sync::Arc;

/// Most stacks one step may hold: a grammar that is more ambiguous than this at some point is an
/// error instead of an unbounded cost per token.
const MAX_STACKS: usize = 4096;

/// A stack of positions in [`Grammar::elems`]; the last one is the next element to match.
type Stack = Vec<u32>;

/// The bytes of a character begun but not finished (llama.cpp's `llama_partial_utf8`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Partial {
    /// Bits decoded so far.
    value: u32,
    /// Continuation bytes still to come; -1 after an invalid sequence.
    remain: i8,
}

/// Decodes `bytes` after `start` into `out` (complete code points only), as llama.cpp's
/// `decode_utf8`: a NUL byte ends the input, an invalid sequence drops everything and leaves the
/// state invalid, and a character cut at the end is returned as the new partial state.
fn decode(bytes: &[u8], start: Partial, out: &mut Vec<u32>) -> Partial {
    const LEN: [i8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4];
    out.clear();
    let bytes = match bytes.iter().position(|&b| b == 0) {
        Some(n) => &bytes[..n],
        None => bytes,
    };
    let mut i = 0;
    let mut value = start.value;
    let mut remain = start.remain;
    while i < bytes.len() && remain > 0 {
        let b = bytes[i];
        if b >> 6 != 2 {
            return Partial {
                value: 0,
                remain: -1,
            };
        }
        value = (value << 6) + (b & 0x3f) as u32;
        i += 1;
        remain -= 1;
    }
    if start.remain > 0 && remain == 0 {
        out.push(value);
    }
    while i < bytes.len() {
        let first = bytes[i];
        remain = LEN[(first >> 4) as usize] - 1;
        if remain < 0 {
            out.clear();
            return Partial {
                value: 0,
                remain: -1,
            };
        }
        value = (first & ((1u8 << (7 - remain)) - 1)) as u32;
        i += 1;
        while i < bytes.len() && remain > 0 {
            value = (value << 6) + (bytes[i] & 0x3f) as u32;
            i += 1;
            remain -= 1;
        }
        if remain == 0 {
            out.push(value);
        }
    }
    Partial { value, remain }
}

impl Grammar {
    fn elem(&self, pos: u32) -> Elem {
        self.elems[pos as usize]
    }

    /// Whether the character class at `pos` accepts `c`, and the position after the class.
    fn match_char(&self, mut pos: u32, c: u32) -> (bool, u32) {
        let positive = matches!(self.elem(pos), Elem::Char(_) | Elem::Any);
        let mut found = false;
        loop {
            let e = self.elem(pos);
            match (e, self.elem(pos + 1)) {
                (_, Elem::RangeUpper(hi)) => {
                    found |= class_value(e) <= c && c <= hi;
                    pos += 2;
                }
                (Elem::Any, _) => {
                    found = true;
                    pos += 1;
                }
                _ => {
                    found |= class_value(e) == c;
                    pos += 1;
                }
            }
            if !matches!(self.elem(pos), Elem::CharAlt(_)) {
                return (found == positive, pos);
            }
        }
    }

    /// Whether some character that begins with the partial bytes can match the class at `pos`.
    fn match_partial(&self, mut pos: u32, p: Partial) -> bool {
        let positive = matches!(self.elem(pos), Elem::Char(_) | Elem::Any);
        if p.remain < 0 || (p.remain == 1 && p.value < 2) {
            return false;
        }
        let shift = 6 * p.remain as u32;
        let mut low = p.value << shift;
        let high = low | ((1u32 << shift) - 1);
        if low == 0 {
            // The smallest character each length can encode (no overlong forms).
            match p.remain {
                2 => low = 1 << 11,
                3 => low = 1 << 16,
                _ => {}
            }
        }
        loop {
            let e = self.elem(pos);
            match (e, self.elem(pos + 1)) {
                (_, Elem::RangeUpper(hi)) => {
                    if class_value(e) <= high && low <= hi {
                        return positive;
                    }
                    pos += 2;
                }
                (Elem::Any, _) => return true,
                _ => {
                    let v = class_value(e);
                    if low <= v && v <= high {
                        return positive;
                    }
                    pos += 1;
                }
            }
            if !matches!(self.elem(pos), Elem::CharAlt(_)) {
                return !positive;
            }
        }
    }

    /// Expands `stack` through rule references until each resulting stack is empty or has a
    /// terminal on top, adding those not yet in `out`.
    pub(super) fn advance(&self, stack: Stack, out: &mut Vec<Stack>) -> Result<()> {
        let terminal = |s: &Stack| {
            s.last()
                .is_none_or(|&p| !matches!(self.elem(p), Elem::Rule(_)))
        };
        if terminal(&stack) {
            return self.add_stack(stack, out);
        }
        let mut todo = vec![stack];
        let mut seen: HashSet<Stack> = HashSet::new();
        while let Some(cur) = todo.pop() {
            if terminal(&cur) {
                self.add_stack(cur, out)?;
                continue;
            }
            if !seen.insert(cur.clone()) {
                continue;
            }
            if seen.len() > 16 * MAX_STACKS {
                bail!(
                    Grammar,
                    "the grammar is too ambiguous: more than {} expansions for one step",
                    16 * MAX_STACKS
                );
            }
            let top = *cur.last().expect("not terminal, so not empty");
            let Elem::Rule(id) = self.elem(top) else {
                unreachable!("checked by terminal")
            };
            let mut sub = self.rule_start[id as usize];
            loop {
                let mut next: Stack = cur[..cur.len() - 1].to_vec();
                if !self.elem(top + 1).is_end() {
                    next.push(top + 1);
                }
                if !self.elem(sub).is_end() {
                    next.push(sub);
                }
                todo.push(next);
                while !self.elem(sub).is_end() {
                    sub += 1;
                }
                if self.elem(sub) == Elem::Alt {
                    sub += 1;
                } else {
                    break;
                }
            }
        }
        Ok(())
    }

    fn add_stack(&self, stack: Stack, out: &mut Vec<Stack>) -> Result<()> {
        if !out.contains(&stack) {
            if out.len() >= MAX_STACKS {
                bail!(
                    Grammar,
                    "the grammar is too ambiguous: more than {MAX_STACKS} parse stacks at one point"
                );
            }
            out.push(stack);
        }
        Ok(())
    }

    /// The stacks after `stack` accepts the character `c` (none when it does not).
    fn accept_char(&self, stack: &Stack, c: u32, out: &mut Vec<Stack>) -> Result<()> {
        let Some(&top) = stack.last() else {
            return Ok(());
        };
        if self.elem(top).is_token() {
            return Ok(());
        }
        let (ok, next) = self.match_char(top, c);
        if ok {
            let mut s = stack[..stack.len() - 1].to_vec();
            if !self.elem(next).is_end() {
                s.push(next);
            }
            self.advance(s, out)?;
        }
        Ok(())
    }

    /// The stacks after `stack` accepts the whole token `id`, whose code points are `cps`.
    fn accept_token_on(
        &self,
        stack: &Stack,
        id: u32,
        cps: &[u32],
        out: &mut Vec<Stack>,
    ) -> Result<()> {
        let Some(&top) = stack.last() else {
            return Ok(());
        };
        match self.elem(top) {
            Elem::Token(t) | Elem::NotToken(t) => {
                if (self.elem(top) == Elem::Token(t)) == (id == t) {
                    let mut s = stack[..stack.len() - 1].to_vec();
                    if !self.elem(top + 1).is_end() {
                        s.push(top + 1);
                    }
                    self.advance(s, out)?;
                }
            }
            _ => {
                let mut cur = vec![stack.clone()];
                for &c in cps {
                    let mut next = Vec::new();
                    for s in &cur {
                        self.accept_char(s, c, &mut next)?;
                    }
                    cur = next;
                    if cur.is_empty() {
                        break;
                    }
                }
                for s in cur {
                    self.add_stack(s, out)?;
                }
            }
        }
        Ok(())
    }
}

/// The value of a class element (the character it names).
fn class_value(e: Elem) -> u32 {
    match e {
        Elem::Char(c) | Elem::CharNot(c) | Elem::CharAlt(c) | Elem::RangeUpper(c) => c,
        _ => 0,
    }
}

/// Where one generation stands in a grammar. Cloning is cheap (the grammar is shared).
#[derive(Debug, Clone)]
pub struct GrammarState {
    grammar: Arc<Grammar>,
    stacks: Vec<Stack>,
    partial: Partial,
    /// Code points of the token being checked (reused).
    scratch: Vec<u32>,
}

impl GrammarState {
    /// The state before anything was generated.
    pub fn new(grammar: Arc<Grammar>) -> GrammarState {
        GrammarState {
            stacks: grammar.initial.clone(),
            grammar,
            partial: Partial::default(),
            scratch: Vec::new(),
        }
    }

    /// The grammar.
    pub fn grammar(&self) -> &Arc<Grammar> {
        &self.grammar
    }

    /// Whether the text so far is a complete match (an end-of-generation token is allowed).
    pub fn can_end(&self) -> bool {
        self.stacks.iter().any(|s| s.is_empty())
    }

    /// Whether nothing more can follow: the match is complete and no stack continues.
    pub fn is_done(&self) -> bool {
        self.stacks.iter().all(|s| s.is_empty())
    }

    /// Whether the token `id` with the text `piece` may come next (end-of-generation tokens are the
    /// caller's: they are allowed when [`GrammarState::can_end`]). An empty piece is not.
    pub fn allows(&mut self, id: u32, piece: &[u8]) -> bool {
        if piece.first().is_none_or(|&b| b == 0) {
            return false;
        }
        let mut cps = std::mem::take(&mut self.scratch);
        let partial = decode(piece, self.partial, &mut cps);
        let ok = self
            .stacks
            .iter()
            .any(|s| self.stack_allows(s, id, &cps, partial));
        self.scratch = cps;
        ok
    }

    fn stack_allows(&self, stack: &Stack, id: u32, cps: &[u32], partial: Partial) -> bool {
        let g = &*self.grammar;
        let Some(&top) = stack.last() else {
            return cps.is_empty() && partial.remain == 0;
        };
        let e = g.elem(top);
        if e.is_token() {
            return if cps.is_empty() {
                partial.remain == 0
            } else {
                (e == Elem::Token(id_of(e))) == (id == id_of(e))
            };
        }
        let Some((&first, rest)) = cps.split_first() else {
            return partial.remain == 0 || g.match_partial(top, partial);
        };
        // Most tokens fail on their first character: decided without building any stack.
        if !g.match_char(top, first).0 {
            return false;
        }
        let mut cur = Vec::new();
        if g.accept_char(stack, first, &mut cur).is_err() {
            return false;
        }
        for &c in rest {
            let mut next = Vec::new();
            for s in &cur {
                if g.accept_char(s, c, &mut next).is_err() {
                    return false;
                }
            }
            cur = next;
            if cur.is_empty() {
                return false;
            }
        }
        if partial.remain == 0 {
            return !cur.is_empty();
        }
        cur.iter().any(|s| {
            s.last()
                .is_some_and(|&p| !g.elem(p).is_token() && g.match_partial(p, partial))
        })
    }

    /// Advances past the token `id` with the text `piece`. A token the grammar does not allow
    /// here is a `Grammar` error and leaves the state unchanged.
    pub fn accept(&mut self, id: u32, piece: &[u8]) -> Result<()> {
        let mut cps = Vec::new();
        let partial = decode(piece, self.partial, &mut cps);
        let mut out = Vec::new();
        for s in &self.stacks {
            self.grammar.accept_token_on(s, id, &cps, &mut out)?;
        }
        if out.is_empty() {
            bail!(
                Grammar,
                "token {id} ({:?}) does not continue the grammar here",
                String::from_utf8_lossy(piece)
            );
        }
        self.stacks = out;
        self.partial = partial;
        Ok(())
    }
}

fn id_of(e: Elem) -> u32 {
    match e {
        Elem::Token(t) | Elem::NotToken(t) => t,
        _ => u32::MAX,
    }
}
