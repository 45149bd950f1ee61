//! x86-64 SIMD kernels, one file per tier. Everything here is selected once at prepare time
//! through [`gemm_for`] / [`dwconv_for`] for a tier the CPU supports (`Isa::supported`), which
//! is what makes calling the `#[target_feature]` functions sound.

mod avx2;
mod avx512vnni;
mod avxvnni;
mod sse2;

pub use sse2::quantize_even_sse2;

use super::dwconv::DwFn;
use super::gemm::{choose_nv, GemmFn, PackFormat};
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
pub fn gemm_for(isa: Isa, n: usize, signed: bool, fp32: bool) -> Option<GemmChoice> {
    match isa {
        Isa::Avx2 => {
            let (kernel, tile) = avx2::gemm_kernel(signed, fp32);
            Some(GemmChoice {
                format: PackFormat::Maddubs,
                nr: 16,
                kernel,
                tile,
            })
        }
        Isa::AvxVnni => {
            let (kernel, tile) = avxvnni::gemm_kernel(signed, fp32);
            Some(GemmChoice {
                format: PackFormat::Vnni,
                nr: 16,
                kernel,
                tile,
            })
        }
        Isa::Avx512Vnni => {
            let nv = choose_nv(n, 16, 4);
            let (kernel, tile) = avx512vnni::gemm_kernel(nv, signed, fp32);
            Some(GemmChoice {
                format: PackFormat::Vnni,
                nr: 16 * nv,
                kernel,
                tile,
            })
        }
        _ => None,
    }
}

/// The tile name of the GEMM micro-kernel that runs `packed` (the `Maddubs` kernels' row count
/// depends on the group the packing chose), else `tile`.
pub fn gemm_tile(packed: &crate::kernels::gemm::PackedGemm, tile: &'static str) -> &'static str {
    if packed.format == PackFormat::Maddubs {
        avx2::maddubs_tile(packed.residual.group)
    } else {
        tile
    }
}

/// The GEMM micro-kernel of `isa` for weights packed in `format`, when packing declined the
/// format [`gemm_for`] chose (`PackedGemm::pack` may turn `Maddubs` into `Madd`).
pub fn gemm_for_format(
    isa: Isa,
    format: PackFormat,
    signed: bool,
    fp32: bool,
) -> Option<GemmChoice> {
    match (isa, format) {
        (Isa::Avx2, PackFormat::Madd) => {
            let (kernel, tile) = avx2::gemm_kernel_madd(signed, fp32);
            Some(GemmChoice {
                format,
                nr: 16,
                kernel,
                tile,
            })
        }
        _ => None,
    }
}

/// The depthwise 3x3 kernel of `isa`, its ISA name and channel block width (`PackedDw::bw`);
/// `fp32` as in [`gemm_for`].
pub fn dwconv_for(isa: Isa, signed: bool, fp32: bool) -> Option<(DwFn, &'static str, usize)> {
    match isa {
        Isa::Avx2 | Isa::AvxVnni => Some((avx2::dwconv_kernel(signed, fp32), "avx2", 16)),
        Isa::Avx512Vnni => Some((avx512vnni::dwconv_kernel(signed, fp32), "avx512vnni", 32)),
        _ => None,
    }
}

pub use avx2::AddFn;

/// The 8-bit ADD kernel of `isa` (the AVX2 one also serves AVX-VNNI) and its ISA name.
pub fn add_for(isa: Isa, signed: bool) -> Option<(AddFn, &'static str)> {
    match isa {
        Isa::Avx2 | Isa::AvxVnni => Some((avx2::add_kernel(signed), "avx2")),
        Isa::Avx512Vnni => Some((avx512vnni::add_kernel(signed), "avx512vnni")),
        _ => None,
    }
}
