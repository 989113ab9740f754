//! Saving and restoring a session: its tokens, last logits and the KV cache of the evaluated
//! positions, in a versioned little-endian byte format that is checked completely before anything
//! is changed.
//!
//! Layout (format version 1):
//!
//! | field | type |
//! |---|---|
//! | magic `"CHORDSS\0"` | 8 bytes |
//! | format version | u32 |
//! | chord ABI version | u32 |
//! | model fingerprint ([`model_fingerprint`]) | u64 |
//! | n_ctx of the saving session (informational) | u64 |
//! | KV precision (0 f16, 1 f32) | u32 |
//! | n_layer, n_head_kv, head_dim | 3 x u32 |
//! | n_tokens | u64 |
//! | tokens | n_tokens x u32 |
//! | n_logits | u64 |
//! | logits | n_logits x f32 |
//! | per layer: keys then values, `[n_head_kv][n_tokens][head_dim]` of the KV precision | bytes |
//! | checksum of everything before | u64 |
//!
//! The sampler's random generator is not part of the state: every generate call seeds a fresh one
//! from its parameters, so a restored session continues exactly as the saved one would.

use super::Session;
use crate::backend::{KvRows, KvType};
use crate::bail;
use crate::error::Result;
use crate::model::Model;

const MAGIC: &[u8; 8] = b"CHORDSS\0";
/// The state format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A 64-bit hash (FNV-1a over little-endian words, with a final mix); not cryptographic.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x100_0000_01b3);
        h ^= h >> 31;
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h ^= bytes.len() as u64;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Identifies a model: the hash of its GGUF file up to the tensor data (header, every metadata
/// key and value, the tensor index with names, types, shapes and offsets). Two files with the same
/// architecture, hyperparameters, vocabulary and tensor formats have the same fingerprint.
pub fn model_fingerprint(model: &Model) -> u64 {
    let f = model.gguf();
    let end = f.data_offset().min(f.map().len());
    hash(&f.map()[..end])
}

fn kv_code(kv: KvType) -> u32 {
    match kv {
        KvType::F16 => 0,
        KvType::F32 => 1,
    }
}

/// The model geometry a state must match: `(n_layer, n_head_kv, head_dim)`.
fn geometry(s: &Session) -> Result<(usize, usize, usize)> {
    let c = &s.model.core()?.cfg;
    Ok((c.n_layer, c.n_head_kv, c.head_dim))
}

/// Serializes `s` (format above).
pub fn save(s: &Session) -> Result<Vec<u8>> {
    let (n_layer, n_head_kv, head_dim) = geometry(s)?;
    let rows = s.engine.kv_export()?;
    let kv = s.kv_type();
    let n = s.tokens.len();
    let kv_bytes: usize = rows.iter().map(|r| r.k.len() + r.v.len()).sum();
    let mut out = Vec::with_capacity(64 + 4 * n + 4 * s.logits.len() + kv_bytes + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&crate::ffi::CHORD_ABI_VERSION.to_le_bytes());
    out.extend_from_slice(&s.model_fingerprint().to_le_bytes());
    out.extend_from_slice(&(s.n_ctx as u64).to_le_bytes());
    out.extend_from_slice(&kv_code(kv).to_le_bytes());
    for g in [n_layer, n_head_kv, head_dim] {
        out.extend_from_slice(&(g as u32).to_le_bytes());
    }
    out.extend_from_slice(&(n as u64).to_le_bytes());
    for t in &s.tokens {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.extend_from_slice(&(s.logits.len() as u64).to_le_bytes());
    for l in &s.logits {
        out.extend_from_slice(&l.to_le_bytes());
    }
    let layer_bytes = n_head_kv * n * head_dim * kv.size();
    for r in &rows {
        if r.k.len() != layer_bytes || r.v.len() != layer_bytes {
            bail!(Internal, "the KV cache exported an unexpected size");
        }
        out.extend_from_slice(&r.k);
        out.extend_from_slice(&r.v);
    }
    let sum = hash(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Reads little-endian fields, failing with `BadState` at the end of the data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Ok(b)
            }
            _ => bail!(
                BadState,
                "the session state is truncated: it ends inside the {what}"
            ),
        }
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.bytes(4, what)?.try_into().expect("4"),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.bytes(8, what)?.try_into().expect("8"),
        ))
    }
    /// A count that must not exceed `max`.
    fn count(&mut self, max: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        if n > max as u64 {
            bail!(
                BadState,
                "the session state's {what} is {n}, more than {max}"
            );
        }
        Ok(n as usize)
    }
}

/// What a state holds once checked.
struct Parsed {
    tokens: Vec<u32>,
    logits: Vec<f32>,
    rows: Vec<KvRows>,
}

