//! RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on NHWC tensors, as LiteRT's BUILTIN_REF
//! resolver runs them:
//!
//! * float32 and uint8 bilinear: `reference_ops::ResizeBilinear<T>` (float32 interpolation
//!   weights; uint8 adds 0.5 and truncates).
//! * int8 bilinear: `reference_ops::ResizeBilinearInteger<int8_t>` (Q10 source positions,
//!   Q20 products, rounding half away from zero, no floating point at all).
//! * nearest neighbor (any element type): `reference_ops::ResizeNearestNeighbor` with
//!   `GetNearestNeighbor` (float32 scale, floor, or `round` with `align_corners`).
//!
//! `align_corners` and `half_pixel_centers` together are rejected by TFLite's bilinear
//! Prepare; nearest neighbor accepts both (round, then clamp at 0).

/// Geometry shared by all resize kernels: NHWC input `[batches, in_h, in_w, depth]` to
/// `[batches, out_h, out_w, depth]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeShape {
    pub batches: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub depth: usize,
}

/// Resize flags (TFLite `ResizeBilinearParams` / `ResizeNearestNeighborParams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ResizeFlags {
    pub align_corners: bool,
    pub half_pixel_centers: bool,
}

/// TFLite's float scale of one axis: `in / out`, or `(in - 1) / (out - 1)` with
/// `align_corners` and `out > 1` (both int-to-float then float division).
fn float_scale(input: usize, output: usize, align_corners: bool) -> f32 {
    if align_corners && output > 1 {
        (input as i32 - 1) as f32 / (output as i32 - 1) as f32
    } else {
        input as f32 / output as f32
    }
}

/// Source sample of one output coordinate for float bilinear
/// (`reference_ops::ComputeInterpolationValues`): `(position, lower, upper)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatTap {
    pub pos: f32,
    pub lo: usize,
    pub hi: usize,
}

/// `ComputeInterpolationValues(value, scale, half_pixel_centers, input_size, ...)`.
pub fn float_taps(input: usize, output: usize, flags: ResizeFlags) -> Vec<FloatTap> {
    let scale = float_scale(input, output, flags.align_corners);
    (0..output)
        .map(|v| {
            let pos = if flags.half_pixel_centers {
                (v as f32 + 0.5) * scale - 0.5
            } else {
                v as f32 * scale
            };
            // static_cast<int32_t>(std::floor / std::ceil): positions are small, no overflow.
            let lo = (pos.floor() as i32).max(0) as usize;
            let hi = (pos.ceil() as i32).min(input as i32 - 1).max(0) as usize;
            FloatTap { pos, lo, hi }
        })
        .collect()
}

/// Source sample of one output coordinate for integer bilinear
/// (`reference_ops::ComputeInterpolationValuesInteger`): Q10 position and bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntTap {
    pub pos_10: i32,
    pub lo: usize,
    pub hi: usize,
}

/// `ResizeBilinearInteger`'s Q10 scale of one axis: `round((1 << 10) * in / out)` computed as
/// `((1 << 10) * in + out / 2) / out` (integer division), with the align_corners variant.
fn scale_10(input: usize, output: usize, align_corners: bool) -> i32 {
    let (i, o) = (input as i32, output as i32);
    if align_corners && o > 1 {
        ((1 << 10) * (i - 1) + (o - 1) / 2) / (o - 1)
    } else {
        ((1 << 10) * i + o / 2) / o
    }
}

/// `ComputeInterpolationValuesInteger` for every output coordinate (C integer division
/// truncates toward zero, so a negative half-pixel position gives lower bound 0).
pub fn int_taps(input: usize, output: usize, flags: ResizeFlags) -> Vec<IntTap> {
    let s = scale_10(input, output, flags.align_corners);
    (0..output as i32)
        .map(|v| {
            let pos_10 = if flags.half_pixel_centers {
                v * s + s / 2 - (1 << 9)
            } else {
                v * s
            };
            let lo = (pos_10 / (1 << 10)).max(0) as usize;
            let hi = ((pos_10 + (1 << 10) - 1) / (1 << 10))
                .min(input as i32 - 1)
                .max(0) as usize;
            IntTap { pos_10, lo, hi }
        })
        .collect()
}

/// `ResizeBilinear<float>` / `ResizeBilinear<uint8_t>` inner expression, evaluated in float32
/// in TFLite's order: `v00*(1-dy)*(1-dx) + v10*dy*(1-dx) + v01*(1-dy)*dx + v11*dy*dx + offset`.
#[inline]
fn bilinear_f32(v00: f32, v10: f32, v01: f32, v11: f32, y: &FloatTap, x: &FloatTap) -> f32 {
    let dy = y.pos - y.lo as f32;
    let dx = x.pos - x.lo as f32;
    v00 * (1.0 - dy) * (1.0 - dx) + v10 * dy * (1.0 - dx) + v01 * (1.0 - dy) * dx + v11 * dy * dx
}

