//! QUANTIZE / DEQUANTIZE: TFLite `reference_ops::AffineQuantize`, `Requantize`, `Dequantize`
//! and `PerChannelDequantize`.

use super::fixedpoint::multiply_by_quantized_multiplier;

/// `AffineQuantize`: `clamp((double)roundf(x / (float)scale) + zp, qmin, qmax)`.
#[inline]
pub fn affine_quantize(x: f32, scale: f32, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    let unclamped = (x / scale).round() as f64 + zero_point as f64;
    unclamped.max(qmin as f64).min(qmax as f64) as i32
}

/// `Requantize`: `clamp(MultiplyByQuantizedMultiplier(q - zp_in, m, s) + zp_out)`.
#[inline]
pub fn requantize(
    q: i32,
    in_zp: i32,
    out_zp: i32,
    mult: i32,
    shift: i32,
    qmin: i32,
    qmax: i32,
) -> i32 {
    (multiply_by_quantized_multiplier(q - in_zp, mult, shift) + out_zp).clamp(qmin, qmax)
}

/// `Dequantize`: `(float)(double scale * (q - zp))`.
#[inline]
pub fn dequantize(q: i32, scale: f32, zero_point: i32) -> f32 {
    (scale as f64 * (q - zero_point) as f64) as f32
}

/// `PerChannelDequantize`: `(float)(scale[c] * (q - zp[c]))` in float32.
#[inline]
pub fn dequantize_per_channel(q: i32, scale: f32, zero_point: i32) -> f32 {
    scale * ((q - zero_point) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_away() {
        assert_eq!(affine_quantize(0.25, 0.5, 0, -128, 127), 1); // 0.5 -> 1
        assert_eq!(affine_quantize(-0.25, 0.5, 0, -128, 127), -1);
        assert_eq!(affine_quantize(1000.0, 0.5, 10, 0, 255), 255);
        assert_eq!(affine_quantize(-3.0, 0.1, 128, 0, 255), 98);
    }

    #[test]
    fn requantize_u8_to_i8() {
        // same scale, zp 128 -> -0: multiplier 1.0 = (2^30, 1)
        assert_eq!(requantize(200, 128, 0, 1 << 30, 1, -128, 127), 72);
        assert_eq!(requantize(0, 128, 0, 1 << 30, 1, -128, 127), -128);
    }

    #[test]
    fn dequantize_values() {
        assert_eq!(dequantize(138, 0.1, 128), (0.1f32 as f64 * 10.0) as f32);
        assert_eq!(dequantize_per_channel(-3, 0.5, 0), -1.5);
    }
}
