//! Vectorizable requantization parameters: TFLite's `MultiplyByQuantizedMultiplier` split into
//! per-channel arrays a SIMD epilogue can load as vectors.
//!
//! For an int32 accumulator `x` of channel `c` (bias and zero-point terms already added):
//! ```text
//! y = x << lshift[c]                                  (wrapping, = x * 2^lshift)
//! y = floor((y * mult[c] + 2^30) / 2^31)               (64-bit product: srdhm)
//! y = (y >> rshift[c]) + ((y & rmask[c]) > rthresh[c] + (y < 0))   (RoundingDivideByPOT)
//! y = clamp(y + out_zp, act_min, act_max)
//! ```
//! `floor((a*b + 2^30) / 2^31)` equals gemmlowp's `SaturatingRoundingDoublingHighMul` (whose
//! nudge is `1 - 2^30` for negative products and which truncates toward zero) for every `a`
//! and `b`, except the saturating case `a == b == i32::MIN`; that case cannot occur here since
//! multipliers are `>= 0` (`QuantizeMultiplier` gives `0` or a value in `[2^30, 2^31)`).
//! The 64-bit product never overflows (`|a*b| <= 2^62`) and the result fits `i32`, so SIMD code
//! may take bits 31..62 of `a*b + 2^30` with logical 64-bit shifts.
//!
//! ONNX Runtime numerics ([`crate::model::RequantMode::OnnxRuntime`], `QuantParams::
//! float_scales`) replace the fixed-point steps with MLAS's float epilogue, which every SIMD
//! tier reproduces exactly (`Requant::scale` is `Some`):
//! ```text
//! v = f32(x) * scale[c]                 (both round to nearest even: cvtdq2ps, mulps / scvtf, fmul)
//! v = min(max(v, act_min - out_zp), act_max - out_zp)     (integer bounds, exact in f32)
//! y = round_half_even(v) + out_zp       (cvtps2dq under the default MXCSR / fcvtns)
//! ```
//! Clamping before rounding equals clamping after because the bounds are integers.
//!
//! **Sign-magnitude form** ([`FastRequant`], x86 epilogues). With `lshift = 0`, `e = rshift`,
//! `P = |x| * mult` and `C = 2^30 + (e > 0 ? 2^(30+e) : 0)`, the two roundings above (half up,
//! then half away from zero) fold into one:
//! ```text
//! x >= 0:  y = floor((P + C) / 2^(31+e))
//! x <  0:  y = -floor((P + C - 1) / 2^(31+e))
//! ```
//! (`floor((floor(t / A) + c) / B) = floor((t + c*A) / (A*B))`, and for negative `x`
//! `floor((-P + 2^30) / 2^31) = -floor((P + 2^30 - 1) / 2^31)`.) SIMD code computes
//! `sign(x) * floor((P + C) / 2^(31+e))` without the `- 1`: one unsigned 32x32 multiply, one
//! 64-bit add and one 64-bit shift per lane. That differs from the exact value only when
//! `P + C` is a multiple of `2^(31+e)`, i.e. `P + C = j * 2^(31+e)` for a result magnitude `j`
//! (then the exact magnitude is `j - 1`). [`FastRequant::new`] declines every multiplier for
//! which such a tie exists with `j <= FAST_TIE_BOUND`; larger magnitudes clamp to the same
//! 8-bit output either way (see [`FAST_TIE_BOUND`]).

use super::reference::conv::QuantParams;

/// Per-channel requantization arrays, padded with copies of the last channel's values (so
/// padded lanes compute harmless numbers) to `padded_len` entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Requant {
    pub mult: Vec<i32>,
    pub lshift: Vec<i32>,
    pub rshift: Vec<i32>,
    /// `(1 << rshift) - 1`.
    pub rmask: Vec<i32>,
    /// `rmask >> 1`.
    pub rthresh: Vec<i32>,
    pub out_zp: i32,
    pub act_min: i32,
    pub act_max: i32,
    /// ONNX Runtime's per-channel float scales (same order and padding as the arrays above),
    /// `None` for TFLite fixed-point requantization. Kernels are chosen for one form at
    /// prepare time (`fp32` in `gemm_for` / `dwconv_for`) and must be given a matching one.
    pub scale: Option<Vec<f32>>,
    /// The sign-magnitude form (module docs) when it is exact for every channel, else `None`
    /// (then kernels run the general form above).
    pub fast: Option<FastRequant>,
}

