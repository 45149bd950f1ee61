//! Image decode (JPEG/PNG via the `image` crate) to RGB8 and the "spotter bilinear v1" resize
//! (integer-only; bit-exact twin of `scripts/goldens/preprocess.py`).

use std::path::Path;

use crate::error::InputError;

/// An 8-bit RGB image, rows top to bottom, `data.len() == width * height * 3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        RgbImage {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }
}

/// Decode a JPEG or PNG file to RGB8: alpha dropped (no compositing), gray replicated.
/// Note: `image`'s JPEG decoder is not bit-identical with libjpeg-turbo (see the goldens README);
/// PNG is.
pub fn decode(path: &Path) -> Result<RgbImage, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_bytes(&bytes).map_err(|what| InputError::Decode {
        path: path.to_path_buf(),
        what,
    })
}

/// Decode in-memory JPEG/PNG bytes (format guessed from the content).
///
/// JPEG goes through libjpeg-turbo's algorithms (the `mozjpeg` fork: islow IDCT, fancy
/// upsampling), so pixels equal PIL's and LiteRT goldens made from PIL-decoded images apply.
/// Everything else goes through the `image` crate.
pub fn decode_bytes(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.starts_with(&[0xff, 0xd8]) {
        return decode_jpeg(bytes);
    }
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS as u64 * 4);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("{format:?} decode failed: {e}"))?;
    // `into_rgb8` drops alpha without compositing and replicates gray, like PIL's
    // `.convert("RGB")`; 16-bit channels are scaled to 8 bits.
    let rgb = img.into_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Largest image we decode (pixels); a corrupt or hostile header claiming more is rejected
/// before any allocation (64 Mpx ≈ 192 MiB of RGB).
pub const MAX_PIXELS: usize = 64 * 1024 * 1024;

fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, String> {
    // libjpeg only warns about a missing end (and fills the rest with gray); a camera frame or
    // file cut short is corrupt for us. The EOI marker 0xFFD9 cannot occur inside entropy-coded
    // data (0xFF is stuffed there), so look for it near the end, allowing trailing bytes.
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    if !tail.windows(2).any(|w| w == [0xff, 0xd9]) {
        return Err("JPEG data is truncated (no end-of-image marker)".to_string());
    }
    // libjpeg reports fatal errors by unwinding through the `mozjpeg` wrapper; contain them.
    let result = std::panic::catch_unwind(|| -> Result<RgbImage, String> {
        let d = mozjpeg::Decompress::new_mem(bytes).map_err(|e| e.to_string())?;
        let (width, height) = (d.width(), d.height());
        if width == 0 || height == 0 || width.saturating_mul(height) > MAX_PIXELS {
            return Err(format!("JPEG claims an unreasonable size {width}x{height}"));
        }
        let mut started = d.rgb().map_err(|e| e.to_string())?;
        let pixels: Vec<[u8; 3]> = started.read_scanlines().map_err(|e| e.to_string())?;
        if pixels.len() != width * height {
            return Err(format!(
                "JPEG data ends early: {} of {} pixels",
                pixels.len(),
                width * height
            ));
        }
        started.finish().map_err(|e| e.to_string())?;
        Ok(RgbImage {
            width,
            height,
            data: pixels.into_iter().flatten().collect(),
        })
    });
    match result {
        Ok(r) => r,
        Err(_) => Err("corrupt JPEG data".to_string()),
    }
}

/// Encode `img` to `path`, format chosen by the extension (`.jpg`/`.jpeg` or `.png`).
pub fn save(img: &RgbImage, path: &Path) -> Result<(), InputError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let format = match ext.as_deref() {
        Some("jpg") | Some("jpeg") => image::ImageFormat::Jpeg,
        Some("png") => image::ImageFormat::Png,
        _ => {
            return Err(InputError::Invalid {
                what: format!(
                    "{}: output image must end in .jpg, .jpeg or .png",
                    path.display()
                ),
            })
        }
    };
    let buf = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone())
        .ok_or_else(|| InputError::Invalid {
            what: format!("{}: image buffer has the wrong size", path.display()),
        })?;
    buf.save_with_format(path, format)
        .map_err(|e| InputError::Invalid {
            what: format!("{}: cannot write image: {e}", path.display()),
        })
}

