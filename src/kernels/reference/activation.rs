//! RELU / RELU6 / LOGISTIC / PRELU / SOFTMAX reference arithmetic.
//!
//! * Quantized RELU/RELU6: TFLite `QuantizedReluX` + `ReluX` (requantize input -> output with
//!   `MultiplyByQuantizedMultiplier`, then clamp).
//! * Quantized LOGISTIC: TFLite `LUTPopulate<T>` (256-entry table built in Prepare, used by the
//!   kReference kernel for uint8 and int8).
//! * Float LOGISTIC: `reference_ops::Logistic<float>` (input clamped to [-100, 100]).
//! * PRELU: `reference_ops::Prelu` / `BroadcastPrelu4DSlow` (two multipliers).
//! * Float SOFTMAX: `reference_ops::Softmax(float)`.
//! * Quantized SOFTMAX (uint8 -> uint8, int8 -> int8): the gemmlowp fixed-point
//!   `reference_ops::Softmax<In, Out>` with `PreprocessSoftmaxScaling` parameters (what
//!   LiteRT 2.3.0's kReference kernel runs; the float-table `PopulateSoftmaxLookupTable` path
//!   is the optimized kernel's). Verified against LiteRT: the uint8 output's scale and zero
//!   point are ignored (always 1/256, 0).

use super::fixedpoint::{
    calculate_input_radius, exp_on_negative_values, get_reciprocal,
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
    preprocess_softmax_scaling, rescale, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};

/// TFLite `ReluX` for one raw value.
#[inline]
pub fn relu_x_quantized(
    q: i32,
    input_offset: i32,
    output_offset: i32,
    multiplier: i32,
    shift: i32,
    act_min: i32,
    act_max: i32,
) -> i32 {
    let v = output_offset + multiply_by_quantized_multiplier(q - input_offset, multiplier, shift);
    v.clamp(act_min, act_max)
}

/// TFLite `QuantizedReluX` activation bounds: `zp + (int)roundf(act / scale)` clamped to the
/// type range; an infinite `act_max` means the type maximum.
pub fn relu_x_bounds(
    act_min: f32,
    act_max: f32,
    scale: f32,
    zp: i32,
    qmin: i32,
    qmax: i32,
) -> (i32, i32) {
    let lo = qmin.max(zp + (act_min / scale).round() as i32);
    let hi = if act_max == f32::INFINITY {
        qmax
    } else {
        qmax.min(zp + (act_max / scale).round() as i32)
    };
    (lo, hi)
}

/// TFLite `LUTPopulateInt8` for the sigmoid transform `1 / (1 + exp(-x))` (float32 math).
/// The table is indexed by the raw byte (`q as u8`), as TFLite's.
pub fn logistic_lut(
    input_scale: f32,
    input_zp: i32,
    output_scale: f32,
    output_zp: i32,
    signed: bool,
) -> [u8; 256] {
    let mut lut = [0u8; 256];
    let inverse_scale = 1.0f32 / output_scale;
    let (minval, maxval) = if signed { (-128i32, 127i32) } else { (0, 255) };
    for val in minval..=maxval {
        let dequantized = input_scale * ((val - input_zp) as f32);
        let transformed = 1.0f32 / (1.0f32 + (-dequantized).exp());
        let rescaled = (transformed * inverse_scale).round();
        let quantized = (rescaled + output_zp as f32) as i32;
        lut[(val as u8) as usize] = quantized.clamp(minval, maxval) as u8;
    }
    lut
}

/// `reference_ops::Logistic<float>`.
#[inline]
pub fn logistic_f32(x: f32) -> f32 {
    let c = if x.is_nan() {
        x
    } else {
        x.clamp(-100.0, 100.0)
    };
    1.0f32 / (1.0f32 + (-c).exp())
}

/// Quantized PRELU parameters (`PreluParams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreluParams {
    pub input_offset: i32,
    pub alpha_offset: i32,
    pub output_offset: i32,
    pub output_multiplier_1: i32,
    pub output_shift_1: i32,
    pub output_multiplier_2: i32,
    pub output_shift_2: i32,
}

/// `reference_ops::Prelu` body: input >= 0 uses multiplier 1, else input*alpha with multiplier 2;
/// clamped to `[qmin, qmax]`.
#[inline]
pub fn prelu_quantized(x: i32, a: i32, p: &PreluParams, qmin: i32, qmax: i32) -> i32 {
    let input = p.input_offset + x;
    let out = if input >= 0 {
        multiply_by_quantized_multiplier(input, p.output_multiplier_1, p.output_shift_1)
    } else {
        let alpha = p.alpha_offset + a;
        multiply_by_quantized_multiplier(input * alpha, p.output_multiplier_2, p.output_shift_2)
    };
    (p.output_offset + out).clamp(qmin, qmax)
}

