//! YUV → RGB for camera formats: YUYV (4:2:2 packed) and NV12 (4:2:0, Y plane + interleaved
//! UV plane). BT.601 limited range ("studio swing", what UVC cameras send), integer arithmetic:
//!
//! ```text
//! C = Y - 16, D = U - 128, E = V - 128
//! R = clamp((298 C + 409 E + 128) >> 8)
//! G = clamp((298 C - 100 D - 208 E + 128) >> 8)
//! B = clamp((298 C + 516 D + 128) >> 8)
//! ```

use crate::vision::image::RgbImage;

#[inline]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// One pixel, BT.601 limited range.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (y as i32 - 16);
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    [
        clamp((c + 409 * e + 128) >> 8),
        clamp((c - 100 * d - 208 * e + 128) >> 8),
        clamp((c + 516 * d + 128) >> 8),
    ]
}

/// YUYV (Y0 U Y1 V per 2 pixels). `stride` is bytes per row (≥ 2·width rounded up to even
/// pixels; 0 means tightly packed). Errors say what size was expected.
pub fn yuyv_to_rgb(
    src: &[u8],
    width: usize,
    height: usize,
    stride: usize,
) -> Result<RgbImage, String> {
    let packed = width.div_ceil(2) * 4;
    let stride = if stride == 0 { packed } else { stride };
    if width == 0 || height == 0 || stride < packed {
        return Err(format!(
            "YUYV {width}x{height}: bad geometry (stride {stride}, need ≥ {packed})"
        ));
    }
    let need = stride * (height - 1) + packed;
    if src.len() < need {
        return Err(format!(
            "YUYV {width}x{height}: frame has {} bytes, expected ≥ {need}",
            src.len()
        ));
    }
    let mut data = vec![0u8; width * height * 3];
    for (row, out) in data.chunks_exact_mut(width * 3).enumerate() {
        let line = &src[row * stride..][..packed];
        for (x, px) in out.chunks_exact_mut(3).enumerate() {
            let quad = &line[(x / 2) * 4..][..4];
            let y = if x % 2 == 0 { quad[0] } else { quad[2] };
            px.copy_from_slice(&yuv_to_rgb(y, quad[1], quad[3]));
        }
    }
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// NV12: `height` rows of Y (`stride` bytes each), then ⌈height/2⌉ rows of interleaved U,V
/// at the same stride (0 = width rounded up to even).
pub fn nv12_to_rgb(
    src: &[u8],
    width: usize,
    height: usize,
    stride: usize,
) -> Result<RgbImage, String> {
    let min_stride = width.div_ceil(2) * 2;
    let stride = if stride == 0 { min_stride } else { stride };
    if width == 0 || height == 0 || stride < min_stride {
        return Err(format!(
            "NV12 {width}x{height}: bad geometry (stride {stride}, need ≥ {min_stride})"
        ));
    }
    let uv_rows = height.div_ceil(2);
    let need = stride * (height + uv_rows - 1) + min_stride;
    if src.len() < need {
        return Err(format!(
            "NV12 {width}x{height}: frame has {} bytes, expected ≥ {need}",
            src.len()
        ));
    }
    let (y_plane, uv_plane) = src.split_at(stride * height);
    let mut data = vec![0u8; width * height * 3];
    for (row, out) in data.chunks_exact_mut(width * 3).enumerate() {
        let yl = &y_plane[row * stride..][..width];
        let uvl = &uv_plane[(row / 2) * stride..][..min_stride];
        for (x, px) in out.chunks_exact_mut(3).enumerate() {
            let uv = &uvl[(x / 2) * 2..][..2];
            px.copy_from_slice(&yuv_to_rgb(yl[x], uv[0], uv[1]));
        }
    }
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float BT.601 limited-range reference.
    fn reference(y: u8, u: u8, v: u8) -> [f64; 3] {
        let (y, u, v) = (y as f64 - 16.0, u as f64 - 128.0, v as f64 - 128.0);
        [
            1.164 * y + 1.596 * v,
            1.164 * y - 0.392 * u - 0.813 * v,
            1.164 * y + 2.017 * u,
        ]
        .map(|c| c.clamp(0.0, 255.0))
    }

    #[test]
    fn integer_matches_float_reference_within_one() {
        for y in (0..=255).step_by(5) {
            for u in (0..=255).step_by(15) {
                for v in (0..=255).step_by(15) {
                    let got = yuv_to_rgb(y as u8, u as u8, v as u8);
                    let want = reference(y as u8, u as u8, v as u8);
                    for c in 0..3 {
                        assert!(
                            (got[c] as f64 - want[c]).abs() <= 1.5,
                            "yuv {y},{u},{v}: {got:?} vs {want:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(81, 90, 240), [255, 0, 0]);
    }

    #[test]
    fn yuyv_layout_and_stride() {
        // 2x2 image, stride 6 (2 bytes of padding per row).
        let src = [
            16, 128, 235, 128, 0xAA, 0xAA, // row 0: black, white
            81, 90, 81, 240, 0xAA, 0xAA, // row 1: red, red
        ];
        let img = yuyv_to_rgb(&src, 2, 2, 6).expect("convert");
        assert_eq!(img.data, [0, 0, 0, 255, 255, 255, 255, 0, 0, 255, 0, 0]);
        assert!(yuyv_to_rgb(&src[..8], 2, 2, 6).is_err());
        assert!(yuyv_to_rgb(&src, 2, 2, 2).is_err());
    }

    #[test]
    fn nv12_layout() {
        // 2x2: Y plane then one UV pair shared by all four pixels.
        let src = [16, 235, 16, 235, 128, 128];
        let img = nv12_to_rgb(&src, 2, 2, 0).expect("convert");
        assert_eq!(img.data, [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]);
        let red = [81, 81, 81, 81, 90, 240];
        assert_eq!(
            nv12_to_rgb(&red, 2, 2, 2).expect("red").data[..3],
            [255, 0, 0]
        );
        assert!(nv12_to_rgb(&src[..5], 2, 2, 0).is_err());
    }
}