#[inline]
fn offset(s: &ResizeShape, b: usize, y: usize, x: usize) -> usize {
    ((b * s.in_h + y) * s.in_w + x) * s.depth
}

/// `reference_ops::ResizeBilinear<float>`.
pub fn resize_bilinear_f32(
    s: &ResizeShape,
    ys: &[FloatTap],
    xs: &[FloatTap],
    input: &[f32],
    out: &mut [f32],
) {
    let mut o = 0;
    for b in 0..s.batches {
        for y in ys {
            for x in xs {
                let (r00, r10) = (offset(s, b, y.lo, x.lo), offset(s, b, y.hi, x.lo));
                let (r01, r11) = (offset(s, b, y.lo, x.hi), offset(s, b, y.hi, x.hi));
                for c in 0..s.depth {
                    // TFLite adds its `rounding_offset` (0.0f for float) too: -0.0 becomes +0.0.
                    out[o] = bilinear_f32(
                        input[r00 + c],
                        input[r10 + c],
                        input[r01 + c],
                        input[r11 + c],
                        y,
                        x,
                    ) + 0.0;
                    o += 1;
                }
            }
        }
    }
}

/// `reference_ops::ResizeBilinear<uint8_t>`: float32 interpolation `+ 0.5`, then
/// `static_cast<uint8_t>` (truncation; the value is within `[0, 255.5)`).
pub fn resize_bilinear_u8(
    s: &ResizeShape,
    ys: &[FloatTap],
    xs: &[FloatTap],
    input: &[u8],
    out: &mut [u8],
) {
    let mut o = 0;
    for b in 0..s.batches {
        for y in ys {
            for x in xs {
                let (r00, r10) = (offset(s, b, y.lo, x.lo), offset(s, b, y.hi, x.lo));
                let (r01, r11) = (offset(s, b, y.lo, x.hi), offset(s, b, y.hi, x.hi));
                for c in 0..s.depth {
                    let v = bilinear_f32(
                        input[r00 + c] as f32,
                        input[r10 + c] as f32,
                        input[r01 + c] as f32,
                        input[r11 + c] as f32,
                        y,
                        x,
                    ) + 0.5;
                    out[o] = v as u8;
                    o += 1;
                }
            }
        }
    }
}

/// `reference_ops::ResizeBilinearInteger<int8_t>` (default double-rounding build: the Q20 sum
/// is rounded half away from zero, `(sum ± 2^19) / 2^20` with C truncating division).
pub fn resize_bilinear_i8(
    s: &ResizeShape,
    ys: &[IntTap],
    xs: &[IntTap],
    input: &[i8],
    out: &mut [i8],
) {
    const ONE: i64 = 1 << 10;
    let mut o = 0;
    for b in 0..s.batches {
        for y in ys {
            let fy = y.pos_10 as i64 - ONE * y.lo as i64;
            for x in xs {
                let fx = x.pos_10 as i64 - ONE * x.lo as i64;
                let (r00, r10) = (offset(s, b, y.lo, x.lo), offset(s, b, y.hi, x.lo));
                let (r01, r11) = (offset(s, b, y.lo, x.hi), offset(s, b, y.hi, x.hi));
                for c in 0..s.depth {
                    let sum = input[r00 + c] as i64 * (ONE - fy) * (ONE - fx)
                        + input[r10 + c] as i64 * fy * (ONE - fx)
                        + input[r01 + c] as i64 * (ONE - fy) * fx
                        + input[r11 + c] as i64 * fy * fx;
                    let round = if sum > 0 { 1 << 19 } else { -(1 << 19) };
                    out[o] = ((sum + round) / (1 << 20)) as i8;
                    o += 1;
                }
            }
        }
    }
}

/// `reference_ops::GetNearestNeighbor` for every output coordinate.
pub fn nearest_indices(input: usize, output: usize, flags: ResizeFlags) -> Vec<usize> {
    let scale = float_scale(input, output, flags.align_corners);
    let off = if flags.half_pixel_centers {
        0.5f32
    } else {
        0.0
    };
    (0..output)
        .map(|v| {
            let p = (v as f32 + off) * scale;
            // TfLiteRound is std::round (half away from zero), as f32::round.
            let r = if flags.align_corners {
                p.round() as i32
            } else {
                p.floor() as i32
            };
            let mut idx = r.min(input as i32 - 1);
            if flags.half_pixel_centers {
                idx = idx.max(0);
            }
            idx.max(0) as usize
        })
        .collect()
}

