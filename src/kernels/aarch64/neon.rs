//! NEON kernels (Armv8-A baseline, e.g. Cortex-A72 of the Raspberry Pi 4, no dot product):
//! u8/i8 widened to i16 and multiplied with `smlal`/`smlal2` into i32 lanes (exact: the sums
//! wrap exactly as the reference's). Also the 128-bit requantization and store helpers the
//! dotprod tier reuses, the depthwise kernel and the 8-bit ADD of both aarch64 tiers.
//!
//! Requantization (`MultiplyByQuantizedMultiplier`) maps onto NEON exactly:
//! - `sqrdmulh` is gemmlowp's `SaturatingRoundingDoublingHighMul` bit for bit (same rounding
//!   `floor((2ab + 2^31) / 2^32)`, same saturation of `MIN * MIN`);
//! - `srshl` by `-n` rounds half up; gemmlowp's `RoundingDivideByPOT` rounds half away from
//!   zero, so negative lanes are decremented first (saturating, `x & -n` has the sign of `x`
//!   exactly when `n > 0`), the fixup of TFLite's own NEON path.

use std::arch::aarch64::*;

use crate::kernels::dwconv::{DwRows, PackedDw};
use crate::kernels::gemm::{GemmFn, GemmRows, PackedGemm};
use crate::kernels::reference::elementwise::{add_quantized, QuantAddParams};
use crate::kernels::requant::Requant;

/// Sum of `len` bytes at `p` (u8), wrapping i32 (`uadalp` pairwise accumulation).
///
/// # Safety
/// NEON; `p` valid for `len` byte reads (no over-read: the tail is summed byte by byte).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn row_sum_u8(p: *const u8, len: usize) -> i32 {
    let mut acc = vdupq_n_u32(0);
    let mut i = 0;
    while i + 16 <= len {
        // SAFETY: `i + 16 <= len`.
        let v = unsafe { vld1q_u8(p.add(i)) };
        acc = vpadalq_u16(acc, vpaddlq_u8(v));
        i += 16;
    }
    let mut s = vaddvq_u32(acc) as i32;
    while i < len {
        // SAFETY: `i < len`.
        s = s.wrapping_add(i32::from(unsafe { *p.add(i) }));
        i += 1;
    }
    s
}

/// gemmlowp `RoundingDivideByPOT(x, n)` per lane, given `neg = -n` (`0 <= n <= 31`).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn rounding_shr(x: int32x4_t, neg: int32x4_t) -> int32x4_t {
    let fixup = vshrq_n_s32::<31>(vandq_s32(x, neg));
    vrshlq_s32(vqaddq_s32(x, fixup), neg)
}

/// Requantize 4 accumulators; `col` indexes the `Requant` arrays (see `kernels::requant`).
///
/// # Safety
/// NEON; the requant arrays hold at least `col + 4` entries.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn requant4(x: int32x4_t, rq: &Requant, col: usize) -> int32x4_t {
    // SAFETY: arrays hold `col + 4` entries (caller contract).
    let (mult, lsh, rsh) = unsafe {
        (
            vld1q_s32(rq.mult.as_ptr().add(col)),
            vld1q_s32(rq.lshift.as_ptr().add(col)),
            vld1q_s32(rq.rshift.as_ptr().add(col)),
        )
    };
    let y = vqrdmulhq_s32(vshlq_s32(x, lsh), mult);
    let r = vaddq_s32(rounding_shr(y, vnegq_s32(rsh)), vdupq_n_s32(rq.out_zp));
    vminq_s32(
        vmaxq_s32(r, vdupq_n_s32(rq.act_min)),
        vdupq_n_s32(rq.act_max),
    )
}

