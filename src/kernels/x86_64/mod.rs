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

/// An 8-bit ADD kernel over equal-shape inputs: `(params, a, b, out, len)`.
///
/// # Safety
/// The kernel's tier is supported; `a`, `b` valid for `len` reads, `out` for `len` writes.
pub type AddFn = unsafe fn(
    p: &crate::kernels::reference::elementwise::QuantAddParams,
    a: *const u8,
    b: *const u8,
    out: *mut u8,
    len: usize,
);

/// No x86 tier has an 8-bit ADD kernel: a table of all 65536 input pairs
/// ([`binary_table_for`]) is faster than SIMD fixed-point rescaling here. Measured on
/// Coral's ten ADDs (sum of per-op fastest runs): AVX2 kernel 0.56 ms, table 0.22 ms;
/// AVX-512 kernel 0.31 ms, table 0.20 ms.
pub fn add_for(_isa: Isa, _signed: bool) -> Option<(AddFn, &'static str)> {
    None
}

/// An 8-bit ADD kernel through its integer linear form (`kernels::add_linear`), for layers
/// that have one: every SIMD tier (AVX2 code).
///
/// # Safety
/// The kernel's tier is supported; `a`, `b` valid for `len` reads, `out` for `len` writes.
pub type AddLinearFn = unsafe fn(
    f: &crate::kernels::add_linear::LinearAdd,
    a: *const u8,
    b: *const u8,
    out: *mut u8,
    len: usize,
);

/// The linear-form ADD kernel for `isa` ([`AddLinearFn`]) and its ISA name, if it has one.
pub fn add_linear_for(isa: Isa, signed: bool) -> Option<(AddLinearFn, &'static str)> {
    if isa == Isa::Scalar {
        return None;
    }
    Some(if signed {
        (avx2::add_linear::<true>, "avx2")
    } else {
        (avx2::add_linear::<false>, "avx2")
    })
}

/// Whether 8-bit ADD / MUL of equal shapes should run through a 64 KiB table of all input
/// pairs on `isa` (see [`add_for`]): every SIMD tier (the scalar tier keeps the reference).
pub fn binary_table_for(isa: Isa) -> bool {
    isa != Isa::Scalar
}
