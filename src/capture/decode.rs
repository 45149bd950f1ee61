//! JPEG/PNG bytes → [`RgbImage`] for the capture sources.
//!
//! Kept local to `capture` so this module does not depend on `vision::image::decode` while that
//! is written in parallel; the two are to be unified later.

use crate::capture::CaptureError;
use crate::vision::image::RgbImage;

/// Largest image (in pixels) a source will decode; a corrupt or hostile header claiming more is
/// rejected before any allocation (64 Mpx ≈ 192 MiB of RGB).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Decode a JPEG or PNG held in `bytes` into RGB8. `what` names the origin (file path, URL,
/// device) for the error. Any other format, a truncated or corrupt file → `CaptureError::Corrupt`.
pub fn decode_bytes(bytes: &[u8], what: &str) -> Result<RgbImage, CaptureError> {
    let corrupt = |why: String| CaptureError::Corrupt {
        source_name: what.to_string(),
        what: why,
    };
    let format = if bytes.starts_with(&[0xFF, 0xD8]) {
        image::ImageFormat::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        image::ImageFormat::Png
    } else {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(corrupt(format!(
            "expected JPEG (ff d8) or PNG (89 50 4e 47) data, found {} bytes starting {}",
            bytes.len(),
            head.join(" ")
        )));
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| corrupt(format!("{format:?} decode failed: {e}")))?;
    let rgb = img.to_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    if width == 0 || height == 0 {
        return Err(corrupt(format!("{format:?} image is {width}x{height}")));
    }
    Ok(RgbImage {
        width,
        height,
        data: rgb.into_raw(),
    })
}

/// Encode RGB8 as PNG (tests and the emulator fixtures use it to make known images).
pub fn encode_png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut out);
    // Writing into a Vec cannot fail for a well-formed buffer; an inconsistent one yields an
    // empty Vec, which decodes as Corrupt.
    let _ = image::ImageEncoder::write_image(
        enc,
        &img.data,
        img.width as u32,
        img.height as u32,
        image::ExtendedColorType::Rgb8,
    );
    out
}

/// Encode RGB8 as baseline JPEG at `quality` (1..=100).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    let _ = image::ImageEncoder::write_image(
        enc,
        &img.data,
        img.width as u32,
        img.height as u32,
        image::ExtendedColorType::Rgb8,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RgbImage {
        let (width, height) = (8, 4);
        let data = (0..width * height * 3)
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        RgbImage {
            width,
            height,
            data,
        }
    }

    #[test]
    fn png_round_trips_exactly() {
        let img = sample();
        let back = decode_bytes(&encode_png(&img), "mem.png").expect("decode png");
        assert_eq!(back, img);
    }

    #[test]
    fn jpeg_decodes_to_the_right_size() {
        let img = sample();
        let back = decode_bytes(&encode_jpeg(&img, 90), "mem.jpg").expect("decode jpeg");
        assert_eq!((back.width, back.height), (8, 4));
        assert_eq!(back.data.len(), 8 * 4 * 3);
    }

    #[test]
    fn garbage_and_truncation_are_corrupt_not_panics() {
        for bytes in [
            &b""[..],
            b"hello world",
            &[0xFF, 0xD8, 0xFF][..],
            b"\x89PNG\r\n\x1a\n",
        ] {
            match decode_bytes(bytes, "x") {
                Err(CaptureError::Corrupt { source_name, .. }) => assert_eq!(source_name, "x"),
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
        let jpeg = encode_jpeg(&sample(), 90);
        assert!(decode_bytes(&jpeg[..jpeg.len() / 2], "half.jpg").is_err());
    }
}