/// ONNX Runtime's float requantization of 4 accumulators (`kernels::requant`): `f32(x) *
/// scale` (`scvtf` and `fmul` round to nearest even under the default FPCR), clamp to the
/// activation range minus the zero point, `fcvtns` (round half to even), plus the zero point.
///
/// # Safety
/// NEON; `rq.scale` is `Some` with at least `col + 4` entries.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn requant4_fp(x: int32x4_t, rq: &Requant, col: usize) -> int32x4_t {
    debug_assert!(rq.scale.as_ref().is_some_and(|s| s.len() >= col + 4));
    let scale = rq.scale.as_deref().unwrap_or_default();
    // SAFETY: `col + 4` scales (caller contract).
    let s = unsafe { vld1q_f32(scale.as_ptr().add(col)) };
    let (lo, hi) = rq.float_bounds();
    let v = vmulq_f32(vcvtq_f32_s32(x), s);
    let v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(lo)), vdupq_n_f32(hi));
    vaddq_s32(vcvtnq_s32_f32(v), vdupq_n_s32(rq.out_zp))
}

/// [`requant4_fp`] (`FP`, ONNX Runtime numerics) or [`requant4`] (TFLite fixed point), chosen
/// at compile time so the fixed-point kernels are unchanged.
///
/// # Safety
/// As the chosen function.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn requant4_mode<const FP: bool>(
    x: int32x4_t,
    rq: &Requant,
    col: usize,
) -> int32x4_t {
    // SAFETY: caller contract.
    unsafe {
        if FP {
            requant4_fp(x, rq, col)
        } else {
            requant4(x, rq, col)
        }
    }
}

/// Narrow four vectors of clamped values (16 lanes in order) to 16 bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn narrow16<const SIGNED: bool>(y: [int32x4_t; 4]) -> uint8x16_t {
    let h0 = vcombine_s16(vqmovn_s32(y[0]), vqmovn_s32(y[1]));
    let h1 = vcombine_s16(vqmovn_s32(y[2]), vqmovn_s32(y[3]));
    if SIGNED {
        vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1)))
    } else {
        vcombine_u8(vqmovun_s16(h0), vqmovun_s16(h1))
    }
}

/// Store the first `cnt` (<= 16) bytes of `v` at `dst`.
///
/// A partial store is up to four pieces (8, 4, 2, 1 bytes by the bits of `cnt`), never a
/// `memcpy` call: partial column blocks (N = 24, 12, 546, ...) store one per row.
///
/// # Safety
/// NEON; `dst` valid for `cnt` byte writes.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn store_bytes(dst: *mut u8, v: uint8x16_t, cnt: usize) {
    if cnt >= 16 {
        // SAFETY: 16 writable bytes.
        unsafe { vst1q_u8(dst, v) };
        return;
    }
    let lanes = vreinterpretq_u64_u8(v);
    let (lo, hi) = (vgetq_lane_u64::<0>(lanes), vgetq_lane_u64::<1>(lanes));
    let mut o = 0;
    // The bytes from `o` on, little-endian in a u64 (bytes `o..o + 8` of `v`).
    let mut rest = lo;
    // SAFETY (each piece): bytes `o..o + piece <= cnt` of `dst`, since `o` is the sum of the
    // higher bits of `cnt` already stored.
    if cnt & 8 != 0 {
        unsafe { (dst as *mut u64).write_unaligned(lo.to_le()) };
        (o, rest) = (8, hi);
    }
    if cnt & 4 != 0 {
        unsafe { (dst.add(o) as *mut u32).write_unaligned((rest as u32).to_le()) };
        (o, rest) = (o + 4, rest >> 32);
    }
    if cnt & 2 != 0 {
        unsafe { (dst.add(o) as *mut u16).write_unaligned((rest as u16).to_le()) };
        (o, rest) = (o + 2, rest >> 16);
    }
    if cnt & 1 != 0 {
        unsafe { *dst.add(o) = rest as u8 };
    }
}

