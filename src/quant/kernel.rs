//! Kernel selection: the dot-product function for a weight format on an instruction-set path and,
//! on AVX2, for the product's shape (the path llama.cpp's x86 backend takes), picked once per
//! product.

use super::act::{Act, Q8Act, Q8Eight, Q8KRow, Q8Row};
use super::isa::Isa;
use super::out::Out;
use super::pack::{preferred_layout, Layout};
use super::{dot, GgmlType};
use half::{bf16, f16};

/// One weight row times four activation rows.
pub type Q8x4 = unsafe fn(&[u8], [Q8Row; 4]) -> [f32; 4];

/// One weight row times eight activation rows.
pub type Q8x8 = unsafe fn(&[u8], &Q8Eight) -> [f32; 8];

/// Eight consecutive weight rows (the `usize` is the row length in bytes) times one activation row.
pub type Q8Rows8 = unsafe fn(&[u8], usize, Q8Row) -> [f32; 8];

/// One weight row times four Q8_K activation rows.
pub type Q8Kx4 = unsafe fn(&[u8], [Q8KRow; 4]) -> [f32; 4];

/// Kernels that take eight consecutive weight rows at once (`x8`: times one activation row;
/// `x8m`: each group of eight in a multiple of eight rows times many activation rows, in the order
/// llama.cpp uses for whole groups of four, written to row i, column `8g + t` of the output; the
/// `usize` is the row length in bytes), with the one-row kernels
/// of the same results (`one`, `four`) for the rows past the last multiple of eight. One struct
/// per activation format: fn pointers over borrowed rows must name the row type with an elided
/// lifetime to stay callable on any borrow.
#[derive(Clone, Copy)]
pub struct EightQ8 {
    /// One weight row times one activation row.
    pub one: unsafe fn(&[u8], Q8Row) -> f32,
    /// One weight row times four activation rows.
    pub four: Q8x4,
    /// Eight weight rows times one activation row.
    pub x8: unsafe fn(&[u8], usize, Q8Row) -> [f32; 8],
    /// Eight weight rows times many activation rows.
    pub x8m: unsafe fn(&[u8], usize, &[Q8Row], &mut Out),
}

/// [`EightQ8`] for Q8_K activations.
#[derive(Clone, Copy)]
pub struct EightQ8K {
    /// One weight row times one activation row.
    pub one: unsafe fn(&[u8], Q8KRow) -> f32,
    /// One weight row times four activation rows.
    pub four: Q8Kx4,
    /// Eight weight rows times one activation row.
    pub x8: unsafe fn(&[u8], usize, Q8KRow) -> [f32; 8],
    /// Eight weight rows times many activation rows.
    pub x8m: unsafe fn(&[u8], usize, &[Q8KRow], &mut Out),
}

/// A row dot product for one activation format. The pointers are `unsafe fn` because the AVX2
/// kernels need AVX2: [`Kernel::select`] only returns them for an [`Isa`] that detected it, which
/// is what makes calling them sound.
#[derive(Clone, Copy)]
pub enum Kernel {
    /// Q8_0 or Q8_1 activations; optionally kernels that take eight activation rows at once and
    /// eight weight rows at once, with the results of the first.
    Q8(
        unsafe fn(&[u8], Q8Row) -> f32,
        Option<Q8x8>,
        Option<Q8Rows8>,
    ),
    /// Q8_K activations; optionally a kernel that takes four activation rows at once (the rows
    /// past the last multiple of four go through the first).
    Q8K(unsafe fn(&[u8], Q8KRow) -> f32, Option<Q8Kx4>),
    /// Q8_0 activations, eight weight rows at a time.
    Q8Rows(EightQ8),
    /// Q8_K activations, eight weight rows at a time.
    Q8KRows(EightQ8K),
    /// Q8_K activations, weights in a packed layout of eight rows ([`crate::quant::pack`]), read
    /// by an `x8` and an `x8m` kernel as in [`EightQ8K`]; the row count is a multiple of eight.
    Q8KPacked(
        unsafe fn(&[u8], usize, Q8KRow) -> [f32; 8],
        unsafe fn(&[u8], usize, &[Q8KRow], &mut Out),
    ),
    /// f32 activations.
    F32(unsafe fn(&[u8], &[f32]) -> f32),
    /// f16 activations.
    F16(unsafe fn(&[u8], &[f16]) -> f32),
    /// bf16 activations.
    BF16(unsafe fn(&[u8], &[bf16]) -> f32),
}

