//! Parsing of the GGUF header, metadata and tensor index from a byte slice.
//!
//! Error codes, in the order the checks run:
//! * `GgufBadMagic`: the first four bytes are not `GGUF`.
//! * `GgufUnsupportedVersion`: version 0, 1, 4 or more, or a big-endian file.
//! * `GgufTruncated`: the file ends inside the header, a metadata entry, a tensor info, or the
//!   padding before the tensor data (when there are tensors).
//! * `GgufLimit`: a count or length beyond the sanity limits in [`super`] (checked before anything
//!   is reserved), arrays nested too deep, a bad `general.alignment` value, a bad tensor shape.
//! * `GgufUnknownType`: an unknown metadata value type, an invalid bool byte, a tensor type chord
//!   does not support.
//! * `GgufDuplicate`: a metadata key or tensor name seen twice.
//! * `GgufOutOfBounds`: tensor data misaligned or not inside the file.
//! * `BadModel`: `general.alignment` is not an integer.
//!
//! Counts below the sanity limits are not checked against the remaining bytes up front: a file
//! that is merely cut short is reported as truncated at the item where it ends. Reservations are
//! capped by what the remaining bytes could hold, so no count makes the reader allocate more than
//! the file could describe.

use super::{
    Array, TensorInfo, Value, MAX_DIMS, MAX_METADATA_ENTRIES, MAX_METADATA_VALUES, MAX_NESTING,
    MAX_STRING_LEN, MAX_TENSORS,
};
use crate::bail;
use crate::error::{Error, ErrorCode, Result};
use crate::quant::GgmlType;
use std::collections::HashMap;

const MAGIC: &[u8; 4] = b"GGUF";
/// Fewest bytes of one tensor info: name length, n_dims, one dimension, type, offset.
const MIN_TENSOR_INFO: usize = 8 + 4 + 8 + 4 + 8;
/// Fewest bytes of one metadata entry: key length, value type, a one-byte value.
const MIN_METADATA_ENTRY: usize = 8 + 4 + 1;
/// Largest `general.alignment` accepted.
const MAX_ALIGNMENT: u64 = 1 << 20;

pub(super) struct Parsed {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub meta_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
    pub alignment: usize,
    pub data_offset: usize,
}

