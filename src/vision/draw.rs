//! Drawing detections on an RGB image: rectangles (clipped to the image), a text label with a
//! filled background using a built-in 5x7 ASCII bitmap font, one colour per class id.

use super::image::RgbImage;

/// 5x7 glyphs for ASCII 0x20..=0x7E, five columns each; bit 0 of a column is the top row.
const FONT_5X7: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x08, 0x2A, 0x1C, 0x2A, 0x08], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // backslash
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x0C, 0x52, 0x52, 0x52, 0x3E], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x20, 0x40, 0x44, 0x3D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0x7C, 0x14, 0x14, 0x14, 0x08], // p
    [0x08, 0x14, 0x14, 0x18, 0x7C], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x0C, 0x50, 0x50, 0x50, 0x3C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];

/// Glyph advance and line height in font pixels (5x7 glyph plus one pixel of spacing).
const CELL_W: i64 = 6;
const CELL_H: i64 = 8;

/// Distinct, saturated colours; class `id` gets `PALETTE[id % len]`.
const PALETTE: [[u8; 3]; 12] = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 190, 190],
    [0, 128, 128],
    [170, 110, 40],
];

/// Colour of a class id.
pub fn class_color(class_id: usize) -> [u8; 3] {
    PALETTE[class_id % PALETTE.len()]
}

/// Black or white, whichever reads better on `bg`.
fn text_color(bg: [u8; 3]) -> [u8; 3] {
    let luma = 299 * bg[0] as u32 + 587 * bg[1] as u32 + 114 * bg[2] as u32;
    if luma > 128_000 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// Fill the pixels `x0 <= x < x1`, `y0 <= y < y1`, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
    let (w, h) = (img.width as i64, img.height as i64);
    let (x0, x1) = (x0.clamp(0, w), x1.clamp(0, w));
    let (y0, y1) = (y0.clamp(0, h), y1.clamp(0, h));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    for y in y0..y1 {
        let row = (y * w) as usize * 3;
        for px in img.data[row + x0 as usize * 3..row + x1 as usize * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&color);
        }
    }
}

/// Outline of the box with corners (`x0`, `y0`) and (`x1`, `y1`) inclusive, `thickness` pixels
/// drawn inward, clipped to the image. Coordinates may lie anywhere (outside, inverted).
pub fn draw_rect(
    img: &mut RgbImage,
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
    thickness: i64,
    color: [u8; 3],
) {
    let (x0, x1) = (x0.min(x1), x0.max(x1));
    let (y0, y1) = (y0.min(y1), y0.max(y1));
    let t = thickness.max(1);
    fill_rect(img, x0, y0, x1 + 1, y0 + t, color); // top
    fill_rect(img, x0, y1 + 1 - t, x1 + 1, y1 + 1, color); // bottom
    fill_rect(img, x0, y0, x0 + t, y1 + 1, color); // left
    fill_rect(img, x1 + 1 - t, y0, x1 + 1, y1 + 1, color); // right
}

/// Size in pixels of `text` drawn at `scale`.
pub fn text_size(text: &str, scale: i64) -> (i64, i64) {
    (text.chars().count() as i64 * CELL_W * scale, CELL_H * scale)
}

/// Draw `text` with its top-left corner at (`x`, `y`), each font pixel a `scale`x`scale`
/// square, clipped to the image. Characters outside printable ASCII are drawn as `?`.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64, color: [u8; 3]) {
    let s = scale.max(1);
    for (i, ch) in text.chars().enumerate() {
        let code = ch as u32;
        let glyph = if (0x20..=0x7E).contains(&code) {
            &FONT_5X7[(code - 0x20) as usize]
        } else {
            &FONT_5X7[(b'?' - 0x20) as usize]
        };
        let gx = x + i as i64 * CELL_W * s;
        for (col, bits) in glyph.iter().enumerate() {
            for row in 0..7 {
                if bits >> row & 1 == 1 {
                    let px = gx + col as i64 * s;
                    let py = y + row * s;
                    fill_rect(img, px, py, px + s, py + s, color);
                }
            }
        }
    }
}

/// Line thickness and font scale for an image: 2 px / scale 1 up to ~600 px, 3 px / scale 2
/// above.
pub fn style_for(img: &RgbImage) -> (i64, i64) {
    if img.width.min(img.height) > 600 {
        (3, 2)
    } else {
        (2, 1)
    }
}

