//! CONV_2D reference kernels, plus the window geometry shared by depthwise conv and pooling.
//!
//! Mirrors TFLite `reference_ops::Conv` (float32 and uint8) and
//! `reference_integer_ops::ConvPerChannel` (int8), and the padding arithmetic of
//! `tensorflow/lite/kernels/padding.h` (`ComputeOutSize`, `ComputePaddingWithOffset`).
//! Layouts: activations NHWC, filter `[O, KH, KW, I]`. Taps outside the image are skipped
//! (zero padding in the real domain, i.e. the input zero point for quantized data).

use crate::model::Activation;

use super::fixedpoint::{activation_range_f32, multiply_by_quantized_multiplier};

/// An 8-bit quantized element (uint8 or int8), widened to `i32` for accumulation.
pub trait Q8: Copy + Default + Send + Sync + 'static {
    const MIN: i32;
    const MAX: i32;
    fn to_i32(self) -> i32;
    /// Narrowing cast; callers clamp to `[MIN, MAX]` first (C++ `static_cast`).
    fn from_i32(v: i32) -> Self;
}

impl Q8 for u8 {
    const MIN: i32 = 0;
    const MAX: i32 = 255;
    #[inline]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v as u8
    }
}

impl Q8 for i8 {
    const MIN: i32 = -128;
    const MAX: i32 = 127;
    #[inline]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v as i8
    }
}

/// TFLite `ActivationFunctionWithMinMax`: `std::min(std::max(x, lo), hi)` (NaN passes through).
#[inline]
pub fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    let v = if x < lo { lo } else { x };
    if hi < v {
        hi
    } else {
        v
    }
}

/// Output size and leading padding of one spatial dimension, exactly as TFLite's
/// `ComputeOutSize` + `ComputePaddingWithOffset` (C++ `int` arithmetic, division truncating
/// toward zero). `out` may be `<= 0` for VALID windows larger than the input: callers reject it.
pub fn window_out_and_pad(
    same_padding: bool,
    in_size: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
) -> (i64, usize) {
    let (in_size, filter, stride, dilation) = (
        in_size as i64,
        filter as i64,
        stride as i64,
        dilation as i64,
    );
    let effective_filter = (filter - 1) * dilation + 1;
    if stride == 0 {
        return (0, 0);
    }
    let out = if same_padding {
        (in_size + stride - 1) / stride
    } else {
        (in_size + stride - effective_filter) / stride
    };
    let total_padding = ((out - 1) * stride + effective_filter - in_size).max(0);
    (out, (total_padding / 2) as usize)
}

/// Shapes, strides and padding of a 2-D windowed op over NHWC data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batches: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub filter_h: usize,
    pub filter_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    /// Top padding (`padding_values.height`).
    pub pad_h: usize,
    /// Left padding (`padding_values.width`).
    pub pad_w: usize,
}

impl ConvGeometry {
    /// Input row/column of filter tap `f` for output position `o`, or `None` when outside.
    #[inline]
    pub fn in_y(&self, out_y: usize, filter_y: usize) -> Option<usize> {
        tap(
            out_y,
            self.stride_h,
            self.pad_h,
            filter_y,
            self.dilation_h,
            self.in_h,
        )
    }

    #[inline]
    pub fn in_x(&self, out_x: usize, filter_x: usize) -> Option<usize> {
        tap(
            out_x,
            self.stride_w,
            self.pad_w,
            filter_x,
            self.dilation_w,
            self.in_w,
        )
    }

    /// Offset of element `(b, y, x, 0)` in the NHWC input.
    #[inline]
    pub fn input_offset(&self, b: usize, y: usize, x: usize) -> usize {
        ((b * self.in_h + y) * self.in_w + x) * self.in_c
    }

    #[inline]
    pub fn output_offset(&self, b: usize, y: usize, x: usize) -> usize {
        ((b * self.out_h + y) * self.out_w + x) * self.out_c
    }

    pub fn input_len(&self) -> usize {
        self.batches * self.in_h * self.in_w * self.in_c
    }

    pub fn output_len(&self) -> usize {
        self.batches * self.out_h * self.out_w * self.out_c
    }
}