/// A bounds-checked little-endian reader. `what` names the item being read, for error messages.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: String,
    /// Indices of the array elements being read, outermost first.
    path: Vec<u64>,
    /// Metadata values declared so far: one per entry plus every array's length.
    n_values: u64,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn at(&mut self, what: String) {
        self.what = what;
    }

    /// The item being read, with the array element path when inside an array.
    fn place(&self) -> String {
        if self.path.is_empty() {
            return self.what.clone();
        }
        let path: String = self.path.iter().map(|j| format!("[{j}]")).collect();
        format!("{}, array element {path}", self.what)
    }

    fn truncated(&self, needed: usize) -> Error {
        Error::new(
            ErrorCode::GgufTruncated,
            format!(
                "GGUF file is truncated: it ends at byte {} inside {} ({needed} bytes needed at \
                 byte {})",
                self.buf.len(),
                self.place(),
                self.pos
            ),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
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

    /// A count of items, checked against a sanity `limit`. Returns the count and how many items
    /// may be reserved: no more than the remaining bytes could hold at `min_each` bytes per item.
    fn count(&mut self, limit: u64, min_each: usize, of: &str) -> Result<(u64, usize)> {
        let n = self.u64()?;
        if n > limit {
            let place = self.place();
            let place = if place == of {
                String::new()
            } else {
                format!(" in {place}")
            };
            bail!(
                GgufLimit,
                "{of}{place} is {n}, more than the limit of {limit} (the file has {} bytes)",
                self.buf.len()
            );
        }
        let fits = self.remaining() / min_each.max(1);
        Ok((n, (n as usize).min(fits)))
    }

    /// Counts `n` more metadata values against [`MAX_METADATA_VALUES`], before they are read.
    fn add_values(&mut self, n: u64) -> Result<()> {
        self.n_values += n;
        if self.n_values > MAX_METADATA_VALUES {
            bail!(
                GgufLimit,
                "the metadata holds more than {MAX_METADATA_VALUES} values, array elements \
                 included (at {})",
                self.place()
            );
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let (len, _) = self.count(MAX_STRING_LEN, 1, "the string length")?;
        let bytes = self.take(len as usize)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => bail!(
                GgufUnknownType,
                "invalid bool byte {b} in {} (a bool is 0 or 1)",
                self.place()
            ),
        }
    }

    /// `n` elements read by `one`, each named by its index in error messages.
    fn elems<T>(
        &mut self,
        n: u64,
        reserve: usize,
        one: impl Fn(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut items = Vec::with_capacity(reserve);
        self.path.push(0);
        for j in 0..n {
            *self.path.last_mut().expect("pushed above") = j;
            items.push(one(self)?);
        }
        self.path.pop();
        Ok(items)
    }

    /// An array (element type, count, elements) stored as its element type ([`Array`]).
    fn typed_array(&mut self, depth: usize) -> Result<Array> {
        if depth >= MAX_NESTING {
            bail!(
                GgufLimit,
                "arrays nested deeper than {MAX_NESTING} levels in {}",
                self.place()
            );
        }
        let elem = self.u32()?;
        let min = min_value_size(elem).ok_or_else(|| {
            Error::new(
                ErrorCode::GgufUnknownType,
                format!("unknown array element type {elem} in {}", self.place()),
            )
        })?;
        let (n, r) = self.count(MAX_METADATA_VALUES, min, "the array length")?;
        self.add_values(n)?;
        Ok(match elem {
            0 => Array::U8(self.elems(n, r, |c| c.u8())?),
            1 => Array::I8(self.elems(n, r, |c| Ok(c.u8()? as i8))?),
            2 => Array::U16(self.elems(n, r, |c| c.u16())?),
            3 => Array::I16(self.elems(n, r, |c| Ok(c.u16()? as i16))?),
            4 => Array::U32(self.elems(n, r, |c| c.u32())?),
            5 => Array::I32(self.elems(n, r, |c| Ok(c.u32()? as i32))?),
            6 => Array::F32(self.elems(n, r, |c| Ok(f32::from_bits(c.u32()?)))?),
            7 => Array::Bool(self.elems(n, r, |c| c.bool())?),
            8 => Array::String(self.elems(n, r, |c| c.string())?),
            9 => Array::Array(self.elems(n, r, |c| c.typed_array(depth + 1))?),
            10 => Array::U64(self.elems(n, r, |c| c.u64())?),
            11 => Array::I64(self.elems(n, r, |c| Ok(c.u64()? as i64))?),
            12 => Array::F64(self.elems(n, r, |c| Ok(f64::from_bits(c.u64()?)))?),
            _ => unreachable!("min_value_size knows types 0 to 12 only"),
        })
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
            7 => Value::Bool(self.bool()?),
            8 => Value::String(self.string()?),
            9 => Value::Array(self.typed_array(depth)?),
            10 => Value::U64(self.u64()?),
            11 => Value::I64(self.u64()? as i64),
            12 => Value::F64(f64::from_bits(self.u64()?)),
            t => bail!(
                GgufUnknownType,
                "unknown metadata value type {t} in {}",
                self.place()
            ),
        })
    }
}