/// Largest result magnitude whose rounding tie [`FastRequant::new`] must rule out. For a
/// negative accumulator with a tie at magnitude `j > FAST_TIE_BOUND` the exact output is
/// `clamp(zp - (j - 1))`, and `zp - (j - 1) < act_min` (`new` requires `zp - act_min <
/// FAST_TIE_BOUND`), so both clamp to `act_min`.
pub const FAST_TIE_BOUND: u64 = 257;

/// Parameters of the sign-magnitude requantization (module docs): per entry a 32-bit
/// multiplier, one rounding constant and one shift for all entries (the layer's channels share
/// `rshift`; x86 epilogues keep them in registers).
///
/// `S = 31 + e >= 32` always: with `e = 0` the multiplier and constant are doubled (`mul =
/// 2 * mult < 2^32`, `add = 2^31`, `S = 32`), so the 64-bit product's result sits in its high
/// dword or above and odd lanes shift by `S - 32` (AVX2 has no 64-bit arithmetic shift; the
/// magnitude is shifted, then `vpsignd` applies the sign).
#[derive(Clone, Debug, PartialEq)]
pub struct FastRequant {
    /// Multiplier per entry (same order as `Requant::mult`), plus one trailing copy of the last
    /// entry so odd lanes can load `mul[col + 1..col + 1 + lanes]`.
    pub mul: Vec<u32>,
    /// `C` (doubled when `e = 0`).
    pub add: u64,
    /// `S = 31 + e` (32 when `e = 0`).
    pub shift: u32,
    /// The same function in f32 ([`FloatForm`]), when it is provably equal after the clamp.
    pub float: Option<FloatForm>,
}

/// The sign-magnitude form in f32, for epilogues where the two 32x32-bit products per pair of
/// lanes are the bottleneck: `mag = trunc(fma(f32(|x|), mul[i], add))`, then `x`'s sign.
///
/// With `s = mul / 2^S` and `b = C / 2^S` rounded to f32, `trunc(fma(f32(a), s, b))` is a
/// non-decreasing function of the magnitude `a`, as is the exact `floor((a * mul + C) / 2^S)`.
/// Two non-decreasing integer functions agree wherever the exact one is below the clamp bound
/// `B` (and both reach `B` past it) if they agree at both sides of each of the exact one's
/// steps: `F(a_j - 1) <= j - 1` and `F(a_j) >= j` for `j = 1..=B`, where `a_j` is the first
/// magnitude with exact value `j`. [`FastRequant::new`] checks exactly that, `2B` evaluations
/// per distinct multiplier, and keeps the float form only if every check holds (and
/// `s <= 1/2`, so `2^31 * s + b` converts back without overflow).
///
/// **One-sided form** (`one_sided`). When the clamp maps every result at or below the zero
/// point to `act_min` (`act_min >= out_zp`: ReLU-like layers, most of a MobileNet), the sign
/// does not matter: `y = trunc(fma(f32(x), s, b))` for any `x`, 3 vector operations per 8
/// lanes instead of 5. For `x >= 0` it is the magnitude above, so the same checks cover it;
/// for `x < 0`, `x * s + b < b < 1` truncates to at most 0, and `out_zp + 0 <= act_min` clamps
/// to `act_min` exactly as the negative exact results do.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatForm {
    /// `mul / 2^S` per entry, same order and length as [`FastRequant::mul`].
    pub mul: Vec<f32>,
    /// `C / 2^S`.
    pub add: f32,
    /// The one-sided form (type docs) applies: `act_min >= out_zp`.
    pub one_sided: bool,
}

/// Candidate offsets, in ulps, of a multiplier's f32 value from the nearest one, in the order
/// [`FloatForm::new`] tries them.
const S_NUDGES: [i32; 9] = [0, 1, -1, 2, -2, 3, -3, 4, -4];

/// Candidate offsets, in ulps, of the rounding constant's f32 value (one per layer).
const B_NUDGES: [i32; 13] = [0, 1, -1, 2, -2, 4, -4, 8, -8, 16, -16, 32, -32];

/// `v` moved by `ulps` units in the last place (`v` positive and finite).
fn nudge(v: f32, ulps: i32) -> f32 {
    f32::from_bits(v.to_bits().wrapping_add_signed(ulps))
}