/// TFLite `ApplyPrelu<float>`: `x >= 0 ? x : x * alpha`.
#[inline]
pub fn prelu_f32(x: f32, alpha: f32) -> f32 {
    if x >= 0.0 {
        x
    } else {
        x * alpha
    }
}

/// `reference_ops::Softmax(float)` over rows of `depth` elements.
pub fn softmax_f32(input: &[f32], depth: usize, beta: f32, out: &mut [f32]) {
    for (row, orow) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let mut max = f32::MIN;
        for &v in row {
            max = if max < v { v } else { max };
        }
        let mut sum = 0.0f32;
        for &v in row {
            sum += ((v - max) * beta).exp();
        }
        for (o, &v) in orow.iter_mut().zip(row) {
            *o = ((v - max) * beta).exp() / sum;
        }
    }
}

/// Quantized SOFTMAX parameters (`SoftmaxParams` as `SoftmaxPrepare` fills them for
/// kReference): `PreprocessSoftmaxScaling(beta, input_scale, 5)` and
/// `diff_min = -CalculateInputRadius(5, input_left_shift)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxQuantParams {
    pub input_multiplier: i32,
    pub input_left_shift: i32,
    pub diff_min: i32,
}

/// Integer bits of the scaled input difference (Q5.26), TFLite's `kScaledDiffIntegerBits`.
pub const SOFTMAX_SCALED_DIFF_INTEGER_BITS: i32 = 5;
const SOFTMAX_ACCUMULATION_INTEGER_BITS: i32 = 12;

impl SoftmaxQuantParams {
    /// `None` when `beta * input_scale` is so small that TFLite's
    /// `QuantizeMultiplierGreaterThanOne` would get a negative shift (its DCHECK fails).
    pub fn new(beta: f32, input_scale: f32) -> Option<Self> {
        let (input_multiplier, input_left_shift) = preprocess_softmax_scaling(
            beta as f64,
            input_scale as f64,
            SOFTMAX_SCALED_DIFF_INTEGER_BITS,
        );
        if input_left_shift < 0 {
            return None;
        }
        let diff_min = -calculate_input_radius(SOFTMAX_SCALED_DIFF_INTEGER_BITS, input_left_shift);
        Some(SoftmaxQuantParams {
            input_multiplier,
            input_left_shift,
            diff_min,
        })
    }
}