/// `in = out * stride - pad + f * dilation`, if inside `[0, size)`.
#[inline]
fn tap(
    out: usize,
    stride: usize,
    pad: usize,
    f: usize,
    dilation: usize,
    size: usize,
) -> Option<usize> {
    let pos = (out * stride + f * dilation) as isize - pad as isize;
    if pos >= 0 && (pos as usize) < size {
        Some(pos as usize)
    } else {
        None
    }
}

/// Requantization of an int32 accumulator: per output channel multiplier/shift (per-tensor
/// quantization repeats one value), offsets and the fused activation clamp.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantParams {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `-filter_zero_point` (always 0 for int8 weights).
    pub filter_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// One per output channel.
    pub multipliers: Vec<i32>,
    pub shifts: Vec<i32>,
    pub act_min: i32,
    pub act_max: i32,
    /// `Some` for ONNX Runtime numerics ([`crate::model::RequantMode::OnnxRuntime`]): one float
    /// scale per output channel replaces `multipliers`/`shifts`. SIMD kernels reproduce it
    /// with their `fp32rq` epilogue (`kernels::requant`).
    pub float_scales: Option<Vec<f32>>,
}

impl QuantParams {
    /// Bias add, rescale, offset and clamp of output channel `c` (the common tail of TFLite's
    /// quantized conv, depthwise and fully connected reference kernels).
    #[inline]
    pub fn requantize(&self, acc: i32, bias: Option<&[i32]>, c: usize) -> i32 {
        let mut acc = acc;
        if let Some(bias) = bias {
            acc = acc.wrapping_add(bias[c]);
        }
        if let Some(scales) = &self.float_scales {
            return requantize_float_round_even(
                acc,
                scales[c],
                self.output_offset,
                self.act_min,
                self.act_max,
            );
        }
        acc = multiply_by_quantized_multiplier(acc, self.multipliers[c], self.shifts[c]);
        acc = acc.wrapping_add(self.output_offset);
        acc.max(self.act_min).min(self.act_max)
    }
}

/// MLAS `MlasRequantizeOutput` (ONNX Runtime CPU EP): `float(acc) * scale` (the int→float
/// conversion and the product both round to nearest even), clamped to `[lo - zp, hi - zp]` in
/// float, converted with round half to even (`cvtps2dq` under the default MXCSR), plus the zero
/// point. Clamping before rounding gives the same result as after because the bounds are
/// integers.
#[inline]
pub fn requantize_float_round_even(acc: i32, scale: f32, zero_point: i32, lo: i32, hi: i32) -> i32 {
    let v = acc as f32 * scale;
    let v = v
        .max((lo - zero_point) as f32)
        .min((hi - zero_point) as f32);
    v.round_ties_even() as i32 + zero_point
}

/// Float CONV_2D (`reference_ops::Conv`, float): `total += in * w` over (ky, kx, ic) in that
/// order, then `total + bias`, then the activation clamp.
pub fn conv_f32(
    g: &ConvGeometry,
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
                for oc in 0..g.out_c {
                    let mut total = 0.0f32;
                    for fy in 0..g.filter_h {
                        let Some(iy) = g.in_y(oy, fy) else { continue };
                        for fx in 0..g.filter_w {
                            let Some(ix) = g.in_x(ox, fx) else { continue };
                            let in_base = g.input_offset(b, iy, ix);
                            let f_base = ((oc * g.filter_h + fy) * g.filter_w + fx) * g.in_c;
                            for ic in 0..g.in_c {
                                total += input[in_base + ic] * filter[f_base + ic];
                            }
                        }
                    }
                    let bias_value = bias.map_or(0.0, |bias| bias[oc]);
                    output[out_base + oc] = clamp_f32(total + bias_value, lo, hi);
                }
            }
        }
    }
}

