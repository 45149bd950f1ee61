//! DEPTHWISE_CONV_2D reference kernels.
//!
//! Mirrors TFLite `reference_ops::DepthwiseConv` (float32, and uint8 via
//! `DepthwiseConvBasicKernel<kUpward>::Run`, which rounds with `MultiplyByQuantizedMultiplier`)
//! and `reference_integer_ops::DepthwiseConvPerChannel` (int8; its 32-channel chunking does not
//! change integer results). Filter layout `[1, KH, KW, I*M]`; output channel
//! `oc = ic * depth_multiplier + m` reads input channel `ic`, and the per-channel quantization
//! index is the output channel. `ConvGeometry::out_c` must equal `in_c * depth_multiplier`.

use crate::model::Activation;

use super::conv::{clamp_f32, ConvGeometry, QuantParams, Q8};
use super::fixedpoint::activation_range_f32;

/// Float depthwise conv: `total += in * w` over (ky, kx), then `total + bias`, then clamp.
pub fn depthwise_f32(
    g: &ConvGeometry,
    depth_multiplier: usize,
    activation: Activation,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (lo, hi) = activation_range_f32(activation);
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let out_base = g.output_offset(b, oy, ox);
                for ic in 0..g.in_c {
                    for m in 0..depth_multiplier {
                        let oc = m + ic * depth_multiplier;
                        let mut total = 0.0f32;
                        for fy in 0..g.filter_h {
                            for fx in 0..g.filter_w {
                                let (Some(iy), Some(ix)) = (g.in_y(oy, fy), g.in_x(ox, fx)) else {
                                    continue;
                                };
                                let iv = input[g.input_offset(b, iy, ix) + ic];
                                let fv = filter[(fy * g.filter_w + fx) * g.out_c + oc];
                                total += iv * fv;
                            }
                        }
                        let bias_value = bias.map_or(0.0, |bias| bias[oc]);
                        output[out_base + oc] = clamp_f32(total + bias_value, lo, hi);
                    }
                }
            }
        }
    }
}

/// Quantized depthwise conv: `acc += (w + filter_offset) * (in + input_offset)` over (ky, kx),
/// then [`QuantParams::requantize`] with output channel `oc`.
pub fn depthwise_q8<T: Q8>(
    g: &ConvGeometry,
    depth_multiplier: usize,
    q: &QuantParams,
    input: &[T],
    filter: &[T],
    bias: Option<&[i32]>,
    output: &mut [T],
) {
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let out_base = g.output_offset(b, oy, ox);
                for ic in 0..g.in_c {
                    for m in 0..depth_multiplier {
                        let oc = m + ic * depth_multiplier;
                        let mut acc: i32 = 0;
                        for fy in 0..g.filter_h {
                            for fx in 0..g.filter_w {
                                let (Some(iy), Some(ix)) = (g.in_y(oy, fy), g.in_x(ox, fx)) else {
                                    continue;
                                };
                                let iv =
                                    input[g.input_offset(b, iy, ix) + ic].to_i32() + q.input_offset;
                                let fv = filter[(fy * g.filter_w + fx) * g.out_c + oc].to_i32()
                                    + q.filter_offset;
                                acc = acc.wrapping_add(fv * iv);
                            }
                        }
                        output[out_base + oc] = T::from_i32(q.requantize(acc, bias, oc));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::conv::window_out_and_pad;
    use crate::kernels::reference::fixedpoint::quantize_multiplier;

    fn geom(in_hw: usize, in_c: usize, mult: usize, k: usize, stride: usize) -> ConvGeometry {
        let (o, p) = window_out_and_pad(true, in_hw, k, stride, 1);
        ConvGeometry {
            batches: 1,
            in_h: in_hw,
            in_w: in_hw,
            in_c,
            out_h: o as usize,
            out_w: o as usize,
            out_c: in_c * mult,
            filter_h: k,
            filter_w: k,
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_h: p,
            pad_w: p,
        }
    }

    #[test]
    fn float_depth_multiplier_2_same_stride2() {
        // 3x3 input, 1 channel, values 1..9; 3x3 filter, multiplier 2: m0 all ones, m1 centre 1.
        let g = geom(3, 1, 2, 3, 2);
        assert_eq!((g.out_h, g.pad_h), (2, 1));
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut filter = vec![0.0f32; 18];
        for t in 0..9 {
            filter[t * 2] = 1.0;
        }
        filter[4 * 2 + 1] = 1.0;
        let mut out = vec![0.0f32; 8];
        depthwise_f32(&g, 2, Activation::None, &input, &filter, None, &mut out);
        // out (0,0) centred on in (0,0): sum of rows 0-1, cols 0-1 = 1+2+4+5 = 12; centre = 1
        // out (0,1) centred on (0,2): 2+3+5+6 = 16; centre 3
        // out (1,0) centred on (2,0): 4+5+7+8 = 24; centre 7
        // out (1,1) centred on (2,2): 5+6+8+9 = 28; centre 9
        assert_eq!(out, vec![12.0, 1.0, 16.0, 3.0, 24.0, 7.0, 28.0, 9.0]);
    }

    #[test]
    fn int8_per_channel_index_is_output_channel() {
        // 1x1 input with 2 channels, multiplier 2 -> 4 output channels with distinct scales.
        let g = geom(1, 2, 2, 1, 1);
        let scales = [1.0, 0.5, 0.25, 2.0];
        let (multipliers, shifts): (Vec<i32>, Vec<i32>) =
            scales.iter().map(|&s| quantize_multiplier(s)).unzip();
        let q = QuantParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: 1,
            multipliers,
            shifts,
            act_min: -128,
            act_max: 127,
            float_scales: None,
        };
        let input: Vec<i8> = vec![10, -6];
        let filter: Vec<i8> = vec![1, 2, 3, 4]; // oc0,oc1 read ic0; oc2,oc3 read ic1
        let mut out = vec![0i8; 4];
        depthwise_q8(&g, 2, &q, &input, &filter, Some(&[0, 0, 1, 0]), &mut out);
        // oc0 10*1*1 = 10+1; oc1 20*0.5 = 10+1; oc2 (-18+1)*0.25 = -4.25 -> -4 +1;
        // oc3 -24*2 = -48+1
        assert_eq!(out, vec![11, 11, -3, -47]);
    }
}
