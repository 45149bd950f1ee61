//! Box arithmetic of TFLite's `TFLite_Detection_PostProcess` custom op
//! (`tensorflow/lite/kernels/detection_postprocess.cc`): dequantization of box encodings and
//! anchors, center-size decoding, intersection over union. Pure functions, no allocation.

/// `CenterSizeEncoding` of TFLite: box encodings and anchors, in this memory order.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CenterSize {
    pub y: f32,
    pub x: f32,
    pub h: f32,
    pub w: f32,
}

impl CenterSize {
    /// The first four values of `v` (y, x, h, w); `v` must hold at least four values.
    #[inline]
    pub fn from_slice(v: &[f32]) -> Self {
        CenterSize {
            y: v[0],
            x: v[1],
            h: v[2],
            w: v[3],
        }
    }
}

/// `BoxCornerEncoding` of TFLite: (ymin, xmin, ymax, xmax), the op's output box layout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BoxCorner {
    pub ymin: f32,
    pub xmin: f32,
    pub ymax: f32,
    pub xmax: f32,
}

/// TFLite's `Dequantizer` (box encodings, anchors): `(float(q) - zero_point) * scale`, all in
/// float. The subtraction is exact for 8-bit values, so this equals `scale * (q - zp)`.
#[inline]
pub fn dequantize(q: i32, scale: f32, zero_point: i32) -> f32 {
    (q as f32 - zero_point as f32) * scale
}

/// `optimized_ops::Dequantize` as used by `DequantizeClassPredictions`:
/// `float(double(scale) * (q - zero_point))`. (The double product of a float and a small integer
/// is exact, so this is the correctly rounded float product, like [`dequantize`].)
#[inline]
pub fn dequantize_scores(q: i32, scale: f32, zero_point: i32) -> f32 {
    (scale as f64 * (q - zero_point) as f64) as f32
}

/// `DecodeCenterSizeBoxes` for one box. LiteRT (checked against the Coral goldens: the decoded
/// boxes temporary matches bit for bit) computes centers and half sizes in **double**, rounds
/// each to float, then forms the corners in float:
/// `ycenter = float(double(y) / double(y_scale) * double(anchor.h) + double(anchor.y))`,
/// `half_h = float(0.5 * exp(double(h) / double(h_scale)) * double(anchor.h))`, same for x/w;
/// `ymin = ycenter - half_h`, `xmin = xcenter - half_w`, `ymax = ycenter + half_h`,
/// `xmax = xcenter + half_w`.
#[inline]
pub fn decode_center_size(enc: CenterSize, anchor: CenterSize, scale: CenterSize) -> BoxCorner {
    let ycenter = (enc.y as f64 / scale.y as f64 * anchor.h as f64 + anchor.y as f64) as f32;
    let xcenter = (enc.x as f64 / scale.x as f64 * anchor.w as f64 + anchor.x as f64) as f32;
    let half_h = (0.5 * (enc.h as f64 / scale.h as f64).exp() * anchor.h as f64) as f32;
    let half_w = (0.5 * (enc.w as f64 / scale.w as f64).exp() * anchor.w as f64) as f32;
    BoxCorner {
        ymin: ycenter - half_h,
        xmin: xcenter - half_w,
        ymax: ycenter + half_h,
        xmax: xcenter + half_w,
    }
}

