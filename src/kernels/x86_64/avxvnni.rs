//! AVX-VNNI kernels (VEX `vpdpbusd` on ymm: 32 u8 x s8 products per instruction).
//! Requantization, packing and depthwise come from the AVX2 tier.

use std::arch::x86_64::*;

use crate::kernels::gemm::{GemmFn, GemmRows, PackedGemm};

use super::avx2::{acc_init, epilogue16, one_sided, row_sum_u8, FastRq};

/// `conv_gemm_q{u8,i8}_6x16[_fp32rq]__avxvnni`: 6 rows x 16 columns per tile, `Vnni` packed
/// weights with `nr = 16`; `FP`: ONNX Runtime float requantization (`p.requant.scale` is
/// `Some`).
///
/// Reads: A rows `kp` bytes in 4-byte groups (no over-read; tail tiles repeat the last row);
/// packed B `kp * 16` bytes per block. Writes `min(16, n - col)` bytes per row and block.
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn gemm<const MR: usize, const XOR: bool, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    // SAFETY: same contract; the epilogue's form is a compile-time constant.
    unsafe {
        if one_sided::<FP>(p) {
            gemm_form::<MR, XOR, SIGNED, FP, true>(p, t)
        } else {
            gemm_form::<MR, XOR, SIGNED, FP, false>(p, t)
        }
    }
}

/// [`gemm`] with `ONE == one_sided::<FP>(p)`.
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn gemm_form<
    const MR: usize,
    const XOR: bool,
    const SIGNED: bool,
    const FP: bool,
    const ONE: bool,
>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    const NR: usize = 16;
    debug_assert_eq!(p.nr, NR);
    let kp4 = p.kp / 4;
    let flip = _mm256_set1_epi32(0x8080_8080u32 as i32);
    let fast = FastRq::for_epilogue::<FP>(p);
    let mut m = 0;
    while m < t.rows {
        let mr = MR.min(t.rows - m);
        let mut arow = [t.a; MR];
        let mut rowterm = [0i32; MR];
        for (r, (ap, rt)) in arow.iter_mut().zip(rowterm.iter_mut()).enumerate() {
            // SAFETY: row `m + min(r, mr - 1)` < rows.
            *ap = unsafe { t.a.add((m + r.min(mr - 1)) * t.a_stride) };
            if p.row_factor != 0 && r < mr {
                // SAFETY: the row holds `kp` readable bytes.
                *rt = unsafe { row_sum_u8(*ap, p.kp) }.wrapping_mul(p.row_factor);
            }
        }
        for nb in t.nb_begin..t.nb_end {
            // SAFETY: block `nb` spans `kp * 16` bytes.
            let mut bp = unsafe { p.data.as_slice().as_ptr().add(nb * p.kp * NR) };
            // SAFETY: block `nb` of `p`.
            let mut acc = unsafe { acc_init::<MR>(p, nb) };
            for _ in 0..kp4 {
                // SAFETY: inside block `nb`.
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_si256(bp.cast()),
                        _mm256_loadu_si256(bp.add(32).cast()),
                    )
                };
                for r in 0..MR {
                    // SAFETY: 4 readable bytes of the row at the current k (advanced below).
                    let a4 = unsafe { (arow[r] as *const i32).read_unaligned() };
                    let mut av = _mm256_set1_epi32(a4);
                    if XOR {
                        av = _mm256_xor_si256(av, flip);
                    }
                    acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
                    acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
                }
                for ap in arow.iter_mut() {
                    // SAFETY: at most `kp` past the row start.
                    *ap = unsafe { ap.add(4) };
                }
                // SAFETY: stays within (or one past) block `nb`.
                bp = unsafe { bp.add(NR * 4) };
            }
            for ap in arow.iter_mut() {
                // SAFETY: back to the row start.
                *ap = unsafe { ap.sub(p.kp) };
            }
            // SAFETY: rows `m..m+mr` exist in C; `nb` is a block of `p`.
            unsafe {
                epilogue16::<MR, SIGNED, FP, ONE>(p, t, &acc, &rowterm, m, mr, nb, fast.as_ref())
            };
        }
        m += MR;
    }
}

/// The AVX-VNNI GEMM micro-kernel (`Vnni` format, `nr = 16`) and its tile name (`fp32`:
/// ONNX Runtime float requantization).
pub(crate) fn gemm_kernel(signed: bool, fp32: bool) -> (GemmFn, &'static str) {
    match (signed, fp32) {
        (true, false) => (gemm::<6, true, true, false>, "6x16"),
        (false, false) => (gemm::<6, false, false, false>, "6x16"),
        (true, true) => (gemm::<6, true, true, true>, "6x16"),
        (false, true) => (gemm::<6, false, false, true>, "6x16"),
    }
}