impl FloatForm {
    /// Scalar model of the SIMD code: the magnitude for `|x| = a` with entry `fm`.
    pub fn mag(a: u64, fm: f32, add: f32) -> u64 {
        // `a <= 2^31`, `fm <= 1/2`, `add < 1`: the result is below 2^30 + 1 (truncation, like
        // `cvttps2dq`).
        (a as f32).mul_add(fm, add) as u64
    }

    /// Scalar model of the one-sided SIMD code: the unclamped result without zero point, for
    /// any `x`.
    pub fn lower(x: i32, fm: f32, add: f32) -> i32 {
        // `|x| <= 2^31`, `fm <= 1/2`, `add < 1`: within i32 (truncation toward zero, like
        // `cvttps2dq`).
        (x as f32).mul_add(fm, add) as i32
    }

    /// Build and check the float form of `(mul, add, shift)` for clamp bound `bound`
    /// (`one_sided`: the clamp maps every result at or below the zero point to `act_min`).
    ///
    /// The nearest f32 values of `s` and `b` fail a step check for a few percent of
    /// multipliers (an exact value within f32 rounding of an integer at some step). The checks
    /// prove any monotone candidate, not just the nearest one, so `new` also tries `s` a few
    /// ulps either side per multiplier ([`S_NUDGES`]; one ulp rescues nearly every miss), and
    /// then `b` a few ulps either side for the whole layer ([`B_NUDGES`]).
    fn new(mul: &[u32], add: u64, shift: u32, bound: u64, one_sided: bool) -> Option<FloatForm> {
        let scale = 2f64.powi(-(shift as i32));
        let nearest_add = (add as f64 * scale) as f32;
        B_NUDGES.iter().find_map(|&db| {
            let fadd = nudge(nearest_add, db);
            if fadd >= 1.0 {
                return None;
            }
            let mut out = Vec::with_capacity(mul.len());
            let mut prev: Option<(u32, f32)> = None;
            for &m in mul {
                let fm = match prev {
                    Some((pm, pf)) if pm == m => pf,
                    _ => {
                        let nearest = (f64::from(m) * scale) as f32;
                        // A zero multiplier stays zero (its form is the constant `b`).
                        let nudges: &[i32] = if m == 0 { &[0] } else { &S_NUDGES };
                        nudges
                            .iter()
                            .map(|&d| nudge(nearest, d))
                            .find(|&fm| fm <= 0.5 && Self::agrees(m, add, shift, fm, fadd, bound))?
                    }
                };
                prev = Some((m, fm));
                out.push(fm);
            }
            Some(FloatForm {
                mul: out,
                add: fadd,
                one_sided,
            })
        })
    }

    /// The step checks of the type docs for one multiplier.
    fn agrees(m: u32, add: u64, shift: u32, fm: f32, fadd: f32, bound: u64) -> bool {
        const TOP: u64 = 1 << 31;
        let f = |a: u64| Self::mag(a, fm, fadd);
        for j in 1..=bound {
            // First magnitude whose exact value `floor((a * m + add) / 2^shift)` reaches `j`.
            let need = (u128::from(j) << shift).saturating_sub(u128::from(add));
            let a_j = if m == 0 {
                u128::MAX
            } else {
                need.div_ceil(u128::from(m))
            };
            if a_j > u128::from(TOP) {
                // The exact value stays below `j` for every magnitude: so must the float one.
                return f(TOP) < j;
            }
            let a_j = a_j as u64;
            if f(a_j) < j || (a_j > 0 && f(a_j - 1) >= j) {
                return false;
            }
        }
        true
    }
}

