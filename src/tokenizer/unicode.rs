//! Unicode helpers that must agree with llama.cpp byte for byte: code point category flags (from
//! llama.cpp's own table, see `unicode_data.rs`), the GPT-2 byte-to-unicode mapping, and UTF-8
//! lengths computed the way llama.cpp computes them.

use super::unicode_data::FLAG_RANGES;

/// The code point is unassigned (`\p{Cn}`).
pub(super) const UNDEFINED: u16 = 0x0001;
/// `\p{N}`.
pub(super) const NUMBER: u16 = 0x0002;
/// `\p{L}`.
pub(super) const LETTER: u16 = 0x0004;
/// `\p{M}`.
pub(super) const ACCENT_MARK: u16 = 0x0010;
/// `\p{P}`.
pub(super) const PUNCTUATION: u16 = 0x0020;
/// `\p{S}`.
pub(super) const SYMBOL: u16 = 0x0040;
/// The bits that hold the general category.
pub(super) const MASK_CATEGORIES: u16 = 0x00FF;
/// `\s`: Unicode `White_Space`.
pub(super) const WHITESPACE: u16 = 0x0100;

/// llama.cpp's `unicode_set_whitespace`.
const WHITESPACE_CPTS: [u32; 25] = [
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
];

/// Flags of a code point, as llama.cpp's `unicode_cpt_flags_from_cpt` (never 0 for a real code
/// point; callers use 0 for "outside the text").
pub(super) fn flags(cpt: u32) -> u16 {
    if cpt >= 0x110000 {
        return UNDEFINED;
    }
    let i = FLAG_RANGES.partition_point(|&(start, _)| start <= cpt);
    let mut f = FLAG_RANGES[i - 1].1;
    if WHITESPACE_CPTS.binary_search(&cpt).is_ok() {
        f |= WHITESPACE;
    }
    f
}

/// Flags of every code point of a text, with a fast path for ASCII.
pub(super) fn flags_of(cpts: &[u32]) -> Vec<u16> {
    static ASCII: std::sync::OnceLock<[u16; 128]> = std::sync::OnceLock::new();
    let ascii = ASCII.get_or_init(|| std::array::from_fn(|c| flags(c as u32)));
    cpts.iter()
        .map(|&c| if c < 128 { ascii[c as usize] } else { flags(c) })
        .collect()
}

/// The length of the UTF-8 sequence that starts with `lead`, as llama.cpp's `unicode_len_utf8`
/// (a continuation byte counts as 1).
pub(super) fn utf8_len(lead: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[(lead >> 4) as usize]
}

/// GPT-2's byte-to-unicode table: the character that stands for each byte in a byte-level BPE
/// vocabulary.
pub(super) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let keep =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let c = if keep {
            b
        } else {
            n += 1;
            255 + n
        };
        table[b as usize] = char::from_u32(c).expect("a valid code point");
    }
    table
}

/// The byte a GPT-2 byte-level character stands for, if any.
pub(super) fn char_to_byte(c: char) -> Option<u8> {
    static REVERSE: std::sync::OnceLock<[u8; 68]> = std::sync::OnceLock::new();
    let c = c as u32;
    match c {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(c as u8),
        0x100..=0x143 => {
            // The 68 bytes that are not printable map, in order, to U+0100..U+0143.
            let reverse = REVERSE.get_or_init(|| {
                let table = byte_to_char_table();
                let mut r = [0u8; 68];
                for (b, &ch) in table.iter().enumerate() {
                    if (ch as u32) >= 0x100 {
                        r[ch as usize - 0x100] = b as u8;
                    }
                }
                r
            });
            Some(reverse[(c - 0x100) as usize])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_flags() {
        assert_eq!(flags('a' as u32) & MASK_CATEGORIES, LETTER);
        assert_eq!(flags('7' as u32) & MASK_CATEGORIES, NUMBER);
        assert_eq!(flags('!' as u32) & MASK_CATEGORIES, PUNCTUATION);
        assert_eq!(flags('+' as u32) & MASK_CATEGORIES, SYMBOL);
        assert_ne!(flags(' ' as u32) & WHITESPACE, 0);
        assert_ne!(flags(0x3000) & WHITESPACE, 0);
        assert_eq!(flags(0x4E2D) & MASK_CATEGORIES, LETTER);
        assert_eq!(flags(0x0301) & MASK_CATEGORIES, ACCENT_MARK);
        assert_eq!(flags(0x10FFFF), UNDEFINED);
        assert_eq!(flags(0x110000), UNDEFINED);
    }

    #[test]
    fn byte_mapping_round_trips() {
        let table = byte_to_char_table();
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(table[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
