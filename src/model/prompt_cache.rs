//! The model's prompt cache: the keys and values of prompts that its sessions prefilled, kept under
//! a byte budget, so that a new session whose prompt starts with the same tokens (the system prompt
//! and world description every character of a game shares) copies them in instead of computing
//! them again (llama.cpp's server does the same with its slots' prompt cache).
//!
//! Sessions fill it: a prompt of at least [`MIN_TOKENS`] tokens appended to an empty context is
//! stored unless an entry already starts with it; an append to an empty context looks up the
//! entry sharing the longest prefix with its tokens ([`PromptCache::find`]). Entries are evicted
//! least recently used first. An entry holds a fork of the storing session's transformer state
//! (its KV cache), so on the CPU's f16 cache the entry, the session that stored it and every
//! session that reuses it share the prefix's memory ([`crate::attn::KvBlocks`]): a hit costs
//! neither the prefix's forward pass nor a copy of it.

use crate::backend::KvType;
use parking_lot::Mutex;
use std::any::Any;
use std::sync::Arc;

/// Shortest prompt worth storing: below it the forward pass costs about as much as the copy.
pub const MIN_TOKENS: usize = 32;

/// One stored prompt: its tokens and a transformer state holding their keys and values.
pub struct Entry {
    /// The prompt's tokens.
    pub tokens: Vec<u32>,
    /// The cache precision of the state.
    pub kv_type: KvType,
    /// The storing session's transformer state at the end of the prompt (a fork, of the engine's
    /// own type: sessions of that type take their prefix from it).
    pub state: Mutex<Box<dyn Any + Send>>,
    /// Bytes the prompt's keys and values take (its positions times the bytes of one).
    pub kv_bytes: usize,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("tokens", &self.tokens.len())
            .field("kv_type", &self.kv_type)
            .field("kv_bytes", &self.kv_bytes)
            .finish()
    }
}

impl Entry {
    fn bytes(&self) -> usize {
        self.tokens.len() * 4 + self.kv_bytes
    }
}

/// Stored prompts under a byte budget; shared by a model's sessions (thread-safe).
#[derive(Debug)]
pub struct PromptCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Entries with the tick of their last use.
    entries: Vec<(Arc<Entry>, u64)>,
    bytes: usize,
    tick: u64,
    tokens_reused: u64,
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PromptCache {
    /// An empty cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> PromptCache {
        PromptCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The entry of precision `kv` that shares the longest prefix with `tokens`, and that prefix's
    /// length (at least 1), marked as used.
    pub fn find(&self, tokens: &[u32], kv: KvType) -> Option<(Arc<Entry>, usize)> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner
            .entries
            .iter_mut()
            .filter(|(e, _)| e.kv_type == kv)
            .map(|(e, used)| (common_prefix(&e.tokens, tokens), e, used))
            .filter(|(n, _, _)| *n > 0)
            .max_by_key(|(n, _, _)| *n)
            .map(|(n, e, used)| {
                *used = tick;
                (e.clone(), n)
            })
    }

    /// Counts `n` positions taken from the cache instead of computed.
    pub fn record_reuse(&self, n: usize) {
        self.inner.lock().tokens_reused += n as u64;
    }

    /// Whether an entry of precision `kv` starts with all of `tokens`.
    pub fn covers(&self, tokens: &[u32], kv: KvType) -> bool {
        self.inner
            .lock()
            .entries
            .iter()
            .any(|(e, _)| e.kv_type == kv && e.tokens.starts_with(tokens))
    }

    /// Stores `entry`, evicting the least recently used entries until it fits, and dropping those
    /// that it makes redundant (their tokens are a prefix of its). An entry larger than the whole
    /// budget is not stored.
    pub fn insert(&self, entry: Entry) {
        let size = entry.bytes();
        if size > self.budget {
            crate::log!(
                Debug,
                "prompt cache: a prompt of {} tokens ({size} bytes) exceeds the budget of {} bytes",
                entry.tokens.len(),
                self.budget
            );
            return;
        }
        let mut inner = self.inner.lock();
        let Inner { entries, bytes, .. } = &mut *inner;
        entries.retain(|(e, _)| {
            let redundant = e.kv_type == entry.kv_type && entry.tokens.starts_with(&e.tokens);
            if redundant {
                *bytes -= e.bytes();
            }
            !redundant
        });
        while *bytes + size > self.budget {
            let Some(oldest) = (0..entries.len()).min_by_key(|&i| entries[i].1) else {
                break;
            };
            *bytes -= entries.swap_remove(oldest).0.bytes();
        }
        inner.tick += 1;
        let tick = inner.tick;
        crate::log!(
            Debug,
            "prompt cache: stored a prompt of {} tokens ({size} bytes)",
            entry.tokens.len()
        );
        inner.bytes += size;
        inner.entries.push((Arc::new(entry), tick));
    }

    /// The most bytes the entries may hold.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes the entries hold.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Positions taken from the cache instead of computed, over the model's life.
    pub fn tokens_reused(&self) -> u64 {
        self.inner.lock().tokens_reused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tokens: &[u32], bytes_per_token: usize) -> Entry {
        Entry {
            tokens: tokens.to_vec(),
            kv_type: KvType::F16,
            state: Mutex::new(Box::new(())),
            kv_bytes: tokens.len() * bytes_per_token,
        }
    }

    #[test]
    fn longest_prefix_and_eviction() {
        let c = PromptCache::new(1000);
        c.insert(entry(&[1, 2, 3, 4], 100)); // 416 bytes
        c.insert(entry(&[1, 2, 9], 100)); // 312
        let (e, n) = c.find(&[1, 2, 3, 7], KvType::F16).unwrap();
        assert_eq!((e.tokens.as_slice(), n), (&[1, 2, 3, 4][..], 3));
        assert!(c.find(&[5], KvType::F16).is_none());
        assert!(c.find(&[1], KvType::F32).is_none());
        assert!(c.covers(&[1, 2, 3], KvType::F16));
        assert!(!c.covers(&[1, 2, 3, 4, 5], KvType::F16));
        // [1,2,9] is the least recently used: the next entry evicts it.
        c.insert(entry(&[7, 8, 9], 100));
        assert_eq!(c.bytes(), 416 + 312);
        assert!(c.find(&[1, 2, 9], KvType::F16).unwrap().1 == 2);
        // An entry that extends another replaces it; one larger than the budget is not stored.
        c.insert(entry(&[1, 2, 3, 4, 5], 100));
        assert_eq!(c.bytes(), 520 + 312);
        c.insert(entry(&[6; 11], 100));
        assert_eq!(c.bytes(), 520 + 312);
    }
}