impl FastRequant {
    /// The fast form of `r`'s fixed-point arrays, if exact: no left shifts, one right shift
    /// `e <= 30` for all entries, no multiplier with a rounding tie below
    /// [`FAST_TIE_BOUND`], and 8-bit activation bounds and zero point.
    pub fn new(r: &Requant) -> Option<FastRequant> {
        if r.scale.is_some()
            || r.mult.is_empty()
            || r.lshift.iter().any(|&l| l != 0)
            || r.act_min < i32::from(i8::MIN)
            || r.act_max > i32::from(u8::MAX)
            || !(-255..=255).contains(&r.out_zp)
            || r.out_zp - r.act_min >= FAST_TIE_BOUND as i32
        {
            return None;
        }
        let e = r.rshift[0];
        if !(0..=30).contains(&e) || r.rshift.iter().any(|&s| s != e) {
            return None;
        }
        let double = u64::from(e == 0);
        let add = ((1u64 << 30) + if e > 0 { 1u64 << (30 + e) } else { 0 }) << double;
        let shift = 31 + e as u32 + double as u32;
        let mut mul: Vec<u32> = Vec::with_capacity(r.mult.len() + 1);
        for &m in &r.mult {
            let m = u64::try_from(m).ok()? << double;
            // Entries repeat (per-tensor layers, padding): check each multiplier once.
            if mul.last().is_none_or(|&prev| u64::from(prev) != m)
                && (m > u64::from(u32::MAX) || Self::has_tie(m, add, shift))
            {
                return None;
            }
            mul.push(m as u32);
        }
        mul.push(*mul.last()?);
        // Magnitudes from here on clamp alike (see `FAST_TIE_BOUND` for the negative side).
        let bound = (r.act_max - r.out_zp).max(r.out_zp - r.act_min).max(1) as u64;
        let float = FloatForm::new(&mul, add, shift, bound, r.act_min >= r.out_zp);
        Some(FastRequant {
            mul,
            add,
            shift,
            float,
        })
    }

    /// Whether `a * m + add = j * 2^shift` for some integer `a >= 1` and `1 <= j <=
    /// FAST_TIE_BOUND` (all values below 2^64 / 2^32 as stated in `new`).
    fn has_tie(m: u64, add: u64, shift: u32) -> bool {
        if m == 0 {
            return false;
        }
        // (j * 2^shift - add) mod m == 0, in u64 with operands reduced mod m (< 2^32).
        let pow = (0..shift).fold(1 % m, |p, _| (p * 2) % m);
        let add = add % m;
        (1..=FAST_TIE_BOUND).any(|j| (j % m * pow + m - add).is_multiple_of(m))
    }

    /// Scalar model of the one-sided float SIMD code ([`FloatForm::one_sided`]): the
    /// unclamped result without zero point; `None` without that form.
    pub fn apply_lower(&self, x: i32, i: usize) -> Option<i32> {
        let f = self.float.as_ref().filter(|f| f.one_sided)?;
        Some(FloatForm::lower(x, f.mul[i], f.add))
    }

    /// Scalar model of the float SIMD code ([`FloatForm`]); `None` without a float form.
    pub fn apply_float(&self, x: i32, i: usize) -> Option<i32> {
        let f = self.float.as_ref()?;
        let mag = FloatForm::mag(u64::from(x.unsigned_abs()), f.mul[i], f.add) as i32;
        Some(mag * x.signum())
    }

    /// Scalar model of the SIMD code: the unclamped result without zero point.
    pub fn apply(&self, x: i32, i: usize) -> i32 {
        let mag = (u64::from(x.unsigned_abs()) * u64::from(self.mul[i]) + self.add) >> self.shift;
        // `mag < 2^31`: `|x| <= 2^31`, `mul < 2^32`, `shift >= 32`.
        let mag = mag as i32;
        if x < 0 {
            -mag
        } else if x == 0 {
            0
        } else {
            mag
        }
    }
}

impl Requant {
    /// From reference parameters, channels in order, padded to `padded_len`.
    pub fn new(q: &QuantParams, padded_len: usize) -> Requant {
        Self::with_order(q, padded_len, |i| i.min(q.multipliers.len() - 1))
    }

    /// Entry `i` takes channel `channel(i)` (for SIMD layouts that permute channels).
    pub fn with_order(
        q: &QuantParams,
        padded_len: usize,
        channel: impl Fn(usize) -> usize,
    ) -> Requant {
        let n = q.multipliers.len();
        let mut r = Requant {
            mult: Vec::with_capacity(padded_len),
            lshift: Vec::with_capacity(padded_len),
            rshift: Vec::with_capacity(padded_len),
            rmask: Vec::with_capacity(padded_len),
            rthresh: Vec::with_capacity(padded_len),
            out_zp: q.output_offset,
            act_min: q.act_min,
            act_max: q.act_max,
            scale: q
                .float_scales
                .as_ref()
                .map(|_| Vec::with_capacity(padded_len)),
            fast: None,
        };
        for i in 0..padded_len {
            let c = channel(i).min(n.saturating_sub(1));
            if let (Some(dst), Some(src)) = (r.scale.as_mut(), q.float_scales.as_ref()) {
                // `float_scales` has one entry per channel, like `multipliers`.
                dst.push(src[c.min(src.len().saturating_sub(1))]);
            }
            let (m, s) = (q.multipliers[c], q.shifts[c]);
            let rs = (-s).clamp(0, 31);
            let mask = ((1i64 << rs) - 1) as i32;
            r.mult.push(m);
            r.lshift.push(s.clamp(0, 31));
            r.rshift.push(rs);
            r.rmask.push(mask);
            r.rthresh.push(mask >> 1);
        }
        r.fast = FastRequant::new(&r);
        r
    }

