//! FULLY_CONNECTED reference kernels.
//!
//! Mirrors TFLite `reference_ops::FullyConnected` (float32, uint8) and
//! `reference_integer_ops::FullyConnected` / `FullyConnectedPerChannel` (int8). Weights are
//! `[O, I]`; the input is read as `[batches, I]` row-major; the output is `[batches, O]`.

use crate::model::Activation;

use super::conv::{clamp_f32, QuantParams, Q8};
use super::fixedpoint::activation_range_f32;

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
/// [`QuantParams::requantize`] with output channel `o`.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_q8<T: Q8>(
    batches: usize,
    accum_depth: usize,
    output_depth: usize,
    q: &QuantParams,
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
    use crate::kernels::reference::fixedpoint::quantize_multiplier;

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
        let (m, s) = quantize_multiplier(1.0 / 3.0);
        let q = QuantParams {
            input_offset: -127,
            filter_offset: -128,
            output_offset: 128,
            multipliers: vec![m],
            shifts: vec![s],
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
        let (m0, s0) = quantize_multiplier(0.5);
        let (m1, s1) = quantize_multiplier(0.125);
        let q = QuantParams {
            input_offset: 3,
            filter_offset: 0,
            output_offset: 0,
            multipliers: vec![m0, m1],
            shifts: vec![s0, s1],
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
}
