//! Text embeddings from hidden states: how a sequence's final hidden states (after the output
//! norm, one row of `n_embd` per token) become one vector, and its normalisation, as llama.cpp
//! computes them (`build_pooling` in its graph, `common_embd_normalize`).

use crate::bail;
use crate::error::Result;

/// How the rows of a sequence's hidden states are pooled into one embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of every token's row.
    Mean,
    /// The first token's row (BERT's CLS position).
    Cls,
    /// The last token's row (what a causal model has read the whole text in).
    Last,
}

impl Pooling {
    /// The pooling a file's `{arch}.pooling_type` names (llama.cpp's `llama_pooling_type`): `None`
    /// for none (0) or a missing key; an error for rank (4, a reranker's classifier head, which chord
    /// does not run) and for values llama.cpp does not know.
    pub fn from_file(value: Option<u64>) -> Result<Option<Pooling>> {
        Ok(match value {
            None | Some(0) => None,
            Some(1) => Some(Pooling::Mean),
            Some(2) => Some(Pooling::Cls),
            Some(3) => Some(Pooling::Last),
            Some(4) => bail!(
                Unsupported,
                "the model's pooling type is rank (a reranker): chord computes embeddings only"
            ),
            Some(v) => bail!(BadModel, "the model's pooling type {v} is unknown"),
        })
    }

    /// Pools `hidden` (`rows x n_embd`, row-major, at least one row).
    pub fn pool(self, hidden: &[f32], n_embd: usize) -> Vec<f32> {
        let rows = hidden.len() / n_embd;
        debug_assert!(rows > 0 && rows * n_embd == hidden.len());
        match self {
            Pooling::Cls => hidden[..n_embd].to_vec(),
            Pooling::Last => hidden[(rows - 1) * n_embd..].to_vec(),
            // llama.cpp multiplies the transposed states by a column of 1/rows (`inp_mean`):
            // one f32 dot product per component, which ggml_dot_f32 computes in its order.
            Pooling::Mean => {
                let inv = 1.0 / rows as f32;
                let mut column = vec![0f32; rows];
                (0..n_embd)
                    .map(|i| {
                        column
                            .iter_mut()
                            .zip(hidden[i..].iter().step_by(n_embd))
                            .for_each(|(c, &v)| *c = v);
                        ggml_dot_f32(&column, inv)
                    })
                    .collect()
            }
        }
    }
}

/// The dot product of `x` with a vector of `y`s as ggml's `ggml_vec_dot_f32` computes it in the
/// pinned oracle's build (AVX2 with FMA; the order chord matches everywhere, whatever this CPU):
/// four 8-lane fused multiply-add accumulators over blocks of 32, summed pairwise (0+2, 1+3, then
/// the two), the halves added, two horizontal adds, then the leftover elements one by one (a product, then
/// a sum). The
/// mean is computed on this order, not a more accurate one, because its components are sums with
/// cancellation: only the same operations give llama.cpp's values to 1e-4 relative for every one.
fn ggml_dot_f32(x: &[f32], y: f32) -> f32 {
    let np = x.len() & !31;
    let mut acc = [[0f32; 8]; 4];
    for block in x[..np].chunks_exact(32) {
        for (a, part) in acc.iter_mut().zip(block.chunks_exact(8)) {
            for (lane, &v) in a.iter_mut().zip(part) {
                *lane = v.mul_add(y, *lane);
            }
        }
    }
    let add = |a: [f32; 8], b: [f32; 8]| -> [f32; 8] { std::array::from_fn(|k| a[k] + b[k]) };
    let s = add(add(acc[0], acc[2]), add(acc[1], acc[3]));
    let t: [f32; 4] = std::array::from_fn(|k| s[k] + s[k + 4]);
    let mut sum = (t[0] + t[1]) + (t[2] + t[3]);
    for &v in &x[np..] {
        sum += v * y; // not fused in ggml's build
    }
    sum
}

/// Scales `v` to unit Euclidean length as llama.cpp's `common_embd_normalize` (norm 2) does: the
/// f32 squares summed in f64, each value multiplied by the f32 of the inverse square root. A zero
/// vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let sum: f64 = v.iter().map(|&x| (x * x) as f64).sum();
    let scale = if sum > 0.0 {
        (1.0 / sum.sqrt()) as f32
    } else {
        0.0
    };
    v.iter_mut().for_each(|x| *x *= scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_rows() {
        let h = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(Pooling::Mean.pool(&h, 2), vec![3.0, 4.0]);
        assert_eq!(Pooling::Cls.pool(&h, 2), vec![1.0, 2.0]);
        assert_eq!(Pooling::Last.pool(&h, 2), vec![5.0, 6.0]);
        assert_eq!(Pooling::Mean.pool(&h[..2], 2), vec![1.0, 2.0]);
    }

    #[test]
    fn normalizes() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }

    #[test]
    fn file_values() {
        assert_eq!(Pooling::from_file(None).unwrap(), None);
        assert_eq!(Pooling::from_file(Some(0)).unwrap(), None);
        assert_eq!(Pooling::from_file(Some(3)).unwrap(), Some(Pooling::Last));
        assert!(Pooling::from_file(Some(4)).is_err());
        assert!(Pooling::from_file(Some(9)).is_err());
    }
}