    /// `act_min - out_zp` and `act_max - out_zp` as f32: the clamp bounds of the float
    /// epilogue (exact: 8-bit ranges and zero points).
    pub fn float_bounds(&self) -> (f32, f32) {
        (
            self.act_min.wrapping_sub(self.out_zp) as f32,
            self.act_max.wrapping_sub(self.out_zp) as f32,
        )
    }

    /// Scalar model of the SIMD epilogue (used by tests to pin the algebra).
    pub fn apply(&self, x: i32, i: usize) -> i32 {
        if let Some(scale) = &self.scale {
            let (lo, hi) = self.float_bounds();
            let v = (x as f32 * scale[i]).max(lo).min(hi);
            return (v.round_ties_even() as i32).wrapping_add(self.out_zp);
        }
        let y = x.wrapping_shl(self.lshift[i] as u32);
        let y = ((y as i64 * self.mult[i] as i64 + (1 << 30)) >> 31) as i32;
        let rem = y & self.rmask[i];
        let thr = self.rthresh[i] + i32::from(y < 0);
        let y = (y >> self.rshift[i]) + i32::from(rem > thr);
        y.wrapping_add(self.out_zp)
            .max(self.act_min)
            .min(self.act_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::fixedpoint::{
        multiply_by_quantized_multiplier, quantize_multiplier,
    };
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn apply_matches_reference(x in any::<i32>(), real in 1e-6f64..4.0, zp in -128i32..256) {
            let (m, s) = quantize_multiplier(real);
            let q = QuantParams {
                input_offset: 0, filter_offset: 0, output_offset: zp,
                multipliers: vec![m], shifts: vec![s], act_min: i32::MIN, act_max: i32::MAX, float_scales: None,
            };
            let r = Requant::new(&q, 1);
            let want = multiply_by_quantized_multiplier(x, m, s).wrapping_add(zp);
            prop_assert_eq!(r.apply(x, 0), want);
        }

        #[test]
        fn apply_float_matches_reference(x in any::<i32>(), scale in 1e-6f32..4.0, zp in -128i32..128) {
            let q = QuantParams {
                input_offset: 0, filter_offset: 0, output_offset: zp,
                multipliers: vec![0], shifts: vec![0], act_min: -128, act_max: 127,
                float_scales: Some(vec![scale]),
            };
            let r = Requant::new(&q, 3);
            let want = crate::kernels::reference::conv::requantize_float_round_even(x, scale, zp, -128, 127);
            prop_assert_eq!(r.apply(x, 2), want);
        }
    }

    fn fixed(m: i32, s: i32, zp: i32, act_min: i32, act_max: i32) -> QuantParams {
        QuantParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: zp,
            multipliers: vec![m],
            shifts: vec![s],
            act_min,
            act_max,
            float_scales: None,
        }
    }

    /// Accumulators around every potential rounding tie of `f` (magnitudes up to past the
    /// bound) plus the extremes.
    fn tie_neighbourhood(f: &FastRequant) -> Vec<i32> {
        let m = u128::from(f.mul[0]).max(1);
        let mut xs = vec![0, 1, -1, i32::MIN, i32::MAX, i32::MIN + 1];
        for j in 1..=FAST_TIE_BOUND as u128 + 2 {
            let a = ((j << f.shift) - u128::from(f.add)) / m;
            for d in [-1i128, 0, 1] {
                if let Ok(v) = i32::try_from(a as i128 + d) {
                    xs.extend([v, v.wrapping_neg()]);
                }
            }
        }
        xs
    }