/// Draw one detection: the box (`xmin`, `ymin`, `xmax`, `ymax` in pixels of `img`) in the class
/// colour and `"<label> <score>"` on a filled background above the box (inside it when there
/// is no room above).
pub fn draw_detection(
    img: &mut RgbImage,
    box_px: [f32; 4],
    class_id: usize,
    label: &str,
    score: f32,
) {
    let (thickness, scale) = style_for(img);
    let color = class_color(class_id);
    // Saturating float -> int (NaN -> 0), then a bound that keeps the arithmetic far from
    // overflow.
    let c = |v: f32| (v.round() as i64).clamp(-1 << 20, 1 << 20);
    let (x0, y0, x1, y1) = (c(box_px[0]), c(box_px[1]), c(box_px[2]), c(box_px[3]));
    draw_rect(img, x0, y0, x1, y1, thickness, color);
    let text = format!("{label} {score:.2}");
    let (tw, th) = text_size(&text, scale);
    let pad = scale;
    let (left, top) = (x0.min(x1), y0.min(y1));
    let bg_h = th + pad;
    let bg_top = if top - bg_h >= 0 { top - bg_h } else { top };
    let left = left.clamp(0, (img.width as i64 - tw - 2 * pad).max(0));
    fill_rect(img, left, bg_top, left + tw + 2 * pad, bg_top + bg_h, color);
    draw_text(
        img,
        left + pad,
        bg_top + pad,
        &text,
        scale,
        text_color(color),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(img: &RgbImage, x: usize, y: usize) -> [u8; 3] {
        let i = (y * img.width + x) * 3;
        [img.data[i], img.data[i + 1], img.data[i + 2]]
    }

    #[test]
    fn rect_inside_draws_outline_only() {
        let mut img = RgbImage::new(10, 10);
        draw_rect(&mut img, 2, 2, 7, 7, 2, [255, 0, 0]);
        assert_eq!(px(&img, 2, 2), [255, 0, 0]);
        assert_eq!(px(&img, 3, 3), [255, 0, 0]);
        assert_eq!(px(&img, 7, 7), [255, 0, 0]);
        assert_eq!(px(&img, 6, 5), [255, 0, 0]);
        assert_eq!(px(&img, 4, 4), [0, 0, 0]);
        assert_eq!(px(&img, 5, 5), [0, 0, 0]);
        assert_eq!(px(&img, 1, 1), [0, 0, 0]);
        assert_eq!(px(&img, 8, 8), [0, 0, 0]);
    }

    #[test]
    fn rect_clipping_never_panics() {
        let mut img = RgbImage::new(16, 9);
        for &(x0, y0, x1, y1) in &[
            (-5, -5, 4, 4),
            (10, 5, 40, 40),
            (-100, -100, 100, 100),
            (20, 20, 30, 30),
            (-30, -30, -20, -20),
            (7, 3, 2, 1),
            (i64::MIN / 4, 0, i64::MAX / 4, 5),
        ] {
            draw_rect(&mut img, x0, y0, x1, y1, 3, [1, 2, 3]);
        }
        // Partly outside: the visible edges are drawn.
        let mut img = RgbImage::new(16, 9);
        draw_rect(&mut img, -5, -5, 4, 4, 2, [9, 9, 9]);
        assert_eq!(px(&img, 4, 0), [9, 9, 9]);
        assert_eq!(px(&img, 0, 4), [9, 9, 9]);
        assert_eq!(px(&img, 0, 0), [0, 0, 0]);
    }

    #[test]
    fn detection_at_edges_and_outside_never_panics() {
        let mut img = RgbImage::new(40, 30);
        for b in [
            [-10.0, -10.0, 50.0, 50.0],
            [35.0, 25.0, 80.0, 90.0],
            [100.0, 100.0, 200.0, 200.0],
            [-200.0, -200.0, -100.0, -100.0],
            [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3.0],
            [0.0, 0.0, 0.0, 0.0],
        ] {
            draw_detection(&mut img, b, 7, "a very long label that overflows", 0.731);
        }
        let mut tiny = RgbImage::new(1, 1);
        draw_detection(&mut tiny, [0.0, 0.0, 1.0, 1.0], 0, "person", 0.5);
        let mut empty = RgbImage::new(0, 0);
        draw_detection(&mut empty, [0.0, 0.0, 1.0, 1.0], 0, "person", 0.5);
    }

    #[test]
    fn label_drawn_above_box_with_background() {
        let mut img = RgbImage::new(100, 60);
        draw_detection(&mut img, [10.0, 30.0, 90.0, 55.0], 0, "person", 0.73);
        let color = class_color(0);
        // Background sits in rows 30-9=21..30 starting at x=10.
        assert_eq!(px(&img, 10, 21), color);
        // Some text pixels differ from the background.
        let (tw, _) = text_size("person 0.73", 1);
        assert_eq!(tw, 66);
        let differs = (22..30)
            .flat_map(|y| (11..11 + tw as usize).map(move |x| (x, y)))
            .any(|(x, y)| px(&img, x, y) != color);
        assert!(differs);
    }

    #[test]
    fn glyphs_render() {
        let mut img = RgbImage::new(6, 8);
        draw_text(&mut img, 0, 0, "I", 1, [255, 255, 255]);
        // 'I' is a vertical bar in column 2 plus serifs in columns 1 and 3.
        for y in 0..7 {
            assert_eq!(px(&img, 2, y), [255, 255, 255]);
        }
        assert_eq!(px(&img, 0, 3), [0, 0, 0]);
        assert_eq!(px(&img, 1, 0), [255, 255, 255]);
        assert_eq!(px(&img, 1, 3), [0, 0, 0]);
    }

    #[test]
    fn class_colors_distinct() {
        for a in 0..PALETTE.len() {
            for b in a + 1..PALETTE.len() {
                assert_ne!(class_color(a), class_color(b));
            }
        }
    }
}
