//! JPEG/PNG bytes → [`RgbImage`] for the capture sources.
//!
//! A thin wrapper over [`crate::vision::image::decode_bytes`] (one decoder for files, cameras and
//! streams, bit-exact with libjpeg-turbo for JPEG) that names the source in errors.

use crate::capture::CaptureError;
use crate::vision::image::RgbImage;

pub use crate::vision::image::MAX_PIXELS;

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
    let _ = format;
    crate::vision::image::decode_bytes(bytes).map_err(corrupt)
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