    proptest! {
        #[test]
        fn fast_form_matches_apply_wherever_it_is_accepted(
            x in any::<i32>(),
            real in prop_oneof![
                1e-7f64..0.99,
                // Dyadic multipliers (few significant bits) are where ties live.
                (1u32..64, 0i32..24).prop_map(|(a, b)| f64::from(a) / 2f64.powi(b + 6)),
            ],
            zp in 0i32..256,
            relu6 in any::<bool>(),
            signed in any::<bool>(),
        ) {
            let (m, s) = quantize_multiplier(real);
            let (zp, lo, hi) = match (signed, relu6) {
                (false, false) => (zp, 0, 255),
                (false, true) => (zp, zp, (zp + 40).min(255)),
                (true, false) => (zp - 128, -128, 127),
                (true, true) => (zp - 128, zp - 128, (zp - 88).min(127)),
            };
            let r = Requant::new(&fixed(m, s, zp, lo, hi), 1);
            if let Some(f) = &r.fast {
                for x in std::iter::once(x).chain(tie_neighbourhood(f)) {
                    let got = f.apply(x, 0).saturating_add(zp).clamp(lo, hi);
                    prop_assert_eq!(got, r.apply(x, 0), "x {} m {} s {}", x, m, s);
                    if let Some(y) = f.apply_float(x, 0) {
                        let got = y.saturating_add(zp).clamp(lo, hi);
                        prop_assert_eq!(got, r.apply(x, 0), "float: x {} m {} s {}", x, m, s);
                    }
                    if let Some(y) = f.apply_lower(x, 0) {
                        let got = y.saturating_add(zp).clamp(lo, hi);
                        prop_assert_eq!(got, r.apply(x, 0), "one-sided: x {} m {} s {}", x, m, s);
                    }
                }
            }
        }
    }

    /// `form` (a scalar model without zero point) equals the sign-magnitude form after the
    /// clamp for every accumulator of magnitude up to past the clamp, and at the extremes.
    fn sweep_below_clamp(
        f: &FastRequant,
        real: f64,
        zp: i32,
        lo: i32,
        hi: i32,
        form: impl Fn(i32) -> i32,
    ) {
        let top = ((300.0 / real) as i32).saturating_add(50);
        for x in (-top..=top).chain([i32::MIN, i32::MAX, i32::MIN + 1]) {
            let want = f.apply(x, 0).saturating_add(zp).clamp(lo, hi);
            let got = form(x).saturating_add(zp).clamp(lo, hi);
            assert_eq!(got, want, "x {x} real {real} zp {zp}");
        }
    }

    /// Every magnitude up to past the clamp, for multipliers across the usual range: the float
    /// form, wherever `new` keeps it, equals the integer form after the clamp.
    #[test]
    fn float_form_equals_integer_form_for_every_accumulator_below_the_clamp() {
        let mut kept = 0;
        for i in 0..40 {
            // 1e-3 .. 0.5, log-spaced, plus an irregular fraction.
            let real = 1e-3 * (500f64).powf(f64::from(i) / 39.0) * (1.0 + 0.013 * f64::from(i % 7));
            let (m, s) = quantize_multiplier(real.min(0.5));
            for (zp, lo, hi) in [(128, 0, 255), (0, 0, 6 * 20), (-3, -128, 127)] {
                let r = Requant::new(&fixed(m, s, zp, lo, hi), 1);
                let Some(f) = &r.fast else { continue };
                if f.float.is_none() {
                    continue;
                }
                kept += 1;
                sweep_below_clamp(f, real, zp, lo, hi, |x| f.apply_float(x, 0).unwrap());
            }
        }
        // The float form is the common case, not a corner.
        // Nearly universal (the nearest f32 values alone kept 100 or so; see `FloatForm::new`).
        assert!(kept >= 115, "float form kept for only {kept} of 120 layers");
    }

