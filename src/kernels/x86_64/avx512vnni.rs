//! AVX-512 VNNI kernels (`vpdpbusd` on zmm: 64 u8 x s8 products per instruction).

use std::arch::x86_64::*;

use crate::kernels::dwconv::{DwFn, DwRows, PackedDw};
use crate::kernels::gemm::{GemmFn, GemmRows, PackedGemm};
use crate::kernels::requant::{FastRequant, Requant};

use super::avx2::row_sum_u8;

/// The sign-magnitude requantization (`kernels::requant`, `FastRequant`) of 16 lanes with
/// multipliers `me` (even lanes, read from the low dwords) and `mo` (odd lanes): the unclamped
/// result without zero point.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn fast16(
    x: __m512i,
    me: __m512i,
    mo: __m512i,
    add: __m512i,
    sh: __m128i,
    sh_odd: __m128i,
) -> __m512i {
    // |i32::MIN| = 2^31 as unsigned: `vpmuludq` reads it right.
    let mag = _mm512_abs_epi32(x);
    let even = _mm512_add_epi64(_mm512_mul_epu32(mag, me), add);
    let odd = _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64::<32>(mag), mo), add);
    // Even lanes: the magnitude in the low dword; odd lanes shift 32 less, into the high one.
    let r = _mm512_mask_blend_epi32(
        0xAAAA,
        _mm512_srl_epi64(even, sh),
        _mm512_srl_epi64(odd, sh_odd),
    );
    let zero = _mm512_setzero_si512();
    _mm512_mask_sub_epi32(r, _mm512_cmplt_epi32_mask(x, zero), zero, r)
}

/// [`fast16`]'s shift counts and rounding constant.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn fast_consts(f: &FastRequant) -> (__m512i, __m128i, __m128i) {
    (
        _mm512_set1_epi64(f.add as i64),
        _mm_cvtsi32_si128(f.shift as i32),
        _mm_cvtsi32_si128(f.shift as i32 - 32),
    )
}

/// `f32(x) * scale`, clamped to `[lo, hi]`, rounded half to even (`vcvtps2dq` under the
/// default MXCSR), plus `zp`: ONNX Runtime's requantization (`kernels::requant`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn requant16_fp(x: __m512i, scale: __m512, lo: __m512, hi: __m512, zp: __m512i) -> __m512i {
    let v = _mm512_mul_ps(_mm512_cvtepi32_ps(x), scale);
    let v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    _mm512_add_epi32(_mm512_cvtps_epi32(v), zp)
}

/// The float scales of columns `col..col + 16` (zeros when `rq` has none: fixed-point
/// kernels never read them).
///
/// # Safety
/// AVX-512; if `rq.scale` is `Some` it holds at least `col + 16` entries.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_scale16(rq: &Requant, col: usize) -> __m512 {
    match &rq.scale {
        // SAFETY: caller contract.
        Some(s) => unsafe { _mm512_loadu_ps(s.as_ptr().add(col)) },
        None => _mm512_setzero_ps(),
    }
}

