//! MAX_POOL_2D and AVERAGE_POOL_2D reference kernels.
//!
//! Mirrors TFLite `reference_ops::MaxPool` / `AveragePool` (float32, uint8) and
//! `reference_integer_ops::MaxPool` / `AveragePool` (int8). The window is clamped to the
//! input, so the average divides by the number of in-bounds taps only. Quantized pools work
//! directly on the stored values (input and output share scale and zero point).
//! `ConvGeometry` is used with `dilation == 1` and `in_c == out_c`.

use crate::model::Activation;

use super::conv::{clamp_f32, ConvGeometry, Q8};
use super::fixedpoint::activation_range_f32;

/// The clamped window `[start, end)` of filter rows/cols for one output position, as TFLite's
/// `filter_x_start = max(0, -origin)`, `filter_x_end = min(filter, size - origin)`.
#[inline]
fn window(out: usize, stride: usize, pad: usize, filter: usize, size: usize) -> (usize, usize) {
    let origin = (out * stride) as isize - pad as isize;
    let start = (-origin).max(0) as usize;
    let end = (filter as isize).min(size as isize - origin).max(0) as usize;
    (start, end)
}

/// Visit every output element with its clamped window: `f(out_index, b, c, ys, xs)` where
/// `ys`/`xs` are input row/column ranges.
#[inline]
fn for_each_window(
    g: &ConvGeometry,
    mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, std::ops::Range<usize>),
) {
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            let (fy0, fy1) = window(oy, g.stride_h, g.pad_h, g.filter_h, g.in_h);
            let y0 = (oy * g.stride_h + fy0).saturating_sub(g.pad_h);
            let ys = y0..y0 + fy1.saturating_sub(fy0);
            for ox in 0..g.out_w {
                let (fx0, fx1) = window(ox, g.stride_w, g.pad_w, g.filter_w, g.in_w);
                let x0 = (ox * g.stride_w + fx0).saturating_sub(g.pad_w);
                let xs = x0..x0 + fx1.saturating_sub(fx0);
                let out_base = g.output_offset(b, oy, ox);
                for c in 0..g.out_c {
                    f(out_base + c, b, c, ys.clone(), xs.clone());
                }
            }
        }
    }
}

pub fn max_pool_f32(g: &ConvGeometry, activation: Activation, input: &[f32], output: &mut [f32]) {
    let (lo, hi) = activation_range_f32(activation);
    for_each_window(g, |o, b, c, ys, xs| {
        let mut max = f32::MIN; // std::numeric_limits<float>::lowest()
        for y in ys {
            for x in xs.clone() {
                let v = input[g.input_offset(b, y, x) + c];
                // std::max(max, v) keeps `max` unless `max < v`.
                if max < v {
                    max = v;
                }
            }
        }
        output[o] = clamp_f32(max, lo, hi);
    });
}

/// Quantized max pool; `act_min`/`act_max` from `CalculateActivationRangeQuantized`.
pub fn max_pool_q8<T: Q8>(
    g: &ConvGeometry,
    act_min: i32,
    act_max: i32,
    input: &[T],
    output: &mut [T],
) {
    for_each_window(g, |o, b, c, ys, xs| {
        let mut max = T::MIN;
        for y in ys {
            for x in xs.clone() {
                max = max.max(input[g.input_offset(b, y, x) + c].to_i32());
            }
        }
        output[o] = T::from_i32(max.max(act_min).min(act_max));
    });
}

/// Float average pool: `total / filter_count` with both in `float`.
pub fn average_pool_f32(
    g: &ConvGeometry,
    activation: Activation,
    input: &[f32],
    output: &mut [f32],
) {
    let (lo, hi) = activation_range_f32(activation);
    for_each_window(g, |o, b, c, ys, xs| {
        let mut total = 0.0f32;
        let mut count = 0.0f32;
        for y in ys {
            for x in xs.clone() {
                total += input[g.input_offset(b, y, x) + c];
                count += 1.0;
            }
        }
        output[o] = clamp_f32(total / count, lo, hi);
    });
}

/// Rounded integer average of `acc` over `count` in-bounds taps.
///
/// uint8 (`reference_ops::AveragePool`): `(acc + count / 2) / count` (acc is never negative).
/// int8 (`reference_integer_ops::AveragePool`): `acc > 0 ? (acc + count/2) / count
/// : (acc - count/2) / count`, C++ division truncating toward zero, i.e. halves away from zero.
#[inline]
pub fn rounded_average(acc: i32, count: i32) -> i32 {
    if acc > 0 {
        (acc + count / 2) / count
    } else {
        (acc - count / 2) / count
    }
}

