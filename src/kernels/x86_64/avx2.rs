//! AVX2 kernels: u8/i8 widened to i16 and multiplied with `vpmaddwd` (exact: pair sums of
//! |255 * 255| products fit i32). Also the 256-bit requantization, packing and row sums that
//! the AVX-VNNI tier reuses, and the depthwise kernel used by every x86 tier.

use std::arch::x86_64::*;

use crate::kernels::dwconv::{DwRows, PackedDw};
use crate::kernels::gemm::{GemmFn, GemmRows, PackFormat, PackedGemm};
use crate::kernels::requant::{FastRequant, Requant};

/// Sum of `len` bytes at `p` (u8), wrapping i32.
///
/// 32-byte blocks, then one 16-, 8- and 4-byte step as needed (GEMM rows are multiples of 4
/// bytes, often 16/24/28 long, so this keeps the row sums of small-K convs off a byte loop),
/// then single bytes.
///
/// # Safety
/// AVX2; `p` valid for `len` byte reads (no over-read).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn row_sum_u8(p: *const u8, len: usize) -> i32 {
    let zero = _mm256_setzero_si256();
    let mut acc = zero;
    let mut i = 0;
    while i + 32 <= len {
        // SAFETY: `i + 32 <= len`.
        let v = unsafe { _mm256_loadu_si256(p.add(i).cast()) };
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
        i += 32;
    }
    let mut acc = _mm_add_epi64(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256::<1>(acc),
    );
    if i + 16 <= len {
        // SAFETY: `i + 16 <= len`.
        let v = unsafe { _mm_loadu_si128(p.add(i).cast()) };
        acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
        i += 16;
    }
    if i + 8 <= len {
        // SAFETY: `i + 8 <= len` (8-byte load, upper half zero).
        let v = unsafe { _mm_loadl_epi64(p.add(i).cast()) };
        acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
        i += 8;
    }
    if i + 4 <= len {
        // SAFETY: `i + 4 <= len`.
        let v = _mm_cvtsi32_si128(unsafe { (p.add(i) as *const i32).read_unaligned() });
        acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
        i += 4;
    }
    // Each 64-bit lane holds an exact sum below 2^63; the wrapping i32 of their sum is the
    // wrapping i32 byte sum.
    let mut s = (_mm_cvtsi128_si64(acc) as i32)
        .wrapping_add(_mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) as i32);
    while i < len {
        // SAFETY: `i < len`.
        s = s.wrapping_add(i32::from(unsafe { *p.add(i) }));
        i += 1;
    }
    s
}

/// Requantize 8 accumulators; `col` indexes the `Requant` arrays (see `kernels::requant`).
///
/// # Safety
/// AVX2; the requant arrays hold at least `col + 8` entries.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn requant8(x: __m256i, rq: &Requant, col: usize) -> __m256i {
    // SAFETY: arrays hold `col + 8` entries (caller contract).
    let (mult, lsh, rsh, rmask, rthr) = unsafe {
        (
            _mm256_loadu_si256(rq.mult.as_ptr().add(col).cast()),
            _mm256_loadu_si256(rq.lshift.as_ptr().add(col).cast()),
            _mm256_loadu_si256(rq.rshift.as_ptr().add(col).cast()),
            _mm256_loadu_si256(rq.rmask.as_ptr().add(col).cast()),
            _mm256_loadu_si256(rq.rthresh.as_ptr().add(col).cast()),
        )
    };
    let r = scale8(_mm256_sllv_epi32(x, lsh), mult, rsh, rmask, rthr);
    let r = _mm256_add_epi32(r, _mm256_set1_epi32(rq.out_zp));
    _mm256_min_epi32(
        _mm256_max_epi32(r, _mm256_set1_epi32(rq.act_min)),
        _mm256_set1_epi32(rq.act_max),
    )
}

/// ONNX Runtime's float requantization of 8 accumulators (`kernels::requant`): `f32(x) *
/// scale`, clamp to the activation range minus the zero point, `cvtps2dq` (round half to
/// even under the default MXCSR, which Rust code never changes), plus the zero point.
///
/// # Safety
/// AVX2; `rq.scale` is `Some` with at least `col + 8` entries.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn requant8_fp(x: __m256i, rq: &Requant, col: usize) -> __m256i {
    debug_assert!(rq.scale.as_ref().is_some_and(|s| s.len() >= col + 8));
    let scale = rq.scale.as_deref().unwrap_or_default();
    // SAFETY: `col + 8` scales (caller contract).
    let s = unsafe { _mm256_loadu_ps(scale.as_ptr().add(col)) };
    let (lo, hi) = rq.float_bounds();
    let v = _mm256_mul_ps(_mm256_cvtepi32_ps(x), s);
    let v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
    _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(rq.out_zp))
}

/// [`requant8_fp`] (`FP`, ONNX Runtime numerics) or [`requant8`] (TFLite fixed point), chosen
/// at compile time so the fixed-point kernels are unchanged.
///
/// # Safety
/// As the chosen function.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn requant8_mode<const FP: bool>(
    x: __m256i,
    rq: &Requant,
    col: usize,
) -> __m256i {
    // SAFETY: caller contract.
    unsafe {
        if FP {
            requant8_fp(x, rq, col)
        } else {
            requant8(x, rq, col)
        }
    }
}