/// `std::max<float>(a, b)`: `(a < b) ? b : a` (first argument wins ties and NaN comparisons).
#[inline]
fn std_max(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// `std::min<float>(a, b)`: `(b < a) ? b : a`.
#[inline]
fn std_min(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// `ComputeIntersectionOverUnion`, in float, with TFLite's rule that a box of area `<= 0` has
/// IoU 0 with anything.
#[inline]
pub fn iou(a: &BoxCorner, b: &BoxCorner) -> f32 {
    let area_i = (a.ymax - a.ymin) * (a.xmax - a.xmin);
    let area_j = (b.ymax - b.ymin) * (b.xmax - b.xmin);
    if area_i <= 0.0 || area_j <= 0.0 {
        return 0.0;
    }
    let iymin = std_max(a.ymin, b.ymin);
    let ixmin = std_max(a.xmin, b.xmin);
    let iymax = std_min(a.ymax, b.ymax);
    let ixmax = std_min(a.xmax, b.xmax);
    let inter = std_max(iymax - iymin, 0.0) * std_max(ixmax - ixmin, 0.0);
    inter / (area_i + area_j - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCALES: CenterSize = CenterSize {
        y: 10.0,
        x: 10.0,
        h: 5.0,
        w: 5.0,
    };

    #[test]
    fn decode_zero_encoding_gives_anchor() {
        let anchor = CenterSize {
            y: 0.5,
            x: 0.25,
            h: 0.5,
            w: 0.25,
        };
        let b = decode_center_size(CenterSize::default(), anchor, SCALES);
        assert_eq!(
            b,
            BoxCorner {
                ymin: 0.25,
                xmin: 0.125,
                ymax: 0.75,
                xmax: 0.375
            }
        );
    }

    #[test]
    fn decode_hand_computed() {
        // y = 1: ycenter = 1/10*0.5 + 0.5 = 0.55; h = 5*ln 2: half_h = 0.5*2*0.5 = 0.5.
        let anchor = CenterSize {
            y: 0.5,
            x: 0.5,
            h: 0.5,
            w: 0.5,
        };
        let enc = CenterSize {
            y: 1.0,
            x: -2.0,
            h: 0.0,
            w: 0.0,
        };
        let b = decode_center_size(enc, anchor, SCALES);
        let yc = (1.0f64 / 10.0 * 0.5 + 0.5) as f32;
        let xc = (-2.0f64 / 10.0 * 0.5 + 0.5) as f32;
        assert_eq!(b.ymin, yc - 0.25);
        assert_eq!(b.ymax, yc + 0.25);
        assert_eq!(b.xmin, xc - 0.25);
        assert_eq!(b.xmax, xc + 0.25);
    }

    #[test]
    fn decode_uses_double_intermediates() {
        // A case where float and double evaluation differ; we must follow double.
        let anchor = CenterSize {
            y: 0.123_456_79,
            x: 0.987_654_3,
            h: 0.333_333_34,
            w: 0.777_777_8,
        };
        let enc = CenterSize {
            y: 1.234_567_9,
            x: -3.3,
            h: 0.7,
            w: -1.1,
        };
        let b = decode_center_size(enc, anchor, SCALES);
        let yc =
            (1.234_567_9f32 as f64 / 10.0 * 0.333_333_34f32 as f64 + 0.123_456_79f32 as f64) as f32;
        let hh = (0.5 * (0.7f32 as f64 / 5.0).exp() * 0.333_333_34f32 as f64) as f32;
        assert_eq!(b.ymin, yc - hh);
        assert_eq!(b.ymax, yc + hh);
    }

    #[test]
    fn dequantize_matches_formula() {
        assert_eq!(dequantize(200, 0.5, 179), 10.5);
        assert_eq!(dequantize(-128, 0.25, -128), 0.0);
        assert_eq!(dequantize_scores(128, 1.0 / 256.0, 0), 0.5);
        for q in 0..256 {
            assert_eq!(
                dequantize(q, 0.091_339_67, 179),
                dequantize_scores(q, 0.091_339_67, 179)
            );
        }
    }

    fn bx(ymin: f32, xmin: f32, ymax: f32, xmax: f32) -> BoxCorner {
        BoxCorner {
            ymin,
            xmin,
            ymax,
            xmax,
        }
    }

    #[test]
    fn iou_hand_computed() {
        let a = bx(0.0, 0.0, 1.0, 1.0);
        assert_eq!(iou(&a, &a), 1.0);
        // Half overlap: inter 0.5, union 1.5.
        let b = bx(0.0, 0.5, 1.0, 1.5);
        assert_eq!(iou(&a, &b), 0.5f32 / 1.5f32);
        // Disjoint.
        assert_eq!(iou(&a, &bx(2.0, 2.0, 3.0, 3.0)), 0.0);
        // Touching edge: zero intersection.
        assert_eq!(iou(&a, &bx(1.0, 0.0, 2.0, 1.0)), 0.0);
    }

    #[test]
    fn iou_degenerate_area_is_zero() {
        let a = bx(0.0, 0.0, 1.0, 1.0);
        assert_eq!(iou(&a, &bx(0.5, 0.0, 0.5, 1.0)), 0.0);
        assert_eq!(iou(&bx(0.0, 0.0, 0.0, 0.0), &bx(0.0, 0.0, 0.0, 0.0)), 0.0);
        // Inverted box: negative height times positive width.
        assert_eq!(iou(&a, &bx(1.0, 0.0, 0.0, 1.0)), 0.0);
    }
}
