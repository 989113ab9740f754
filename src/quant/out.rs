//! The product's output as the team's tasks write it: a row-major `m × n` matrix, possibly not yet
//! initialized, cut into blocks of columns ([`Columns`]) that tasks fill directly ([`Out`]).
//!
//! A prefill task computes a block of weight rows against every activation row, which is a block
//! of *columns* of the output: in memory, one short run per output row, interleaved with every
//! other task's runs. Safe Rust cannot hand those interleaved runs to several threads as slices,
//! so before this module each task filled a buffer of its own that was then copied into place
//! serially, and the output itself was zeroed first (about 2.5% of a TinyLlama-shape Q8_0 prefill,
//! with the second thread idle meanwhile). Here the one `unsafe` promise is made once, where the
//! blocks are handed out: tasks get disjoint column ranges.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Range;

/// A row-major `m × n` output shared by the tasks of one product; each takes a disjoint block of
/// columns with [`Columns::block`].
pub struct Columns<'a> {
    ptr: *mut MaybeUninit<f32>,
    m: usize,
    n: usize,
    _out: PhantomData<&'a mut [MaybeUninit<f32>]>,
}

// SAFETY: `Columns` only hands out writes through `block`, whose callers promise that blocks used
// at the same time do not overlap, so sharing it between threads shares no element.
unsafe impl Sync for Columns<'_> {}

impl<'a> Columns<'a> {
    /// The `m × n` matrix in `y`.
    ///
    /// # Panics
    /// When `y` does not hold `m * n` values.
    pub fn new(y: &'a mut [MaybeUninit<f32>], m: usize, n: usize) -> Columns<'a> {
        assert_eq!(Some(y.len()), m.checked_mul(n), "output is not {m} x {n}");
        Columns {
            ptr: y.as_mut_ptr(),
            m,
            n,
            _out: PhantomData,
        }
    }

    /// Columns `cols` of every row.
    ///
    /// # Safety
    /// No two blocks alive at the same time (on any thread) may share a column.
    ///
    /// # Panics
    /// When `cols` is not inside `0..n`.
    pub unsafe fn block(&self, cols: Range<usize>) -> Out<'a> {
        assert!(
            cols.start <= cols.end && cols.end <= self.n,
            "columns {cols:?} of {}",
            self.n
        );
        Out {
            // Only `Out::row` turns this into a reference, for rows that exist.
            ptr: self.ptr.wrapping_add(cols.start),
            rows: self.m,
            cols: cols.len(),
            stride: self.n,
            _out: PhantomData,
        }
    }
}

/// A block of `rows × cols` outputs at a row stride, which the holder alone writes: row `i` is
/// [`Out::row`].
pub struct Out<'a> {
    ptr: *mut MaybeUninit<f32>,
    rows: usize,
    cols: usize,
    stride: usize,
    _out: PhantomData<&'a mut [MaybeUninit<f32>]>,
}

impl<'a> Out<'a> {
    /// `rows` rows of `cols` values, `stride` apart, in `y`.
    ///
    /// # Panics
    /// When they do not fit in `y`, or `cols > stride` (rows would overlap) with more than one row.
    pub fn new(y: &'a mut [MaybeUninit<f32>], rows: usize, cols: usize, stride: usize) -> Out<'a> {
        assert!(
            rows <= 1 || cols <= stride,
            "rows of {cols} overlap at stride {stride}"
        );
        let need = match rows {
            0 => 0,
            r => (r - 1) * stride + cols,
        };
        assert!(
            need <= y.len(),
            "{rows} rows of {cols} at stride {stride} in {}",
            y.len()
        );
        Out {
            ptr: y.as_mut_ptr(),
            rows,
            cols,
            stride,
            _out: PhantomData,
        }
    }

    /// The same block over initialized values.
    pub fn init(y: &'a mut [f32], rows: usize, cols: usize, stride: usize) -> Out<'a> {
        // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and `Out` only ever writes
        // initialized values, so `y` stays initialized.
        let y = unsafe { &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]) };
        Out::new(y, rows, cols, stride)
    }

    /// Rows in the block.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `i` of the block.
    ///
    /// # Panics
    /// When `i >= rows`.
    #[inline]
    pub fn row(&mut self, i: usize) -> &mut [MaybeUninit<f32>] {
        assert!(i < self.rows, "row {i} of {}", self.rows);
        // SAFETY: rows `0..rows` of `cols` values at `stride` lie inside the block this `Out`
        // was made for (checked by `new`, or promised to `Columns::block`), and `&mut self`
        // makes this the only borrow of them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.stride), self.cols) }
    }

    /// Writes `v` to row `i` from column `c`.
    ///
    /// # Panics
    /// When that is outside the block.
    #[inline]
    pub fn put(&mut self, i: usize, c: usize, v: &[f32]) {
        for (o, &v) in self.row(i)[c..c + v.len()].iter_mut().zip(v) {
            o.write(v);
        }
    }

    /// Writes `v` down column `c` from row `i`: `v[q]` to row `i + q`.
    ///
    /// # Panics
    /// When that is outside the block.
    #[inline]
    pub fn put_down(&mut self, i: usize, c: usize, v: &[f32]) {
        assert!(
            c < self.cols && i + v.len() <= self.rows,
            "column {c} from row {i}"
        );
        for (q, &v) in v.iter().enumerate() {
            // SAFETY: row `i + q < rows` and column `c < cols` lie inside the block (see `row`),
            // and `&mut self` makes this the only writer.
            unsafe { (*self.ptr.add((i + q) * self.stride + c)).write(v) };
        }
    }

    /// The block without its first `c` columns.
    pub fn skip_cols(self, c: usize) -> Out<'a> {
        assert!(c <= self.cols, "column {c} of {}", self.cols);
        Out {
            ptr: self.ptr.wrapping_add(c),
            rows: self.rows,
            cols: self.cols - c,
            stride: self.stride,
            _out: PhantomData,
        }
    }

    /// The block without its first `i` rows.
    pub fn skip_rows(self, i: usize) -> Out<'a> {
        assert!(i <= self.rows, "row {i} of {}", self.rows);
        Out {
            ptr: self.ptr.wrapping_add(i * self.stride),
            rows: self.rows - i,
            cols: self.cols,
            stride: self.stride,
            _out: PhantomData,
        }
    }
}