/// `reference_ops::ResizeNearestNeighbor` over elements of `elem` bytes: copies whole depth
/// rows (`depth * elem` bytes) from the selected source pixel.
pub fn resize_nearest_bytes(
    s: &ResizeShape,
    ys: &[usize],
    xs: &[usize],
    elem: usize,
    input: &[u8],
    out: &mut [u8],
) {
    let row = s.depth * elem;
    let mut o = 0;
    for b in 0..s.batches {
        for &y in ys {
            for &x in xs {
                let src = offset(s, b, y, x) * elem;
                out[o..o + row].copy_from_slice(&input[src..src + row]);
                o += row;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: ResizeFlags = ResizeFlags {
        align_corners: false,
        half_pixel_centers: false,
    };
    const ALIGN: ResizeFlags = ResizeFlags {
        align_corners: true,
        half_pixel_centers: false,
    };
    const HALF: ResizeFlags = ResizeFlags {
        align_corners: false,
        half_pixel_centers: true,
    };

    fn shape(in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> ResizeShape {
        ResizeShape {
            batches: 1,
            in_h,
            in_w,
            out_h,
            out_w,
            depth: 1,
        }
    }

    #[test]
    fn bilinear_f32_tflite_example() {
        // TFLite resize_bilinear_test HorizontalResize: [3, 6] to width 3 -> [3, 5, 6].
        let s = shape(1, 2, 1, 3);
        let (ys, xs) = (float_taps(1, 1, NONE), float_taps(2, 3, NONE));
        let mut out = [0f32; 3];
        resize_bilinear_f32(&s, &ys, &xs, &[3.0, 6.0], &mut out);
        assert_eq!(out, [3.0, 5.0, 6.0]);
    }

    #[test]
    fn bilinear_u8_rounds_half_up() {
        // 2x upscale of [0, 1] gives 0, 0.5 (+0.5 -> 1), 1, 1.
        let s = shape(1, 2, 1, 4);
        let (ys, xs) = (float_taps(1, 1, NONE), float_taps(2, 4, NONE));
        let mut out = [0u8; 4];
        resize_bilinear_u8(&s, &ys, &xs, &[0, 1], &mut out);
        assert_eq!(out, [0, 1, 1, 1]);
    }

    #[test]
    fn bilinear_i8_rounds_half_away_from_zero() {
        // Same geometry in Q10: position 512 between -1 and 0 -> -0.5 rounds to -1.
        let s = shape(1, 2, 1, 4);
        let (ys, xs) = (int_taps(1, 1, NONE), int_taps(2, 4, NONE));
        let mut out = [0i8; 4];
        resize_bilinear_i8(&s, &ys, &xs, &[-1, 0], &mut out);
        assert_eq!(out, [-1, -1, 0, 0]);
    }

    #[test]
    fn half_pixel_taps_clamp_at_zero() {
        // 2 -> 4 with half-pixel centers: positions -0.25, 0.25, 0.75, 1.25.
        let t = float_taps(2, 4, HALF);
        assert_eq!(t[0].lo, 0);
        assert_eq!(t[0].hi, 0);
        assert_eq!((t[3].lo, t[3].hi), (1, 1));
        let i = int_taps(2, 4, HALF);
        assert_eq!(i[0].pos_10, -256);
        assert_eq!((i[0].lo, i[0].hi), (0, 0));
    }

    #[test]
    fn nearest_modes() {
        assert_eq!(nearest_indices(2, 4, NONE), [0, 0, 1, 1]);
        // align_corners: scale 1/3, round(0, .33, .67, 1) = 0, 0, 1, 1
        assert_eq!(nearest_indices(2, 4, ALIGN), [0, 0, 1, 1]);
        // align_corners 3 -> 5: scale 0.5: round(0, .5, 1, 1.5, 2) = 0, 1, 1, 2, 2
        assert_eq!(nearest_indices(3, 5, ALIGN), [0, 1, 1, 2, 2]);
        // half pixel 4 -> 2: floor((v + .5) * 2) = 1, 3
        assert_eq!(nearest_indices(4, 2, HALF), [1, 3]);
        // both flags (LiteRT accepts them for nearest neighbor): round((v + .5) * .5)
        let both = ResizeFlags {
            align_corners: true,
            half_pixel_centers: true,
        };
        assert_eq!(nearest_indices(2, 3, both), [0, 1, 1]);
    }
}
