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