/// `conv_gemm_q{u8,i8}_{MR}x{16*NV}[_fp32rq]__avx512vnni`: MR rows x 16*NV columns per tile;
/// `FP`: ONNX Runtime float requantization (`p.requant.scale` is `Some`).
///
/// Reads: A rows `kp` bytes each in 4-byte groups (no over-read; rows past `rows` are not
/// read: tail tiles repeat the last row and discard it); packed B `kp * nr` bytes per block.
/// Writes: exactly `min(nr, n - col)` bytes per row and block (masked stores).
#[allow(clippy::needless_range_loop)] // register-tile indexing, fully unrolled
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm<const MR: usize, const NV: usize, const XOR: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    let nr = 16 * NV;
    debug_assert_eq!(p.nr, nr);
    let kp4 = p.kp / 4;
    let flip = _mm512_set1_epi32(0x8080_8080u32 as i32);
    let (flo, fhi) = p.requant.float_bounds();
    let (flo, fhi) = (_mm512_set1_ps(flo), _mm512_set1_ps(fhi));
    let zp = _mm512_set1_epi32(p.requant.out_zp);
    let (amin, amax) = (
        _mm512_set1_epi32(p.requant.act_min),
        _mm512_set1_epi32(p.requant.act_max),
    );
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
            // SAFETY: block `nb` of the packed data spans `kp * nr` bytes.
            let mut bp = unsafe { p.data.as_slice().as_ptr().add(nb * p.kp * nr) };
            let mut acc = [[_mm512_setzero_si512(); NV]; MR];
            for k4 in 0..kp4 {
                let mut b = [_mm512_setzero_si512(); NV];
                for (v, bv) in b.iter_mut().enumerate() {
                    // SAFETY: inside block `nb` (see above).
                    *bv = unsafe { _mm512_loadu_si512(bp.add(v * 64).cast()) };
                }
                for r in 0..MR {
                    // SAFETY: `k4 * 4 + 4 <= kp` bytes of the row are readable.
                    let a4 = unsafe { (arow[r].add(k4 * 4) as *const i32).read_unaligned() };
                    let mut av = _mm512_set1_epi32(a4);
                    if XOR {
                        av = _mm512_xor_si512(av, flip);
                    }
                    for v in 0..NV {
                        acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, b[v]);
                    }
                }
                // SAFETY: stays within (or one past) block `nb`.
                bp = unsafe { bp.add(nr * 4) };
            }
            let col0 = nb * nr;
            let ncols = nr.min(p.n - col0);
            for v in 0..NV {
                let col = col0 + 16 * v;
                let cnt = ncols.saturating_sub(16 * v).min(16);
                let mask: u16 = ((1u32 << cnt) - 1) as u16;
                // SAFETY: col_bias is padded to `n_blocks * nr`.
                let cb = unsafe { _mm512_loadu_si512(p.col_bias.as_ptr().add(col).cast()) };
                // SAFETY: scales (when present) are padded like the other requant arrays.
                let scale = if FP {
                    unsafe { load_scale16(&p.requant, col) }
                } else {
                    _mm512_setzero_ps()
                };
                // Loaded once per 16 columns: the stores to C below may alias anything, so
                // LLVM would reload it for every row.
                // SAFETY: the requant arrays are padded to `n_blocks * nr` (plus one entry).
                let rq = (!FP).then(|| unsafe { Rq16::load(&p.requant, col) });
                for r in 0..MR {
                    if r >= mr {
                        break;
                    }
                    let x = _mm512_add_epi32(
                        _mm512_add_epi32(acc[r][v], cb),
                        _mm512_set1_epi32(rowterm[r]),
                    );
                    let y = match &rq {
                        None => requant16_fp(x, scale, flo, fhi, zp),
                        Some(rq) => _mm512_min_epi32(_mm512_max_epi32(rq.apply(x, zp), amin), amax),
                    };
                    let bytes = _mm512_cvtepi32_epi8(y);
                    // SAFETY: masked store of `cnt` bytes inside row `m + r` of C.
                    unsafe {
                        _mm_mask_storeu_epi8(
                            t.c.add((m + r) * t.c_stride + col).cast(),
                            mask,
                            bytes,
                        )
                    };
                }
            }
        }
        m += MR;
    }
}

/// The micro-kernel for `nv` zmm columns (1..=4) and the tile name (`MRxNR`); `fp32`: ONNX
/// Runtime float requantization.
pub(crate) fn gemm_kernel(nv: usize, signed: bool, fp32: bool) -> (GemmFn, &'static str) {
    match (fp32, nv, signed) {
        (false, 1, false) => (gemm::<12, 1, false, false>, "12x16"),
        (false, 2, false) => (gemm::<8, 2, false, false>, "8x32"),
        (false, 3, false) => (gemm::<8, 3, false, false>, "8x48"),
        (false, _, false) => (gemm::<6, 4, false, false>, "6x64"),
        (false, 1, true) => (gemm::<12, 1, true, false>, "12x16"),
        (false, 2, true) => (gemm::<8, 2, true, false>, "8x32"),
        (false, 3, true) => (gemm::<8, 3, true, false>, "8x48"),
        (false, _, true) => (gemm::<6, 4, true, false>, "6x64"),
        (true, 1, false) => (gemm::<12, 1, false, true>, "12x16"),
        (true, 2, false) => (gemm::<8, 2, false, true>, "8x32"),
        (true, 3, false) => (gemm::<8, 3, false, true>, "8x48"),
        (true, _, false) => (gemm::<6, 4, false, true>, "6x64"),
        (true, 1, true) => (gemm::<12, 1, true, true>, "12x16"),
        (true, 2, true) => (gemm::<8, 2, true, true>, "8x32"),
        (true, 3, true) => (gemm::<8, 3, true, true>, "8x48"),
        (true, _, true) => (gemm::<6, 4, true, true>, "6x64"),
    }
}