/// Bias, row term, requantization (`FP`: ONNX Runtime's float form) and store of an
/// `MR x 16` tile of accumulators.
///
/// # Safety
/// NEON; rows `m..m + mr` of C exist; block `nb` is a block of `p` (`nr = 16`);
/// `p.requant.scale` is `Some` if `FP`.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn epilogue16<const MR: usize, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
    acc: &[[int32x4_t; 4]; MR],
    rowterm: &[i32; MR],
    m: usize,
    mr: usize,
    nb: usize,
) {
    let col = nb * 16;
    let cnt = 16.min(p.n - col);
    // SAFETY: col_bias is padded to `n_blocks * 16`.
    let cb: [int32x4_t; 4] =
        std::array::from_fn(|j| unsafe { vld1q_s32(p.col_bias.as_ptr().add(col + 4 * j)) });
    for r in 0..MR.min(mr) {
        let rt = vdupq_n_s32(rowterm[r]);
        // SAFETY: requant arrays are padded to `n_blocks * 16`.
        let y: [int32x4_t; 4] = std::array::from_fn(|j| unsafe {
            requant4_mode::<FP>(
                vaddq_s32(vaddq_s32(acc[r][j], cb[j]), rt),
                &p.requant,
                col + 4 * j,
            )
        });
        // SAFETY: `cnt` bytes of row `m + r` from column `col` are inside C.
        unsafe {
            store_bytes(
                t.c.add((m + r) * t.c_stride + col),
                narrow16::<SIGNED>(y),
                cnt,
            )
        };
    }
}

/// `conv_gemm_q{u8,i8}_4x16[_fp32rq]__neon`: 4 rows x 16 columns per tile, `Mla` packed
/// weights; `FP`: ONNX Runtime float requantization (`p.requant.scale` is `Some`).
///
/// Per 8 k: each row's 8 activation bytes are widened to i16 (int8 ones flipped to `x + 128`
/// first, see `kernels::gemm`), and every k multiplies the 16-column i16 weight row by one
/// activation lane (`smlal`/`smlal2` by element). K tails of 4 use the low 4 lanes.
///
/// Reads: A rows exactly `kp` bytes (8- then 4-byte groups; tail tiles repeat the last row);
/// packed B `kp * 16` i16 per block. Writes `min(16, n - col)` bytes per row and block.
#[target_feature(enable = "neon")]
unsafe fn gemm_mla<const MR: usize, const XOR: bool, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    const NR: usize = 16;
    debug_assert_eq!(p.nr, NR);
    let flip = vdup_n_u8(if XOR { 0x80 } else { 0 });
    /// Block `nb` of the row tile `arow`: the first `W` pairs of 4-column accumulators of each
    /// row (`W = 1`: only the block's first 8 columns), then the epilogue.
    ///
    /// # Safety
    /// As [`gemm_mla`]; `nb` is a block of `p` in `t`'s range; with `W = 1` the block holds at
    /// most 8 columns (`p.n - nb * 16 <= 8`).
    #[inline(always)]
    unsafe fn block<
        const MR: usize,
        const XOR: bool,
        const SIGNED: bool,
        const FP: bool,
        const W: usize,
    >(
        p: &PackedGemm,
        t: &GemmRows,
        arow: &[*const u8; MR],
        m: usize,
        mr: usize,
        nb: usize,
        flip: uint8x8_t,
    ) {
        const NR: usize = 16;
        debug_assert!(W == 2 || p.n - nb * NR <= 8);
        let kp = p.kp;
        // SAFETY: block `nb` spans `kp * 16` i16.
        let mut bp = unsafe { (p.data.as_slice().as_ptr() as *const i16).add(nb * kp * NR) };
        let mut acc = [[vdupq_n_s32(0); 4]; MR];
        // One k: the weight row at `bp + L * 16` times lane `L` of each row's activations.
        macro_rules! step {
            ($a:expr, $($l:literal)*) => {$(
                // SAFETY: 16 i16 of the current k-group inside block `nb`.
                let b0 = unsafe { vld1q_s16(bp.add($l * NR)) };
                for r in 0..MR {
                    let a = $a[r];
                    acc[r][0] = vmlal_laneq_s16::<$l>(acc[r][0], vget_low_s16(b0), a);
                    acc[r][1] = vmlal_high_laneq_s16::<$l>(acc[r][1], b0, a);
                }
                if W == 2 {
                    // SAFETY: as above.
                    let b1 = unsafe { vld1q_s16(bp.add($l * NR + 8)) };
                    for r in 0..MR {
                        let a = $a[r];
                        acc[r][2] = vmlal_laneq_s16::<$l>(acc[r][2], vget_low_s16(b1), a);
                        acc[r][3] = vmlal_high_laneq_s16::<$l>(acc[r][3], b1, a);
                    }
                }
            )*};
        }
        let widen = |v: uint8x8_t| vreinterpretq_s16_u16(vmovl_u8(veor_u8(v, flip)));
        let mut k = 0;
        while k + 8 <= kp {
            // SAFETY: `k + 8 <= kp` bytes of each row are readable.
            let a: [int16x8_t; MR] =
                std::array::from_fn(|r| widen(unsafe { vld1_u8(arow[r].add(k)) }));
            step!(a, 0 1 2 3 4 5 6 7);
            // SAFETY: stays within (or one past) block `nb`.
            bp = unsafe { bp.add(8 * NR) };
            k += 8;
        }
        if k < kp {
            // `kp % 8 == 4`: the last 4 bytes of each row.
            let a: [int16x8_t; MR] = std::array::from_fn(|r| {
                // SAFETY: `k + 4 == kp` bytes of each row are readable.
                let w = unsafe { (arow[r].add(k) as *const u32).read_unaligned() };
                widen(vcreate_u8(u64::from(w)))
            });
            step!(a, 0 1 2 3);
        }
        // SAFETY: rows `m..m+mr` exist in C; `nb` is a block of `p` (with `W = 1` columns 8..16
        // hold zeros and are never stored).
        unsafe { epilogue16::<MR, SIGNED, FP>(p, t, &acc, &[0; MR], m, mr, nb) };
    }
    let half = p.half_block(t);
    let mut m = 0;
    while m < t.rows {
        let mr = MR.min(t.rows - m);
        // SAFETY: row `m + min(r, mr - 1)` < rows.
        let arow: [*const u8; MR] =
            std::array::from_fn(|r| unsafe { t.a.add((m + r.min(mr - 1)) * t.a_stride) });
        for nb in t.nb_begin..t.nb_end {
            // SAFETY: `nb` is a block of `t`'s range; the half-width one has <= 8 columns.
            unsafe {
                if Some(nb) == half {
                    block::<MR, XOR, SIGNED, FP, 1>(p, t, &arow, m, mr, nb, flip)
                } else {
                    block::<MR, XOR, SIGNED, FP, 2>(p, t, &arow, m, mr, nb, flip)
                }
            }
        }
        m += MR;
    }
}