/// Quantized average pool (uint8 and int8 share [`rounded_average`], which equals the uint8
/// formula for `acc >= 0`).
pub fn average_pool_q8<T: Q8>(
    g: &ConvGeometry,
    act_min: i32,
    act_max: i32,
    input: &[T],
    output: &mut [T],
) {
    for_each_window(g, |o, b, c, ys, xs| {
        let mut acc: i32 = 0;
        let mut count: i32 = 0;
        for y in ys {
            for x in xs.clone() {
                acc += input[g.input_offset(b, y, x) + c].to_i32();
                count += 1;
            }
        }
        // A prepared geometry always has at least one in-bounds tap; guard the division anyway.
        let avg = if count == 0 {
            0
        } else {
            rounded_average(acc, count)
        };
        output[o] = T::from_i32(avg.max(act_min).min(act_max));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::conv::window_out_and_pad;

    fn geom(
        in_h: usize,
        in_w: usize,
        c: usize,
        k: usize,
        stride: usize,
        same: bool,
    ) -> ConvGeometry {
        let (oh, ph) = window_out_and_pad(same, in_h, k, stride, 1);
        let (ow, pw) = window_out_and_pad(same, in_w, k, stride, 1);
        ConvGeometry {
            batches: 1,
            in_h,
            in_w,
            in_c: c,
            out_h: oh as usize,
            out_w: ow as usize,
            out_c: c,
            filter_h: k,
            filter_w: k,
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_h: ph,
            pad_w: pw,
        }
    }

    #[test]
    fn rounded_average_halves_away_from_zero() {
        assert_eq!(rounded_average(5, 2), 3);
        assert_eq!(rounded_average(-5, 2), -3);
        assert_eq!(rounded_average(4, 3), 1);
        assert_eq!(rounded_average(-4, 3), -1);
        assert_eq!(rounded_average(0, 4), 0);
        assert_eq!(rounded_average(-2, 4), -1);
        assert_eq!(rounded_average(2, 4), 1);
    }

    #[test]
    fn average_counts_only_in_bounds_taps() {
        // 3x3 input, 3x3 window, SAME stride 1: corners average 4 taps, edges 6, centre 9.
        let g = geom(3, 3, 1, 3, 1, true);
        assert_eq!(g.pad_h, 1);
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut out = vec![0.0f32; 9];
        average_pool_f32(&g, Activation::None, &input, &mut out);
        assert_eq!(out[0], (1.0 + 2.0 + 4.0 + 5.0) / 4.0);
        assert_eq!(out[1], (1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 6.0) / 6.0);
        assert_eq!(out[4], 5.0);

        let input_u8: Vec<u8> = vec![1, 2, 3, 4, 5, 6, 7, 8, 10];
        let mut out_u8 = vec![0u8; 9];
        average_pool_q8(&g, 0, 255, &input_u8, &mut out_u8);
        // corner (0,0): 12/4 = 3; (0,1): 21/6 = 3.5 -> 4; (2,2): (5+6+8+10)=29/4=7.25 -> 7
        assert_eq!(out_u8[0], 3);
        assert_eq!(out_u8[1], 4);
        assert_eq!(out_u8[8], 7);
    }

    #[test]
    fn int8_average_negative_rounding_and_clamp() {
        // 2x2 input, 2x2 window VALID -> one output per channel.
        let g = geom(2, 2, 2, 2, 2, false);
        let input: Vec<i8> = vec![-1, 10, -2, 10, -2, 10, -1, 11]; // ch0 sum -6 -> -1.5 -> -2
        let mut out = vec![0i8; 2];
        average_pool_q8(&g, -128, 127, &input, &mut out);
        assert_eq!(out, vec![-2, 10]); // ch1: 41/4 = 10.25 -> 10
        average_pool_q8(&g, -1, 6, &input, &mut out);
        assert_eq!(out, vec![-1, 6]);
    }

    #[test]
    fn max_pool_same_stride2() {
        // 3x3 input, 2x2 window, SAME stride 2: out 2x2, pad 0, bottom/right windows clipped.
        let g = geom(3, 3, 1, 2, 2, true);
        assert_eq!((g.out_h, g.pad_h), (2, 0));
        let input: Vec<i8> = vec![-5, -3, -9, -1, -7, -2, -8, -6, -4];
        let mut out = vec![0i8; 4];
        max_pool_q8(&g, -128, 127, &input, &mut out);
        assert_eq!(out, vec![-1, -2, -6, -4]);
        let f: Vec<f32> = input.iter().map(|&v| v as f32).collect();
        let mut out_f = vec![0.0f32; 4];
        max_pool_f32(&g, Activation::ReluN1To1, &f, &mut out_f);
        assert_eq!(out_f, vec![-1.0, -1.0, -1.0, -1.0]);
    }
}