/// A key or tensor name as shown in messages: control characters escaped, long ones shortened.
fn shown(s: &str) -> String {
    const MAX_CHARS: usize = 96;
    let mut out: String = s
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(MAX_CHARS).is_some() {
        out.push_str(&format!("... ({} bytes)", s.len()));
    }
    out
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

fn check_version(version: u32) -> Result<()> {
    if version == 2 || version == 3 {
        return Ok(());
    }
    let hint = if version == 0 {
        " (version 0 is not a GGUF version)"
    } else if version & 0xffff == 0 && version.swap_bytes() <= 3 {
        " (a big-endian GGUF file; chord reads little-endian files)"
    } else if version == 1 {
        " (GGUF v1 is obsolete; convert the model again)"
    } else {
        " (a newer GGUF version than chord knows)"
    };
    bail!(
        GgufUnsupportedVersion,
        "unsupported GGUF version {version}{hint}; chord reads versions 2 and 3"
    )
}

fn alignment_of(metadata: &[(String, Value)], index: &HashMap<String, usize>) -> Result<usize> {
    let Some(&i) = index.get("general.alignment") else {
        return Ok(32);
    };
    let v = &metadata[i].1;
    if v.as_i64().is_none() && v.as_u64().is_none() {
        bail!(
            BadModel,
            "metadata key 'general.alignment' should be an unsigned integer, but its type is {}",
            v.type_name()
        );
    }
    match v.as_u64() {
        Some(a) if a.is_power_of_two() && a <= MAX_ALIGNMENT => Ok(a as usize),
        _ => bail!(
            GgufLimit,
            "metadata key 'general.alignment' is {v}; it must be a power of two from 1 to \
             {MAX_ALIGNMENT}"
        ),
    }
}

/// Size in bytes of a tensor of type `ty_id` and shape `dims`, after checking both.
fn tensor_type_and_size(name: &str, dims: &[u64], ty_id: u32) -> Result<(GgmlType, usize)> {
    let ty = GgmlType::from_id(ty_id)
        .map_err(|e| Error::new(e.code(), format!("tensor '{name}': {}", e.message())))?;
    let mut n: u64 = 1;
    for (j, &d) in dims.iter().enumerate() {
        if d == 0 || d > i64::MAX as u64 {
            bail!(
                GgufLimit,
                "tensor '{name}' has an invalid dimension {j} of {d} (shape {dims:?})"
            );
        }
        n = n
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::GgufLimit,
                    format!("tensor '{name}' has more than 2^63 elements (shape {dims:?})"),
                )
            })?;
    }
    let row_len = dims[0];
    if !row_len.is_multiple_of(ty.block_size() as u64) {
        bail!(
            GgufLimit,
            "tensor '{name}': row length {row_len} is not a multiple of the {} block size {} \
             (shape {dims:?})",
            ty.name(),
            ty.block_size()
        );
    }
    let size = (n / ty.block_size() as u64)
        .checked_mul(ty.type_size() as u64)
        .filter(|&s| s <= isize::MAX as u64)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::GgufLimit,
                format!(
                    "tensor '{name}' is too large: shape {dims:?} of {}",
                    ty.name()
                ),
            )
        })?;
    Ok((ty, size as usize))
}

