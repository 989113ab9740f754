//! The GGUF reader: maps a file (or reads it into owned memory), parses its header, metadata and
//! tensor index, and validates every tensor's type, shape, offset and size against the file before
//! anything reads tensor data. `query.rs` holds the typed metadata lookups offered to hosts.
//!
//! Hostile input never panics and never makes the reader allocate more than the file could
//! describe: counts beyond the `MAX_*` sanity limits below are `GgufLimit` errors, and every
//! reservation is capped by what the remaining bytes could hold. A file cut short is reported as
//! `GgufTruncated`, naming the item it ends in. The codes each check produces are listed in
//! `parse.rs`; `tests/gguf_malformed.rs` holds a corpus of malformed files with their codes.

mod parse;
pub mod query;
mod value;

pub use query::MetaType;
pub use value::{Array, Value};

use crate::error::Error;
use crate::error::{ErrorCode, Result};
use crate::quant::GgmlType;
use memmap2::{Mmap, MmapMut};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// Most dimensions a GGML tensor has.
pub const MAX_DIMS: usize = 4;

/// Most tensors a file may declare (`GgufLimit` beyond). Real models have a few thousand.
pub const MAX_TENSORS: u64 = 1 << 20;

/// Most metadata entries a file may declare (`GgufLimit` beyond). Real models have about fifty.
pub const MAX_METADATA_ENTRIES: u64 = 1 << 20;

/// Most metadata values in a file, array elements included (`GgufLimit` beyond). This bounds the
/// memory the parsed metadata takes; the largest real vocabularies need about two million.
pub const MAX_METADATA_VALUES: u64 = 1 << 24;

/// Longest metadata string or tensor name in bytes (`GgufLimit` beyond). A longer length that
/// still fits this limit but not the file is reported as `GgufTruncated`.
pub const MAX_STRING_LEN: u64 = 1 << 28;

/// Deepest nesting of arrays in a metadata value (`GgufLimit` beyond); real files nest at most
/// once.
pub const MAX_NESTING: usize = 8;

/// One tensor's entry in the index.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGML order: `dims[0]` is the length of a row (the contiguous axis).
    pub dims: Vec<u64>,
    /// The storage format.
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: usize,
    /// Bytes of data.
    pub size: usize,
}

impl TensorInfo {
    /// Number of values.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Number of rows: the product of all dimensions but the first.
    pub fn n_rows(&self) -> usize {
        self.dims[1..].iter().product::<u64>() as usize
    }

    /// Length of a row.
    pub fn row_len(&self) -> usize {
        self.dims[0] as usize
    }
}

/// Bytes read per step when a file is read into memory instead of mapped (progress and
/// cancellation are checked between steps).
pub const READ_CHUNK: usize = 16 << 20;

/// An open, validated GGUF file. Cheap to share: tensor data is borrowed from the map.
pub struct GgufFile {
    map: Arc<Mmap>,
    mapped: bool,
    /// The file [`GgufFile::open`] mapped, for [`GgufFile::read_tensor`].
    file: Option<std::fs::File>,
    version: u32,
    metadata: Vec<(String, Value)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: usize,
    data_offset: usize,
}