impl Kernel {
    /// The kernel for `ty` weights on `isa`: AVX-512 or AVX2 where one exists and `isa` allows it,
    /// else scalar.
    pub fn select(isa: Isa, ty: GgmlType) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if isa.has_avx512() {
            use super::avx512::dot as v;
            match ty {
                GgmlType::Q4_0 => {
                    return Kernel::Q8(v::dot_q4_0, Some(v::dot_q4_0_x8), Some(v::dot_q4_0_rows8))
                }
                GgmlType::Q4_1 => {
                    return Kernel::Q8(v::dot_q4_1, Some(v::dot_q4_1_x8), Some(v::dot_q4_1_rows8))
                }
                GgmlType::Q5_0 => {
                    return Kernel::Q8(v::dot_q5_0, Some(v::dot_q5_0_x8), Some(v::dot_q5_0_rows8))
                }
                GgmlType::Q5_1 => {
                    return Kernel::Q8(v::dot_q5_1, Some(v::dot_q5_1_x8), Some(v::dot_q5_1_rows8))
                }
                GgmlType::Q8_0 => {
                    return Kernel::Q8(v::dot_q8_0, Some(v::dot_q8_0_x8), Some(v::dot_q8_0_rows8))
                }
                _ => {}
            }
        }
        #[cfg(target_arch = "x86_64")]
        if isa.has_avx2() {
            use super::avx2::dot as v;
            return match ty {
                GgmlType::F32 => Kernel::F32(v::dot_f32),
                GgmlType::F16 => Kernel::F16(v::dot_f16),
                GgmlType::BF16 => Kernel::BF16(v::dot_bf16),
                GgmlType::Q4_0 => {
                    Kernel::Q8(v::dot_q4_0, Some(v::dot_q4_0_x8), Some(v::dot_q4_0_rows8))
                }
                GgmlType::Q4_1 => {
                    Kernel::Q8(v::dot_q4_1, Some(v::dot_q4_1_x8), Some(v::dot_q4_1_rows8))
                }
                GgmlType::Q5_0 => {
                    Kernel::Q8(v::dot_q5_0, Some(v::dot_q5_0_x8), Some(v::dot_q5_0_rows8))
                }
                GgmlType::Q5_1 => {
                    Kernel::Q8(v::dot_q5_1, Some(v::dot_q5_1_x8), Some(v::dot_q5_1_rows8))
                }
                GgmlType::Q8_0 => {
                    Kernel::Q8(v::dot_q8_0, Some(v::dot_q8_0_x8), Some(v::dot_q8_0_rows8))
                }
                GgmlType::Q2_K => Kernel::Q8K(v::dot_q2_k, None),
                GgmlType::Q3_K => Kernel::Q8K(v::dot_q3_k, None),
                GgmlType::Q4_K => Kernel::Q8K(v::dot_q4_k, None),
                GgmlType::Q5_K => Kernel::Q8K(v::dot_q5_k, None),
                GgmlType::Q6_K => Kernel::Q8K(v::dot_q6_k, Some(v::dot_q6_k_x4)),
            };
        }
        let _ = isa;
        match ty {
            GgmlType::F32 => Kernel::F32(dot::dot_f32),
            GgmlType::F16 => Kernel::F16(dot::dot_f16),
            GgmlType::BF16 => Kernel::BF16(dot::dot_bf16),
            GgmlType::Q4_0 => Kernel::Q8(dot::dot_q4_0, None, None),
            GgmlType::Q4_1 => Kernel::Q8(dot::dot_q4_1, None, None),
            GgmlType::Q5_0 => Kernel::Q8(dot::dot_q5_0, None, None),
            GgmlType::Q5_1 => Kernel::Q8(dot::dot_q5_1, None, None),
            GgmlType::Q8_0 => Kernel::Q8(dot::dot_q8_0, None, None),
            GgmlType::Q2_K => Kernel::Q8K(dot::dot_q2_k, None),
            GgmlType::Q3_K => Kernel::Q8K(dot::dot_q3_k, None),
            GgmlType::Q4_K => Kernel::Q8K(dot::dot_q4_k, None),
            GgmlType::Q5_K => Kernel::Q8K(dot::dot_q5_k, None),
            GgmlType::Q6_K => Kernel::Q8K(dot::dot_q6_k, None),
        }
    }

    /// The kernel for a product of `n` rows of `k` `ty` weights with `m` activation rows on `isa`.
    ///
    /// On AVX2 (and AVX-512, whose kernels give the same bits) this follows the path llama.cpp's x86 CPU backend takes for the same product, so
    /// that results are bit-identical: Q4_0 and Q4_K weights with a multiple of 8 rows are
    /// repacked there (gemm for each group of four activation rows, gemv for the rest), other
    /// K-quant weights go through the tiled product for 8 or more activation rows (Q6_K eight
    /// weight rows at a time when `n` is a multiple of 8), and F16/BF16
    /// weights through tinyBLAS for 2 or more (when `n` is a multiple of 4 and `k` of 8).
    /// Elsewhere it is [`Kernel::select`].
    ///
    /// Weights in a packed `layout` (which [`crate::quant::pack::preferred_layout`] only chooses
    /// for a path with kernels for it, and a multiple of eight rows) take those kernels, with the
    /// results of the GGUF-layout ones.
    pub fn for_product(
        isa: Isa,
        ty: GgmlType,
        layout: Layout,
        n: usize,
        k: usize,
        m: usize,
    ) -> Option<Kernel> {
        match layout {
            Layout::Gguf => Some(Self::for_gguf(isa, ty, n, k, m)),
            Layout::Q4KRows8 => Self::for_packed(isa, ty, layout, n),
        }
    }

    /// [`Kernel::for_product`] for weights in a packed layout: `None` when `isa` has no kernels
    /// for it, or the shape does not fit it.
    fn for_packed(isa: Isa, ty: GgmlType, layout: Layout, n: usize) -> Option<Kernel> {
        if !n.is_multiple_of(8) || preferred_layout(isa, ty, n) != layout {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if layout == Layout::Q4KRows8 && isa.has_avx2() {
            use super::avx2::rows8 as r8;
            use super::avx512::rows8 as r512;
            let x8m = if isa.has_avx512() {
                r512::q4_k_x8m_packed
            } else {
                r8::q4_k_x8m_packed
            };
            return Some(Kernel::Q8KPacked(r8::q4_k_x8_packed, x8m));
        }
        None
    }

    /// [`Kernel::for_product`] for weights in GGUF layout.
    fn for_gguf(isa: Isa, ty: GgmlType, n: usize, k: usize, m: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if isa.has_avx2() {
            use super::avx2::orders as o;
            use super::avx2::rows8 as r8;
            use super::avx512::rows8 as r512;
            let repacked = n.is_multiple_of(8);
            let vnni = isa.has_avx512();
            match ty {
                GgmlType::Q4_0 if repacked => {
                    return Kernel::Q8Rows(EightQ8 {
                        one: o::dot_q4_0_r8,
                        four: o::dot_q4_0_r8_x4,
                        x8: r8::q4_0_x8,
                        x8m: if vnni { r512::q4_0_x8m } else { r8::q4_0_x8m },
                    })
                }
                GgmlType::Q4_K if repacked => {
                    return Kernel::Q8KRows(EightQ8K {
                        one: o::dot_q4_k_r8,
                        four: o::dot_q4_k_r8_x4,
                        x8: r8::q4_k_x8,
                        x8m: if vnni { r512::q4_k_x8m } else { r8::q4_k_x8m },
                    })
                }
                GgmlType::Q2_K if m >= 8 => return Kernel::Q8K(o::dot_q2_k_tiled, None),
                GgmlType::Q3_K if m >= 8 => return Kernel::Q8K(o::dot_q3_k_tiled, None),
                GgmlType::Q4_K if m >= 8 => return Kernel::Q8K(o::dot_q4_k_tiled, None),
                GgmlType::Q5_K if m >= 8 => return Kernel::Q8K(o::dot_q5_k_tiled, None),
                GgmlType::Q6_K if m >= 8 && repacked => {
                    return Kernel::Q8KRows(EightQ8K {
                        one: o::dot_q6_k_tiled,
                        four: o::dot_q6_k_tiled_x4,
                        x8: r8::q6_k_x8,
                        x8m: if vnni { r512::q6_k_x8m } else { r8::q6_k_x8m },
                    })
                }
                GgmlType::Q6_K if m >= 8 => return Kernel::Q8K(o::dot_q6_k_tiled, None),
                GgmlType::F16 | GgmlType::BF16
                    if m >= 2 && n.is_multiple_of(4) && k.is_multiple_of(8) =>
                {
                    return match ty {
                        GgmlType::F16 => Kernel::F16(o::dot_f16_tinyblas),
                        _ => Kernel::BF16(o::dot_bf16_tinyblas),
                    };
                }
                _ => {}
            }
        }
        let _ = (n, k, m);
        Self::select(isa, ty)
    }

    /// Writes row i, column r of `out` with `dot(weight row rows.start + r, activation row i)`
    /// for the weight rows `rows` (of `row_bytes` each, in `w`) and the activation rows
    /// `0..out.rows()` of length `k`.
    ///
    /// # Panics
    /// When `act` is not the activation format of this kernel.
    pub fn tile(
        self,
        w: &[u8],
        row_bytes: usize,
        rows: std::ops::Range<usize>,
        act: &Act,
        k: usize,
        out: Out,
    ) {
        let t = Tile {
            w,
            row_bytes,
            rows,
            out,
        };
        match (self, act) {
            (Kernel::Q8Rows(e), Act::Q8_0(a) | Act::Q8_1(a)) => {
                t.run_x8(e.one, e.four, e.x8, e.x8m, |i| a.row(i, k))
            }
            (Kernel::Q8KRows(e), Act::Q8K(a)) => {
                t.run_x8(e.one, e.four, e.x8, e.x8m, |i| a.row(i, k))
            }
            (Kernel::Q8KPacked(x8, x8m), Act::Q8K(a)) => {
                assert!(t.rows.len().is_multiple_of(8), "packed rows come in eights");
                t.run_eights(x8, x8m, |i| a.row(i, k));
            }
            (Kernel::Q8(f, Some(f8), r8), Act::Q8_0(a) | Act::Q8_1(a)) => {
                t.run_x8act(f, f8, r8, a, k)
            }
            (Kernel::Q8(f, None, r8), Act::Q8_0(a) | Act::Q8_1(a)) => {
                t.run_rows8(f, r8, |i| a.row(i, k))
            }
            (Kernel::Q8K(f, Some(f4)), Act::Q8K(a)) => t.run_xn(f, f4, |i| a.row(i, k)),
            (Kernel::Q8K(f, None), Act::Q8K(a)) => t.run(f, |i| a.row(i, k)),
            (Kernel::F32(f), Act::F32(a)) => t.run(f, |i| &a[i * k..(i + 1) * k]),
            (Kernel::F16(f), Act::F16(a)) => t.run(f, |i| &a[i * k..(i + 1) * k]),
            (Kernel::BF16(f), Act::BF16(a)) => t.run(f, |i| &a[i * k..(i + 1) * k]),
            _ => panic!("kernel and activation formats do not match"),
        }
    }
}