pub(super) fn parse(buf: &[u8]) -> Result<Parsed> {
    let mut c = Cursor {
        buf,
        pos: 0,
        what: "the magic".into(),
        path: Vec::new(),
        n_values: 0,
    };
    if buf.len() < MAGIC.len() && MAGIC.starts_with(buf) {
        bail!(
            GgufTruncated,
            "GGUF file is truncated: it ends at byte {} inside the magic",
            buf.len()
        );
    }
    let magic = c.take(MAGIC.len()).unwrap_or(buf);
    if magic != MAGIC {
        bail!(
            GgufBadMagic,
            "not a GGUF file: it starts with {:02x?} ({:?}), expected \"GGUF\"",
            magic,
            String::from_utf8_lossy(magic)
        );
    }
    c.at("the version".into());
    let version = c.u32()?;
    check_version(version)?;

    c.at("the tensor count".into());
    let (n_tensors, reserve_tensors) = c.count(MAX_TENSORS, MIN_TENSOR_INFO, "the tensor count")?;
    c.at("the metadata entry count".into());
    let (n_kv, reserve_kv) = c.count(
        MAX_METADATA_ENTRIES,
        MIN_METADATA_ENTRY,
        "the metadata entry count",
    )?;

    let mut metadata = Vec::with_capacity(reserve_kv);
    let mut meta_index = HashMap::with_capacity(reserve_kv);
    for i in 0..n_kv as usize {
        c.at(format!("the key of metadata entry {i}"));
        let key = c.string()?;
        let k = shown(&key);
        if let Some(first) = meta_index.get(&key) {
            bail!(
                GgufDuplicate,
                "duplicate metadata key '{k}' (entries {first} and {i})"
            );
        }
        c.at(format!("the value type of metadata entry {i} ('{k}')"));
        let ty = c.u32()?;
        c.at(format!("the value of metadata entry {i} ('{k}')"));
        c.add_values(1)?;
        let v = c.value(ty, 0)?;
        meta_index.insert(key.clone(), i);
        metadata.push((key, v));
    }
    let alignment = alignment_of(&metadata, &meta_index)?;

    // First pass: read and check every tensor info but its offset, which needs the data section.
    let mut tensors = Vec::with_capacity(reserve_tensors);
    let mut tensor_index = HashMap::with_capacity(reserve_tensors);
    let mut rel_offsets = Vec::with_capacity(reserve_tensors);
    for i in 0..n_tensors as usize {
        c.at(format!("the name of tensor info {i}"));
        let name = c.string()?;
        let n = shown(&name);
        if let Some(first) = tensor_index.get(&name) {
            bail!(
                GgufDuplicate,
                "duplicate tensor name '{n}' (tensor infos {first} and {i})"
            );
        }
        c.at(format!("the dimension count of tensor info {i} ('{n}')"));
        let n_dims = c.u32()?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            bail!(
                GgufLimit,
                "tensor '{n}' has {n_dims} dimensions; GGML allows 1 to {MAX_DIMS}"
            );
        }
        c.at(format!("the dimensions of tensor info {i} ('{n}')"));
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64()?);
        }
        c.at(format!("the type of tensor info {i} ('{n}')"));
        let ty_id = c.u32()?;
        c.at(format!("the data offset of tensor info {i} ('{n}')"));
        let rel = c.u64()?;
        let (ty, size) = tensor_type_and_size(&n, &dims, ty_id)?;
        tensor_index.insert(name.clone(), i);
        rel_offsets.push(rel);
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset: 0,
            size,
        });
    }

    let padded = c.pos.div_ceil(alignment) * alignment;
    let data_offset = if tensors.is_empty() {
        // A file without tensors may end without the padding (llama.cpp accepts it too).
        padded.min(buf.len())
    } else if padded > buf.len() {
        bail!(
            GgufTruncated,
            "GGUF file is truncated: it ends at byte {} inside the padding before the tensor data \
             (which starts at byte {padded})",
            buf.len()
        );
    } else {
        padded
    };
    let data_len = buf.len() - data_offset;

    // Second pass: every tensor's data must be aligned and inside the file.
    for (t, rel) in tensors.iter_mut().zip(rel_offsets) {
        let name = shown(&t.name);
        if !rel.is_multiple_of(alignment as u64) {
            bail!(
                GgufOutOfBounds,
                "tensor '{name}' data offset {rel} is not a multiple of the alignment {alignment}"
            );
        }
        if rel > data_len as u64 || t.size > data_len - rel as usize {
            bail!(
                GgufOutOfBounds,
                "tensor '{name}' data ({} bytes at offset {rel} of the data section) does not fit \
                 in the file: the data section has {data_len} bytes (from byte {data_offset} to \
                 {}); the file is truncated or the offset is corrupt",
                t.size,
                buf.len()
            );
        }
        t.offset = data_offset + rel as usize;
    }
    Ok(Parsed {
        version,
        metadata,
        meta_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
    })
}