fn parse(s: &Session, buf: &[u8]) -> Result<Parsed> {
    let mut r = Reader { buf, pos: 0 };
    if r.bytes(8, "header")? != MAGIC {
        bail!(BadState, "not a chord session state (wrong magic)");
    }
    let version = r.u32("header")?;
    if version != FORMAT_VERSION {
        bail!(
            BadState,
            "session state format version {version} is not supported (this build reads {FORMAT_VERSION})"
        );
    }
    if buf.len() < 8 + 4 + 8 {
        bail!(BadState, "the session state is truncated");
    }
    let (body, sum) = buf.split_at(buf.len() - 8);
    if hash(body) != u64::from_le_bytes(sum.try_into().expect("8")) {
        bail!(
            BadState,
            "the session state is corrupt or truncated (checksum mismatch)"
        );
    }
    r.buf = body;
    let abi = r.u32("header")?;
    if abi != crate::ffi::CHORD_ABI_VERSION {
        bail!(
            BadState,
            "the session state was saved by chord ABI version {abi}, this is version {}",
            crate::ffi::CHORD_ABI_VERSION
        );
    }
    if r.u64("header")? != s.model_fingerprint() {
        bail!(
            BadState,
            "the session state was saved with another model (fingerprints differ)"
        );
    }
    let _saved_n_ctx = r.u64("header")?;
    let kv = match r.u32("header")? {
        0 => KvType::F16,
        1 => KvType::F32,
        k => bail!(
            BadState,
            "the session state has an unknown KV precision {k}"
        ),
    };
    if kv != s.kv_type() {
        bail!(
            BadState,
            "the session state holds a {kv:?} KV cache but this session's is {:?}",
            s.kv_type()
        );
    }
    let (n_layer, n_head_kv, head_dim) = geometry(s)?;
    for (want, what) in [
        (n_layer, "layer count"),
        (n_head_kv, "KV head count"),
        (head_dim, "head size"),
    ] {
        let got = r.u32("header")? as usize;
        if got != want {
            bail!(
                BadState,
                "the session state's {what} is {got}, the model's is {want}"
            );
        }
    }
    let n = r.count(usize::MAX, "token count")?;
    if n > s.n_ctx {
        bail!(
            BadState,
            "the session state holds {n} tokens, more than this session's context of {}",
            s.n_ctx
        );
    }
    let n_vocab = s.model.tokenizer().n_vocab();
    let tokens: Vec<u32> = r
        .bytes(4 * n, "tokens")?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    if let Some(bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
        bail!(
            BadState,
            "the session state holds token {bad}, outside the vocabulary"
        );
    }
    let n_logits = r.count(n * n_vocab, "logit count")?;
    if n_logits % n_vocab != 0 {
        bail!(BadState, "the session state's logits are not whole rows");
    }
    let logits: Vec<f32> = r
        .bytes(4 * n_logits, "logits")?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    let layer_bytes = n_head_kv * n * head_dim * kv.size();
    let mut rows = Vec::with_capacity(n_layer);
    for _ in 0..n_layer {
        rows.push(KvRows {
            k: r.bytes(layer_bytes, "KV cache")?.to_vec(),
            v: r.bytes(layer_bytes, "KV cache")?.to_vec(),
        });
    }
    if r.pos != body.len() {
        bail!(
            BadState,
            "the session state has {} unexpected bytes at its end",
            body.len() - r.pos
        );
    }
    Ok(Parsed {
        tokens,
        logits,
        rows,
    })
}

/// Replaces `s`'s context with the state in `buf`. Everything is checked first; on any error
/// (`BadState`) the session is unchanged.
pub fn load(s: &mut Session, buf: &[u8]) -> Result<()> {
    let p = parse(s, buf)?;
    let n = p.tokens.len();
    if let Err(e) = s.engine.kv_import(n, &p.rows) {
        s.reset();
        return Err(e);
    }
    s.tokens = p.tokens;
    s.logits = p.logits;
    Ok(())
}

/// The largest state `s` could load: every position of its context filled, every logit kept, the
/// KV cache in f32.
fn max_size(s: &Session) -> Result<u64> {
    let (n_layer, n_head_kv, head_dim) = geometry(s)?;
    let n = s.n_ctx as u64;
    let n_vocab = s.model.tokenizer().n_vocab() as u64;
    let kv = 2 * n_layer as u64 * n_head_kv as u64 * head_dim as u64 * 4 * n;
    Ok(128 + 4 * n + 4 * n * n_vocab + kv)
}

/// [`save`] to the file at `path` (replaced).
pub fn save_file(s: &Session, path: &str) -> Result<()> {
    let bytes = save(s)?;
    std::fs::write(path, bytes).map_err(|e| {
        crate::Error::new(
            crate::ErrorCode::Io,
            format!("cannot write session state to {path}: {e}"),
        )
    })
}

/// [`load`] from the file at `path`; a file larger than any state `s` could hold is `BadState`
/// without being read.
pub fn load_file(s: &mut Session, path: &str) -> Result<()> {
    let io = |e: std::io::Error| {
        crate::Error::new(
            crate::ErrorCode::Io,
            format!("cannot read session state from {path}: {e}"),
        )
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > max_size(s)? {
        bail!(
            BadState,
            "{path} ({len} bytes) is larger than any session state this session can hold"
        );
    }
    let bytes = std::fs::read(path).map_err(io)?;
    load(s, &bytes)
}
