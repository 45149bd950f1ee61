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

/// gemmlowp `SaturatingRoundingMultiplyByPOT<exponent>` for `exponent >= 0`: a left shift
/// that saturates to `i32::MIN`/`i32::MAX` (exponent < 0 is [`rounding_divide_by_pot`]).
#[inline]
pub fn saturating_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..31).contains(&exponent));
    let threshold = (1i32 << (31 - exponent)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x.wrapping_shl(exponent as u32)
    }
}

/// gemmlowp `Rescale<dst_bits>` of a fixed-point raw value with `src_bits` integer bits.
#[inline]
pub fn rescale(x: i32, src_bits: i32, dst_bits: i32) -> i32 {
    let exponent = src_bits - dst_bits;
    if exponent >= 0 {
        saturating_multiply_by_pot(x, exponent)
    } else {
        rounding_divide_by_pot(x, -exponent)
    }
}

/// gemmlowp `RoundingHalfSum` (int32): `(a + b + sign) / 2` in 64 bits, truncating.
#[inline]
pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl` (Q0.31 in and out).
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    let mul = saturating_rounding_doubling_high_mul;
    const CONSTANT_TERM: i32 = 1895147668; // exp(-1/8)
    const CONSTANT_1_OVER_3: i32 = 715827883;
    let x = a.wrapping_add(1 << 28); // + 1/8
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let poly = rounding_divide_by_pot(
        mul(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2),
        1,
    );
    CONSTANT_TERM.wrapping_add(mul(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// gemmlowp `exp_on_negative_values` for a raw fixed-point `a <= 0` with `integer_bits`
/// integer bits (`1..=5`, as TFLite uses); returns Q0.31.
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    debug_assert!((1..=5).contains(&integer_bits));
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // Barrel shifter: multiply by exp(-2^e) for every set bit of the remainder.
    const MULTIPLIERS: [(i32, i32); 7] = [
        (-2, 1672461947),
        (-1, 1302514674),
        (0, 790015084),
        (1, 290630308),
        (2, 39332535),
        (3, 720401),
        (4, 242),
    ];
    for (exponent, multiplier) in MULTIPLIERS {
        if integer_bits > exponent {
            let shift = fractional_bits + exponent;
            if remainder & (1 << shift) != 0 {
                result = saturating_rounding_doubling_high_mul(result, multiplier);
            }
        }
    }
    if a == 0 {
        result = i32::MAX; // ResultF::One()
    }
    result
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out; Newton-Raphson in Q2.29).
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let mul = saturating_rounding_doubling_high_mul;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    const CONSTANT_48_OVER_17: i32 = 1515870810;
    const CONSTANT_NEG_32_OVER_17: i32 = -1010580540;
    const ONE_Q2: i32 = 1 << 29;
    let mut x = CONSTANT_48_OVER_17.wrapping_add(mul(half_denominator, CONSTANT_NEG_32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = mul(half_denominator, x);
        let one_minus = ONE_Q2.wrapping_sub(half_denominator_times_x);
        // F2 * F2 = F4, Rescale<2>.
        x = x.wrapping_add(rescale(mul(x, one_minus), 4, 2));
    }
    // ExactMulByPot<-1> (Q2 -> Q1, same raw), then Rescale<0>.
    rescale(x, 1, 0)
}

/// TFLite `GetReciprocal(x, x_integer_digits, &num_bits_over_unit)`: returns
/// `(shifted_scale_raw, num_bits_over_unit)`.
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one =
        ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1u32 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

/// TFLite `PreprocessSoftmaxScaling` (double-rounding build): `(multiplier, left_shift)` of
/// `min(beta * input_scale * 2^(31 - input_integer_bits), 2^31 - 1)`.
pub fn preprocess_softmax_scaling(
    beta: f64,
    input_scale: f64,
    input_integer_bits: i32,
) -> (i32, i32) {
    let max_real_multiplier = ((1i64 << 31) - 1) as f64;
    let real =
        (beta * input_scale * (1i64 << (31 - input_integer_bits)) as f64).min(max_real_multiplier);
    quantize_multiplier(real)
}

/// TFLite `CalculateInputRadius(input_integer_bits, input_left_shift, 31)`.
pub fn calculate_input_radius(input_integer_bits: i32, input_left_shift: i32) -> i32 {
    let max_input_rescaled = ((1i64 << input_integer_bits) - 1) as f64
        * (1i64 << (31 - input_integer_bits)) as f64
        / (1i64 << input_left_shift) as f64;
    max_input_rescaled.floor() as i32
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
    fn gemmlowp_exp_and_reciprocal_approximate_the_reals() {
        let q31 = |v: f64| (v * 2f64.powi(31)) as i64;
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
        for x in [-0.1f64, -0.25, -1.0, -3.3, -10.0] {
            let raw = (x * 2f64.powi(26)) as i32; // Q5.26
            let got = exp_on_negative_values(raw, 5) as i64;
            assert!((got - q31(x.exp())).abs() < 1 << 12, "exp({x}): {got}");
        }
        for x in [0.0f64, 0.3, 0.5, 0.99] {
            let got = one_over_one_plus_x_for_x_in_0_1(q31(x).min(i32::MAX as i64) as i32) as i64;
            assert!(
                (got - q31(1.0 / (1.0 + x)).min(i32::MAX as i64)).abs() < 1 << 4,
                "{x}"
            );
        }
        // 3.0 in Q12.19: 1/3 = 0.666.. * 2^-1 -> num_bits_over_unit 1.
        let (scale, bits) = get_reciprocal(3 << 19, 12);
        assert_eq!(bits, 1);
        assert!((scale as i64 - q31(2.0 / 3.0)).abs() < 1 << 4);
        assert_eq!(calculate_input_radius(5, 23), 248);
    }

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