/// One block of outputs: a range of weight rows against every activation row.
struct Tile<'a> {
    w: &'a [u8],
    row_bytes: usize,
    rows: std::ops::Range<usize>,
    out: Out<'a>,
}

impl<'a> Tile<'a> {
    /// Eight weight rows at a time: the activation rows up to the last multiple of four through
    /// `x8m` (llama.cpp's gemm), the rest through `x8` (its gemv); the weight rows past the last
    /// multiple of eight through `run_xn` with `f` and `f4`.
    #[inline]
    fn run_x8<R: Copy>(
        self,
        f: unsafe fn(&[u8], R) -> f32,
        f4: unsafe fn(&[u8], [R; 4]) -> [f32; 4],
        x8: unsafe fn(&[u8], usize, R) -> [f32; 8],
        x8m: unsafe fn(&[u8], usize, &[R], &mut Out),
        row: impl Fn(usize) -> R,
    ) {
        let rb = self.row_bytes;
        let (n, n8) = (self.rows.len(), self.rows.len() / 8 * 8);
        let start = self.rows.start;
        let (w, out) = self.run_eights(x8, x8m, &row);
        if n8 < n {
            let rest = Tile {
                w,
                row_bytes: rb,
                rows: start + n8..start + n,
                out: out.skip_cols(n8),
            };
            rest.run_xn(f, f4, row);
        }
    }

