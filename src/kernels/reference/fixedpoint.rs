//! TFLite's integer requantization primitives (gemmlowp fixed point), bit for bit.
//!
//! Numerics contract: a real multiplier `m` is represented as a Q31 `multiplier` in
//! `[2^30, 2^31)` and a power-of-two `shift` (`m = multiplier * 2^(shift - 31)`), computed by
//! [`quantize_multiplier`] from an `f64` exactly as TFLite's `QuantizeMultiplier` does.
//! Accumulators are rescaled with [`multiply_by_quantized_multiplier`]: a saturating rounding
//! doubling high multiply followed by a rounding (half away from zero) right shift.

/// gemmlowp `SaturatingRoundingDoublingHighMul`: `round(a * b / 2^31)`, saturating the single
/// overflow case `i32::MIN * i32::MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Integer division truncating toward zero, as in C++.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent` rounded half away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite `MultiplyByQuantizedMultiplier(x, multiplier, shift)` (double rounding variant, the
/// default build of LiteRT): positive `shift` shifts left before the multiply, negative shifts
/// right after it.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.max(0);
    let right_shift = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left_shift), multiplier),
        right_shift,
    )
}

/// TFLite `MultiplyByQuantizedMultiplierSmallerThanOneExp(x, multiplier, left_shift)` with
/// `left_shift <= 0`.
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x, multiplier),
        -left_shift,
    )
}

/// TFLite `MultiplyByQuantizedMultiplierGreaterThanOne(x, multiplier, left_shift)`.
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left_shift), multiplier)
}

/// C `frexp`: `x = m * 2^e` with `|m|` in `[0.5, 1)`.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * (1u64 << 54) as f64);
        return (m, e - 54);
    }
    let e = exp - 1022;
    let m_bits = (bits & !(0x7ffu64 << 52)) | (1022u64 << 52);
    (f64::from_bits(m_bits), e)
}

/// TFLite `QuantizeMultiplier`: returns `(quantized_multiplier, shift)` with
/// `real ≈ quantized_multiplier * 2^(shift - 31)`.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 {
        return (0, 0);
    }
    let (q, mut shift) = frexp(real);
    // TfLiteRound = std::round: half away from zero, like f64::round.
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    debug_assert!(q_fixed <= 1i64 << 31);
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// TFLite `QuantizeMultiplierSmallerThanOneExp`: for `0 < real < 1`, returns
/// `(multiplier, left_shift)` with `left_shift <= 0`.
pub fn quantize_multiplier_smaller_than_one_exp(real: f64) -> (i32, i32) {
    quantize_multiplier(real)
}

/// TFLite `CalculateActivationRangeQuantized` for 8-bit outputs: the clamp range of a fused
/// activation in the quantized domain, intersected with the type's range `[qmin, qmax]`.
pub fn activation_range_quantized(
    activation: crate::model::Activation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> (i32, i32) {
    use crate::model::Activation;
    // TFLite: quantize(f) = zero_point + round(f / scale), computed in float.
    let quantize = |f: f32| -> i32 { zero_point + (f / scale).round() as i32 };
    match activation {
        Activation::None => (qmin, qmax),
        Activation::Relu => (qmin.max(quantize(0.0)), qmax),
        Activation::Relu6 => (qmin.max(quantize(0.0)), qmax.min(quantize(6.0))),
        Activation::ReluN1To1 => (qmin.max(quantize(-1.0)), qmax.min(quantize(1.0))),
    }
}

/// TFLite `CalculateActivationRange` for float outputs.
pub fn activation_range_f32(activation: crate::model::Activation) -> (f32, f32) {
    use crate::model::Activation;
    match activation {
        Activation::None => (f32::MIN, f32::MAX),
        Activation::Relu => (0.0, f32::MAX),
        Activation::Relu6 => (0.0, 6.0),
        Activation::ReluN1To1 => (-1.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_matches_known_values() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        // gemmlowp's nudge makes -0.5 round toward zero but +0.5 away from it.
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
    }

    #[test]
    fn rounding_divide_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn quantize_multiplier_matches_tflite() {
        // 0.5 -> 2^30 with shift 0; 1.0 -> 2^30 with shift 1; 0.25 -> shift -1.
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        let (m, s) = quantize_multiplier(0.0078125 * 0.3);
        let back = m as f64 * 2f64.powi(s - 31);
        assert!((back - 0.0078125 * 0.3).abs() < 1e-12);
    }

    #[test]
    fn frexp_matches_c() {
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        let tiny = f64::MIN_POSITIVE / 4.0;
        let (m, e) = frexp(tiny);
        assert_eq!(m * 2f64.powi(e), tiny);
    }
}