/// The NEON GEMM micro-kernel (`Mla` format, `nr = 16`) and its tile name (`fp32`: ONNX
/// Runtime float requantization).
pub(crate) fn gemm_kernel(signed: bool, fp32: bool) -> (GemmFn, &'static str) {
    match (signed, fp32) {
        (true, false) => (gemm_mla::<4, true, true, false>, "4x16"),
        (false, false) => (gemm_mla::<4, false, false, false>, "4x16"),
        (true, true) => (gemm_mla::<4, true, true, true>, "4x16"),
        (false, true) => (gemm_mla::<4, false, false, true>, "4x16"),
    }
}

/// `dwconv3x3_q{u8,i8}[_fp32rq]__neon` (`FP`: ONNX Runtime float requantization,
/// `p.requant.scale` is `Some`): depthwise 3x3 (any stride / padding, multiplier 1) over output
/// rows `rows.row_begin..row_end` and channel blocks `rows.blocks(..)`, 16 channels per step: each tap's 16 input bytes are widened
/// to i16 and multiplied with `smlal`/`smlal2` against `DwLayout::Taps` weights.
///
/// Reads: 16 bytes per tap and channel block; taps outside the image read `PackedDw::zp_row`
/// (the input zero point, padded to whole blocks); the channel tail block is copied to a
/// local buffer first (no over-read). Writes exactly `channels` bytes per output pixel.
#[target_feature(enable = "neon")]
unsafe fn dwconv3x3<const SIGNED: bool, const FP: bool>(p: &PackedDw, t: &DwRows) {
    const BW: usize = 16;
    debug_assert_eq!(p.bw, BW);
    let g = &p.geom;
    let c = g.in_c;
    let full = c / BW;
    let cblocks = c.div_ceil(BW);
    let w = p.weights.as_slice().as_ptr() as *const i16;
    let zp = p.zp_row.as_ptr();
    // This call's blocks: whole ones `< full`, and the tail block `full` if it is in range.
    let blocks = t.blocks(cblocks);
    for row in t.row_begin..t.row_end {
        let oy = row % g.out_h;
        let b = row / g.out_h;
        for ox in 0..g.out_w {
            let mut taps = [zp; 9];
            for fy in 0..3 {
                let Some(iy) = g.in_y(oy, fy) else { continue };
                for fx in 0..3 {
                    if let Some(ix) = g.in_x(ox, fx) {
                        // SAFETY: pixel (b, iy, ix) is inside the input.
                        taps[fy * 3 + fx] = unsafe { t.input.add(g.input_offset(b, iy, ix)) };
                    }
                }
            }
            // SAFETY: pixel (b, oy, ox) is inside the output.
            let out = unsafe { t.output.add(g.output_offset(b, oy, ox)) };
            // One block of 16 channels from 9 tap pointers (each with 16 readable bytes).
            let block = |src: &[*const u8; 9], cb: usize| {
                let off = cb * BW;
                // SAFETY: bias/requant arrays and weights cover `cblocks` blocks; each source
                // has 16 readable bytes; the output pixel has `c - off` bytes from `off`.
                unsafe {
                    let mut acc: [int32x4_t; 4] =
                        std::array::from_fn(|j| vld1q_s32(p.bias.as_ptr().add(off + 4 * j)));
                    for (tap, &s) in src.iter().enumerate() {
                        let v = vld1q_u8(s);
                        let (lo, hi) = if SIGNED {
                            let v = vreinterpretq_s8_u8(v);
                            (vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v))
                        } else {
                            (
                                vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))),
                                vreinterpretq_s16_u16(vmovl_high_u8(v)),
                            )
                        };
                        let wt = w.add((cb * 9 + tap) * BW);
                        let (w0, w1) = (vld1q_s16(wt), vld1q_s16(wt.add(8)));
                        acc[0] = vmlal_s16(acc[0], vget_low_s16(lo), vget_low_s16(w0));
                        acc[1] = vmlal_high_s16(acc[1], lo, w0);
                        acc[2] = vmlal_s16(acc[2], vget_low_s16(hi), vget_low_s16(w1));
                        acc[3] = vmlal_high_s16(acc[3], hi, w1);
                    }
                    let y: [int32x4_t; 4] = std::array::from_fn(|j| {
                        requant4_mode::<FP>(acc[j], &p.requant, off + 4 * j)
                    });
                    store_bytes(out.add(off), narrow16::<SIGNED>(y), BW.min(c - off));
                }
            };
            for cb in blocks.start..blocks.end.min(full) {
                // SAFETY: whole blocks inside each pixel / the padded zp row.
                let src = taps.map(|t| unsafe { t.add(cb * BW) });
                block(&src, cb);
            }
            if full < cblocks && blocks.contains(&full) {
                let off = full * BW;
                let mut tail = [[0u8; BW]; 9];
                let mut src = [zp; 9];
                for i in 0..9 {
                    if taps[i] == zp {
                        // SAFETY: the zp row is padded to whole blocks.
                        src[i] = unsafe { zp.add(off) };
                    } else {
                        // SAFETY: the tail block has `c - off` readable bytes; the copy keeps
                        // the 16-byte load inside `tail`.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                taps[i].add(off),
                                tail[i].as_mut_ptr(),
                                c - off,
                            )
                        };
                        src[i] = tail[i].as_ptr();
                    }
                }
                block(&src, full);
            }
        }
    }
}