/// Requantization vectors of 16 channels, loaded once per channel block (`kernels::requant`).
#[derive(Clone, Copy)]
struct Rq16 {
    mult: __m512i,
    /// `mult >> 32` per 64-bit lane: the odd-lane multiplier for `vpmuldq`.
    mult_odd: __m512i,
    lsh: __m512i,
    rsh: __m512i,
    rmask: __m512i,
    rthr: __m512i,
    /// `FastRequant` form (then `mult` / `mult_odd` hold its even / odd multipliers):
    /// rounding constant and shifts.
    fast: Option<(__m512i, __m128i, __m128i)>,
    /// The fast form's f32 form (`FastRequant::float`): multipliers, rounding constant and
    /// whether its one-sided variant applies (`FloatForm::one_sided`).
    float: Option<(__m512, __m512, bool)>,
}

impl Rq16 {
    /// # Safety
    /// AVX-512; the requant arrays hold at least `col + 16` entries.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn load(rq: &Requant, col: usize) -> Rq16 {
        // SAFETY: caller contract (`FastRequant::mul` holds one entry more than the arrays).
        unsafe {
            if let Some(f) = &rq.fast {
                // The fast form reads only its multipliers (even lanes from `col`, odd lanes
                // one entry ahead); the general fields are unused.
                let zero = _mm512_setzero_si512();
                return Rq16 {
                    fast: Some(fast_consts(f)),
                    float: f.float.as_ref().map(|ff| {
                        (
                            _mm512_loadu_ps(ff.mul.as_ptr().add(col)),
                            _mm512_set1_ps(ff.add),
                            ff.one_sided,
                        )
                    }),
                    mult: _mm512_loadu_si512(f.mul.as_ptr().add(col).cast()),
                    mult_odd: _mm512_loadu_si512(f.mul.as_ptr().add(col + 1).cast()),
                    lsh: zero,
                    rsh: zero,
                    rmask: zero,
                    rthr: zero,
                };
            }
            let mult = _mm512_loadu_si512(rq.mult.as_ptr().add(col).cast());
            Rq16 {
                fast: None,
                float: None,
                mult,
                mult_odd: _mm512_srli_epi64::<32>(mult),
                lsh: _mm512_loadu_si512(rq.lshift.as_ptr().add(col).cast()),
                rsh: _mm512_loadu_si512(rq.rshift.as_ptr().add(col).cast()),
                rmask: _mm512_loadu_si512(rq.rmask.as_ptr().add(col).cast()),
                rthr: _mm512_loadu_si512(rq.rthresh.as_ptr().add(col).cast()),
            }
        }
    }

    /// `MultiplyByQuantizedMultiplier(x) + out_zp` (wrapping, unclamped); in
    /// the `fast` form exact only after the caller's clamp to an 8-bit activation range.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    fn apply(&self, x: __m512i, zp: __m512i) -> __m512i {
        if let Some((fm, fa, one_sided)) = self.float {
            if one_sided {
                // `FloatForm::one_sided`: every result at or below the zero point clamps to
                // `act_min`, so the sign does not matter: 3 operations.
                let r = _mm512_cvttps_epi32(_mm512_fmadd_ps(_mm512_cvtepi32_ps(x), fm, fa));
                return _mm512_add_epi32(r, zp);
            }
            // `FloatForm`: trunc(fma(f32(|x|), mul, add)) with `x`'s sign; equal to the
            // integer form below once clamped, 6 operations instead of 11.
            let a = _mm512_abs_ps(_mm512_cvtepi32_ps(x));
            let mag = _mm512_cvttps_epi32(_mm512_fmadd_ps(a, fm, fa));
            let zero = _mm512_setzero_si512();
            let r = _mm512_mask_sub_epi32(mag, _mm512_cmplt_epi32_mask(x, zero), zero, mag);
            return _mm512_add_epi32(r, zp);
        }
        if let Some((add, sh, sh_odd)) = self.fast {
            // Exact once clamped (`FastRequant`); `load` only builds it for clamping callers.
            return _mm512_add_epi32(fast16(x, self.mult, self.mult_odd, add, sh, sh_odd), zp);
        }
        let x = _mm512_sllv_epi32(x, self.lsh);
        let nudge = _mm512_set1_epi64(1 << 30);
        let even = _mm512_add_epi64(_mm512_mul_epi32(x, self.mult), nudge);
        let odd = _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), self.mult_odd),
            nudge,
        );
        let q = _mm512_mask_blend_epi32(
            0xAAAA,
            _mm512_srli_epi64::<31>(even),
            _mm512_slli_epi64::<1>(odd),
        );
        let rem = _mm512_and_si512(q, self.rmask);
        let thr = _mm512_sub_epi32(self.rthr, _mm512_srai_epi32::<31>(q));
        let r = _mm512_srav_epi32(q, self.rsh);
        let r = _mm512_mask_add_epi32(
            r,
            _mm512_cmpgt_epi32_mask(rem, thr),
            r,
            _mm512_set1_epi32(1),
        );
        _mm512_add_epi32(r, zp)
    }
}

