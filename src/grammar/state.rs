//! The state of one generation under a grammar: llama.cpp's pushdown stacks (each a list of
//! positions in the grammar's elements, the top one a terminal) and the bytes of a character that
//! the last token left unfinished.
//!
//! A token is allowed when, from at least one stack, its code points can be consumed one by one
//! and its unfinished last character (if any) can still begin a character the grammar accepts
//! there; a stack whose top is a token element consumes a whole token by its id instead.

use super::trie::TokenTrie;
use super::{Elem, Grammar};
use crate::bail;
use crate::error::Result;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::sync::Arc;

/// Most stacks one step may hold: a grammar that is more ambiguous than this at some point is an
/// error instead of an unbounded cost per token.
const MAX_STACKS: usize = 4096;

/// A stack of positions in [`Grammar::elems`]; the last one is the next element to match.
type Stack = Vec<u32>;

/// The stacks one step makes, without duplicates, and the rule expansions it has spent: both are
/// bounded for the whole step (one character or token over every stack), so that a grammar of
/// nested repetitions (`x++++...`, found by fuzzing), whose stacks multiply at each level, is an
/// error after a bounded cost instead of minutes of work per character.
#[derive(Default)]
pub(super) struct Stacks {
    list: Vec<Stack>,
    set: HashSet<Stack>,
    expansions: usize,
}

impl Stacks {
    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    #[cfg(test)]
    fn iter(&self) -> std::slice::Iter<'_, Stack> {
        self.list.iter()
    }

    /// The stacks, in the order they were made.
    pub(super) fn into_vec(self) -> Vec<Stack> {
        self.list
    }
}

/// The bytes of a character begun but not finished (llama.cpp's `llama_partial_utf8`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Partial {
    /// Bits decoded so far.
    value: u32,
    /// Continuation bytes still to come; -1 after an invalid sequence.
    pub(super) remain: i8,
}