/// Per destination index along one axis: source indices `i0`, `i1` and the weight `w` of `i1`
/// in 1/2048 units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tap {
    i0: usize,
    i1: usize,
    w: i64,
}

fn axis_taps(src: usize, dst: usize) -> Vec<Tap> {
    let (s_len, d_len) = (src as i64, dst as i64);
    (0..d_len)
        .map(|d| {
            let s = ((2 * d + 1) * s_len * 1024) / d_len - 1024;
            let s = s.clamp(0, (s_len - 1) * 2048);
            let i0 = s >> 11;
            Tap {
                i0: i0 as usize,
                i1: (i0 + 1).min(s_len - 1) as usize,
                w: s & 2047,
            }
        })
        .collect()
}

/// "spotter bilinear v1" resizer from `W x H` to `w x h` (RGB8), tables built once:
/// for each dst x: `sx = ((2*dx+1)*W*1024)/w - 1024` (floor of a non-negative numerator),
/// clamped to `[0, (W-1)*2048]`; `x0 = sx>>11`, `wx = sx&2047`, `x1 = min(x0+1, W-1)`; same for y;
/// `out = (p00*(2048-wx)*(2048-wy) + p01*wx*(2048-wy) + p10*(2048-wx)*wy + p11*wx*wy + (1<<21)) >> 22`.
#[derive(Clone, Debug)]
pub struct Resizer {
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    xs: Vec<Tap>,
    ys: Vec<Tap>,
}

impl Resizer {
    /// Resizer for `src_w x src_h -> dst_w x dst_h`; all sizes must be >= 1.
    pub fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Result<Self, InputError> {
        if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
            return Err(InputError::Invalid {
                what: format!("cannot resize {src_w}x{src_h} to {dst_w}x{dst_h}: empty image"),
            });
        }
        Ok(Resizer {
            src_w,
            src_h,
            dst_w,
            dst_h,
            xs: axis_taps(src_w, dst_w),
            ys: axis_taps(src_h, dst_h),
        })
    }

    pub fn src_size(&self) -> (usize, usize) {
        (self.src_w, self.src_h)
    }

    pub fn dst_size(&self) -> (usize, usize) {
        (self.dst_w, self.dst_h)
    }

    /// Resize RGB8 `src` (`src_w*src_h*3` bytes) into `dst` (`dst_w*dst_h*3` bytes). No allocation.
    /// Panics if the buffer sizes do not match the resizer.
    pub fn resize(&self, src: &[u8], dst: &mut [u8]) {
        assert_eq!(
            src.len(),
            self.src_w * self.src_h * 3,
            "resize: source size"
        );
        assert_eq!(
            dst.len(),
            self.dst_w * self.dst_h * 3,
            "resize: destination size"
        );
        let row = self.src_w * 3;
        for (ty, out_row) in self.ys.iter().zip(dst.chunks_exact_mut(self.dst_w * 3)) {
            let r0 = &src[ty.i0 * row..(ty.i0 + 1) * row];
            let r1 = &src[ty.i1 * row..(ty.i1 + 1) * row];
            let wy = ty.w;
            for (tx, out) in self.xs.iter().zip(out_row.chunks_exact_mut(3)) {
                let wx = tx.w;
                let (a, b) = (tx.i0 * 3, tx.i1 * 3);
                for c in 0..3 {
                    let v = r0[a + c] as i64 * (2048 - wx) * (2048 - wy)
                        + r0[b + c] as i64 * wx * (2048 - wy)
                        + r1[a + c] as i64 * (2048 - wx) * wy
                        + r1[b + c] as i64 * wx * wy
                        + (1 << 21);
                    out[c] = (v >> 22) as u8;
                }
            }
        }
    }
}