/// Everything one 32-channel block of the depthwise kernel needs, held in registers while
/// the kernel walks the pixels of an output row.
#[derive(Clone, Copy)]
struct DwBlock32 {
    /// `PackedDw` pair weights: `w[2 * pair]` for the `unpacklo` half, `+ 1` for `unpackhi`.
    w: [__m512i; 10],
    bias: [__m512i; 2],
    rq: [Rq16; 2],
    /// Float scales of the two halves (ONNX Runtime numerics; zeros in fixed point).
    fs: [__m512; 2],
    /// Float clamp bounds `act_min/max - out_zp` (`Requant::float_bounds`).
    flo: __m512,
    fhi: __m512,
    zp: __m512i,
    act_min: __m512i,
    act_max: __m512i,
    /// Valid channels of the block (`u32::MAX` for a full block).
    mask: u32,
}

impl DwBlock32 {
    /// # Safety
    /// AVX-512; `cb` is a channel block of `p` (`bw == 32`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn load(p: &PackedDw, cb: usize) -> DwBlock32 {
        let off = cb * 32;
        let cnt = 32.min(p.geom.in_c - off);
        let w = p.weights.as_slice().as_ptr() as *const __m512i;
        // SAFETY: weights, bias and requant arrays cover `cblocks` blocks of 32 channels.
        unsafe {
            DwBlock32 {
                w: std::array::from_fn(|i| _mm512_load_si512(w.add(cb * 10 + i).cast())),
                bias: [
                    _mm512_loadu_si512(p.bias.as_ptr().add(off).cast()),
                    _mm512_loadu_si512(p.bias.as_ptr().add(off + 16).cast()),
                ],
                rq: [
                    Rq16::load(&p.requant, off),
                    Rq16::load(&p.requant, off + 16),
                ],
                fs: [
                    load_scale16(&p.requant, off),
                    load_scale16(&p.requant, off + 16),
                ],
                flo: _mm512_set1_ps(p.requant.float_bounds().0),
                fhi: _mm512_set1_ps(p.requant.float_bounds().1),
                zp: _mm512_set1_epi32(p.requant.out_zp),
                // 8-bit activation ranges fit i16 (see `pixel`).
                act_min: _mm512_set1_epi16(p.requant.act_min.clamp(-32768, 32767) as i16),
                act_max: _mm512_set1_epi16(p.requant.act_max.clamp(-32768, 32767) as i16),
                mask: if cnt == 32 {
                    u32::MAX
                } else {
                    (1u32 << cnt) - 1
                },
            }
        }
    }

    /// One output pixel of this block from its 9 tap pointers.
    ///
    /// # Safety
    /// AVX-512; each tap has the block's valid channels (`mask`) readable; `out` has them
    /// writable.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn pixel<const SIGNED: bool, const FP: bool>(
        &self,
        taps: &[*const u8; 9],
        out: *mut u8,
    ) {
        let widen = |ptr: *const u8| -> __m512i {
            // SAFETY: masked load of the readable channels (caller contract).
            let v = unsafe { _mm256_maskz_loadu_epi8(self.mask, ptr.cast()) };
            if SIGNED {
                _mm512_cvtepi8_epi16(v)
            } else {
                _mm512_cvtepu8_epi16(v)
            }
        };
        let (mut lo, mut hi) = (self.bias[0], self.bias[1]);
        for pair in 0..5 {
            let x0 = widen(taps[2 * pair]);
            // Tap 9 is the dummy with weight 0: pair it with zeros instead of a load.
            let x1 = if pair < 4 {
                widen(taps[2 * pair + 1])
            } else {
                _mm512_setzero_si512()
            };
            lo = _mm512_dpwssd_epi32(lo, _mm512_unpacklo_epi16(x0, x1), self.w[2 * pair]);
            hi = _mm512_dpwssd_epi32(hi, _mm512_unpackhi_epi16(x0, x1), self.w[2 * pair + 1]);
        }
        let (ylo, yhi) = if FP {
            (
                requant16_fp(lo, self.fs[0], self.flo, self.fhi, self.zp),
                requant16_fp(hi, self.fs[1], self.flo, self.fhi, self.zp),
            )
        } else {
            (self.rq[0].apply(lo, self.zp), self.rq[1].apply(hi, self.zp))
        };
        // Lane order -> channel order; saturating to i16 before clamping to the activation
        // range (inside i16) gives the same result as clamping the i32 values.
        let y = _mm512_packs_epi32(ylo, yhi);
        let y = _mm512_min_epi16(_mm512_max_epi16(y, self.act_min), self.act_max);
        // Clamped to the output type: the truncating narrow is exact.
        let bytes = _mm512_cvtepi16_epi8(y);
        // SAFETY: masked store of the valid channels (caller contract).
        unsafe { _mm256_mask_storeu_epi8(out.cast(), self.mask, bytes) };
    }
}