/// `reference_ops::Softmax<InputT, OutputT>` (gemmlowp fixed point) for one row of raw values
/// widened to i32. `(qmin, qmax)` is the output type's range: the result is
/// `round(p * 256) + qmin`, so the output quantization is implicitly (1/256, qmin) whatever
/// the output tensor says (TFLite does not read it).
pub fn softmax_quantized_row(
    row: &[i32],
    p: &SoftmaxQuantParams,
    qmin: i32,
    qmax: i32,
    out: &mut [i32],
) {
    let max_in_row = row.iter().copied().max().unwrap_or(qmin);
    let scaled = |x: i32| -> Option<i32> {
        let diff = x - max_in_row;
        (diff >= p.diff_min).then(|| {
            multiply_by_quantized_multiplier_greater_than_one(
                diff,
                p.input_multiplier,
                p.input_left_shift,
            )
        })
    };
    let mut sum_of_exps = 0i32; // Q12.19
    for &x in row {
        if let Some(d) = scaled(x) {
            let e = exp_on_negative_values(d, SOFTMAX_SCALED_DIFF_INTEGER_BITS);
            sum_of_exps =
                sum_of_exps.wrapping_add(rescale(e, 0, SOFTMAX_ACCUMULATION_INTEGER_BITS));
        }
    }
    let (shifted_scale, num_bits_over_unit) =
        get_reciprocal(sum_of_exps, SOFTMAX_ACCUMULATION_INTEGER_BITS);
    for (o, &x) in out.iter_mut().zip(row) {
        *o = match scaled(x) {
            Some(d) => {
                let e = exp_on_negative_values(d, SOFTMAX_SCALED_DIFF_INTEGER_BITS);
                // 8-bit output: RoundingDivideByPOT(scale * exp, num_bits_over_unit + 31 - 8).
                let unsat = rounding_divide_by_pot(
                    saturating_rounding_doubling_high_mul(shifted_scale, e),
                    num_bits_over_unit + 31 - 8,
                );
                (unsat + qmin).clamp(qmin, qmax)
            }
            None => qmin,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_lut_spot_checks() {
        // Coral-like: in scale 0.1 zp 128 (uint8), out 1/256 zp 0.
        let lut = logistic_lut(0.1, 128, 1.0 / 256.0, 0, false);
        assert_eq!(lut[128], 128); // sigmoid(0)=0.5
        assert_eq!(lut[255], 255); // sigmoid(12.7)*256 -> 256 clamps
        for q in [0u8, 50, 100, 140, 200] {
            let x = 0.1f32 * (q as i32 - 128) as f32;
            let want = ((1.0 / (1.0 + (-x).exp())) * 256.0f32)
                .round()
                .clamp(0.0, 255.0) as u8;
            assert_eq!(lut[q as usize], want);
        }
        // int8 table indexed by the byte: out zp -128.
        let l8 = logistic_lut(0.1, 0, 1.0 / 256.0, -128, true);
        assert_eq!(l8[0] as i8, 0); // sigmoid(0)*256 - 128 = 0
        assert_eq!(l8[(-128i8) as u8 as usize] as i8, -128);
    }

    #[test]
    fn relu_quantized() {
        // identity multiplier (1.0 = 2^30 with shift 1), zp 10: relu6 with scale 0.1 -> [10, 70]
        let (lo, hi) = relu_x_bounds(0.0, 6.0, 0.1, 10, 0, 255);
        assert_eq!((lo, hi), (10, 70));
        assert_eq!(relu_x_quantized(5, 10, 10, 1 << 30, 1, lo, hi), 10);
        assert_eq!(relu_x_quantized(50, 10, 10, 1 << 30, 1, lo, hi), 50);
        assert_eq!(relu_x_quantized(90, 10, 10, 1 << 30, 1, lo, hi), 70);
        let (lo, hi) = relu_x_bounds(0.0, f32::INFINITY, 0.1, -5, -128, 127);
        assert_eq!((lo, hi), (-5, 127));
    }

    #[test]
    fn prelu_cases() {
        let p = PreluParams {
            input_offset: 0,
            alpha_offset: 0,
            output_offset: 0,
            output_multiplier_1: 1 << 30,
            output_shift_1: 1,
            output_multiplier_2: 1 << 30,
            output_shift_2: -1, // 0.25
        };
        assert_eq!(prelu_quantized(10, 2, &p, -128, 127), 10);
        assert_eq!(prelu_quantized(-10, 2, &p, -128, 127), -5); // -20 * 0.25
        assert_eq!(prelu_quantized(-100, 8, &p, -128, 127), -128);
    }

    fn qsoftmax(row: &[i32], input_scale: f32, qmin: i32, qmax: i32) -> Vec<i32> {
        let p = SoftmaxQuantParams::new(1.0, input_scale).unwrap();
        let mut out = vec![0; row.len()];
        softmax_quantized_row(row, &p, qmin, qmax, &mut out);
        out
    }

    #[test]
    fn quantized_softmax_uniform_row() {
        // Four equal inputs: p = 1/4 each -> 64 (uint8), -64 (int8).
        assert_eq!(qsoftmax(&[7; 4], 0.1, 0, 255), [64; 4]);
        assert_eq!(qsoftmax(&[-3; 4], 0.1, -128, 127), [-64; 4]);
        // One dominant value: 256 clamps to 255; far-below values are skipped (diff_min).
        assert_eq!(qsoftmax(&[255, 0], 0.1, 0, 255), [255, 0]);
    }

    #[test]
    fn quantized_softmax_u8_ignores_output_quantization() {
        // LiteRT 2.3.0 BUILTIN_REF, uint8 in (0.1, 128), out declared (1/128, 10), beta 1:
        // the result is round(p * 256), as if the output were (1/256, 0).
        let row = [128, 130, 140, 120, 128, 129];
        assert_eq!(qsoftmax(&row, 0.1, 0, 255), [32, 39, 105, 14, 32, 35]);
    }

    #[test]
    fn quantized_softmax_is_fixed_point_not_float_lut() {
        // LiteRT 2.3.0 BUILTIN_REF outputs; the float lookup-table kernel gives 250 and -121.
        let row = [110, 140, 71, 162, 96, 17, 245, 99];
        assert_eq!(
            qsoftmax(&row, 0.048_965_63, 0, 255),
            [0, 1, 0, 4, 0, 0, 249, 0]
        );
        let row = [14, -85, -99, 46, -26, -91, 123, -102];
        assert_eq!(
            qsoftmax(&row, 0.031_201_415, -128, 127),
            [-120, -128, -128, -108, -126, -128, 97, -128]
        );
    }

    #[test]
    fn softmax_rows() {
        let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
        let mut o = [0.0f32; 6];
        softmax_f32(&x, 3, 1.0, &mut o);
        let e: f32 = (1.0f32 - 3.0).exp() + (2.0f32 - 3.0).exp() + 1.0;
        assert_eq!(o[2], 1.0 / e);
        assert!((o[3] - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(logistic_f32(0.0), 0.5);
        assert_eq!(prelu_f32(-2.0, 0.5), -1.0);
    }
}
