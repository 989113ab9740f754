//! Which instruction-set path the kernels take, detected once at run time.

/// A kernel path. A value that enables AVX2 can only be made after run-time detection, so holding
/// one is the proof that the AVX2 kernels may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    avx2: bool,
}

impl Isa {
    /// The portable scalar path (every CPU).
    pub const fn scalar() -> Isa {
        Isa { avx2: false }
    }

    /// The AVX2 path (AVX2 + FMA + F16C), when this CPU has it.
    pub fn avx2() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Some(Isa { avx2: true });
        }
        None
    }

    /// The fastest path this CPU supports (cached after the first call).
    pub fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Isa::avx2().unwrap_or(Isa::scalar()))
    }

    /// Whether this path uses the AVX2 kernels.
    pub fn has_avx2(self) -> bool {
        self.avx2
    }

    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        if self.avx2 {
            "avx2"
        } else {
            "scalar"
        }
    }
}
