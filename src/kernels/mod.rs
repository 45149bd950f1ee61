//! Kernels: the arithmetic of each op over typed slices.
//!
//! `reference` holds scalar kernels that implement TFLite's reference arithmetic exactly
//! (see `docs/numerics.md`). They are the oracle: every SIMD kernel must produce bit-identical
//! results. `gemm`, `dwconv` and `requant` hold the portable side of the SIMD kernels (packed
//! formats, zero-point algebra, micro-kernel signatures); ISA code lives in `x86_64` and
//! `aarch64`.

pub mod reference;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod add_linear;
pub mod dwconv;
pub mod gemm;
pub mod isa;
pub mod requant;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use isa::Isa;

/// The GEMM micro-kernel for `isa`, if it has one (see `aarch64::gemm_for`).
#[cfg(target_arch = "aarch64")]
pub use aarch64::{
    add_for, binary_table_for, dwconv_for, gemm_for, gemm_for_format, AddFn, GemmChoice,
};
/// The GEMM micro-kernel for `isa`, if it has one (see `x86_64::gemm_for`).
#[cfg(target_arch = "x86_64")]
pub use x86_64::{
    add_for, binary_table_for, dwconv_for, gemm_for, gemm_for_format, AddFn, GemmChoice,
};

/// The linear-form 8-bit ADD kernel for `isa` (see `x86_64::add_linear_for`).
#[cfg(target_arch = "x86_64")]
pub use x86_64::{add_linear_for, AddLinearFn};

/// An 8-bit ADD kernel through its integer linear form ([`add_linear`]).
#[cfg(not(target_arch = "x86_64"))]
pub type AddLinearFn = unsafe fn(&add_linear::LinearAdd, *const u8, *const u8, *mut u8, usize);

/// Only x86 tiers have a linear-form ADD kernel (aarch64 keeps its NEON ADD).
#[cfg(not(target_arch = "x86_64"))]
pub fn add_linear_for(_isa: Isa, _signed: bool) -> Option<(AddLinearFn, &'static str)> {
    None
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn gemm_for(_isa: Isa, _n: usize, _signed: bool, _fp32: bool) -> Option<GemmChoice> {
    None
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn gemm_for_format(
    _isa: Isa,
    _format: gemm::PackFormat,
    _signed: bool,
    _fp32: bool,
) -> Option<GemmChoice> {
    None
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn dwconv_for(
    _isa: Isa,
    _signed: bool,
    _fp32: bool,
) -> Option<(dwconv::DwFn, &'static str, usize)> {
    None
}

/// An 8-bit ADD kernel over equal-shape inputs: `(params, a, b, out, len)`.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub type AddFn =
    unsafe fn(&reference::elementwise::QuantAddParams, *const u8, *const u8, *mut u8, usize);

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn add_for(_isa: Isa, _signed: bool) -> Option<(AddFn, &'static str)> {
    None
}

/// Only the scalar tier exists here: the reference ADD / MUL.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn binary_table_for(_isa: Isa) -> bool {
    false
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[derive(Clone, Copy, Debug)]
pub struct GemmChoice {
    pub format: gemm::PackFormat,
    pub nr: usize,
    pub kernel: gemm::GemmFn,
    pub tile: &'static str,
}
