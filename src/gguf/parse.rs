//! Parsing of the GGUF header, metadata and tensor index from a byte slice.

use super::{TensorInfo, Value, MAX_DIMS};
use crate::bail;
use crate::error::{Error, ErrorCode, Result};
use crate::quant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
/// Deepest array nesting accepted; real files nest at most once.
const MAX_NESTING: usize = 8;

pub(super) struct Parsed {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: usize,
    pub data_offset: usize,
}

/// A bounds-checked little-endian reader. `what` names the item being read, for error messages.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: String,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::new(
                ErrorCode::GgufTruncated,
                format!(
                    "GGUF file is truncated: it ends at byte {} inside {} (needed {} more bytes)",
                    self.buf.len(),
                    self.what,
                    n - self.remaining()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count that must be satisfiable by the remaining bytes at `min_each` bytes per item.
    fn count(&mut self, min_each: usize, of: &str) -> Result<usize> {
        let n = self.u64()?;
        let max = (self.remaining() / min_each.max(1)) as u64;
        if n > max {
            bail!(
                GgufLimit,
                "GGUF {} count {} is impossible: only {} bytes remain in the file",
                of,
                n,
                self.remaining()
            );
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String> {
        let len = self.count(1, "string length")?;
        let bytes = self.take(len)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.u8()?),
            1 => Value::I8(self.u8()? as i8),
            2 => Value::U16(self.u16()?),
            3 => Value::I16(self.u16()? as i16),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(self.u32()? as i32),
            6 => Value::F32(f32::from_bits(self.u32()?)),
            7 => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => bail!(GgufUnknownType, "invalid bool byte {b} in {}", self.what),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_NESTING {
                    bail!(
                        GgufLimit,
                        "arrays nested deeper than {MAX_NESTING} in {}",
                        self.what
                    );
                }
                let elem = self.u32()?;
                let min =
                    min_value_size(elem).ok_or_else(|| unknown_value_type(elem, &self.what))?;
                let n = self.count(min, "array element")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(self.u64()? as i64),
            12 => Value::F64(f64::from_bits(self.u64()?)),
            t => return Err(unknown_value_type(t, &self.what)),
        })
    }
}

fn unknown_value_type(t: u32, what: &str) -> Error {
    Error::new(
        ErrorCode::GgufUnknownType,
        format!("unknown metadata value type {t} in {what}"),
    )
}

/// Fewest bytes a value of GGUF type `t` occupies, or `None` for an unknown type.
fn min_value_size(t: u32) -> Option<usize> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => return None,
    })
}

pub(super) fn parse(buf: &[u8]) -> Result<Parsed> {
    let mut c = Cursor {
        buf,
        pos: 0,
        what: "the header".into(),
    };
    let magic = c.take(4)?;
    if magic != MAGIC {
        bail!(
            GgufBadMagic,
            "not a GGUF file: it starts with {:02x?}, expected \"GGUF\"",
            magic
        );
    }
    let version = c.u32()?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() <= 3 {
            " (a big-endian GGUF file; chord reads little-endian files)"
        } else if version == 1 {
            " (GGUF v1 is obsolete; convert the model again)"
        } else {
            ""
        };
        bail!(
            GgufUnsupportedVersion,
            "unsupported GGUF version {version}{hint}; chord reads versions 2 and 3"
        );
    }
    // Each tensor info takes at least 32 bytes, each key/value pair at least 13.
    let n_tensors = c.count(32, "tensor")?;
    let n_kv = c.count(13, "metadata entry")?;

    let mut metadata = Vec::with_capacity(n_kv);
    for i in 0..n_kv {
        c.what = format!("metadata entry {i}");
        let key = c.string()?;
        c.what = format!("metadata entry {i} ('{key}')");
        let ty = c.u32()?;
        let v = c.value(ty, 0)?;
        metadata.push((key, v));
    }

    let mut alignment = 32usize;
    if let Some((_, v)) = metadata.iter().find(|(k, _)| k == "general.alignment") {
        match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => alignment = a as usize,
            _ => bail!(
                GgufLimit,
                "general.alignment is {v}; it must be a power of two up to 1 MiB"
            ),
        }
    }

    let mut raw = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        c.what = format!("tensor info {i}");
        let name = c.string()?;
        c.what = format!("tensor info {i} ('{name}')");
        let n_dims = c.u32()? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            bail!(
                GgufLimit,
                "tensor '{name}' has {n_dims} dimensions; GGML allows 1 to {MAX_DIMS}"
            );
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(c.u64()?);
        }
        let ty_id = c.u32()?;
        let rel = c.u64()?;
        raw.push((name, dims, ty_id, rel));
    }
    let data_offset = c.pos.div_ceil(alignment) * alignment;
    let data_len = buf.len().saturating_sub(data_offset);

    let mut tensors = Vec::with_capacity(raw.len());
    for (name, dims, ty_id, rel) in raw {
        let ty = GgmlType::from_id(ty_id)
            .map_err(|e| Error::new(e.code(), format!("tensor '{name}': {}", e.message())))?;
        let mut n: u64 = 1;
        for &d in &dims {
            if d == 0 || d > i64::MAX as u64 {
                bail!(GgufLimit, "tensor '{name}' has an invalid dimension {d}");
            }
            n = n.checked_mul(d).ok_or_else(|| {
                Error::new(
                    ErrorCode::GgufLimit,
                    format!("tensor '{name}' has too many elements {dims:?}"),
                )
            })?;
        }
        let row_len = dims[0] as usize;
        let row_bytes = ty.row_bytes(row_len).ok_or_else(|| {
            Error::new(
                ErrorCode::GgufLimit,
                format!(
                    "tensor '{name}': row length {row_len} is not a multiple of the {} block size {}",
                    ty.name(),
                    ty.block_size()
                ),
            )
        })?;
        let size = (n / dims[0])
            .checked_mul(row_bytes as u64)
            .filter(|&s| s <= usize::MAX as u64)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::GgufLimit,
                    format!("tensor '{name}' is too large"),
                )
            })? as usize;
        if rel % alignment as u64 != 0 {
            bail!(
                GgufOutOfBounds,
                "tensor '{name}' data offset {rel} is not a multiple of the alignment {alignment}"
            );
        }
        if rel > data_len as u64 || size > data_len - rel as usize {
            bail!(
                GgufOutOfBounds,
                "tensor '{name}' data ({} bytes at offset {}) lies outside the file ({} bytes of tensor data)",
                size,
                rel,
                data_len
            );
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset: data_offset + rel as usize,
            size,
        });
    }
    Ok(Parsed {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}