    /// The weight rows up to the last multiple of eight, eight at a time: the activation rows up
    /// to the last multiple of four through `x8m`, the rest through `x8`. Returns the weights and
    /// the output, for the rows past them.
    #[inline]
    fn run_eights<R: Copy>(
        mut self,
        x8: unsafe fn(&[u8], usize, R) -> [f32; 8],
        x8m: unsafe fn(&[u8], usize, &[R], &mut Out),
        row: impl Fn(usize) -> R,
    ) -> (&'a [u8], Out<'a>) {
        let rb = self.row_bytes;
        let n8 = self.rows.len() / 8 * 8;
        let full = self.out.rows() / 4 * 4;
        let acts: Vec<R> = (0..full).map(&row).collect();
        let j0 = self.rows.start;
        if full > 0 && n8 > 0 {
            // SAFETY: as in `run`.
            unsafe { x8m(&self.w[j0 * rb..(j0 + n8) * rb], rb, &acts, &mut self.out) };
        }
        for g in (0..n8).step_by(8) {
            let w = &self.w[(j0 + g) * rb..(j0 + g + 8) * rb];
            for i in full..self.out.rows() {
                // SAFETY: as in `run`.
                let v = unsafe { x8(w, rb, row(i)) };
                self.out.put(i, g, &v);
            }
        }
        (self.w, self.out)
    }

