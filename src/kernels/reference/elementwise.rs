//! ADD and MUL: TFLite `reference_ops::Add/Mul` (float), `AddElementwise` / `MulElementwise`
//! (uint8) and `reference_integer_ops::AddFunc` / `MulFunc` (int8), plus their
//! `BroadcastAdd4DSlow` / `BroadcastMul4DSlow` variants (same per-element arithmetic).

use super::fixedpoint::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp,
    quantize_multiplier_smaller_than_one_exp,
};

/// Quantized ADD parameters (TFLite `ArithmeticParams` as filled by `add.cc` Prepare).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantAddParams {
    pub left_shift: i32,
    pub input1_offset: i32,
    pub input1_multiplier: i32,
    pub input1_shift: i32,
    pub input2_offset: i32,
    pub input2_multiplier: i32,
    pub input2_shift: i32,
    pub output_offset: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

impl QuantAddParams {
    /// TFLite `add.cc` Prepare for 8-bit: left_shift 20, multipliers relative to twice the
    /// larger input scale. `2 * std::max(float, float)` is a float product, widened to double;
    /// `(1 << left_shift) * output->params.scale` is int * float = float.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        s1: f32,
        z1: i32,
        s2: f32,
        z2: i32,
        so: f32,
        zo: i32,
        act_min: i32,
        act_max: i32,
    ) -> QuantAddParams {
        let left_shift = 20;
        let twice_max_input_scale = (2.0f32 * s1.max(s2)) as f64;
        let real1 = s1 as f64 / twice_max_input_scale;
        let real2 = s2 as f64 / twice_max_input_scale;
        let real_out = twice_max_input_scale / (((1i32 << left_shift) as f32 * so) as f64);
        let (m1, sh1) = quantize_multiplier_smaller_than_one_exp(real1);
        let (m2, sh2) = quantize_multiplier_smaller_than_one_exp(real2);
        let (mo, sho) = quantize_multiplier_smaller_than_one_exp(real_out);
        QuantAddParams {
            left_shift,
            input1_offset: -z1,
            input1_multiplier: m1,
            input1_shift: sh1,
            input2_offset: -z2,
            input2_multiplier: m2,
            input2_shift: sh2,
            output_offset: zo,
            output_multiplier: mo,
            output_shift: sho,
            act_min,
            act_max,
        }
    }

    /// Output units per input unit of each input: the real value of its fixed-point scale
    /// chain (`2^left_shift * mult_i * 2^shift_i / 2^31`, then the output's).
    pub fn slopes(&self) -> (f64, f64) {
        let real = |m: i32, sh: i32| f64::from(m) * 2f64.powi(sh - 31);
        let out = real(self.output_multiplier, self.output_shift) * 2f64.powi(self.left_shift);
        (
            real(self.input1_multiplier, self.input1_shift) * out,
            real(self.input2_multiplier, self.input2_shift) * out,
        )
    }
}

/// TFLite `AddFunc` / `AddElementwise` body for one pair of raw quantized values.
#[inline]
pub fn add_quantized(x: i32, y: i32, p: &QuantAddParams) -> i32 {
    let v1 = p.input1_offset + x;
    let v2 = p.input2_offset + y;
    let s1 = v1.wrapping_mul(1 << p.left_shift);
    let s2 = v2.wrapping_mul(1 << p.left_shift);
    let sc1 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        s1,
        p.input1_multiplier,
        p.input1_shift,
    );
    let sc2 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        s2,
        p.input2_multiplier,
        p.input2_shift,
    );
    let raw_sum = sc1.wrapping_add(sc2);
    let raw_out = multiply_by_quantized_multiplier_smaller_than_one_exp(
        raw_sum,
        p.output_multiplier,
        p.output_shift,
    ) + p.output_offset;
    raw_out.clamp(p.act_min, p.act_max)
}

/// Quantized MUL parameters (TFLite `mul.cc` Prepare: multiplier = s1*s2/s_out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantMulParams {
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

/// TFLite `MulElementwise` (uint8) / `MulFunc` (int8) for one pair of raw values.
#[inline]
pub fn mul_quantized(x: i32, y: i32, p: &QuantMulParams) -> i32 {
    let v1 = p.input1_offset + x;
    let v2 = p.input2_offset + y;
    let out = p.output_offset
        + multiply_by_quantized_multiplier(v1 * v2, p.output_multiplier, p.output_shift);
    out.clamp(p.act_min, p.act_max)
}

/// Float ADD with activation clamp: `min(max(a + b, lo), hi)` (TFLite `ActivationFunctionWithMinMax`).
#[inline]
pub fn add_f32(a: f32, b: f32, lo: f32, hi: f32) -> f32 {
    clamp_f32(a + b, lo, hi)
}

#[inline]
pub fn mul_f32(a: f32, b: f32, lo: f32, hi: f32) -> f32 {
    clamp_f32(a * b, lo, hi)
}

/// `std::min(std::max(x, lo), hi)` with C++ semantics (NaN passes `max(x, lo)` as x).
#[inline]
pub fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    // std::max(a, b) returns a unless a < b; std::min(a, b) returns a unless b < a.
    let m = if x < lo { lo } else { x };
    if hi < m {
        hi
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_params(s1: f32, z1: i32, s2: f32, z2: i32, so: f32, zo: i32) -> QuantAddParams {
        QuantAddParams::prepare(s1, z1, s2, z2, so, zo, 0, 255)
    }

    #[test]
    fn quantized_add_matches_real_sum() {
        // 0.1*(q-128) + 0.05*(q-100) -> 0.2*(q-50)
        let p = add_params(0.1, 128, 0.05, 100, 0.2, 50);
        for (a, b) in [(128, 100), (138, 120), (200, 20), (0, 255)] {
            let real = 0.1 * (a - 128) as f64 + 0.05 * (b - 100) as f64;
            let want = ((real / 0.2).round() as i32 + 50).clamp(0, 255);
            let got = add_quantized(a, b, &p);
            assert!((got - want).abs() <= 1, "{a} {b}: {got} vs {want}");
        }
        // Exact cases.
        assert_eq!(add_quantized(128, 100, &p), 50);
        assert_eq!(add_quantized(138, 120, &p), 50 + 10);
    }

    #[test]
    fn quantized_mul_simple() {
        let p = QuantMulParams {
            input1_offset: 0,
            input2_offset: 0,
            output_offset: 0,
            output_multiplier: 1 << 30,
            output_shift: -1, // 0.25
            act_min: -128,
            act_max: 127,
        };
        assert_eq!(mul_quantized(10, 10, &p), 25);
        assert_eq!(mul_quantized(-10, 30, &p), -75);
        assert_eq!(mul_quantized(100, 100, &p), 127);
    }

    #[test]
    fn float_clamp() {
        assert_eq!(add_f32(1.0, 2.0, 0.0, 6.0), 3.0);
        assert_eq!(add_f32(5.0, 2.0, 0.0, 6.0), 6.0);
        assert_eq!(mul_f32(-1.0, 2.0, 0.0, f32::MAX), 0.0);
    }
}