    /// A multiplier whose nearest f32 value fails a step check (so it used to run the integer
    /// form) gets a float form one ulp away, exact for every accumulator up to past the clamp.
    #[test]
    fn float_form_nudges_a_multiplier_whose_nearest_f32_fails_a_step() {
        let (m, s) = (1_249_765_186, -9);
        for (zp, lo, hi) in [(128, 0, 255), (0, 0, 120), (-3, -128, 127)] {
            let r = Requant::new(&fixed(m, s, zp, lo, hi), 1);
            let f = r.fast.as_ref().expect("fast form");
            let ff = f.float.as_ref().expect("float form");
            let scale = 2f64.powi(-(f.shift as i32));
            let nearest = (f64::from(f.mul[0]) * scale) as f32;
            let fadd = (f.add as f64 * scale) as f32;
            assert!(!FloatForm::agrees(
                f.mul[0], f.add, f.shift, nearest, fadd, 128
            ));
            assert_ne!(ff.mul[0], nearest);
            let real = f64::from(m) / 2f64.powi(31 - s);
            sweep_below_clamp(f, real, zp, lo, hi, |x| f.apply_float(x, 0).unwrap());
        }
    }

    /// Every accumulator from below zero to past the clamp, for ReLU-like clamps (`act_min >=
    /// zp`, uint8 and int8): the one-sided form, wherever `new` keeps it, equals the integer
    /// form after the clamp; and it is never offered when negative results would survive the
    /// clamp.
    #[test]
    fn one_sided_form_equals_integer_form_for_every_accumulator_below_the_clamp() {
        let (mut kept, mut tried) = (0, 0);
        for i in 0..40 {
            let real = 1e-3 * (500f64).powf(f64::from(i) / 39.0) * (1.0 + 0.011 * f64::from(i % 5));
            let (m, s) = quantize_multiplier(real.min(0.5));
            for (zp, lo, hi) in [(0, 0, 255), (0, 0, 6 * 20), (-128, -128, 127), (3, 5, 200)] {
                let r = Requant::new(&fixed(m, s, zp, lo, hi), 1);
                let Some(f) = &r.fast else { continue };
                if f.float.is_none() {
                    continue;
                }
                tried += 1;
                if !f.float.as_ref().unwrap().one_sided {
                    continue;
                }
                kept += 1;
                sweep_below_clamp(f, real, zp, lo, hi, |x| f.apply_lower(x, 0).unwrap());
            }
            // Negative results that survive the clamp: no one-sided form.
            let r = Requant::new(&fixed(m, s, 128, 0, 255), 1);
            assert!(r.fast.and_then(|f| f.float).is_none_or(|ff| !ff.one_sided));
        }
        assert!(
            kept == tried && tried >= 120,
            "one-sided form kept for {kept} of {tried}"
        );
    }

    #[test]
    fn fast_form_declines_a_multiplier_with_a_rounding_tie() {
        // real 0.25: mult 2^30, rshift 1. |x| = 1: |x| * 2^30 + 2^30 + 2^31 = 2^32, a tie at
        // magnitude 1 (exact: srdhm(-1) = 0, so 0; sign-magnitude: -1).
        let (m, s) = quantize_multiplier(0.25);
        assert_eq!((m, s), (1 << 30, -1));
        let r = Requant::new(&fixed(m, s, 128, 0, 255), 1);
        assert_eq!(r.apply(-1, 0), 128);
        assert!(r.fast.is_none());
        // A typical multiplier is accepted, and so is every channel sharing its shift.
        let (m, s) = quantize_multiplier(0.003_17);
        let r = Requant::new(&fixed(m, s, 128, 0, 255), 16);
        assert!(r.fast.as_ref().is_some_and(|f| f.mul.len() == 17));
        // A left shift (multiplier above 1) keeps the general form.
        let (m, s) = quantize_multiplier(1.7);
        assert!(Requant::new(&fixed(m, s, 0, -128, 127), 1).fast.is_none());
    }

    #[test]
    fn srdhm_floor_form_at_rounding_edges() {
        let q = |m: i32, s: i32| QuantParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: 0,
            multipliers: vec![m],
            shifts: vec![s],
            act_min: i32::MIN,
            act_max: i32::MAX,
            float_scales: None,
        };
        for (m, s) in [
            (1 << 30, 0),
            (1 << 30, -3),
            (0x7fff_ffff, 2),
            (0, 0),
            (1 << 30, 31),
        ] {
            let r = Requant::new(&q(m, s), 1);
            for x in [
                -5,
                -4,
                -3,
                -1,
                0,
                1,
                3,
                4,
                5,
                i32::MIN,
                i32::MAX,
                -(1 << 20) - 1,
            ] {
                assert_eq!(
                    r.apply(x, 0),
                    multiply_by_quantized_multiplier(x, m, s),
                    "{x} {m} {s}"
                );
            }
        }
    }
}
