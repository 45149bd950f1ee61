//! SSE2 kernels: the x86-64 baseline, so callers need no tier check.

use std::arch::x86_64::*;

/// `quantize_f32_to_{u,i}nt8_even__sse2`: ONNX Runtime's `MlasQuantizeLinear` on `x` into
/// `out` (equal lengths): `divps` by `scale`, `maxps(v, qmin - zp)` (NaN gives the lower bound,
/// as the scalar `ops::quantize::quantize_round_even`), `minps(v, qmax - zp)`, `cvtps2dq`
/// (round half to even under the default MXCSR, which Rust code never changes), `+ zp`, then
/// saturating packs to bytes (exact: the values are already inside `[qmin, qmax]`). 16
/// elements per step; returns how many leading elements it wrote (a multiple of 16; the
/// caller does the rest). `qmin < 0` selects int8 packing.
///
/// Reads and writes only inside `x` and `out`.
///
/// # Safety
/// None beyond SSE2, which every x86-64 CPU has.
#[target_feature(enable = "sse2")]
pub fn quantize_even_sse2(
    x: &[f32],
    out: &mut [u8],
    scale: f32,
    zp: i32,
    qmin: i32,
    qmax: i32,
) -> usize {
    let n = x.len().min(out.len());
    let (s, z) = (_mm_set1_ps(scale), _mm_set1_epi32(zp));
    let (lo, hi) = (
        _mm_set1_ps((qmin - zp) as f32),
        _mm_set1_ps((qmax - zp) as f32),
    );
    let q4 = |p: *const f32| {
        // SAFETY: callers pass pointers with four readable floats.
        let v = unsafe { _mm_loadu_ps(p) };
        let v = _mm_min_ps(_mm_max_ps(_mm_div_ps(v, s), lo), hi);
        _mm_add_epi32(_mm_cvtps_epi32(v), z)
    };
    let signed = qmin < 0;
    let mut i = 0;
    while i + 16 <= n {
        let p = x[i..i + 16].as_ptr();
        // SAFETY: 16 readable floats from `p`.
        let (a, b, c, d) = unsafe { (q4(p), q4(p.add(4)), q4(p.add(8)), q4(p.add(12))) };
        let (ab, cd) = (_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
        let bytes = if signed {
            _mm_packs_epi16(ab, cd)
        } else {
            _mm_packus_epi16(ab, cd)
        };
        // SAFETY: `i + 16 <= n <= out.len()`: 16 writable bytes.
        unsafe { _mm_storeu_si128(out[i..i + 16].as_mut_ptr().cast(), bytes) };
        i += 16;
    }
    i
}