/// Quantized CONV_2D: `acc += (w + filter_offset) * (in + input_offset)`, then
/// [`QuantParams::requantize`]. With uint8 and one multiplier this is `reference_ops::Conv`
/// (uint8); with int8 and `filter_offset == 0` it is `reference_integer_ops::ConvPerChannel`.
pub fn conv_q8<T: Q8>(
    g: &ConvGeometry,
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
                for oc in 0..g.out_c {
                    let mut acc: i32 = 0;
                    for fy in 0..g.filter_h {
                        let Some(iy) = g.in_y(oy, fy) else { continue };
                        for fx in 0..g.filter_w {
                            let Some(ix) = g.in_x(ox, fx) else { continue };
                            let in_base = g.input_offset(b, iy, ix);
                            let f_base = ((oc * g.filter_h + fy) * g.filter_w + fx) * g.in_c;
                            for ic in 0..g.in_c {
                                let iv = input[in_base + ic].to_i32() + q.input_offset;
                                let fv = filter[f_base + ic].to_i32() + q.filter_offset;
                                acc = acc.wrapping_add(fv * iv);
                            }
                        }
                    }
                    output[out_base + oc] = T::from_i32(q.requantize(acc, bias, oc));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::fixedpoint::quantize_multiplier;

    fn geom(
        in_hw: (usize, usize),
        in_c: usize,
        out_c: usize,
        k: (usize, usize),
        stride: usize,
        dilation: usize,
        same: bool,
    ) -> ConvGeometry {
        let (oh, ph) = window_out_and_pad(same, in_hw.0, k.0, stride, dilation);
        let (ow, pw) = window_out_and_pad(same, in_hw.1, k.1, stride, dilation);
        ConvGeometry {
            batches: 1,
            in_h: in_hw.0,
            in_w: in_hw.1,
            in_c,
            out_h: oh as usize,
            out_w: ow as usize,
            out_c,
            filter_h: k.0,
            filter_w: k.1,
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_h: ph,
            pad_w: pw,
        }
    }

    #[test]
    fn padding_matches_tflite_formulas() {
        // SAME, stride 2, 3x3 on 5: out 3, total pad (2*2+3-5)=2 -> 1.
        assert_eq!(window_out_and_pad(true, 5, 3, 2, 1), (3, 1));
        // SAME, stride 2, 3x3 on 4: out 2, total pad (2+3-4)=1 -> 0 (extra goes bottom/right).
        assert_eq!(window_out_and_pad(true, 4, 3, 2, 1), (2, 0));
        // SAME with dilation 2: effective 5 on 5, stride 1 -> pad 2.
        assert_eq!(window_out_and_pad(true, 5, 3, 1, 2), (5, 2));
        // VALID: out = (5 + 1 - 3) / 1 = 3, no padding.
        assert_eq!(window_out_and_pad(false, 5, 3, 1, 1), (3, 0));
        assert_eq!(window_out_and_pad(false, 7, 3, 2, 2), (2, 0));
        // VALID window bigger than the input: C++ truncation gives 0.
        assert_eq!(window_out_and_pad(false, 2, 3, 2, 1).0, 0);
    }

    #[test]
    fn float_same_stride2() {
        // 4x4 input 1..16, 3x3 filter of ones, SAME, stride 2: pad 0 (extra on bottom/right).
        let g = geom((4, 4), 1, 1, (3, 3), 2, 1, true);
        assert_eq!((g.out_h, g.out_w, g.pad_h, g.pad_w), (2, 2, 0, 0));
        let input: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let filter = vec![1.0f32; 9];
        let mut out = vec![0.0f32; 4];
        conv_f32(
            &g,
            Activation::None,
            &input,
            &filter,
            Some(&[0.5]),
            &mut out,
        );
        // (0,0): rows 0-2, cols 0-2 = 1+2+3+5+6+7+9+10+11 = 54
        // (0,1): rows 0-2, cols 2-3 = 3+4+7+8+11+12 = 45
        // (1,0): rows 2-3, cols 0-2 = 9+10+11+13+14+15 = 72
        // (1,1): rows 2-3, cols 2-3 = 11+12+15+16 = 54
        assert_eq!(out, vec![54.5, 45.5, 72.5, 54.5]);
    }

    #[test]
    fn float_dilation_and_relu6() {
        // 5x5 input, 2x2 filter dilation 2, VALID -> 3x3 output; taps (y,x),(y,x+2),(y+2,x),...
        let g = geom((5, 5), 1, 2, (2, 2), 1, 2, false);
        assert_eq!((g.out_h, g.out_w), (3, 3));
        let input: Vec<f32> = (0..25).map(|v| v as f32).collect();
        // oc 0: [1, 0, 0, 0] picks in(y, x); oc 1: [0, 0, 0, -1] picks -in(y+2, x+2)
        let filter = vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0];
        let mut out = vec![0.0f32; 18];
        conv_f32(&g, Activation::Relu6, &input, &filter, None, &mut out);
        // oc0 at (0,0) = 0, (0,1) = 1, (0,2) = 2 -> clamp 6 applies from (1,1)=6.
        assert_eq!(out[0], 0.0);
        assert_eq!(out[2], 1.0);
        assert_eq!(out[2 * 4], 6.0); // (1,1) = in(1,1) = 6
        assert_eq!(out[2 * 8], 6.0); // (2,2) = 12 clamped
        assert!(out.iter().skip(1).step_by(2).all(|&v| v == 0.0)); // negative -> 0
    }

    #[test]
    fn uint8_matches_hand_requantization() {
        // 1x1 conv, 2 input channels, input zp 128, filter zp 100, output zp 10.
        let g = geom((1, 2), 2, 1, (1, 1), 1, 1, false);
        let (m, s) = quantize_multiplier(0.25);
        let q = QuantParams {
            input_offset: -128,
            filter_offset: -100,
            output_offset: 10,
            multipliers: vec![m],
            shifts: vec![s],
            act_min: 0,
            act_max: 255,
            float_scales: None,
        };
        let input: Vec<u8> = vec![130, 126, 128, 138];
        let filter: Vec<u8> = vec![104, 96];
        let mut out = vec![0u8; 2];
        conv_q8(&g, &q, &input, &filter, Some(&[6]), &mut out);
        // x0: (4*2 + -4*-2) + 6 = 22 -> *0.25 = 5.5 -> round half away = 6 -> +10 = 16
        // x1: (4*0 + -4*10) + 6 = -34 -> -8.5 -> -9 (gemmlowp rounds half away) -> 1
        assert_eq!(out, vec![16, 1]);
    }

    #[test]
    fn float_requant_rounds_half_to_even_like_mlas() {
        // ONNX Runtime's MLAS requantization: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2 (gemmlowp would
        // give 3, 4, -3), clamped to the 8-bit range after adding the zero point.
        let r = |acc| requantize_float_round_even(acc, 0.5, 0, -128, 127);
        assert_eq!([r(5), r(7), r(-5), r(-7)], [2, 4, -2, -4]);
        assert_eq!(requantize_float_round_even(1000, 0.5, 10, -128, 127), 127);
        assert_eq!(requantize_float_round_even(-1000, 0.5, 10, -128, 127), -128);
        // Through the conv: one tap, acc = 5 * 1 + bias 0, scale 0.5, zero point -3.
        let g = geom((1, 1), 1, 1, (1, 1), 1, 1, false);
        let q = QuantParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: -3,
            multipliers: vec![0],
            shifts: vec![0],
            act_min: -128,
            act_max: 127,
            float_scales: Some(vec![0.5]),
        };
        let mut out = [0i8];
        conv_q8(&g, &q, &[5i8], &[1i8], None, &mut out);
        assert_eq!(out, [2 - 3]);
    }

    #[test]
    fn int8_per_channel_and_clamp() {
        let g = geom((1, 1), 1, 2, (1, 1), 1, 1, false);
        let (m0, s0) = quantize_multiplier(0.5);
        let (m1, s1) = quantize_multiplier(2.0);
        let q = QuantParams {
            input_offset: 1, // input zp -1
            filter_offset: 0,
            output_offset: -5,
            multipliers: vec![m0, m1],
            shifts: vec![s0, s1],
            act_min: -5, // Relu with zero point -5
            act_max: 127,
            float_scales: None,
        };
        let input: Vec<i8> = vec![9];
        let filter: Vec<i8> = vec![3, -7];
        let mut out = vec![0i8; 2];
        conv_q8(&g, &q, &input, &filter, None, &mut out);
        // ch0: 10*3 = 30 * 0.5 = 15 - 5 = 10; ch1: 10*-7 = -70 * 2 = -140 - 5 -> clamp -5
        assert_eq!(out, vec![10, -5]);
    }
}
