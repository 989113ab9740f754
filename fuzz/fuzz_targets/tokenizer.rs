//! Encode and decode on real vocabularies: SmolLM2's BPE (`CHORD_FUZZ_BPE`) and Gemma 3's
//! SentencePiece (`CHORD_FUZZ_SPM`), both loaded once. The first byte picks the vocabulary and
//! the flags; the rest is text to encode (when it is UTF-8, as the C API requires) and, read as
//! little-endian u16/u32 ids, tokens to decode. Encoding then decoding UTF-8 text without
//! special-token parsing must give the text back for BPE (byte-level; SPM may normalise spaces),
//! less the bytes the vocabulary has no token for (SmolLM2 has none for the control characters
//! 0x00-0x1f but tab and newline...; llama.cpp drops those bytes too).
#![no_main]

#[path = "common.rs"]
mod common;

use chord::model::Model;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn vocabs() -> &'static [Arc<Model>; 2] {
    static V: OnceLock<[Arc<Model>; 2]> = OnceLock::new();
    V.get_or_init(|| {
        [
            common::model_from_env("CHORD_FUZZ_BPE", true),
            common::model_from_env("CHORD_FUZZ_SPM", true),
        ]
    })
}

/// GPT-2's byte-to-character map of byte-level BPE: printable bytes stand for themselves, the
/// others for the code points from 256 up, in byte order.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    if printable(b) {
        b as char
    } else {
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap()
    }
}

/// Which bytes SmolLM2's vocabulary has a token for.
fn bpe_bytes() -> &'static [bool; 256] {
    static B: OnceLock<[bool; 256]> = OnceLock::new();
    B.get_or_init(|| {
        let tok = vocabs()[0].tokenizer();
        std::array::from_fn(|b| tok.find_token(&byte_char(b as u8).to_string()).is_some())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let model = &vocabs()[(flags & 1) as usize];
    let tok = model.tokenizer();
    let add_special = flags & 2 != 0;
    let parse_special = flags & 4 != 0;
    let remove_special = flags & 8 != 0;
    let unparse_special = flags & 16 != 0;
    if let Ok(text) = std::str::from_utf8(rest) {
        let ids = tok
            .encode(text, add_special, parse_special)
            .expect("encoding valid UTF-8 cannot fail");
        let back = tok.decode(&ids, remove_special, unparse_special);
        if flags & 1 == 0 && !add_special && !parse_special {
            let known = bpe_bytes();
            let want: Vec<u8> = rest
                .iter()
                .copied()
                .filter(|&b| known[b as usize])
                .collect();
            assert_eq!(back, want, "BPE decode(encode(text)) differs from text");
        }
    }
    // Ids from the bytes: 16-bit ids cover SmolLM2's vocabulary densely, 32-bit ones reach past
    // any vocabulary (out-of-range ids are the C API's CHORD_E_INVALID_TOKEN, checked before
    // decoding; here they wrap into range).
    let n = tok.n_vocab() as u32;
    let ids: Vec<u32> = if flags & 32 != 0 {
        rest.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()) % n)
            .collect()
    } else {
        rest.chunks_exact(2)
            .map(|c| u16::from_le_bytes(c.try_into().unwrap()) as u32 % n)
            .collect()
    };
    let _ = tok.decode(&ids, remove_special, unparse_special);
    for &id in ids.iter().take(16) {
        let _ = tok.token_to_piece(id, unparse_special);
        let _ = tok.is_eog(id);
    }
});