/// Decodes `bytes` after `start` into `out` (complete code points only), as llama.cpp's
/// `decode_utf8`: a NUL byte ends the input, an invalid sequence drops everything and leaves the
/// state invalid, and a character cut at the end is returned as the new partial state.
pub(super) fn decode(bytes: &[u8], start: Partial, out: &mut Vec<u32>) -> Partial {
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

    /// The code points the class at `pos` accepts, as ranges, when it is a positive class (`None`
    /// for a negated class or `.`); a token element accepts no code point.
    fn class_ranges(&self, mut pos: u32) -> Option<Vec<(u32, u32)>> {
        match self.elem(pos) {
            Elem::Char(_) => {}
            Elem::Token(_) | Elem::NotToken(_) => return Some(Vec::new()),
            _ => return None,
        }
        let mut out = Vec::new();
        loop {
            let e = self.elem(pos);
            match self.elem(pos + 1) {
                Elem::RangeUpper(hi) => {
                    out.push((class_value(e), hi));
                    pos += 2;
                }
                _ => {
                    out.push((class_value(e), class_value(e)));
                    pos += 1;
                }
            }
            if !matches!(self.elem(pos), Elem::CharAlt(_)) {
                return Some(out);
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
    pub(super) fn advance(&self, stack: Stack, out: &mut Stacks) -> Result<()> {
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
            out.expansions += 1;
            if out.expansions > 16 * MAX_STACKS {
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

    fn add_stack(&self, stack: Stack, out: &mut Stacks) -> Result<()> {
        if !out.set.contains(&stack) {
            if out.list.len() >= MAX_STACKS {
                bail!(
                    Grammar,
                    "the grammar is too ambiguous: more than {MAX_STACKS} parse stacks at one point"
                );
            }
            out.set.insert(stack.clone());
            out.list.push(stack);
        }
        Ok(())
    }

    /// The stacks after `stack` accepts the character `c` (none when it does not).
    fn accept_char(&self, stack: &Stack, c: u32, out: &mut Stacks) -> Result<()> {
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
    fn accept_token_on(&self, stack: &Stack, id: u32, cps: &[u32], out: &mut Stacks) -> Result<()> {
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
                    let mut next = Stacks::default();
                    for s in &cur {
                        self.accept_char(s, c, &mut next)?;
                    }
                    cur = next.into_vec();
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

/// The empty set of stacks: no text continues from there.
const DEAD: u32 = 0;

/// Most sets or transitions [`Memo`] keeps before it starts over (tens of MB at most).
const MAX_MEMO: usize = 1 << 20;

/// A transition not computed yet.
const UNKNOWN: u32 = u32::MAX;

/// The code points a set of stacks may accept first, as sorted ranges; `None` when a top is a
/// negated class or `.` (nearly everything).
type FirstChars = Option<Vec<(u32, u32)>>;

/// Sets of stacks (sorted, without duplicates) by number, and the transitions between them by
/// code point: the part of the grammar's automaton that checked tokens have needed so far. ASCII
/// transitions are a table per set, the others a hash map.
#[derive(Debug, Clone, Default)]
struct Memo {
    ids: FxHashMap<Vec<Stack>, u32>,
    sets: Vec<Vec<Stack>>,
    ascii: Vec<[u32; 128]>,
    trans: FxHashMap<(u32, u32), u32>,
    /// The number of the current character stacks, until the state changes.
    current: Option<u32>,
    /// Per set, once asked: the code points its tops can accept, as sorted ranges, or `None` when
    /// a top is a negated class or `.` (nearly everything).
    ranges: Vec<Option<FirstChars>>,
}

impl Memo {
    fn intern(&mut self, mut set: Vec<Stack>) -> u32 {
        if self.sets.is_empty() {
            self.sets.push(Vec::new());
            self.ascii.push([DEAD; 128]);
            self.ids.insert(Vec::new(), DEAD);
        }
        set.sort_unstable();
        set.dedup();
        if let Some(&id) = self.ids.get(&set) {
            return id;
        }
        let id = self.sets.len() as u32;
        self.ids.insert(set.clone(), id);
        self.sets.push(set);
        self.ascii.push([UNKNOWN; 128]);
        id
    }

    /// The number of the set of `stacks` whose top is not a token element.
    fn current(&mut self, g: &Grammar, stacks: &[Stack]) -> u32 {
        if let Some(id) = self.current {
            return id;
        }
        if self.trans.len() > MAX_MEMO || self.sets.len() > MAX_MEMO / 64 {
            *self = Memo::default();
        }
        let chars: Vec<Stack> = stacks
            .iter()
            .filter(|s| s.last().is_none_or(|&p| !g.elem(p).is_token()))
            .cloned()
            .collect();
        let id = self.intern(chars);
        self.current = Some(id);
        id
    }

    /// The set after `set` accepts the code point `c` (a grammar too ambiguous there is dead).
    /// The code points that `set` may accept first, as sorted, merged ranges (`None`: too many to
    /// list, a negated class or `.` is on top).
    fn ranges(&mut self, g: &Grammar, set: u32) -> Option<&[(u32, u32)]> {
        if self.ranges.len() < self.sets.len() {
            self.ranges.resize(self.sets.len(), None);
        }
        if self.ranges[set as usize].is_none() {
            let mut r = Some(Vec::new());
            for s in &self.sets[set as usize] {
                let Some(&top) = s.last() else { continue };
                match (g.class_ranges(top), r.as_mut()) {
                    (Some(more), Some(all)) => all.extend(more),
                    _ => r = None,
                }
            }
            if let Some(all) = r.as_mut() {
                all.sort_unstable();
                let mut merged: Vec<(u32, u32)> = Vec::with_capacity(all.len());
                for &(lo, hi) in all.iter() {
                    match merged.last_mut() {
                        Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                        _ => merged.push((lo, hi)),
                    }
                }
                *all = merged;
            }
            self.ranges[set as usize] = Some(r);
        }
        self.ranges[set as usize]
            .as_ref()
            .expect("set above")
            .as_deref()
    }

    #[inline]
    fn step(&mut self, g: &Grammar, set: u32, c: u32) -> u32 {
        let known = match self.ascii[set as usize].get(c as usize) {
            Some(&next) => next,
            None => self.trans.get(&(set, c)).copied().unwrap_or(UNKNOWN),
        };
        if known != UNKNOWN {
            return known;
        }
        self.compute(g, set, c)
    }

    #[cold]
    fn compute(&mut self, g: &Grammar, set: u32, c: u32) -> u32 {
        // Most code points match no top: dead without building anything (and, beyond ASCII, not
        // worth a table entry).
        let matches = self.sets[set as usize].iter().any(|s| {
            s.last()
                .is_some_and(|&p| !g.elem(p).is_token() && g.match_char(p, c).0)
        });
        if !matches {
            if let Some(slot) = self.ascii[set as usize].get_mut(c as usize) {
                *slot = DEAD;
            }
            return DEAD;
        }
        let mut out = Stacks::default();
        let mut ok = true;
        for s in &self.sets[set as usize] {
            if g.accept_char(s, c, &mut out).is_err() {
                ok = false;
                break;
            }
        }
        let next = if ok {
            self.intern(out.into_vec())
        } else {
            DEAD
        };
        match self.ascii[set as usize].get_mut(c as usize) {
            Some(slot) => *slot = next,
            None => {
                self.trans.insert((set, c), next);
            }
        }
        next
    }
}

/// Where one generation stands in a grammar. Cloning copies the table of transitions found so
/// far (the grammar is shared).
#[derive(Debug, Clone)]
pub struct GrammarState {
    grammar: Arc<Grammar>,
    stacks: Vec<Stack>,
    partial: Partial,
    /// Code points of the token being checked (reused).
    scratch: Vec<u32>,
    memo: Memo,
}

impl GrammarState {
    /// The state before anything was generated.
    pub fn new(grammar: Arc<Grammar>) -> GrammarState {
        GrammarState {
            stacks: grammar.initial.clone(),
            grammar,
            partial: Partial::default(),
            scratch: Vec::new(),
            memo: Memo::default(),
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
    ///
    /// The stacks whose top is a character class are followed as one set, code point by code point,
    /// through a table of transitions between sets that fills as tokens are checked and is kept
    /// for the rest of the generation: checking a token is a few table lookups once its
    /// characters' transitions are known (the whole vocabulary is checked when too few of the most
    /// likely tokens are allowed, often at every step).
    pub fn allows(&mut self, id: u32, piece: &[u8]) -> bool {
        if piece.first().is_none_or(|&b| b == 0) {
            return false;
        }
        let mut cps = std::mem::take(&mut self.scratch);
        let partial = decode(piece, self.partial, &mut cps);
        let by_id = self.stacks.iter().any(|s| {
            s.last().is_some_and(|&top| {
                let e = self.grammar.elem(top);
                e.is_token() && !cps.is_empty() && (e == Elem::Token(id_of(e))) == (id == id_of(e))
            })
        });
        let ok = by_id || self.chars_allowed(&cps, partial);
        self.scratch = cps;
        ok
    }

    /// Every token of `trie` that [`GrammarState::allows`], into `out` (in no particular order;
    /// end-of-generation tokens are the caller's). `piece` gives a token's text. The tokens that
    /// share a beginning are checked together, a branch dropped at its first disallowed
    /// character; one by one only the trie's irregular tokens, or every token while a character
    /// is unfinished or a token element is on top of a stack.
    pub fn allowed_tokens<'v>(
        &mut self,
        trie: &TokenTrie,
        piece: &dyn Fn(u32) -> &'v [u8],
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let g = &*self.grammar;
        let by_token = self
            .stacks
            .iter()
            .any(|s| s.last().is_some_and(|&p| g.elem(p).is_token()));
        if self.partial.remain != 0 || by_token {
            for t in trie.ends.iter().chain(&trie.irregular).copied() {
                if self.allows(t, piece(t)) {
                    out.push(t);
                }
            }
            return;
        }
        let root = self.memo.current(&self.grammar, &self.stacks);
        let mut todo = vec![(0u32, root)];
        let mut visit =
            |memo: &mut Memo, set: u32, edges: &[(u32, u32)], todo: &mut Vec<(u32, u32)>| {
                for &(c, child) in edges {
                    let next = memo.step(g, set, c);
                    if next != DEAD {
                        out.extend_from_slice(trie.ends(child));
                        todo.push((child, next));
                    }
                }
            };
        let mut ranges = Vec::new();
        while let Some((node, set)) = todo.pop() {
            let edges = trie.children(node);
            // Where the tops are positive classes, only the children inside their ranges.
            match self.memo.ranges(g, set) {
                Some(r) if edges.len() > 8 => {
                    ranges.clear();
                    ranges.extend_from_slice(r);
                    for &(lo, hi) in &ranges {
                        let from = edges.partition_point(|e| e.0 < lo);
                        let to = edges.partition_point(|e| e.0 <= hi);
                        visit(&mut self.memo, set, &edges[from..to], &mut todo);
                    }
                }
                _ => visit(&mut self.memo, set, edges, &mut todo),
            }
        }
        for &t in &trie.irregular {
            if self.allows(t, piece(t)) {
                out.push(t);
            }
        }
    }

    /// [`GrammarState::allows`] computed stack by stack through [`GrammarState::accept`]'s steps,
    /// without the table (for tests).
    #[cfg(test)]
    pub(super) fn allows_by_accepting(&self, id: u32, piece: &[u8]) -> bool {
        if piece.first().is_none_or(|&b| b == 0) {
            return false;
        }
        let mut cps = Vec::new();
        let partial = decode(piece, self.partial, &mut cps);
        let g = &*self.grammar;
        self.stacks.iter().any(|stack| {
            if cps.is_empty() {
                // Only a partial character: it must be able to begin what the top accepts.
                return stack.last().is_some_and(|&p| {
                    partial.remain == 0 || (!g.elem(p).is_token() && g.match_partial(p, partial))
                });
            }
            let mut out = Stacks::default();
            if g.accept_token_on(stack, id, &cps, &mut out).is_err() || out.is_empty() {
                return false;
            }
            let by_id = stack.last().is_some_and(|&p| g.elem(p).is_token());
            by_id
                || partial.remain == 0
                || out.iter().any(|s| {
                    s.last()
                        .is_some_and(|&p| !g.elem(p).is_token() && g.match_partial(p, partial))
                })
        })
    }

    /// Whether the character stacks accept the code points `cps` and then the partial character.
    fn chars_allowed(&mut self, cps: &[u32], partial: Partial) -> bool {
        let mut set = self.memo.current(&self.grammar, &self.stacks);
        for &c in cps {
            set = self.memo.step(&self.grammar, set, c);
            if set == DEAD {
                return false;
            }
        }
        if partial.remain == 0 {
            return set != DEAD;
        }
        let g = &*self.grammar;
        self.memo.sets[set as usize].iter().any(|s| {
            s.last()
                .is_some_and(|&p| !g.elem(p).is_token() && g.match_partial(p, partial))
        })
    }

    /// Advances past the token `id` with the text `piece`. A token the grammar does not allow
    /// here is a `Grammar` error and leaves the state unchanged.
    pub fn accept(&mut self, id: u32, piece: &[u8]) -> Result<()> {
        let mut cps = Vec::new();
        let partial = decode(piece, self.partial, &mut cps);
        let mut out = Stacks::default();
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
        self.stacks = out.into_vec();
        self.partial = partial;
        self.memo.current = None;
        Ok(())
    }
}

fn id_of(e: Elem) -> u32 {
    match e {
        Elem::Token(t) | Elem::NotToken(t) => t,
        _ => u32::MAX,
    }
}