impl GgufFile {
    /// Maps and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = open_file(path)?;
        // SAFETY: the map is read-only. A file truncated by another process after this point can
        // still fault on access; that is the documented contract of every mmap-based loader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| {
            Error::new(
                ErrorCode::Io,
                format!("cannot map '{}': {e}", path.display()),
            )
        })?;
        // The descriptor serves read_tensor only: small tensors here and there, so no read-ahead
        // (the virtual disks here read 8 MiB around each otherwise). A hint.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: a hint on an open descriptor; it changes no memory of this process.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        }
        let mut f = Self::from_map(Arc::new(map))?;
        f.file = Some(file);
        Ok(f)
    }

    /// Reads the whole file at `path` into memory that chord owns (an anonymous, page-aligned
    /// allocation with no link to the file), then parses it. Later changes to the file do not
    /// affect the loaded data, and nothing faults if the file is truncated or its disk goes away.
    /// `on_read(done, total)` is called after every [`READ_CHUNK`] bytes; an error from it stops
    /// the read and is returned (the memory is freed).
    pub fn read(
        path: impl AsRef<Path>,
        mut on_read: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let mut file = open_file(path)?;
        let io = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorCode::Io,
                format!("cannot {what} '{}': {e}", path.display()),
            )
        };
        let len = file.metadata().map_err(|e| io("stat", e))?.len();
        let len = usize::try_from(len).map_err(|_| {
            Error::new(
                ErrorCode::Io,
                format!("'{}' is too large for this machine", path.display()),
            )
        })?;
        let mut buf = MmapMut::map_anon(len).map_err(|e| io("allocate memory for", e))?;
        // 2 MiB pages where the system gives them (crate::huge says why); a hint.
        #[cfg(unix)]
        let _ = buf.advise(memmap2::Advice::HugePage);
        let mut done = 0;
        while done < len {
            let end = (done + READ_CHUNK).min(len);
            file.read_exact(&mut buf[done..end])
                .map_err(|e| io("read", e))?;
            done = end;
            on_read(done, len)?;
        }
        let map = buf
            .make_read_only()
            .map_err(|e| io("protect the copy of", e))?;
        let mut f = Self::from_map(Arc::new(map))?;
        f.mapped = false;
        Ok(f)
    }

    /// Parses an already mapped file.
    pub fn from_map(map: Arc<Mmap>) -> Result<Self> {
        let parsed = parse::parse(&map)?;
        Ok(GgufFile {
            map,
            mapped: true,
            file: None,
            version: parsed.version,
            metadata: parsed.metadata,
            meta_index: parsed.meta_index,
            tensors: parsed.tensors,
            tensor_index: parsed.tensor_index,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
        })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment in bytes.
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Offset of the tensor data section. In a file without tensors that ends before the padding,
    /// this is the file size.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> usize {
        self.map.len()
    }

    /// The whole file's bytes (a map of the file, or the owned copy made by [`GgufFile::read`]).
    pub fn map(&self) -> &Arc<Mmap> {
        &self.map
    }

    /// Whether the bytes are a map of the file (`open`) rather than an owned copy (`read`).
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A required unsigned integer value.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| wrong_type(key, "an unsigned integer", v))
    }

    /// An optional unsigned integer value; present but of the wrong type is an error.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| wrong_type(key, "an unsigned integer", v))
            })
            .transpose()
    }

    /// An optional float value; present but of the wrong type is an error.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| wrong_type(key, "a number", v))
            })
            .transpose()
    }

    /// An optional bool value; present but of the wrong type is an error.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| v.as_bool().ok_or_else(|| wrong_type(key, "a bool", v)))
            .transpose()
    }

    /// A required string value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, "a string", v))
    }

    /// An optional string value; present but of the wrong type is an error.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| wrong_type(key, "a string", v)))
            .transpose()
    }

    /// A required array value.
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| wrong_type(key, "an array", v))
    }

    /// An optional array value; present but of the wrong type is an error.
    pub fn opt_array(&self, key: &str) -> Result<Option<&Array>> {
        self.get(key)
            .map(|v| v.as_array().ok_or_else(|| wrong_type(key, "an array", v)))
            .transpose()
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| Error::new(ErrorCode::BadModel, format!("missing metadata key '{key}'")))
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor (validated against the file when it was opened).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        &self.map[t.offset..t.offset + t.size]
    }

    /// A copy of a tensor's bytes, for a small tensor a model keeps in memory of its own (norm
    /// vectors, biases). Where the file is mapped, a positioned read of the file, not a read through
    /// the map: Linux (6.18) maps a large page-cache folio whole on the first touch, so reading a
    /// few KiB through the map adds the 2 MiB around them to the process's resident memory, and
    /// the norms of a cached file's layers then map most of it (SmolLM2: 64 MB, the peak resident
    /// memory of a model paged under a 13 MB budget).
    pub fn read_tensor(&self, t: &TensorInfo) -> Result<Vec<u8>> {
        match &self.file {
            #[cfg(unix)]
            Some(file) => {
                let mut buf = vec![0u8; t.size];
                std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, t.offset as u64)
                    .map_err(|e| {
                        let (name, size, at) = (&t.name, t.size, t.offset);
                        Error::new(
                            ErrorCode::Io,
                            format!("reading tensor '{name}' ({size} bytes at offset {at}): {e}"),
                        )
                    })?;
                Ok(buf)
            }
            _ => Ok(self.tensor_data(t).to_vec()),
        }
    }
}

fn open_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot open '{}': {e}", path.display()),
        )
    })
}

fn wrong_type(key: &str, want: &str, got: &Value) -> Error {
    Error::new(
        ErrorCode::BadModel,
        format!(
            "metadata key '{key}' should be {want}, but its type is {}",
            got.type_name()
        ),
    )
}
