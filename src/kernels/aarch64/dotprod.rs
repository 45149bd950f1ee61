//! Armv8.2 dot-product kernels (`sdot`: 16 s8 x s8 products into 4 i32 lanes per
//! instruction; Cortex-A76/A78, Raspberry Pi 5). `vdotq_s32` is not stable yet, so `sdot` is
//! emitted with `asm!`. Requantization and stores come from the NEON tier.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::kernels::gemm::{GemmFn, GemmRows, PackedGemm};

use super::neon::{epilogue16, row_sum_u8};

/// `acc += sdot(b, a)`: lane `i` of `acc` gains `sum_j b[4i + j] * a[4i + j]` (or, with a lane
/// index, `* a[4 * idx + j]`).
macro_rules! sdot {
    ($acc:expr, $b:expr, $a:expr) => {
        // SAFETY: register-only instruction; the enclosing function enables `dotprod`.
        unsafe {
            asm!(
                "sdot {acc:v}.4s, {b:v}.16b, {a:v}.16b",
                acc = inout(vreg) $acc,
                b = in(vreg) $b,
                a = in(vreg) $a,
                options(pure, nomem, nostack, preserves_flags)
            )
        }
    };
    ($acc:expr, $b:expr, $a:expr, $idx:literal) => {
        // SAFETY: register-only instruction; the enclosing function enables `dotprod`.
        unsafe {
            asm!(
                concat!("sdot {acc:v}.4s, {b:v}.16b, {a:v}.4b[", $idx, "]"),
                acc = inout(vreg) $acc,
                b = in(vreg) $b,
                a = in(vreg) $a,
                options(pure, nomem, nostack, preserves_flags)
            )
        }
    };
}

/// `conv_gemm_q{u8,i8}_4x16[_fp32rq]__dotprod` (`FP`: ONNX Runtime float requantization,
/// `p.requant.scale` is `Some`): 4 rows x 16 columns per tile, `Sdot` packed weights
/// (the `Vnni` layout `[kp/4][16][4]`), activations fed as `a ^ 0x80` (s8, see
/// `kernels::gemm`): uint8 bytes are flipped, int8 bytes are used as they are.
///
/// Per 16 k: one 16-byte load per row, each 4-byte group broadcast by `sdot`'s lane index;
/// K tails of 4 broadcast one 4-byte group.
///
/// Reads: A rows exactly `kp` bytes (tail tiles repeat the last row); packed B `kp * 16`
/// bytes per block. Writes `min(16, n - col)` bytes per row and block.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_sdot<const MR: usize, const XOR: bool, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    const NR: usize = 16;
    debug_assert_eq!(p.nr, NR);
    let kp = p.kp;
    let flip = vdupq_n_u8(if XOR { 0x80 } else { 0 });
    let half = p.half_block(t);
    let mut m = 0;
    while m < t.rows {
        let mr = MR.min(t.rows - m);
        // SAFETY: row `m + min(r, mr - 1)` < rows.
        let arow: [*const u8; MR] =
            std::array::from_fn(|r| unsafe { t.a.add((m + r.min(mr - 1)) * t.a_stride) });
        let mut rowterm = [0i32; MR];
        if p.row_factor != 0 {
            for r in 0..mr {
                // SAFETY: the row holds `kp` readable bytes.
                rowterm[r] = unsafe { row_sum_u8(arow[r], kp) }.wrapping_mul(p.row_factor);
            }
        }
        for nb in t.nb_begin..t.nb_end {
            // SAFETY: `nb` is a block of `t`'s range; the half-width one has <= 8 columns.
            unsafe {
                if Some(nb) == half {
                    block::<MR, SIGNED, FP, 2>(p, t, &arow, &rowterm, m, mr, nb, flip)
                } else {
                    block::<MR, SIGNED, FP, 4>(p, t, &arow, &rowterm, m, mr, nb, flip)
                }
            }
        }
        m += MR;
    }
}

/// Block `nb` of [`gemm_sdot`]'s row tile `arow`: the first `JN` of each row's four 4-column
/// accumulators (`JN = 2`: only the block's first 8 columns), then the epilogue.
///
/// # Safety
/// As [`gemm_sdot`]; `nb` is a block of `p` in `t`'s range; with `JN = 2` the block holds at
/// most 8 columns (`p.n - nb * 16 <= 8`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const MR: usize, const SIGNED: bool, const FP: bool, const JN: usize>(
    p: &PackedGemm,
    t: &GemmRows,
    arow: &[*const u8; MR],
    rowterm: &[i32; MR],
    m: usize,
    mr: usize,
    nb: usize,
    flip: uint8x16_t,
) {
    const NR: usize = 16;
    debug_assert!(JN == 4 || p.n - nb * NR <= 8);
    let kp = p.kp;
    // SAFETY: block `nb` spans `kp * 16` bytes.
    let mut bp = unsafe { (p.data.as_slice().as_ptr() as *const i8).add(nb * kp * NR) };
    let mut acc = [[vdupq_n_s32(0); 4]; MR];
    let mut k = 0;
    while k + 16 <= kp {
        // SAFETY: `k + 16 <= kp` bytes of each row are readable.
        let a: [int8x16_t; MR] = std::array::from_fn(|r| unsafe {
            vreinterpretq_s8_u8(veorq_u8(vld1q_u8(arow[r].add(k)), flip))
        });
        macro_rules! group {
            ($($g:literal)*) => {$(
                // SAFETY: 64 bytes of k-group `k / 4 + g` inside block `nb`.
                let b: [int8x16_t; JN] =
                    std::array::from_fn(|j| unsafe { vld1q_s8(bp.add($g * 64 + 16 * j)) });
                for r in 0..MR {
                    for j in 0..JN {
                        sdot!(acc[r][j], b[j], a[r], $g);
                    }
                }
            )*};
        }
        group!(0 1 2 3);
        // SAFETY: stays within (or one past) block `nb`.
        bp = unsafe { bp.add(4 * 64) };
        k += 16;
    }
    while k < kp {
        let a: [int8x16_t; MR] = std::array::from_fn(|r| {
            // SAFETY: `k + 4 <= kp` bytes of each row are readable.
            let w = unsafe { (arow[r].add(k) as *const u32).read_unaligned() };
            vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(w)), flip))
        });
        // SAFETY: 64 bytes of k-group `k / 4` inside block `nb`.
        let b: [int8x16_t; JN] = std::array::from_fn(|j| unsafe { vld1q_s8(bp.add(16 * j)) });
        for r in 0..MR {
            for j in 0..JN {
                sdot!(acc[r][j], b[j], a[r]);
            }
        }
        // SAFETY: stays within (or one past) block `nb`.
        bp = unsafe { bp.add(64) };
        k += 4;
    }
    // SAFETY: rows `m..m+mr` exist in C; `nb` is a block of `p` (with `JN = 2` columns 8..16
    // hold zeros and are never stored).
    unsafe { epilogue16::<MR, SIGNED, FP>(p, t, &acc, rowterm, m, mr, nb) };
}

/// The dotprod GEMM micro-kernel (`Sdot` format, `nr = 16`) and its tile name (`fp32`: ONNX
/// Runtime float requantization).
pub(crate) fn gemm_kernel(signed: bool, fp32: bool) -> (GemmFn, &'static str) {
    match (signed, fp32) {
        (true, false) => (gemm_sdot::<4, false, true, false>, "4x16"),
        (false, false) => (gemm_sdot::<4, true, false, false>, "4x16"),
        (true, true) => (gemm_sdot::<4, false, true, true>, "4x16"),
        (false, true) => (gemm_sdot::<4, true, false, true>, "4x16"),
    }
}