/// The NEON depthwise kernel (`fp32`: ONNX Runtime float requantization).
pub(crate) fn dwconv_kernel(signed: bool, fp32: bool) -> crate::kernels::dwconv::DwFn {
    match (signed, fp32) {
        (true, false) => dwconv3x3::<true, false>,
        (false, false) => dwconv3x3::<false, false>,
        (true, true) => dwconv3x3::<true, true>,
        (false, true) => dwconv3x3::<false, true>,
    }
}

/// Broadcast multiplier and negated right shift of one
/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`.
#[derive(Clone, Copy)]
struct Scale {
    mult: int32x4_t,
    neg: int32x4_t,
}

impl Scale {
    #[inline]
    #[target_feature(enable = "neon")]
    fn new(mult: i32, left_shift: i32) -> Scale {
        Scale {
            mult: vdupq_n_s32(mult),
            neg: vdupq_n_s32(-(-left_shift).clamp(0, 31)),
        }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    fn apply(&self, x: int32x4_t) -> int32x4_t {
        rounding_shr(vqrdmulhq_s32(x, self.mult), self.neg)
    }
}

/// `add_q{u8,i8}__neon`: TFLite's 8-bit ADD (`AddElementwise` / `AddFunc`: offsets, left shift
/// 20, three `MultiplyByQuantizedMultiplierSmallerThanOneExp`) on equal-shape inputs, 16
/// elements per step; the tail (< 16) runs the scalar reference body.
///
/// Reads exactly `len` bytes of `a` and `b`, writes exactly `len` bytes of `out`.
#[target_feature(enable = "neon")]
unsafe fn add_q8<const SIGNED: bool>(
    p: &QuantAddParams,
    a: *const u8,
    b: *const u8,
    out: *mut u8,
    len: usize,
) {
    let s1 = Scale::new(p.input1_multiplier, p.input1_shift);
    let s2 = Scale::new(p.input2_multiplier, p.input2_shift);
    let so = Scale::new(p.output_multiplier, p.output_shift);
    let (o1, o2) = (vdupq_n_s32(p.input1_offset), vdupq_n_s32(p.input2_offset));
    let oo = vdupq_n_s32(p.output_offset);
    let (lo, hi) = (vdupq_n_s32(p.act_min), vdupq_n_s32(p.act_max));
    let ls = vdupq_n_s32(p.left_shift);
    // 16 bytes -> 4 x 4 i32 lanes, in order.
    let widen = |v: uint8x16_t| -> [int32x4_t; 4] {
        let (h0, h1) = if SIGNED {
            let v = vreinterpretq_s8_u8(v);
            (vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v))
        } else {
            (
                vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))),
                vreinterpretq_s16_u16(vmovl_high_u8(v)),
            )
        };
        [
            vmovl_s16(vget_low_s16(h0)),
            vmovl_high_s16(h0),
            vmovl_s16(vget_low_s16(h1)),
            vmovl_high_s16(h1),
        ]
    };
    let one = |x: int32x4_t, y: int32x4_t| -> int32x4_t {
        let v1 = vshlq_s32(vaddq_s32(x, o1), ls);
        let v2 = vshlq_s32(vaddq_s32(y, o2), ls);
        let sum = vaddq_s32(s1.apply(v1), s2.apply(v2));
        let r = vaddq_s32(so.apply(sum), oo);
        vminq_s32(vmaxq_s32(r, lo), hi)
    };
    let mut i = 0;
    while i + 16 <= len {
        // SAFETY: `i + 16 <= len` bytes of a, b and out.
        unsafe {
            let x = widen(vld1q_u8(a.add(i)));
            let y = widen(vld1q_u8(b.add(i)));
            let r = [
                one(x[0], y[0]),
                one(x[1], y[1]),
                one(x[2], y[2]),
                one(x[3], y[3]),
            ];
            vst1q_u8(out.add(i), narrow16::<SIGNED>(r));
        }
        i += 16;
    }
    while i < len {
        // SAFETY: `i < len`.
        unsafe {
            let (x, y) = if SIGNED {
                (*a.add(i) as i8 as i32, *b.add(i) as i8 as i32)
            } else {
                (*a.add(i) as i32, *b.add(i) as i32)
            };
            *out.add(i) = add_quantized(x, y, p) as u8;
        }
        i += 1;
    }
}

/// An 8-bit ADD kernel over equal-shape inputs.
///
/// # Safety
/// NEON; `a`, `b` valid for `len` reads, `out` for `len` writes.
pub type AddFn =
    unsafe fn(p: &QuantAddParams, a: *const u8, b: *const u8, out: *mut u8, len: usize);

pub(crate) fn add_kernel(signed: bool) -> AddFn {
    if signed {
        add_q8::<true>
    } else {
        add_q8::<false>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::conv::QuantParams;
    use crate::kernels::reference::fixedpoint::{
        multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot,
        saturating_rounding_doubling_high_mul,
    };
    use proptest::prelude::*;

    fn lanes(v: int32x4_t) -> [i32; 4] {
        let mut o = [0i32; 4];
        // SAFETY: 4-lane store into a 4-element array.
        unsafe { vst1q_s32(o.as_mut_ptr(), v) };
        o
    }

    /// `sqrdmulh` on one lane.
    fn srdhm(a: i32, b: i32) -> i32 {
        // SAFETY: NEON is part of the aarch64 baseline.
        lanes(unsafe { vqrdmulhq_s32(vdupq_n_s32(a), vdupq_n_s32(b)) })[0]
    }

    /// [`rounding_shr`] on one lane.
    fn rshr(x: i32, n: i32) -> i32 {
        // SAFETY: NEON is part of the aarch64 baseline.
        lanes(unsafe { rounding_shr(vdupq_n_s32(x), vdupq_n_s32(-n)) })[0]
    }

    fn requant_one(x: i32, m: i32, s: i32) -> i32 {
        let q = QuantParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: 0,
            multipliers: vec![m],
            shifts: vec![s],
            act_min: i32::MIN,
            act_max: i32::MAX,
            float_scales: None,
        };
        let r = Requant::new(&q, 4);
        // SAFETY: NEON is baseline on aarch64; arrays hold 4 entries.
        lanes(unsafe { requant4(vdupq_n_s32(x), &r, 0) })[0]
    }

    proptest! {
        #[test]
        fn requant4_matches_reference(x in any::<i32>(), real in 1e-6f64..4.0) {
            let (m, s) = quantize_multiplier(real);
            prop_assert_eq!(requant_one(x, m, s), multiply_by_quantized_multiplier(x, m, s));
        }

        #[test]
        fn sqrdmulh_and_rounding_shr_match_gemmlowp(a in any::<i32>(), b in any::<i32>(),
                                                     n in 0i32..=31) {
            prop_assert_eq!(srdhm(a, b), saturating_rounding_doubling_high_mul(a, b));
            prop_assert_eq!(rshr(a, n), rounding_divide_by_pot(a, n));
        }
    }

    #[test]
    fn rounding_edges() {
        for n in [0, 1, 2, 5, 30, 31] {
            for x in [
                i32::MIN,
                i32::MIN + 1,
                -5,
                -4,
                -3,
                -2,
                -1,
                0,
                1,
                2,
                3,
                i32::MAX,
                -(1 << 20) - 1,
                (1 << 20) + 1,
            ] {
                assert_eq!(rshr(x, n), rounding_divide_by_pot(x, n), "{x} >> {n}");
            }
        }
        assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
        for (m, s) in [
            (1 << 30, 0),
            (1 << 30, -3),
            (0x7fff_ffff, 2),
            (0, 0),
            (1 << 30, 31),
        ] {
            for x in [-5, -4, -3, -1, 0, 1, 3, 4, 5, i32::MIN, i32::MAX] {
                assert_eq!(
                    requant_one(x, m, s),
                    multiply_by_quantized_multiplier(x, m, s),
                    "{x} {m} {s}"
                );
            }
        }
    }

    #[test]
    fn row_sum_matches_scalar() {
        let v: Vec<u8> = (0..77u32).map(|i| (i * 37 % 256) as u8).collect();
        for len in [0, 1, 15, 16, 17, 33, 77] {
            let want = v[..len].iter().map(|&b| i32::from(b)).sum::<i32>();
            // SAFETY: NEON baseline; `len` readable bytes.
            assert_eq!(unsafe { row_sum_u8(v.as_ptr(), len) }, want);
        }
    }
}