/// One-shot "spotter bilinear v1" resize of `src` into `dst` (`w x h`, RGB8, `w*h*3` bytes).
/// For repeated frames build a [`Resizer`] once instead (this builds its tables).
pub fn resize_bilinear_v1(
    src: &RgbImage,
    w: usize,
    h: usize,
    dst: &mut [u8],
) -> Result<(), InputError> {
    let r = Resizer::new(src.width, src.height, w, h)?;
    if dst.len() != w * h * 3 {
        return Err(InputError::Invalid {
            what: format!(
                "resize: destination holds {} bytes, expected {}",
                dst.len(),
                w * h * 3
            ),
        });
    }
    r.resize(&src.data, dst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn identity_when_sizes_match() {
        for (w, h) in [(7, 5), (300, 300), (1, 1), (2, 9)] {
            let img = RgbImage {
                width: w,
                height: h,
                data: pseudo_random(w * h * 3, 7),
            };
            let mut out = vec![0; w * h * 3];
            resize_bilinear_v1(&img, w, h, &mut out).expect("resize");
            assert_eq!(out, img.data, "{w}x{h}");
        }
    }

    #[test]
    fn taps_hand_computed() {
        // W=4 -> w=2: dx=0: (1*4*1024)/2 - 1024 = 1024 -> x0 0, wx 1024, x1 1;
        // dx=1: (3*4096)/2 - 1024 = 5120 -> x0 2, wx 1024, x1 3.
        assert_eq!(
            axis_taps(4, 2),
            vec![
                Tap {
                    i0: 0,
                    i1: 1,
                    w: 1024
                },
                Tap {
                    i0: 2,
                    i1: 3,
                    w: 1024
                }
            ]
        );
        // Upscale 2 -> 4: d=0: 2048/4 - 1024 = -512 -> clamp 0; d=1: 3*2048/4-1024 = 512;
        // d=2: 5*2048/4-1024 = 1536; d=3: 7*2048/4 - 1024 = 2560 -> clamp (2-1)*2048 = 2048
        // -> i0 1, w 0, i1 min(2, 1) = 1.
        assert_eq!(
            axis_taps(2, 4),
            vec![
                Tap { i0: 0, i1: 1, w: 0 },
                Tap {
                    i0: 0,
                    i1: 1,
                    w: 512
                },
                Tap {
                    i0: 0,
                    i1: 1,
                    w: 1536
                },
                Tap { i0: 1, i1: 1, w: 0 },
            ]
        );
        // Floor division: W=3 -> w=2: d=0: 3072/2 - 1024 = 512; d=1: 9216/2 - 1024 = 3584.
        assert_eq!(
            axis_taps(3, 2),
            vec![
                Tap {
                    i0: 0,
                    i1: 1,
                    w: 512
                },
                Tap {
                    i0: 1,
                    i1: 2,
                    w: 1536
                }
            ]
        );
    }

    #[test]
    fn small_case_hand_computed() {
        // 2x2 -> 1x1: sx = sy = (1*2*1024)/1 - 1024 = 1024: wx = wy = 1024, the mean with
        // rounding: (sum * 1024*1024 + 2^21) >> 22 = (sum + 2) >> 2.
        let img = RgbImage {
            width: 2,
            height: 2,
            data: vec![0, 10, 255, 1, 20, 255, 2, 30, 255, 4, 41, 254],
        };
        let mut out = [0u8; 3];
        resize_bilinear_v1(&img, 1, 1, &mut out).expect("resize");
        // (0+1+2+4+2)>>2 = 2; (10+20+30+41+2)>>2 = 25; (255*3+254+2)>>2 = 255.
        assert_eq!(out, [2, 25, 255]);
        // 2x1 -> 4x1: x taps (0,1,0), (0,1,512), (0,1,1536), (1,1,0); y identity (wy = 0).
        let img = RgbImage {
            width: 2,
            height: 1,
            data: vec![0, 0, 0, 100, 200, 255],
        };
        let mut out = [0u8; 12];
        resize_bilinear_v1(&img, 4, 1, &mut out).expect("resize");
        // 100*512*2048/2^22 = 25; 200*512/2048 = 50; 255*512/2048 = 63.75 -> 64;
        // 1536: 75, 150, 191.25 -> 191.
        assert_eq!(out, [0, 0, 0, 25, 50, 64, 75, 150, 191, 100, 200, 255]);
    }

    #[test]
    fn constant_stays_constant() {
        let img = RgbImage {
            width: 53,
            height: 37,
            data: vec![201; 53 * 37 * 3],
        };
        let mut out = vec![0; 300 * 300 * 3];
        resize_bilinear_v1(&img, 300, 300, &mut out).expect("resize");
        assert!(out.iter().all(|&v| v == 201));
    }

    #[test]
    fn resizer_reused_and_errors() {
        let r = Resizer::new(13, 17, 5, 7).expect("resizer");
        let src = pseudo_random(13 * 17 * 3, 3);
        let mut a = vec![0; 5 * 7 * 3];
        let mut b = vec![1; 5 * 7 * 3];
        r.resize(&src, &mut a);
        r.resize(&src, &mut b);
        assert_eq!(a, b);
        assert!(Resizer::new(0, 1, 1, 1).is_err());
    }

    #[test]
    fn decode_errors_name_the_file() {
        let e = decode(Path::new("/nonexistent/x.jpg")).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/x.jpg"), "{e}");
        let dir = std::env::temp_dir().join("spotter_vision_decode_test");
        std::fs::create_dir_all(&dir).expect("tmp");
        let p = dir.join("garbage.png");
        std::fs::write(&p, b"not an image").expect("write");
        let e = decode(&p).expect_err("garbage");
        assert!(
            e.to_string().contains("garbage.png") && e.to_string().contains("decode"),
            "{e}"
        );
    }

    #[test]
    fn png_roundtrip_and_gray_alpha() {
        let dir = std::env::temp_dir().join("spotter_vision_png_test");
        std::fs::create_dir_all(&dir).expect("tmp");
        let img = RgbImage {
            width: 3,
            height: 2,
            data: pseudo_random(18, 11),
        };
        let p = dir.join("rt.png");
        save(&img, &p).expect("save");
        assert_eq!(decode(&p).expect("decode"), img);
        // RGBA: alpha dropped without compositing.
        let rgba = image::RgbaImage::from_raw(1, 1, vec![10, 20, 30, 0]).expect("rgba");
        let p = dir.join("rgba.png");
        rgba.save(&p).expect("save rgba");
        assert_eq!(decode(&p).expect("decode").data, vec![10, 20, 30]);
        // Gray: replicated.
        let gray = image::GrayImage::from_raw(1, 1, vec![77]).expect("gray");
        let p = dir.join("gray.png");
        gray.save(&p).expect("save gray");
        assert_eq!(decode(&p).expect("decode").data, vec![77, 77, 77]);
        assert!(save(&img, &dir.join("x.bmp")).is_err());
    }

    #[test]
    fn astronaut_png_resize_matches_golden_input() {
        // The LiteRT golden input tensor is PIL decode + the Python twin of this resize.
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let img = decode(&root.join("models/samples/astronaut.png")).expect("decode");
        let mut out = vec![0; 300 * 300 * 3];
        Resizer::new(img.width, img.height, 300, 300)
            .expect("resizer")
            .resize(&img.data, &mut out);
        let golden =
            std::fs::read(root.join("tests/goldens/coral/astronaut.input.u8")).expect("golden");
        assert!(
            out == golden,
            "resized astronaut.png differs from the golden input tensor"
        );
    }
}