/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, mult), rsh)` on 8 lanes, with
/// `rmask = (1 << rsh) - 1` and `rthr = rmask >> 1` (see `kernels::requant`; `mult >= 0`).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn scale8(
    x: __m256i,
    mult: __m256i,
    rsh: __m256i,
    rmask: __m256i,
    rthr: __m256i,
) -> __m256i {
    let nudge = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_add_epi64(_mm256_mul_epi32(x, mult), nudge);
    let odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(mult)),
        nudge,
    );
    // Bits 31..62 of each 64-bit sum: low dword of even >> 31, high dword of odd << 1.
    let q = _mm256_blend_epi32::<0b1010_1010>(
        _mm256_srli_epi64::<31>(even),
        _mm256_slli_epi64::<1>(odd),
    );
    let rem = _mm256_and_si256(q, rmask);
    let thr = _mm256_sub_epi32(rthr, _mm256_srai_epi32::<31>(q));
    _mm256_sub_epi32(_mm256_srav_epi32(q, rsh), _mm256_cmpgt_epi32(rem, thr))
}

/// A [`FastRequant`] in registers, with its multiplier tables, the output zero point (i16
/// lanes) and activation bounds (bytes) of the narrowing that follows it.
#[derive(Clone, Copy)]
pub(crate) struct FastRq<'a> {
    add: __m256i,
    shift: __m128i,
    shift_odd: __m128i,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
    /// `FastRequant::mul` (whole blocks plus one entry).
    mul: &'a [u32],
    /// The float form's multipliers and rounding constant, if the layer has one.
    float: Option<(&'a [f32], __m256)>,
    /// [`fast_form`] of the `FastRequant`.
    form: u8,
}

/// The cheapest form `f` has: [`RQ_ONE_SIDED`], [`RQ_FLOAT`] or [`RQ_INT`].
fn fast_form(f: &FastRequant) -> u8 {
    match &f.float {
        Some(ff) if ff.one_sided => RQ_ONE_SIDED,
        Some(_) => RQ_FLOAT,
        None => RQ_INT,
    }
}

impl<'a> FastRq<'a> {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn new(f: &'a FastRequant, rq: &Requant) -> FastRq<'a> {
        FastRq {
            add: _mm256_set1_epi64x(f.add as i64),
            shift: _mm_cvtsi32_si128(f.shift as i32),
            shift_odd: _mm_cvtsi32_si128(f.shift as i32 - 32),
            zp: _mm256_set1_epi16(rq.out_zp as i16),
            lo: _mm256_set1_epi8(rq.act_min as i8),
            hi: _mm256_set1_epi8(rq.act_max as i8),
            mul: &f.mul,
            float: f
                .float
                .as_ref()
                .map(|ff| (ff.mul.as_slice(), _mm256_set1_ps(ff.add))),
            form: fast_form(f),
        }
    }

    /// The cheapest form this requantization has: [`RQ_ONE_SIDED`], [`RQ_FLOAT`] or
    /// [`RQ_INT`] (the `FORM` of [`Self::pack2x8`]).
    #[inline]
    pub(crate) fn form(&self) -> u8 {
        self.form
    }

    /// Entries `col..col + 16` requantized in form `FORM` ([`RQ_INT`]: [`Self::apply8`],
    /// [`RQ_FLOAT`] and [`RQ_ONE_SIDED`]: [`Self::apply8f`]) and packed
    /// ([`Self::pack16`]): `x0` holds columns `col..col + 8`, `x1` the next 8.
    ///
    /// # Safety
    /// AVX2 and FMA; `col + 17 <= mul.len()` (whole blocks plus one); the form is one this
    /// requantization has (`FORM <= self.form()`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn pack2x8<const FORM: u8>(
        &self,
        x0: __m256i,
        x1: __m256i,
        col: usize,
    ) -> __m256i {
        debug_assert!(col + 17 <= self.mul.len() && FORM <= self.form() && FORM >= RQ_INT);
        // SAFETY: caller contract; the float table is as long as `mul`.
        unsafe {
            if FORM >= RQ_FLOAT {
                let (fm, fadd) = self.float.unwrap_unchecked();
                let fm = fm.as_ptr().add(col);
                let one = FORM == RQ_ONE_SIDED;
                self.pack16(
                    self.apply8f(x0, fm, fadd, one),
                    self.apply8f(x1, fm.add(8), fadd, one),
                )
            } else {
                let m = self.mul.as_ptr().add(col);
                self.pack16(self.apply8(x0, m), self.apply8(x1, m.add(8)))
            }
        }
    }

    /// The sign-magnitude form of a GEMM's requantization for [`epilogue16`], built once per
    /// kernel call (not per tile), if it has one and `FP` (ONNX Runtime numerics) is off.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn for_epilogue<const FP: bool>(p: &'a PackedGemm) -> Option<FastRq<'a>> {
        match (FP, &p.requant.fast) {
            (false, Some(fq)) => Some(FastRq::new(fq, &p.requant)),
            _ => None,
        }
    }

    /// [`Self::apply8`] in f32 (`FastRequant::float`, equal after the clamp): 5 vector
    /// operations instead of 9, and no 64-bit lanes; with `one_sided` (a constant at every
    /// call site; `FloatForm::one_sided`: every result at or below the zero point clamps to
    /// `act_min`) without the sign, 3.
    ///
    /// # Safety
    /// AVX2 and FMA; `mul` is valid for reads of 8 `f32` (`FloatForm::mul` from the lanes'
    /// first entry); `fadd` is `FloatForm::add`; `one_sided` only if the form allows it.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply8f(
        &self,
        x: __m256i,
        mul: *const f32,
        fadd: __m256,
        one_sided: bool,
    ) -> __m256i {
        // SAFETY: 8 readable entries (caller contract).
        let m = unsafe { _mm256_loadu_ps(mul) };
        if one_sided {
            return _mm256_cvttps_epi32(_mm256_fmadd_ps(_mm256_cvtepi32_ps(x), m, fadd));
        }
        // |x| as f32, i32::MIN included (2^31): convert, then clear the sign bit.
        let a = _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_cvtepi32_ps(x));
        let mag = _mm256_cvttps_epi32(_mm256_fmadd_ps(a, m, fadd));
        _mm256_sign_epi32(mag, x)
    }

    /// The sign-magnitude requantization of 8 accumulators (`kernels::requant`): the
    /// unclamped result without zero point, exact wherever it matters (`FastRequant::new`).
    ///
    /// # Safety
    /// AVX2; `mul` is valid for reads of 9 `u32` (`FastRequant::mul` from the lanes' first
    /// entry: odd lanes read one entry ahead).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply8(&self, x: __m256i, mul: *const u32) -> __m256i {
        // SAFETY: 9 readable entries (caller contract).
        let (me, mo) = unsafe {
            (
                _mm256_loadu_si256(mul.cast()),
                _mm256_loadu_si256(mul.add(1).cast()),
            )
        };
        // |i32::MIN| = 2^31 as unsigned: `vpmuludq` reads it right.
        let mag = _mm256_abs_epi32(x);
        let even = _mm256_add_epi64(_mm256_mul_epu32(mag, me), self.add);
        let odd = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64::<32>(mag), mo), self.add);
        // Even lanes: the magnitude in the low dword (it is < 2^31, the high dword is 0).
        // Odd lanes: shifted 32 less, the magnitude lands in the high dword.
        let r = _mm256_blend_epi32::<0b1010_1010>(
            _mm256_srl_epi64(even, self.shift),
            _mm256_srl_epi64(odd, self.shift_odd),
        );
        _mm256_sign_epi32(r, x)
    }

    /// Two [`Self::apply8`] results to 16 saturated i16 plus the zero point, lanes
    /// `[a0..4, b0..4 | a4..8, b4..8]` (`vpackssdw` order).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn pack16(&self, a: __m256i, b: __m256i) -> __m256i {
        // Saturating steps are clamps, and clamps compose (module docs of `kernels::requant`).
        _mm256_adds_epi16(_mm256_packs_epi32(a, b), self.zp)
    }

    /// Bytes of two `pack16` vectors (`vpackuswb` / `vpacksswb`), clamped to the activation
    /// range, each in channel order: `a`'s 16 bytes in the low half, `b`'s in the high half.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn narrow<const SIGNED: bool>(&self, a: __m256i, b: __m256i) -> __m256i {
        narrow_clamped::<SIGNED>(a, b, self.lo, self.hi)
    }
}

/// Bytes of two vectors of i16 lanes packed in-lane from i32 (`vpackssdw` of columns
/// `0..8, 8..16` each), saturated (`vpackuswb` / `vpacksswb`) and clamped to the byte bounds
/// `lo`, `hi`, in order: `a`'s 16 bytes in the low half, `b`'s in the high half.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn narrow_clamped<const SIGNED: bool>(a: __m256i, b: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
    let v = if SIGNED {
        _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(a, b), lo), hi)
    } else {
        _mm256_min_epu8(_mm256_max_epu8(_mm256_packus_epi16(a, b), lo), hi)
    };
    // Dwords of `v`: a0..4 a8..12 b0..4 b8..12 | a4..8 a12..16 b4..8 b12..16.
    _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Narrow two vectors of clamped values (columns 0..8, 8..16) to 16 bytes in column order.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn narrow16<const SIGNED: bool>(v0: __m256i, v1: __m256i) -> __m128i {
    let w = _mm256_permute4x64_epi64::<0b1101_1000>(_mm256_packs_epi32(v0, v1));
    let b = if SIGNED {
        _mm256_packs_epi16(w, w)
    } else {
        _mm256_packus_epi16(w, w)
    };
    _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b0000_1000>(b))
}

/// Store the first `cnt` (<= 16) bytes of `v` at `dst`.
///
/// A partial store is up to four pieces (8, 4, 2, 1 bytes by the bits of `cnt`), never a
/// `memcpy` call: partial column blocks (N = 24, 12, 546, ...) store one per row.
///
/// # Safety
/// `dst` valid for `cnt` byte writes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn store_bytes(dst: *mut u8, v: __m128i, cnt: usize) {
    if cnt >= 16 {
        // SAFETY: 16 writable bytes.
        unsafe { _mm_storeu_si128(dst.cast(), v) };
        return;
    }
    let (mut v, mut o) = (v, 0);
    // SAFETY (each piece): bytes `o..o + piece <= cnt` of `dst`, since `o` is the sum of the
    // higher bits of `cnt` already stored.
    if cnt & 8 != 0 {
        unsafe { _mm_storel_epi64(dst.cast(), v) };
        (v, o) = (_mm_bsrli_si128::<8>(v), 8);
    }
    if cnt & 4 != 0 {
        unsafe { (dst.add(o) as *mut i32).write_unaligned(_mm_cvtsi128_si32(v)) };
        (v, o) = (_mm_bsrli_si128::<4>(v), o + 4);
    }
    let rest = _mm_cvtsi128_si32(v) as u32;
    if cnt & 2 != 0 {
        unsafe { (dst.add(o) as *mut u16).write_unaligned(rest as u16) };
        o += 2;
    }
    if cnt & 1 != 0 {
        let b = if cnt & 2 != 0 { rest >> 16 } else { rest };
        unsafe { *dst.add(o) = b as u8 };
    }
}

/// A pointers of the row tile starting at row `m` with `mr` (1..=MR) valid rows: rows past the
/// tile's end repeat its last row (read, computed, never stored).
#[inline]
fn tile_rows<const MR: usize>(t: &GemmRows, m: usize, mr: usize) -> [*const u8; MR] {
    debug_assert!(mr >= 1 && m + mr <= t.rows);
    // `wrapping_add`: plain address arithmetic; the kernels' own contract (`GemmRows`) makes
    // every row `< rows` valid to read.
    std::array::from_fn(|r| t.a.wrapping_add((m + r.min(mr - 1)) * t.a_stride))
}

/// `conv_gemm_q{u8,i8}_4x16[_fp32rq]__avx2`: 4 rows x 16 columns per tile, `Madd` packed
/// weights; `FP`: ONNX Runtime float requantization (`p.requant.scale` is `Some`).
///
/// Reads: A rows `kp` bytes in 4-byte groups (no over-read; tail tiles repeat the last row);
/// packed B `kp * 16` i16 per block. Writes `min(16, n - col)` bytes per row and block.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_madd<const MR: usize, const XOR: bool, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    // No one-sided epilogue instance (the packing rarely declines `Maddubs`); the float form
    // covers one-sided layers too.
    const ONE: bool = false;
    const NR: usize = 16;
    debug_assert_eq!(p.nr, NR);
    let kp4 = p.kp / 4;
    let flip = _mm256_set1_epi32(0x8080_8080u32 as i32);
    let fast = FastRq::for_epilogue::<FP>(p);
    // Zero-extend bytes (0, 1) resp. (2, 3) of each dword to an i16 pair.
    let sh0 = _mm256_set1_epi32(0x8001_8000u32 as i32);
    let sh1 = _mm256_set1_epi32(0x8003_8002u32 as i32);
    let mut m = 0;
    while m < t.rows {
        let mr = MR.min(t.rows - m);
        let arow = tile_rows::<MR>(t, m, mr);
        for nb in t.nb_begin..t.nb_end {
            // SAFETY: block `nb` spans `kp * 16` i16.
            let mut bp = unsafe { (p.data.as_slice().as_ptr() as *const i16).add(nb * p.kp * NR) };
            // SAFETY: block `nb` of `p`.
            let mut acc = unsafe { acc_init::<MR>(p, nb) };
            for k4 in 0..kp4 {
                for (pair, sh) in [(0usize, sh0), (1, sh1)] {
                    // SAFETY: inside block `nb`.
                    let (b0, b1) = unsafe {
                        (
                            _mm256_loadu_si256(bp.add(pair * 32).cast()),
                            _mm256_loadu_si256(bp.add(pair * 32 + 16).cast()),
                        )
                    };
                    for r in 0..MR {
                        // SAFETY: `k4 * 4 + 4 <= kp` bytes of the row are readable.
                        let a4 = unsafe { (arow[r].add(k4 * 4) as *const i32).read_unaligned() };
                        let mut av = _mm256_set1_epi32(a4);
                        if XOR {
                            av = _mm256_xor_si256(av, flip);
                        }
                        let ap = _mm256_shuffle_epi8(av, sh);
                        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(ap, b0));
                        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(ap, b1));
                    }
                }
                // SAFETY: stays within (or one past) block `nb`.
                bp = unsafe { bp.add(NR * 4) };
            }
            // SAFETY: epilogue contract as documented above.
            unsafe {
                epilogue16::<MR, SIGNED, FP, ONE>(p, t, &acc, &[0; MR], m, mr, nb, fast.as_ref())
            };
        }
        m += MR;
    }
}

/// Longest padded K the widened-A GEMM ([`gemm_madd_wide`]) holds on its stack (3x3 windows
/// over 512 channels); longer rows run [`gemm_madd`].
const WIDE_KMAX: usize = 4608;
/// Rows per tile of [`gemm_madd_wide`]: 12 accumulators + 2 weight vectors + 1 broadcast
/// fill the 16 ymm registers.
const WIDE_MR: usize = 6;

/// Zero-extend `kp` bytes at `src` (each xor 0x80 first if `XOR`) to i16 at `dst`.
///
/// # Safety
/// AVX2; `kp` is a multiple of 4; `src` valid for `kp` byte reads (no over-read), `dst` for
/// `kp` i16 writes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn widen_row<const XOR: bool>(src: *const u8, kp: usize, dst: *mut i16) {
    let flip = _mm_set1_epi8(0x80u8 as i8);
    let x = |v: __m128i| if XOR { _mm_xor_si128(v, flip) } else { v };
    let mut i = 0;
    while i + 16 <= kp {
        // SAFETY: `i + 16 <= kp` bytes read, i16 written.
        unsafe {
            let v = x(_mm_loadu_si128(src.add(i).cast()));
            _mm256_storeu_si256(dst.add(i).cast(), _mm256_cvtepu8_epi16(v));
        }
        i += 16;
    }
    if i + 8 <= kp {
        // SAFETY: `i + 8 <= kp`: 8-byte load, 8 i16 (16 bytes) stored.
        unsafe {
            let v = x(_mm_loadl_epi64(src.add(i).cast()));
            _mm_storeu_si128(dst.add(i).cast(), _mm_cvtepu8_epi16(v));
        }
        i += 8;
    }
    if i + 4 <= kp {
        // SAFETY: `i + 4 <= kp`: 4-byte load, 4 i16 (8 bytes) stored.
        unsafe {
            let v = x(_mm_cvtsi32_si128(
                (src.add(i) as *const i32).read_unaligned(),
            ));
            _mm_storel_epi64(dst.add(i).cast(), _mm_cvtepu8_epi16(v));
        }
    }
}

/// `conv_gemm_q{u8,i8}_6x16[_fp32rq]__avx2`: 6 rows x 16 columns per tile, `Madd` packed
/// weights; `FP`: ONNX Runtime float requantization (`p.requant.scale` is `Some`).
///
/// Each tile's A rows are widened to i16 once into a stack buffer (row `min(r, mr - 1)` in
/// slot `r`, so tail tiles compute on copies of their last row and store only `mr` rows) and
/// reused for every column block: the inner loop is one `vpbroadcastd` load per row and k
/// pair, two weight loads and 12 `vpmaddwd` + `vpaddd`, with no byte shuffles. Rows longer
/// than `WIDE_KMAX` run [`gemm_madd`].
///
/// Reads: A rows `kp` bytes (no over-read); packed B `kp * 16` i16 per block. Writes
/// `min(16, n - col)` bytes per row and block.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_madd_wide<const XOR: bool, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    // No one-sided epilogue instance (the packing rarely declines `Maddubs`); the float form
    // covers one-sided layers too.
    const ONE: bool = false;
    const NR: usize = 16;
    const MR: usize = WIDE_MR;
    debug_assert_eq!(p.nr, NR);
    let kp = p.kp;
    let fast = FastRq::for_epilogue::<FP>(p);
    if kp > WIDE_KMAX {
        // SAFETY: same contract.
        return unsafe { gemm_madd::<4, XOR, SIGNED, FP>(p, t) };
    }
    let mut wa = std::mem::MaybeUninit::<[[i16; WIDE_KMAX]; MR]>::uninit();
    let wa = wa.as_mut_ptr() as *mut i16;
    let mut m = 0;
    while m < t.rows {
        let mr = MR.min(t.rows - m);
        for (r, ap) in tile_rows::<MR>(t, m, mr).into_iter().enumerate() {
            // SAFETY: every tile row holds `kp` bytes; slot `r` holds `WIDE_KMAX >= kp` i16.
            unsafe { widen_row::<XOR>(ap, kp, wa.add(r * WIDE_KMAX)) };
        }
        let wa = wa as *const i16;
        for nb in t.nb_begin..t.nb_end {
            // SAFETY: block `nb` spans `kp * 16` i16.
            let mut bp = unsafe { (p.data.as_slice().as_ptr() as *const i16).add(nb * kp * NR) };
            // SAFETY: block `nb` of `p`.
            let mut acc = unsafe { acc_init::<MR>(p, nb) };
            for k2 in 0..kp / 2 {
                // SAFETY: inside block `nb`.
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_si256(bp.cast()),
                        _mm256_loadu_si256(bp.add(16).cast()),
                    )
                };
                for (r, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: slot `r` holds `kp` widened values, `2 * k2 + 2 <= kp`.
                    let a2 = unsafe { (wa.add(r * WIDE_KMAX + 2 * k2) as *const i32).read() };
                    let av = _mm256_set1_epi32(a2);
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(av, b0));
                    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(av, b1));
                }
                // SAFETY: stays within (or one past) block `nb`.
                bp = unsafe { bp.add(NR * 2) };
            }
            // SAFETY: epilogue contract as documented above.
            unsafe {
                epilogue16::<MR, SIGNED, FP, ONE>(p, t, &acc, &[0; MR], m, mr, nb, fast.as_ref())
            };
        }
        m += MR;
    }
}

/// `conv_gemm_q{u8,i8}_{3x16,4x16}_maddubs_g{4,2,1}[_fp32rq]__avx2` ([`maddubs_tile`]): 3 rows
/// (4 with groups of one quad, which hold no i16 sums) x 16 columns per tile, `Maddubs`
/// packed weights (`FP`: ONNX Runtime float requantization, `p.requant.scale` is `Some`).
///
/// Per quad of K a row's 4 activation bytes are broadcast and multiplied with the s8 weights
/// by `vpmaddubsw` into i16 lanes, which sum a group of quads (`GemmResidual::group`, up to
/// `MADDUBS_GROUP`) before one `vpmaddwd` by 1 widens them into the i32 accumulators: 2.5
/// multiplies per 64 products with groups of 4 (3 with 2) instead of the `Madd` kernel's 4. The packing bounds every lane so nothing saturates (see
/// `kernels::gemm::pack_maddubs`); the sparse residual then adds `a[k] * r[k][j]` per entry
/// with `vpmaddwd` on `(a, 0)` pairs, exactly. 6 i16 + 6 i32 accumulators, 2 weight vectors,
/// the broadcast and the ones fill the 16 ymm registers.
///
/// Reads: A rows `kp` bytes in 4-byte groups (no over-read; tail tiles repeat the last row);
/// packed B `kp * 16` bytes per block. Writes `min(16, n - col)` bytes per row and block.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_maddubs<const XOR: bool, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
) {
    // SAFETY: same contract; the group and the epilogue's form are compile-time constants.
    unsafe {
        match (p.residual.group, one_sided::<FP>(p)) {
            (4, false) => gemm_maddubs_g::<4, 3, XOR, SIGNED, FP, false>(p, t),
            (4, true) => gemm_maddubs_g::<4, 3, XOR, SIGNED, FP, true>(p, t),
            (2, false) => gemm_maddubs_g::<2, 3, XOR, SIGNED, FP, false>(p, t),
            (2, true) => gemm_maddubs_g::<2, 3, XOR, SIGNED, FP, true>(p, t),
            // No i16 group sums to hold: room for a fourth row.
            (_, false) => gemm_maddubs_g::<1, 4, XOR, SIGNED, FP, false>(p, t),
            (_, true) => gemm_maddubs_g::<1, 4, XOR, SIGNED, FP, true>(p, t),
        }
    }
}

/// [`gemm_maddubs`] with `GROUP` quads per i16 group (`p.residual.group == GROUP`) and
/// `ONE == one_sided::<FP>(p)`.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_maddubs_g<
    const GROUP: usize,
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
    debug_assert_eq!(p.format, PackFormat::Maddubs);
    debug_assert_eq!(p.residual.group, GROUP);
    let flip = _mm256_set1_epi32(0x8080_8080u32 as i32);
    let fast = FastRq::for_epilogue::<FP>(p);
    let ones = _mm256_set1_epi16(1);
    /// One group of `len` quads from quad `q`: i16 sums, widened into `acc` (the first `W`
    /// vectors of each row: `W = 1` computes only the block's first 8 columns).
    ///
    /// # Safety
    /// AVX2; quads `q..q + len` are inside the block at `bp` and the rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn group<const MR: usize, const XOR: bool, const W: usize>(
        acc: &mut [[__m256i; 2]; MR],
        arow: &[*const u8; MR],
        bp: *const u8,
        q: usize,
        len: usize,
        flip: __m256i,
        ones: __m256i,
    ) {
        /// Quad `qq`'s 64 bytes of weights (two vectors of 8 columns; with `W = 1` only the
        /// first, the second is zero).
        ///
        /// # Safety
        /// AVX2; quad `qq` is inside the block at `bp`.
        #[inline(always)]
        unsafe fn weights<const W: usize>(bp: *const u8, qq: usize) -> (__m256i, __m256i) {
            // SAFETY: caller contract.
            unsafe {
                let b0 = _mm256_loadu_si256(bp.add(qq * 64).cast());
                if W == 1 {
                    return (b0, _mm256_setzero_si256());
                }
                (b0, _mm256_loadu_si256(bp.add(qq * 64 + 32).cast()))
            }
        }
        /// Quad `qq` of row `ap` broadcast (bytes xor 0x80 if `XOR`).
        ///
        /// # Safety
        /// AVX2; `qq * 4 + 4 <= kp` bytes of the row are readable.
        #[inline(always)]
        unsafe fn broadcast<const XOR: bool>(ap: *const u8, qq: usize, flip: __m256i) -> __m256i {
            // SAFETY: caller contract.
            let av = _mm256_set1_epi32(unsafe { (ap.add(qq * 4) as *const i32).read_unaligned() });
            if XOR {
                _mm256_xor_si256(av, flip)
            } else {
                av
            }
        }
        if len == 1 {
            // One quad: widen each row's pair sums right away, so only one row's products
            // are live at a time (all rows' products first spill with 4-row tiles).
            // SAFETY: quad `q < kp4` of the block (callers).
            let (b0, b1) = unsafe { weights::<W>(bp, q) };
            for (a, &ap) in acc.iter_mut().zip(arow) {
                // SAFETY: the rows hold all `kp4` quads.
                let av = unsafe { broadcast::<XOR>(ap, q, flip) };
                let mut p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones);
                if W == 1 {
                    a[0] = _mm256_add_epi32(a[0], p0);
                    continue;
                }
                let mut p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones);
                // Keep this row's products ahead of the next row's (see below).
                // SAFETY: an empty template; the operands stay in their registers.
                unsafe {
                    std::arch::asm!("/* {0} {1} */", inout(ymm_reg) p0, inout(ymm_reg) p1,
                        options(pure, nomem, nostack, preserves_flags));
                }
                a[0] = _mm256_add_epi32(a[0], p0);
                a[1] = _mm256_add_epi32(a[1], p1);
            }
            return;
        }
        let mut acc16 = [[_mm256_setzero_si256(); 2]; MR];
        for qq in q..q + len {
            // SAFETY: quad `qq < kp4` of the block (callers).
            let (b0, b1) = unsafe { weights::<W>(bp, qq) };
            for (a16, &ap) in acc16.iter_mut().zip(arow) {
                // SAFETY: the rows hold all `kp4` quads.
                let av = unsafe { broadcast::<XOR>(ap, qq, flip) };
                a16[0] = _mm256_add_epi16(a16[0], _mm256_maddubs_epi16(av, b0));
                if W == 2 {
                    a16[1] = _mm256_add_epi16(a16[1], _mm256_maddubs_epi16(av, b1));
                }
                // Keep each i16 sum a serial chain: left alone, LLVM rebalances the unrolled
                // group's adds into trees, which need more live registers than the 16 ymm
                // and spill (about one extra instruction per `vpmaddubsw`). The empty asm
                // emits nothing.
                // SAFETY: an empty template; the operands stay in their registers.
                unsafe {
                    std::arch::asm!("/* {0} {1} */", inout(ymm_reg) a16[0], inout(ymm_reg) a16[1],
                        options(pure, nomem, nostack, preserves_flags));
                }
            }
        }
        for (a, a16) in acc.iter_mut().zip(&acc16) {
            a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(a16[0], ones));
            if W == 2 {
                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(a16[1], ones));
            }
        }
    }
    /// Block `nb` of the row tile `arow` (`W` vectors of 8 columns, see [`group`]):
    /// accumulate, residual, epilogue.
    ///
    /// # Safety
    /// As [`gemm_maddubs_g`]; `nb` is a block of `p` in `t`'s range; with `W = 1` the block
    /// holds at most 8 columns (`p.n - nb * 16 <= 8`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<
        const GROUP: usize,
        const MR: usize,
        const XOR: bool,
        const SIGNED: bool,
        const FP: bool,
        const ONE: bool,
        const W: usize,
    >(
        p: &PackedGemm,
        t: &GemmRows,
        arow: &[*const u8; MR],
        m: usize,
        mr: usize,
        nb: usize,
        fast: Option<&FastRq<'_>>,
        flip: __m256i,
        ones: __m256i,
    ) {
        const NR: usize = 16;
        debug_assert!(W == 2 || p.n - nb * NR <= 8);
        let kp4 = p.kp / 4;
        let full = kp4 / GROUP * GROUP;
        let res = &p.residual;
        // SAFETY: block `nb` spans `kp * 16` bytes.
        let bp = unsafe { p.data.as_slice().as_ptr().add(nb * p.kp * NR) };
        // SAFETY: block `nb` of `p`.
        let mut acc = unsafe { acc_init::<MR>(p, nb) };
        let mut q = 0;
        while q < full {
            // `GROUP` is a constant here: the group body unrolls.
            // SAFETY: quads `q..q + GROUP <= kp4`.
            unsafe { group::<MR, XOR, W>(&mut acc, arow, bp, q, GROUP, flip, ones) };
            q += GROUP;
        }
        if full < kp4 {
            // SAFETY: quads `full..kp4`.
            unsafe { group::<MR, XOR, W>(&mut acc, arow, bp, full, kp4 - full, flip, ones) };
        }
        let (e0, e1) = (res.start[nb] as usize, res.start[nb + 1] as usize);
        debug_assert!((e1 - e0) % 2 == 0);
        for e in (e0..e1).step_by(2) {
            let (ka, kb) = (res.k[e] as usize, res.k[e + 1] as usize);
            // SAFETY: entry pair `e / 2` holds `2 * NR` i16.
            let (r0, r1) = unsafe {
                let w = res.w.as_ptr().add(e / 2 * 2 * NR);
                (
                    _mm256_loadu_si256(w.cast()),
                    _mm256_loadu_si256(w.add(NR).cast()),
                )
            };
            let flip = if XOR { 0x80 } else { 0 };
            for (a, ap) in acc.iter_mut().zip(arow) {
                // SAFETY: `ka, kb < k <= kp`.
                let (xa, xb) = unsafe { (*ap.add(ka) ^ flip, *ap.add(kb) ^ flip) };
                // The pair `(xa, xb)`: `vpmaddwd` gives `xa * ra + xb * rb` per column.
                let av = _mm256_set1_epi32(i32::from(xa) | i32::from(xb) << 16);
                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(av, r0));
                if W == 2 {
                    a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(av, r1));
                }
            }
        }
        // SAFETY: epilogue contract as documented above (with `W = 1` the second vector of
        // each row is `col_bias`: harmless numbers, never stored).
        unsafe { epilogue16::<MR, SIGNED, FP, ONE>(p, t, &acc, &[0; MR], m, mr, nb, fast) };
    }
    let half = p.half_block(t);
    let mut m = 0;
    while m < t.rows {
        let mr = MR.min(t.rows - m);
        let arow = tile_rows::<MR>(t, m, mr);
        for nb in t.nb_begin..t.nb_end {
            // The block at width `W` (a constant per call).
            macro_rules! block_w {
                ($w:literal) => {
                    block::<GROUP, MR, XOR, SIGNED, FP, ONE, $w>(
                        p,
                        t,
                        &arow,
                        m,
                        mr,
                        nb,
                        fast.as_ref(),
                        flip,
                        ones,
                    )
                };
            }
            // SAFETY: `nb` is a block of `t`'s range; the half-width one has <= 8 columns.
            unsafe {
                if Some(nb) == half {
                    block_w!(1)
                } else {
                    block_w!(2)
                }
            }
        }
        m += MR;
    }
}

/// Accumulators of an `MR x 16` tile starting at block `nb`'s `col_bias` (so epilogues add
/// only the row term: one `vpaddd` per 8 outputs saved).
///
/// # Safety
/// AVX2; `nb` is a block of `p` (`col_bias` is padded to whole blocks).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn acc_init<const MR: usize>(p: &PackedGemm, nb: usize) -> [[__m256i; 2]; MR] {
    // SAFETY: 16 entries from `nb * 16` (caller contract).
    let (cb0, cb1) = unsafe {
        let cb = p.col_bias.as_ptr().add(nb * 16);
        (
            _mm256_loadu_si256(cb.cast()),
            _mm256_loadu_si256(cb.add(8).cast()),
        )
    };
    [[cb0, cb1]; MR]
}

/// Whether `p`'s requantization has the one-sided float form (and `FP`, ONNX Runtime's
/// numerics, is off): kernels take it as a constant for [`epilogue16`].
pub(crate) fn one_sided<const FP: bool>(p: &PackedGemm) -> bool {
    !FP && p.requant.fast.as_ref().map(fast_form) == Some(RQ_ONE_SIDED)
}

/// Row term, requantization (`FP`: ONNX Runtime's float form) and store of an `MR x 16` tile
/// of ymm accumulators that started at the block's `col_bias` ([`acc_init`]). `ONE_SIDED`:
/// the requantization has the one-sided float form ([`one_sided`]).
///
/// # Safety
/// AVX2; rows `m..m + mr` of C exist; block `nb` is a block of `p`; `p.requant.scale` is
/// `Some` if `FP`; `fast` is [`FastRq::for_epilogue`] of `p` (or `None`).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn epilogue16<
    const MR: usize,
    const SIGNED: bool,
    const FP: bool,
    const ONE_SIDED: bool,
>(
    p: &PackedGemm,
    t: &GemmRows,
    acc: &[[__m256i; 2]; MR],
    rowterm: &[i32; MR],
    m: usize,
    mr: usize,
    nb: usize,
    fast: Option<&FastRq<'_>>,
) {
    let col = nb * 16;
    // The common case inline (a call would spill the accumulators to pass them): the float
    // form of the fast requantization on a whole column block.
    if let (false, Some(f), true) = (FP, fast, p.n - col >= 16) {
        /// Requantize (form `FORM`) and store the whole block.
        ///
        /// # Safety
        /// As [`epilogue16`]; `f` has form `FORM`; the block is whole.
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn whole<const MR: usize, const SIGNED: bool, const FORM: u8>(
            f: &FastRq<'_>,
            t: &GemmRows,
            acc: &[[__m256i; 2]; MR],
            rowterm: &[i32; MR],
            m: usize,
            mr: usize,
            col: usize,
        ) {
            let row = |r: usize| -> __m256i {
                let rt = _mm256_set1_epi32(rowterm[r]);
                let (x0, x1) = (
                    _mm256_add_epi32(acc[r][0], rt),
                    _mm256_add_epi32(acc[r][1], rt),
                );
                // SAFETY: the tables cover whole blocks plus one entry; the form exists.
                unsafe { f.pack2x8::<FORM>(x0, x1, col) }
            };
            // SAFETY: rows `m..m + mr` of C hold a whole block from `col`.
            unsafe { store_row_pairs::<SIGNED>(f, t, m, mr, col, 16, row) };
        }
        // One inlined form per kernel instance (`ONE_SIDED` is the kernel's, see
        // [`one_sided`]): two would grow every tile loop.
        if ONE_SIDED {
            debug_assert_eq!(f.form(), RQ_ONE_SIDED);
            // SAFETY: the form matches; the block is whole (checked above).
            unsafe { whole::<MR, SIGNED, RQ_ONE_SIDED>(f, t, acc, rowterm, m, mr, col) };
            return;
        }
        if f.form() >= RQ_FLOAT {
            // SAFETY: as above.
            unsafe { whole::<MR, SIGNED, RQ_FLOAT>(f, t, acc, rowterm, m, mr, col) };
            return;
        }
    }
    // SAFETY: same contract.
    unsafe { epilogue16_general::<MR, SIGNED, FP>(p, t, acc, rowterm, m, mr, nb, fast) }
}

/// Narrow the `pack16` rows `row(0..mr)` of a tile two at a time and store `cnt` bytes of
/// each from column `col` (an odd last row pairs with itself).
///
/// # Safety
/// AVX2; rows `m..m + mr` of C have `cnt` (<= 16) writable bytes from `col`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_row_pairs<const SIGNED: bool>(
    f: &FastRq<'_>,
    t: &GemmRows,
    m: usize,
    mr: usize,
    col: usize,
    cnt: usize,
    row: impl Fn(usize) -> __m256i,
) {
    let mut r = 0;
    while r < mr {
        let a = row(r);
        let b = if r + 1 < mr { row(r + 1) } else { a };
        let v = f.narrow::<SIGNED>(a, b);
        // SAFETY: `cnt` bytes of rows `m + r` (and `m + r + 1` if `< mr`) from `col`.
        unsafe {
            let c = t.c.add((m + r) * t.c_stride + col);
            store_bytes(c, _mm256_castsi256_si128(v), cnt);
            if r + 1 < mr {
                store_bytes(c.add(t.c_stride), _mm256_extracti128_si256::<1>(v), cnt);
            }
        }
        r += 2;
    }
}

/// [`epilogue16`] for every requantization form and partial column blocks.
///
/// # Safety
/// As [`epilogue16`].
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn epilogue16_general<const MR: usize, const SIGNED: bool, const FP: bool>(
    p: &PackedGemm,
    t: &GemmRows,
    acc: &[[__m256i; 2]; MR],
    rowterm: &[i32; MR],
    m: usize,
    mr: usize,
    nb: usize,
    fast: Option<&FastRq<'_>>,
) {
    let col = nb * 16;
    let cnt = 16.min(p.n - col);
    if let (false, Some(f)) = (FP, fast) {
        let row = |r: usize| -> __m256i {
            let rt = _mm256_set1_epi32(rowterm[r]);
            let (x0, x1) = (
                _mm256_add_epi32(acc[r][0], rt),
                _mm256_add_epi32(acc[r][1], rt),
            );
            // SAFETY: the tables cover whole blocks plus one entry (padding); each form is
            // used only when it exists.
            unsafe {
                match f.form() {
                    RQ_ONE_SIDED => f.pack2x8::<RQ_ONE_SIDED>(x0, x1, col),
                    RQ_FLOAT => f.pack2x8::<RQ_FLOAT>(x0, x1, col),
                    _ => f.pack2x8::<RQ_INT>(x0, x1, col),
                }
            }
        };
        // SAFETY: rows `m..m + mr` of C hold `cnt` bytes from `col`.
        unsafe { store_row_pairs::<SIGNED>(f, t, m, mr, col, cnt, row) };
        return;
    }
    for r in 0..MR {
        if r >= mr {
            break;
        }
        let rt = _mm256_set1_epi32(rowterm[r]);
        let x0 = _mm256_add_epi32(acc[r][0], rt);
        let x1 = _mm256_add_epi32(acc[r][1], rt);
        // SAFETY: requant arrays are padded to `n_blocks * 16`.
        let (y0, y1) = unsafe {
            (
                requant8_mode::<FP>(x0, &p.requant, col),
                requant8_mode::<FP>(x1, &p.requant, col + 8),
            )
        };
        // SAFETY: `cnt` bytes of row `m + r` from column `col` are inside C.
        unsafe {
            store_bytes(
                t.c.add((m + r) * t.c_stride + col),
                narrow16::<SIGNED>(y0, y1),
                cnt,
            )
        };
    }
}

/// The AVX2 `Maddubs` GEMM micro-kernel (`nr = 16`) and its tile name (`fp32`: ONNX Runtime
/// float requantization).
pub(crate) fn gemm_kernel(signed: bool, fp32: bool) -> (GemmFn, &'static str) {
    match (signed, fp32) {
        (true, false) => (gemm_maddubs::<true, true, false>, "3x16_maddubs"),
        (false, false) => (gemm_maddubs::<false, false, false>, "3x16_maddubs"),
        (true, true) => (gemm_maddubs::<true, true, true>, "3x16_maddubs"),
        (false, true) => (gemm_maddubs::<false, false, true>, "3x16_maddubs"),
    }
}

/// The tile name of [`gemm_maddubs`] for weights packed with `group` quads per i16 group.
pub(crate) fn maddubs_tile(group: usize) -> &'static str {
    match group {
        4 => "3x16_maddubs_g4",
        2 => "3x16_maddubs_g2",
        _ => "4x16_maddubs_g1",
    }
}

/// The AVX2 `Madd` GEMM micro-kernel (`nr = 16`), for weights the `Maddubs` packing declines.
pub(crate) fn gemm_kernel_madd(signed: bool, fp32: bool) -> (GemmFn, &'static str) {
    match (signed, fp32) {
        (true, false) => (gemm_madd_wide::<true, true, false>, "6x16"),
        (false, false) => (gemm_madd_wide::<false, false, false>, "6x16"),
        (true, true) => (gemm_madd_wide::<true, true, true>, "6x16"),
        (false, true) => (gemm_madd_wide::<false, false, true>, "6x16"),
    }
}

/// The four `DwLayout::Cols` vectors of one input column of a 16-channel block: `(r0, r1)`
/// i16 pairs for channels 0..8 and 8..16, then `(r2, 0)` for the same halves.
type DwCol = [__m256i; 4];

/// Build the [`DwCol`] of the filter-row taps at `r0`, `r1`, `r2`: two 16-byte loads, their
/// byte interleave widened, and two widening loads of `r2`'s halves (6 shuffles).
///
/// # Safety
/// AVX2; each pointer has 16 readable bytes.
#[inline(always)]
unsafe fn dw_col<const SIGNED: bool>(r0: *const u8, r1: *const u8, r2: *const u8) -> DwCol {
    // SAFETY: 16 readable bytes per pointer (caller contract).
    let (a, b, c0, c1) = unsafe {
        (
            _mm_loadu_si128(r0.cast()),
            _mm_loadu_si128(r1.cast()),
            _mm_loadl_epi64(r2.cast()),
            _mm_loadl_epi64(r2.add(8).cast()),
        )
    };
    let (lo, hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
    if SIGNED {
        // Sign-extended to i32, `r2` is the pair `(r2, -1 or 0)`: its weight pair is
        // `(w, 0)`, so the high half contributes nothing.
        [
            _mm256_cvtepi8_epi16(lo),
            _mm256_cvtepi8_epi16(hi),
            _mm256_cvtepi8_epi32(c0),
            _mm256_cvtepi8_epi32(c1),
        ]
    } else {
        [
            _mm256_cvtepu8_epi16(lo),
            _mm256_cvtepu8_epi16(hi),
            _mm256_cvtepu8_epi32(c0),
            _mm256_cvtepu8_epi32(c1),
        ]
    }
}

/// One 16-channel block of the AVX2 depthwise kernel (weights stay in `PackedDw`: with 16
/// ymm registers they are cheaper as memory operands than as spilled locals).
struct DwBlock16<'a> {
    p: &'a PackedDw,
    /// The block's 12 `DwLayout::Cols` weight vectors (`[fx][part]`).
    w: *const __m256i,
    bias: *const __m256i,
    off: usize,
    /// Valid channels of the block (16 for a full one).
    cnt: usize,
    /// The sign-magnitude requantization (not with `FP`); the block's entries start at `off`.
    fast: Option<FastRq<'a>>,
}

impl DwBlock16<'_> {
    /// One output pixel from its three columns (filter columns 0, 1, 2); writes `cnt` bytes.
    ///
    /// # Safety
    /// AVX2; `out` has `cnt` writable bytes.
    #[inline(always)]
    unsafe fn pixel<const SIGNED: bool, const FP: bool, const RQ: u8>(
        &self,
        cols: [&DwCol; 3],
        out: *mut u8,
    ) {
        // SAFETY: the block's 12 weight vectors and 2 bias vectors.
        let (mut lo, mut hi) = unsafe {
            (
                _mm256_loadu_si256(self.bias),
                _mm256_loadu_si256(self.bias.add(1)),
            )
        };
        for (fx, col) in cols.into_iter().enumerate() {
            // SAFETY: as above.
            unsafe {
                let w = self.w.add(4 * fx);
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(col[0], _mm256_load_si256(w)));
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(col[1], _mm256_load_si256(w.add(1))));
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(col[2], _mm256_load_si256(w.add(2))));
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(col[3], _mm256_load_si256(w.add(3))));
            }
        }
        if let (RQ_INT..=RQ_ONE_SIDED, Some(f)) = (RQ, &self.fast) {
            // SAFETY: the tables cover whole blocks plus one entry; `RQ` is a form `f` has
            // (`dwconv3x3`); `out` has `cnt` writable bytes.
            unsafe {
                let w = f.pack2x8::<RQ>(lo, hi, self.off);
                let v = f.narrow::<SIGNED>(w, w);
                store_bytes(out, _mm256_castsi256_si128(v), self.cnt);
            }
            return;
        }
        // SAFETY: the requant arrays cover whole blocks; `out` has `cnt` writable bytes.
        unsafe {
            let ylo = requant8_mode::<FP>(lo, &self.p.requant, self.off);
            let yhi = requant8_mode::<FP>(hi, &self.p.requant, self.off + 8);
            store_bytes(out, narrow16::<SIGNED>(ylo, yhi), self.cnt);
        }
    }
}

/// `dwconv3x3_q{u8,i8}_16c[_fp32rq]__avx2` (`FP`: ONNX Runtime float requantization,
/// `p.requant.scale` is `Some`): depthwise 3x3 (any stride / padding, multiplier 1) over
/// output rows `rows.row_begin..row_end` and channel blocks `rows.blocks(..)`, 16 channels
/// per block, `DwLayout::Cols` weights (`kernels::dwconv`).
///
/// Per output row and channel block the kernel walks the row. Interior columns
/// (`interior_cols`) of whole blocks slide a window of three [`DwCol`]s: stride 1 builds one
/// new column per pixel, stride 2 two (the register roles rotate every three pixels, so no
/// vectors move); rows above or below the image read `PackedDw::zp_row`, which spans a whole
/// input row. Border columns and the channel tail block build all three columns per pixel,
/// taps outside the image reading the zero-point row.
///
/// Reads: 16 bytes per tap and block, only inside the input (or the zero-point row); on the
/// channel tail block each tap's valid bytes are copied to a local buffer first (no
/// over-read). Writes exactly `channels` bytes per pixel.
#[target_feature(enable = "avx2,fma")]
unsafe fn dwconv3x3<const SIGNED: bool, const FP: bool>(p: &PackedDw, t: &DwRows) {
    // SAFETY: same contract; the requantization form is a compile-time constant of the loops.
    unsafe {
        match (FP, p.requant.fast.as_ref().map(fast_form)) {
            (false, Some(RQ_ONE_SIDED)) => dw_rows::<SIGNED, false, RQ_ONE_SIDED>(p, t),
            (false, Some(RQ_FLOAT)) => dw_rows::<SIGNED, false, RQ_FLOAT>(p, t),
            (false, Some(_)) => dw_rows::<SIGNED, false, RQ_INT>(p, t),
            _ => dw_rows::<SIGNED, FP, RQ_GENERAL>(p, t),
        }
    }
}

/// Requantization forms (the depthwise loops' `RQ`, [`FastRq::pack2x8`]'s `FORM`):
/// `Requant`'s general arrays (or ONNX Runtime's float form with `FP`), the sign-magnitude
/// form (`Requant::fast`), its float form (`FastRequant::float`), or the float form's
/// one-sided variant (`FloatForm::one_sided`). Each form implies the ones before it, except
/// the general one.
const RQ_GENERAL: u8 = 0;
const RQ_INT: u8 = 1;
const RQ_FLOAT: u8 = 2;
const RQ_ONE_SIDED: u8 = 3;

/// [`dwconv3x3`] with the requantization form fixed (`RQ`, which `p.requant` has).
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_rows<const SIGNED: bool, const FP: bool, const RQ: u8>(p: &PackedDw, t: &DwRows) {
    let g = &p.geom;
    let c = g.in_c;
    debug_assert_eq!(p.bw, 16);
    debug_assert!(p.zp_row.len() >= g.in_w * c);
    let cblocks = c.div_ceil(16);
    let (lo, hi) = crate::kernels::dwconv::interior_cols(g);
    let wbase = p.weights.as_slice().as_ptr() as *const __m256i;
    // Built once per call; blocks index its tables from their offset.
    let fast = p
        .requant
        .fast
        .as_ref()
        .filter(|_| !FP && RQ != RQ_GENERAL)
        .map(|fq| FastRq::new(fq, &p.requant));
    for row in t.row_begin..t.row_end {
        let oy = row % g.out_h;
        let b = row / g.out_h;
        let rows = crate::kernels::dwconv::row_offsets(g, b, oy);
        // SAFETY: pixel (b, oy, 0) is inside the output.
        let out_row = unsafe { t.output.add(g.output_offset(b, oy, 0)) };
        for cb in t.blocks(cblocks) {
            let off = cb * 16;
            // SAFETY: weights and bias cover `cblocks` blocks of 16 channels.
            let k = unsafe {
                DwBlock16 {
                    p,
                    w: wbase.add(cb * 12),
                    bias: p.bias.as_ptr().add(off).cast(),
                    off,
                    cnt: 16.min(c - off),
                    fast,
                }
            };
            // SAFETY: the zp row spans `max(cblocks * 16, in_w * c)` bytes.
            let zpb = unsafe { p.zp_row.as_ptr().add(off) };
            // Filter row `fy` at input column `ix` is `base[fy] + ix * c`: the input row, or
            // the zero-point row (as wide as an input row) for rows outside the image.
            // SAFETY: offset of pixel (b, iy, 0) plus a channel block offset < c.
            let base: [*const u8; 3] =
                rows.map(|r| r.map_or(zpb, |r| unsafe { t.input.add(r + off) }));
            let interior = if k.cnt == 16 { lo..hi } else { 0..0 };
            if !interior.is_empty() {
                // SAFETY: interior pixels of a whole block: every column `x0 ..= x0 + 2` of
                // their windows is inside the image, 16 readable bytes per tap (input or zp
                // row, which is an input row wide).
                unsafe { dw_interior::<SIGNED, FP, RQ>(&k, g, base, lo, hi, out_row.add(off)) };
            }
            // Tail-block taps, copied per pixel (bytes past `cnt` are stale but meet zero
            // weights and are never stored).
            let mut tail = [[[0u8; 16]; 3]; 3];
            for ox in (0..g.out_w).filter(|ox| !interior.contains(ox)) {
                let cols: [DwCol; 3] = std::array::from_fn(|fx| {
                    let taps: [*const u8; 3] = std::array::from_fn(|fy| match g.in_x(ox, fx) {
                        // SAFETY: `ix` is inside the image; the zp row is an input row wide.
                        Some(ix) => unsafe { base[fy].add(ix * c) },
                        None => zpb,
                    });
                    if k.cnt == 16 {
                        // SAFETY: whole blocks: 16 readable bytes per tap.
                        return unsafe { dw_col::<SIGNED>(taps[0], taps[1], taps[2]) };
                    }
                    // The tail block: copy each tap's `cnt` bytes so the 16-byte loads stay
                    // inside `tail`.
                    for (tb, &tp) in tail[fx].iter_mut().zip(&taps) {
                        // SAFETY: the tap has `cnt` readable bytes; `tb` holds 16.
                        unsafe { std::ptr::copy_nonoverlapping(tp, tb.as_mut_ptr(), k.cnt) };
                    }
                    let tb = &tail[fx];
                    // SAFETY: 16 bytes each.
                    unsafe { dw_col::<SIGNED>(tb[0].as_ptr(), tb[1].as_ptr(), tb[2].as_ptr()) }
                });
                // SAFETY: pixel (b, oy, ox) of the output, `cnt` bytes from `off`.
                unsafe {
                    k.pixel::<SIGNED, FP, RQ>(
                        [&cols[0], &cols[1], &cols[2]],
                        out_row.add(ox * c + off),
                    )
                };
            }
        }
    }
}

/// Interior output pixels `lo..hi` of one row and whole block: a sliding window of columns.
///
/// # Safety
/// AVX2; for every pixel in `lo..hi` the input columns `ox * stride - pad + 0..3` are inside
/// the image; `base` as in [`dwconv3x3`] (16 readable bytes at `base[fy] + ix * c`);
/// `out` is output pixel `(b, oy, 0)` plus the block offset.
#[inline(always)]
unsafe fn dw_interior<const SIGNED: bool, const FP: bool, const RQ: u8>(
    k: &DwBlock16,
    g: &crate::kernels::reference::conv::ConvGeometry,
    base: [*const u8; 3],
    lo: usize,
    hi: usize,
    out: *mut u8,
) {
    let c = g.in_c;
    let s = g.stride_w;
    // Input column of pixel `lo`'s first tap, and the byte offset of column `lo_x + j`.
    let lo_x = lo * s - g.pad_w;
    // SAFETY (all `col` calls below): column `lo_x + j` is one of the window columns of a
    // pixel in `lo..hi` (callers guard every call), so inside the image.
    let col = |j: usize| -> DwCol {
        let o = (lo_x + j) * c;
        unsafe { dw_col::<SIGNED>(base[0].add(o), base[1].add(o), base[2].add(o)) }
    };
    // SAFETY (all `px` calls): pixel `lo + i < hi` of the row.
    let px = |i: usize, a: &DwCol, b: &DwCol, cc: &DwCol| unsafe {
        k.pixel::<SIGNED, FP, RQ>([a, b, cc], out.add((lo + i) * c))
    };
    let n = hi - lo;
    let (mut c0, mut c1, mut c2) = (col(0), col(1), col(2));
    let mut i = 0;
    match s {
        1 => {
            // Pixel `i` uses columns `i, i + 1, i + 2`.
            while i < n {
                px(i, &c0, &c1, &c2);
                if i + 1 == n {
                    break;
                }
                c0 = col(i + 3);
                px(i + 1, &c1, &c2, &c0);
                if i + 2 == n {
                    break;
                }
                c1 = col(i + 4);
                px(i + 2, &c2, &c0, &c1);
                if i + 3 == n {
                    break;
                }
                c2 = col(i + 5);
                i += 3;
            }
        }
        2 => {
            // Pixel `i` uses columns `2i, 2i + 1, 2i + 2`.
            while i < n {
                px(i, &c0, &c1, &c2);
                if i + 1 == n {
                    break;
                }
                c0 = col(2 * i + 3);
                c1 = col(2 * i + 4);
                px(i + 1, &c2, &c0, &c1);
                if i + 2 == n {
                    break;
                }
                c2 = col(2 * i + 5);
                c0 = col(2 * i + 6);
                px(i + 2, &c1, &c2, &c0);
                if i + 3 == n {
                    break;
                }
                c1 = col(2 * i + 7);
                c2 = col(2 * i + 8);
                i += 3;
            }
        }
        _ => {
            // No shared columns.
            loop {
                px(i, &c0, &c1, &c2);
                i += 1;
                if i == n {
                    break;
                }
                (c0, c1, c2) = (col(s * i), col(s * i + 1), col(s * i + 2));
            }
        }
    }
}

/// The AVX2 depthwise kernel (`fp32`: ONNX Runtime float requantization).
pub(crate) fn dwconv_kernel(signed: bool, fp32: bool) -> crate::kernels::dwconv::DwFn {
    match (signed, fp32) {
        (true, false) => dwconv3x3::<true, false>,
        (false, false) => dwconv3x3::<false, false>,
        (true, true) => dwconv3x3::<true, true>,
        (false, true) => dwconv3x3::<false, true>,
    }
}

/// `add_q{u8,i8}_linear__avx2`: 8-bit ADD of equal shapes through its integer linear form
/// (`kernels::add_linear`, exact for every input pair by construction): per 8 elements two
/// widening loads per input, two `vpmulld`, the constant, an arithmetic shift; 32 elements are
/// narrowed (with the activation clamp) and stored at once, the tail by the scalar model.
///
/// # Safety
/// AVX2; `a`, `b` valid for `len` byte reads, `out` for `len` byte writes.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_linear<const SIGNED: bool>(
    f: &crate::kernels::add_linear::LinearAdd,
    a: *const u8,
    b: *const u8,
    out: *mut u8,
    len: usize,
) {
    let (va, vb, vc) = (
        _mm256_set1_epi32(f.a),
        _mm256_set1_epi32(f.b),
        _mm256_set1_epi32(f.c),
    );
    let shift = _mm_cvtsi32_si128(f.shift as i32);
    /// Bytes `p..p + 8` widened to i32 (sign- or zero-extended).
    ///
    /// # Safety
    /// AVX2; 8 readable bytes at `p`.
    #[inline(always)]
    unsafe fn widen8<const SIGNED: bool>(p: *const u8) -> __m256i {
        // SAFETY: caller contract.
        let v = unsafe { _mm_loadl_epi64(p.cast()) };
        if SIGNED {
            _mm256_cvtepi8_epi32(v)
        } else {
            _mm256_cvtepu8_epi32(v)
        }
    }
    let lin = |o: usize| -> __m256i {
        // SAFETY: `o + 8 <= len` at every call below.
        let (x, y) = unsafe { (widen8::<SIGNED>(a.add(o)), widen8::<SIGNED>(b.add(o))) };
        let s = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_mullo_epi32(x, va), vc),
            _mm256_mullo_epi32(y, vb),
        );
        _mm256_sra_epi32(s, shift)
    };
    // The bounds as bytes (`as i8` keeps the bit pattern of a u8 bound too).
    let (lo, hi) = (
        _mm256_set1_epi8(f.act_min as i8),
        _mm256_set1_epi8(f.act_max as i8),
    );
    let mut i = 0;
    while i + 32 <= len {
        // Saturating packs are clamps, and clamps compose (`kernels::requant` docs).
        let w0 = _mm256_packs_epi32(lin(i), lin(i + 8));
        let w1 = _mm256_packs_epi32(lin(i + 16), lin(i + 24));
        let v = narrow_clamped::<SIGNED>(w0, w1, lo, hi);
        // SAFETY: `i + 32 <= len`.
        unsafe { _mm256_storeu_si256(out.add(i).cast(), v) };
        i += 32;
    }
    while i < len {
        // SAFETY: `i < len`.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        let (x, y) = if SIGNED {
            (i32::from(x as i8), i32::from(y as i8))
        } else {
            (i32::from(x), i32::from(y))
        };
        // SAFETY: `i < len`.
        unsafe { *out.add(i) = f.apply(x, y) as u8 };
        i += 1;
    }
}

#[cfg(test)]
mod row_sum_tests {
    /// Pins the 32/16/8/4/1-byte steps of `row_sum_u8` against a plain sum for every length
    /// up to 100 (each combination of steps) and every start alignment.
    #[test]
    fn row_sum_u8_matches_plain_sum_for_every_length() {
        if !crate::kernels::Isa::Avx2.supported() {
            return;
        }
        let data: Vec<u8> = (0..132u32).map(|i| (i * 97 + 31) as u8).collect();
        for start in 0..4 {
            for len in 0..=100 {
                let want = data[start..start + len]
                    .iter()
                    .fold(0i32, |s, &b| s.wrapping_add(i32::from(b)));
                // SAFETY: AVX2 checked above; `start + len <= data.len()`.
                let got = unsafe { super::row_sum_u8(data.as_ptr().add(start), len) };
                assert_eq!(got, want, "start {start} len {len}");
            }
        }
    }
}