    /// Like `run`, but `N` activation rows at a time through `fn_` (the rest through `f`).
    #[inline]
    fn run_xn<R: Copy, const N: usize>(
        self,
        f: unsafe fn(&[u8], R) -> f32,
        fn_: unsafe fn(&[u8], [R; N]) -> [f32; N],
        row: impl Fn(usize) -> R,
    ) {
        let group = |i: usize| -> [R; N] { std::array::from_fn(|q| row(i + q)) };
        // SAFETY: as in `run`.
        let (rest, full) = self.run_groups(group, |w, a| unsafe { fn_(w, *a) });
        rest.run(f, |i| row(full + i));
    }

    /// Like `run`, but eight activation rows at a time through `f8` (the rest through
    /// [`Tile::run_rows8`] with `f` and `r8`).
    #[inline]
    fn run_x8act(
        self,
        f: unsafe fn(&[u8], Q8Row) -> f32,
        f8: Q8x8,
        r8: Option<Q8Rows8>,
        a: &Q8Act,
        k: usize,
    ) {
        // SAFETY: as in `run`.
        let (rest, full) = self.run_groups(|i| a.eight(i, k), |w, a8| unsafe { f8(w, a8) });
        rest.run_rows8(f, r8, |i| a.row(full + i, k));
    }

    /// The activation rows in groups of `N` (`group(i)`: rows `i..i + N`) through `dot`, each
    /// against every weight row. Returns the tile of the rows past the last multiple of `N`, and
    /// the index of its first row.
    #[inline]
    fn run_groups<G, const N: usize>(
        self,
        group: impl Fn(usize) -> G,
        dot: impl Fn(&[u8], &G) -> [f32; N],
    ) -> (Tile<'a>, usize) {
        let rb = self.row_bytes;
        let mut out = self.out;
        let full = out.rows() / N * N;
        for i in (0..full).step_by(N) {
            let g = group(i);
            for (r, j) in self.rows.clone().enumerate() {
                out.put_down(i, r, &dot(&self.w[j * rb..(j + 1) * rb], &g));
            }
        }
        let rest = Tile {
            w: self.w,
            row_bytes: rb,
            rows: self.rows,
            out: out.skip_rows(full),
        };
        (rest, full)
    }

    /// Like `run`, but eight weight rows at a time through `r8` when there is one (the rows past
    /// the last multiple of eight, and all of them without `r8`, through `f`).
    #[inline]
    fn run_rows8<'r>(
        mut self,
        f: unsafe fn(&[u8], Q8Row) -> f32,
        r8: Option<Q8Rows8>,
        row: impl Fn(usize) -> Q8Row<'r>,
    ) {
        let Some(r8) = r8.filter(|_| self.out.rows() > 0) else {
            return self.run(f, row);
        };
        let (rb, j0) = (self.row_bytes, self.rows.start);
        let n8 = self.rows.len() / 8 * 8;
        for i in 0..self.out.rows() {
            let a = row(i);
            for g in (0..n8).step_by(8) {
                let w = &self.w[(j0 + g) * rb..(j0 + g + 8) * rb];
                // SAFETY: as in `run`.
                let v = unsafe { r8(w, rb, a) };
                self.out.put(i, g, &v);
            }
        }
        let rest = Tile {
            w: self.w,
            row_bytes: rb,
            rows: j0 + n8..self.rows.end,
            out: self.out.skip_cols(n8),
        };
        rest.run(f, row);
    }

    #[inline]
    fn run<R: Copy>(mut self, f: unsafe fn(&[u8], R) -> f32, row: impl Fn(usize) -> R) {
        let rb = self.row_bytes;
        for i in 0..self.out.rows() {
            let a = row(i);
            for (o, j) in self.out.row(i).iter_mut().zip(self.rows.clone()) {
                // SAFETY: `f` came from `Kernel::select`, which returns an AVX2 kernel only for an
                // `Isa` that detected AVX2, FMA and F16C on this CPU.
                o.write(unsafe { f(&self.w[j * rb..(j + 1) * rb], a) });
            }
        }
    }
}
