//! Comparing two rows of logits over one vocabulary (for tests and benchmarks that hold one
//! computation against another).

/// KL(softmax(a) || softmax(b)), in f64.
pub fn kl(a: &[f32], b: &[f32]) -> f64 {
    let lse = |r: &[f32]| {
        let m = r.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
        m + r.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
    };
    let (la, lb) = (lse(a), lse(b));
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - la).exp() * ((x as f64 - la) - (y as f64 - lb)))
        .sum()
}
