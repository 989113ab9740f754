//! Which instruction-set path the kernels take: detected once at run time, or chosen with the
//! `CHORD_ISA` environment variable (`scalar`, `avx2`, `avx512`; unset or `auto` for the fastest
//! this CPU has). A value the CPU cannot run, or that chord does not know, is refused with a clear error by
//! [`Isa::selected`], which model loading and the public products check.

use crate::error::{Error, ErrorCode, Result};
use std::sync::OnceLock;

/// The environment variable that chooses the kernel path.
pub const ISA_ENV: &str = "CHORD_ISA";

/// A kernel path. A value that enables AVX2 or AVX-512 can only be made after run-time detection,
/// so holding one is the proof that those kernels may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    level: Level,
}

/// The instruction sets of a path, each including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Scalar,
    Avx2,
    Avx512,
}

impl Isa {
    /// The names [`Isa::from_name`] accepts, in order of speed.
    pub const NAMES: [&'static str; 3] = ["scalar", "avx2", "avx512"];

    /// The portable scalar path (every CPU).
    pub const fn scalar() -> Isa {
        Isa {
            level: Level::Scalar,
        }
    }

    /// The AVX2 path (AVX2 + FMA + F16C), when this CPU has it. Its float summation orders are
    /// those of llama.cpp's CPU backend built for AVX2, bit for bit.
    pub fn avx2() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Some(Isa { level: Level::Avx2 });
        }
        None
    }

    /// The AVX-512 path (AVX-512 F, BW, VL and VNNI, on top of [`Isa::avx2`]'s features), when this
    /// CPU has it: Intel since Cascade Lake, AMD since Zen 4. Where it has no kernel of its own a
    /// product runs the AVX2 one; its kernels keep the AVX2 ones' float orders, so the results are
    /// the same bits.
    pub fn avx512() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        if Isa::avx2().is_some()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            return Some(Isa {
                level: Level::Avx512,
            });
        }
        None
    }

    /// The fastest path this CPU supports, whatever `CHORD_ISA` says (tests that compare a fast
    /// path with the scalar one use it).
    pub fn detected() -> Isa {
        Isa::avx512().or_else(Isa::avx2).unwrap_or(Isa::scalar())
    }

    /// The path named `name` (see [`Isa::NAMES`]; `auto` is [`Isa::detected`]), or an error that
    /// says why it cannot run here.
    pub fn from_name(name: &str) -> Result<Isa> {
        match name {
            "auto" => Ok(Isa::detected()),
            "scalar" => Ok(Isa::scalar()),
            "avx2" => Isa::avx2().ok_or_else(|| {
                Error::new(
                    ErrorCode::Unsupported,
                    format!(
                        "{ISA_ENV}=avx2: this CPU lacks AVX2, FMA or F16C (it can run: {})",
                        Isa::detected().name()
                    ),
                )
            }),
            "avx512" => Isa::avx512().ok_or_else(|| {
                Error::new(
                    ErrorCode::Unsupported,
                    format!(
                        "{ISA_ENV}=avx512: this CPU lacks AVX-512 F, BW, VL or VNNI (it can run: {})",
                        Isa::detected().name()
                    ),
                )
            }),
            other => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{ISA_ENV}={other:?} is not a kernel path: use auto, {}",
                    Isa::NAMES.join(", ")
                ),
            )),
        }
    }

    /// `CHORD_ISA` read once for the process: the path it chose (or [`Isa::detected`] when unset or
    /// empty) and whether it was set, or why it cannot run here.
    fn choice() -> &'static Result<(Isa, bool)> {
        static CHOICE: OnceLock<Result<(Isa, bool)>> = OnceLock::new();
        CHOICE.get_or_init(|| match std::env::var(ISA_ENV) {
            Ok(v) if !v.is_empty() => Isa::from_name(&v).map(|isa| (isa, true)),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok((Isa::detected(), false)),
            Err(std::env::VarError::NotUnicode(v)) => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("{ISA_ENV}={v:?} is not a kernel path"),
            )),
        })
    }

    /// The path chosen for this process: `CHORD_ISA` when it is set (read once), else
    /// [`Isa::detected`]. Fails when `CHORD_ISA` names a path this CPU or this build cannot run.
    pub fn selected() -> Result<Isa> {
        Isa::choice()
            .as_ref()
            .map(|&(isa, _)| isa)
            .map_err(Clone::clone)
    }

    /// The path the kernels run on: [`Isa::selected`], or the scalar path when `CHORD_ISA` is
    /// invalid (unreachable in practice: model loading fails first with the reason).
    pub fn active() -> Isa {
        Isa::selected().unwrap_or(Isa::scalar())
    }

    /// The active path for logs and `chord inspect`: "avx2 kernels", with " (CHORD_ISA)" when the
    /// environment chose it.
    pub fn summary() -> String {
        let chosen = matches!(Isa::choice(), Ok((_, true)));
        format!(
            "{} kernels{}",
            Isa::active().name(),
            if chosen { " (CHORD_ISA)" } else { "" }
        )
    }

    /// Whether this path may use the AVX2 kernels (the AVX2 and AVX-512 paths).
    pub fn has_avx2(self) -> bool {
        self.level >= Level::Avx2
    }

    /// Whether this path uses the AVX-512 kernels.
    pub fn has_avx512(self) -> bool {
        self.level >= Level::Avx512
    }

    /// A short name for logs and benchmarks (one of [`Isa::NAMES`]).
    pub fn name(self) -> &'static str {
        match self.level {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        assert_eq!(Isa::from_name("scalar").unwrap(), Isa::scalar());
        assert_eq!(Isa::from_name("auto").unwrap(), Isa::detected());
        for name in Isa::NAMES {
            if let Ok(isa) = Isa::from_name(name) {
                assert_eq!(isa.name(), name);
            }
        }
        match Isa::avx2() {
            Some(a) => assert_eq!(Isa::from_name("avx2").unwrap(), a),
            None => {
                let e = Isa::from_name("avx2").unwrap_err();
                assert_eq!(e.code(), ErrorCode::Unsupported);
                assert!(e.to_string().contains("lacks AVX2"), "{e}");
            }
        }
        match Isa::avx512() {
            Some(a) => {
                assert_eq!(Isa::from_name("avx512").unwrap(), a);
                assert!(a.has_avx2() && a.has_avx512());
            }
            None => {
                let e = Isa::from_name("avx512").unwrap_err();
                assert_eq!(e.code(), ErrorCode::Unsupported);
                assert!(e.to_string().contains("lacks AVX-512"), "{e}");
            }
        }
        for bad in ["AVX2", "neon", " scalar", "", "avx512f"] {
            let e = Isa::from_name(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("scalar, avx2, avx512"), "{e}");
        }
    }
}
