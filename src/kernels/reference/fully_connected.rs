//! FULLY_CONNECTED reference kernels.
//!
//! Mirrors LiteRT's `reference_ops::FullyConnected` (float32, and uint8 with float scales) and
//! `reference_integer_ops::FullyConnected` / `FullyConnectedPerChannel` (int8, the overloads
//! taking float scales), which is what the `kReference` FULLY_CONNECTED kernel of LiteRT 2.x
//! calls. Unlike conv, these requantize in double precision, not with a fixed-point multiplier:
//! `acc_scaled = (int32_t)round((double)acc * ((double)in_scale * (double)filter_scale /
//! (double)out_scale))`. Weights are `[O, I]`; the input is read as `[batches, I]` row-major;
//! the output is `[batches, O]`.

use crate::model::Activation;

use super::conv::{clamp_f32, Q8};
use super::fixedpoint::activation_range_f32;

/// Requantization of a quantized fully connected op.
#[derive(Clone, Debug, PartialEq)]
pub struct FcQuantParams {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `-weights_zero_point` for per-tensor weights; 0 for per-channel weights (symmetric).
    pub filter_offset: i32,
    pub output_offset: i32,
    /// `(double)in_scale * (double)filter_scale[c] / (double)out_scale`, one per output channel.
    pub effective_scales: Vec<f64>,
    pub act_min: i32,
    pub act_max: i32,
}

impl FcQuantParams {
    /// Bias add, double-precision rescale with C `round` (half away from zero), offset, clamp.
    #[inline]
    pub fn requantize(&self, acc: i32, bias: Option<&[i32]>, c: usize) -> i32 {
        let mut acc = acc;
        if let Some(bias) = bias {
            acc = acc.wrapping_add(bias[c]);
        }
        // `as i32` saturates where C++'s cast would be undefined; never reached for 8-bit ops.
        let scaled = (acc as f64 * self.effective_scales[c]).round() as i32;
        scaled
            .wrapping_add(self.output_offset)
            .max(self.act_min)
            .min(self.act_max)
    }
}

/// Float FC: `total += in[b, d] * w[o, d]` for `d` ascending, then `total + bias`, then clamp.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_f32(
    batches: usize,
    accum_depth: usize,
    output_depth: usize,
    activation: Activation,
    input: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (lo, hi) = activation_range_f32(activation);
    for b in 0..batches {
        let x = &input[b * accum_depth..(b + 1) * accum_depth];
        for o in 0..output_depth {
            let w = &weights[o * accum_depth..(o + 1) * accum_depth];
            let mut total = 0.0f32;
            for d in 0..accum_depth {
                total += x[d] * w[d];
            }
            let bias_value = bias.map_or(0.0, |bias| bias[o]);
            output[b * output_depth + o] = clamp_f32(total + bias_value, lo, hi);
        }
    }
}

/// Quantized FC: `acc += (w + filter_offset) * (in + input_offset)`, then
/// [`FcQuantParams::requantize`] with output channel `o`.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_q8<T: Q8>(
    batches: usize,
    accum_depth: usize,
    output_depth: usize,
    q: &FcQuantParams,
    input: &[T],
    weights: &[T],
    bias: Option<&[i32]>,
    output: &mut [T],
) {
    for b in 0..batches {
        let x = &input[b * accum_depth..(b + 1) * accum_depth];
        for o in 0..output_depth {
            let w = &weights[o * accum_depth..(o + 1) * accum_depth];
            let mut acc: i32 = 0;
            for d in 0..accum_depth {
                let iv = x[d].to_i32() + q.input_offset;
                let wv = w[d].to_i32() + q.filter_offset;
                acc = acc.wrapping_add(wv * iv);
            }
            output[b * output_depth + o] = T::from_i32(q.requantize(acc, bias, o));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_two_batches_relu() {
        let input = [1.0f32, 2.0, 3.0, -1.0, -2.0, -3.0];
        let weights = [1.0f32, 0.0, 1.0, 0.5, 0.5, 0.5];
        let mut out = [0.0f32; 4];
        fully_connected_f32(
            2,
            3,
            2,
            Activation::Relu,
            &input,
            &weights,
            Some(&[0.25, -10.0]),
            &mut out,
        );
        // b0: 4 + 0.25, 3 - 10 -> 0; b1: -4 + 0.25 -> 0, -3 - 10 -> 0
        assert_eq!(out, [4.25, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn uint8_offsets_and_rounding() {
        let q = FcQuantParams {
            input_offset: -127,
            filter_offset: -128,
            output_offset: 128,
            effective_scales: vec![1.0 / 3.0],
            act_min: 0,
            act_max: 255,
        };
        let input: [u8; 2] = [137, 117]; // +10, -10
        let weights: [u8; 2] = [129, 130]; // +1, +2
        let mut out = [0u8; 1];
        fully_connected_q8(1, 2, 1, &q, &input, &weights, Some(&[-2]), &mut out);
        // 10 - 20 - 2 = -12 -> -4 -> +128 = 124
        assert_eq!(out, [124]);
    }

    #[test]
    fn int8_per_channel() {
        let q = FcQuantParams {
            input_offset: 3,
            filter_offset: 0,
            output_offset: 0,
            effective_scales: vec![0.5, 0.125],
            act_min: -128,
            act_max: 127,
        };
        let input: [i8; 2] = [-3, 7]; // +0, +10
        let weights: [i8; 4] = [100, 100, -100, 127];
        let mut out = [0i8; 2];
        fully_connected_q8(1, 2, 2, &q, &input, &weights, None, &mut out);
        // ch0: 1000 * 0.5 = 500 -> 127; ch1: 1270 * 0.125 = 158.75 -> 127
        assert_eq!(out, [127, 127]);
        let weights: [i8; 4] = [1, 1, -1, -5];
        fully_connected_q8(1, 2, 2, &q, &input, &weights, None, &mut out);
        // ch0: 10*0.5 = 5; ch1: -50 * 0.125 = -6.25 -> -6
        assert_eq!(out, [5, -6]);
    }

    #[test]
    fn double_rounding_regression_fc_uint8_half_case() {
        // LiteRT case: acc -5984 * 0.0099431... = -59.4995 rounds to -59 in double; the
        // fixed-point MultiplyByQuantizedMultiplier path would give -60 (double rounding).
        let eff = 0.011_715_796_f32 as f64 * 0.032_864_984_f32 as f64 / 0.038_724_307_f32 as f64;
        let q = FcQuantParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: 132,
            effective_scales: vec![eff],
            act_min: 0,
            act_max: 255,
        };
        assert_eq!(q.requantize(-5984, None, 0), 73);
    }
}
