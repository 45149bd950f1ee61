//! CPU tier selection: detected once at startup, overridable with `SPOTTER_ISA`.
//!
//! Tiers, best last per architecture:
//! - x86_64: `scalar` < `avx2` < `avxvnni` < `avx512vnni`
//! - aarch64: `scalar` < `neon` < `dotprod`
//!
//! `SPOTTER_ISA=<tier>` forces a tier; forcing one the CPU lacks is an error (never a silent
//! fallback), so tests and benchmarks really exercise what they name.

use std::fmt;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    Scalar,
    Avx2,
    AvxVnni,
    Avx512Vnni,
    Neon,
    Dotprod,
}

impl Isa {
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::AvxVnni,
        Isa::Avx512Vnni,
        Isa::Neon,
        Isa::Dotprod,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
        }
    }

    pub fn parse(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s.trim().to_ascii_lowercase())
    }

    /// Can this CPU run the tier?
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => Isa::Avx2.supported() && std::is_x86_feature_detected!("avxvnni"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::Dotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every tier this CPU can run, scalar first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// The best tier of this CPU.
    pub fn best() -> Isa {
        Isa::available().into_iter().max().unwrap_or(Isa::Scalar)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IsaError {
    #[error("SPOTTER_ISA={value}: unknown tier; expected one of scalar, avx2, avxvnni, avx512vnni, neon, dotprod")]
    Unknown { value: String },
    #[error("SPOTTER_ISA={value}: this CPU cannot run it (available: {available})")]
    Unsupported { value: String, available: String },
}

/// Resolve a requested tier (from `SPOTTER_ISA` or a flag): `None`/empty = best available.
pub fn resolve(requested: Option<&str>) -> Result<Isa, IsaError> {
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Isa::best()),
        Some(v) => {
            let isa = Isa::parse(v).ok_or_else(|| IsaError::Unknown {
                value: v.to_string(),
            })?;
            if isa.supported() {
                Ok(isa)
            } else {
                let available: Vec<_> = Isa::available().iter().map(|i| i.name()).collect();
                Err(IsaError::Unsupported {
                    value: v.to_string(),
                    available: available.join(", "),
                })
            }
        }
    }
}

static SELECTED: OnceLock<Result<Isa, String>> = OnceLock::new();

/// The process-wide tier: `SPOTTER_ISA` or the best available, decided once and logged.
pub fn selected() -> Result<Isa, IsaError> {
    let r = SELECTED.get_or_init(|| {
        let env = std::env::var("SPOTTER_ISA").ok();
        match resolve(env.as_deref()) {
            Ok(isa) => {
                log::info!(
                    "kernel tier: {isa}{}",
                    if env.is_some() {
                        " (forced by SPOTTER_ISA)"
                    } else {
                        ""
                    }
                );
                Ok(isa)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    match r {
        Ok(i) => Ok(*i),
        Err(_) => resolve(std::env::var("SPOTTER_ISA").ok().as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_resolve() {
        assert_eq!(Isa::parse("AVX2"), Some(Isa::Avx2));
        assert!(matches!(
            resolve(Some("sse9")),
            Err(IsaError::Unknown { .. })
        ));
        assert_eq!(resolve(Some("scalar")).unwrap(), Isa::Scalar);
        assert_eq!(resolve(None).unwrap(), Isa::best());
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(
            resolve(Some("dotprod")),
            Err(IsaError::Unsupported { .. })
        ));
    }

    /// Prints the tiers of the running CPU; with `SPOTTER_EXPECT_TIERS=a,b,..` (set by
    /// `make test-arm` per emulated CPU) also checks them, and that every other tier is refused.
    #[test]
    fn report_tiers() {
        let avail: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
        println!(
            "kernel tiers on this CPU ({}): {}",
            std::env::consts::ARCH,
            avail.join(", ")
        );
        if let Ok(want) = std::env::var("SPOTTER_EXPECT_TIERS") {
            assert_eq!(avail.join(","), want.trim());
        }
        for isa in Isa::ALL {
            let r = resolve(Some(isa.name()));
            if avail.contains(&isa.name()) {
                assert_eq!(r.ok(), Some(isa));
            } else {
                assert!(matches!(r, Err(IsaError::Unsupported { .. })), "{isa}");
            }
        }
    }
}
