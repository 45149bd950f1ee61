//! aarch64 SIMD kernels, one file per tier:
//! - `neon` (Cortex-A72 / Raspberry Pi 4, no dot product): u8/i8 widened to i16 and
//!   multiplied with `smlal`/`smlal2` (exact), requantization with `sqrdmulh` + `srshl`.
//! - `dotprod` (Cortex-A76/A78 and later): `sdot` GEMM; depthwise and ADD come from `neon`.
//!
//! Everything here is selected once at prepare time through [`gemm_for`] / [`dwconv_for`] /
//! [`add_for`] for a tier the CPU supports (`Isa::supported`), which is what makes calling the
//! `#[target_feature]` functions sound.

mod dotprod;
mod neon;

use super::dwconv::DwFn;
use super::gemm::{GemmFn, PackFormat};
use super::Isa;

/// A GEMM micro-kernel and the weight packing it needs.
#[derive(Clone, Copy, Debug)]
pub struct GemmChoice {
    pub format: PackFormat,
    pub nr: usize,
    pub kernel: GemmFn,
    /// `MRxNR`, for kernel names.
    pub tile: &'static str,
}

/// The GEMM micro-kernel of `isa` for `n` output channels (`signed`: int8 activations;
/// `fp32`: ONNX Runtime float requantization, the packed `Requant` must carry `scale`).
pub fn gemm_for(isa: Isa, _n: usize, signed: bool, fp32: bool) -> Option<GemmChoice> {
    match isa {
        Isa::Neon => {
            let (kernel, tile) = neon::gemm_kernel(signed, fp32);
            Some(GemmChoice {
                format: PackFormat::Mla,
                nr: 16,
                kernel,
                tile,
            })
        }
        Isa::Dotprod => {
            let (kernel, tile) = dotprod::gemm_kernel(signed, fp32);
            Some(GemmChoice {
                format: PackFormat::Sdot,
                nr: 16,
                kernel,
                tile,
            })
        }
        _ => None,
    }
}

/// The GEMM micro-kernel of `isa` for weights packed in `format` when packing declined the
/// chosen format: no aarch64 format declines.
pub fn gemm_for_format(
    _isa: Isa,
    _format: PackFormat,
    _signed: bool,
    _fp32: bool,
) -> Option<GemmChoice> {
    None
}

/// The depthwise 3x3 kernel of `isa`, its ISA name and channel block width (`PackedDw::bw`,
/// `DwLayout::Taps`); `fp32` as in [`gemm_for`].
pub fn dwconv_for(isa: Isa, signed: bool, fp32: bool) -> Option<(DwFn, &'static str, usize)> {
    match isa {
        Isa::Neon | Isa::Dotprod => Some((neon::dwconv_kernel(signed, fp32), "neon", 16)),
        _ => None,
    }
}

pub use neon::AddFn;

/// 8-bit ADD / MUL through a table of all input pairs (as on x86, `x86_64::add_for`): not
/// on aarch64 until measured on a board (the 64 KiB table is twice a Cortex-A72's L1D; the
/// NEON ADD kernel stays).
pub fn binary_table_for(_isa: Isa) -> bool {
    false
}

/// The 8-bit ADD kernel of `isa` (the NEON one serves both tiers) and its ISA name.
pub fn add_for(isa: Isa, signed: bool) -> Option<(AddFn, &'static str)> {
    match isa {
        Isa::Neon | Isa::Dotprod => Some((neon::add_kernel(signed), "neon")),
        _ => None,
    }
}