/// `dwconv3x3_q{u8,i8}_32c[_fp32rq]__avx512vnni` (`FP`: ONNX Runtime float requantization,
/// `p.requant.scale` is `Some`): depthwise 3x3 (any stride / padding, multiplier 1)
/// over output rows `rows.row_begin..row_end` and channel blocks `rows.blocks(..)`, 32 channels per block (`PackedDw` with `bw =
/// 32`), tap pairs multiplied with `vpdpwssd`.
///
/// Per output row and channel block the weights, bias and requantization vectors stay in
/// registers while the kernel walks the row; interior columns (`interior_cols`) address their
/// taps directly, border columns check each tap; rows outside the image read
/// `PackedDw::zp_row` (the input zero point).
///
/// Reads: per tap and block the valid channels only (masked loads, no over-read). Writes
/// exactly `channels` bytes per pixel (masked store on the tail).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dwconv3x3<const SIGNED: bool, const FP: bool>(p: &PackedDw, t: &DwRows) {
    let g = &p.geom;
    let c = g.in_c;
    let cblocks = c.div_ceil(32);
    let (lo, hi) = crate::kernels::dwconv::interior_cols(g);
    for row in t.row_begin..t.row_end {
        let oy = row % g.out_h;
        let b = row / g.out_h;
        let rows = crate::kernels::dwconv::row_offsets(g, b, oy);
        // SAFETY: pixel (b, oy, 0) is inside the output.
        let out_row = unsafe { t.output.add(g.output_offset(b, oy, 0)) };
        for cb in t.blocks(cblocks) {
            let off = cb * 32;
            // SAFETY: `cb < cblocks`.
            let k = unsafe { DwBlock32::load(p, cb) };
            // SAFETY: the zp row is padded to whole blocks.
            let zpb = unsafe { p.zp_row.as_ptr().add(off) };
            // Filter row `fy` at input column `ix` is `base[fy] + ix * step[fy]`: a pointer
            // into the input, or `zpb` with step 0 for rows outside the image.
            let mut base = [zpb; 3];
            let mut step = [0usize; 3];
            for ((bp, sp), r) in base.iter_mut().zip(step.iter_mut()).zip(rows) {
                if let Some(r) = r {
                    // SAFETY: offset of pixel (b, iy, 0) plus a channel block offset < c.
                    *bp = unsafe { t.input.add(r + off) };
                    *sp = c;
                }
            }
            for ox in 0..g.out_w {
                let taps: [*const u8; 9] = if (lo..hi).contains(&ox) {
                    // Interior: in_x(ox, fx) = x0 + fx for all three taps.
                    let x0 = ox * g.stride_w - g.pad_w;
                    // SAFETY: (b, iy, x0 + fx) is inside the input for valid rows; other
                    // rows add 0 to `zpb`.
                    std::array::from_fn(|i| unsafe { base[i / 3].add((x0 + i % 3) * step[i / 3]) })
                } else {
                    std::array::from_fn(|i| match g.in_x(ox, i % 3) {
                        // SAFETY: as above, `ix` is inside the image.
                        Some(ix) => unsafe { base[i / 3].add(ix * step[i / 3]) },
                        None => zpb,
                    })
                };
                // SAFETY: every tap points at `cnt` readable channels of an input pixel or of
                // the zp row; the output pixel (b, oy, ox) has them writable.
                unsafe { k.pixel::<SIGNED, FP>(&taps, out_row.add(ox * c + off)) };
            }
        }
    }
}

/// The AVX-512 depthwise kernel (`fp32`: ONNX Runtime float requantization).
pub(crate) fn dwconv_kernel(signed: bool, fp32: bool) -> DwFn {
    match (signed, fp32) {
        (true, false) => dwconv3x3::<true, false>,
        (false, false) => dwconv3x3::<false, false>,
        (true, true) => dwconv3x3::<true, true>,
        (false, true) => dwconv3x3::<false, true>,
    }
}
