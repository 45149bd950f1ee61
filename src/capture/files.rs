//! A single image file, or a folder of JPEG/PNG images in lexical order (optionally looped).

use std::path::{Path, PathBuf};

use crate::capture::{decode::decode_bytes, now_secs, CaptureError, Source};
use crate::pipeline::Frame;

/// Images from disk. A file that cannot be read or decoded yields `CaptureError::Corrupt` for
/// that call; the next call goes on with the next file.
#[derive(Debug)]
pub struct FileSource {
    name: String,
    paths: Vec<PathBuf>,
    next: usize,
    looping: bool,
    seq: u64,
    /// Whether any file decoded during the current pass; stops a loop over a folder in which
    /// every image is corrupt from cycling forever (it then ends instead).
    decoded_this_pass: bool,
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

impl FileSource {
    /// `path` is an image file or a folder. A folder's `*.jpg|*.jpeg|*.png` files (any case,
    /// not recursive) are taken in lexical order of their names.
    pub fn open(path: &Path, looping: bool) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| CaptureError::open(&name, format!("cannot open image source: {e}")))?;
        let paths = if meta.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| CaptureError::open(&name, format!("cannot list folder: {e}")))?;
            let mut paths: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_image_name(p))
                .collect();
            paths.sort();
            if paths.is_empty() {
                return Err(CaptureError::open(
                    &name,
                    "folder has no .jpg/.jpeg/.png images",
                ));
            }
            paths
        } else {
            vec![path.to_path_buf()]
        };
        Ok(FileSource {
            name,
            paths,
            next: 0,
            looping,
            seq: 0,
            decoded_this_pass: false,
        })
    }

    /// The images this source walks through, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.next >= self.paths.len() {
            if !self.looping || !self.decoded_this_pass {
                return Ok(None);
            }
            self.next = 0;
            self.decoded_this_pass = false;
        }
        let path = &self.paths[self.next];
        self.next += 1;
        let what = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| CaptureError::corrupt(&what, format!("cannot read: {e}")))?;
        let image = decode_bytes(&bytes, &what)?;
        self.decoded_this_pass = true;
        let frame = Frame {
            seq: self.seq,
            time: now_secs(),
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::decode::{encode_jpeg, encode_png};
    use crate::vision::image::RgbImage;

    fn img(v: u8) -> RgbImage {
        RgbImage {
            width: 4,
            height: 2,
            data: vec![v; 4 * 2 * 3],
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spotter-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn folder_in_lexical_order_skipping_corrupt_and_non_images() {
        let d = temp_dir("order");
        std::fs::write(d.join("b.png"), encode_png(&img(20))).expect("write");
        std::fs::write(d.join("a.PNG"), encode_png(&img(10))).expect("write");
        std::fs::write(d.join("c.jpg"), b"not a jpeg").expect("write");
        std::fs::write(d.join("d.jpeg"), encode_jpeg(&img(200), 95)).expect("write");
        std::fs::write(d.join("notes.txt"), b"ignored").expect("write");
        let mut s = FileSource::open(&d, false).expect("open");
        assert_eq!(s.paths().len(), 4);

        let f = s.next_frame().expect("a").expect("frame");
        assert_eq!((f.seq, f.image.data[0]), (0, 10));
        let f = s.next_frame().expect("b").expect("frame");
        assert_eq!((f.seq, f.image.data[0]), (1, 20));
        match s.next_frame() {
            Err(CaptureError::Corrupt { source_name, .. }) => {
                assert!(source_name.ends_with("c.jpg"), "{source_name}")
            }
            other => panic!("expected Corrupt for c.jpg, got {other:?}"),
        }
        let f = s.next_frame().expect("d").expect("frame");
        assert_eq!(
            f.seq, 2,
            "sequence numbers have no gaps for delivered frames"
        );
        assert!(f.image.data[0].abs_diff(200) <= 3);
        assert!(s.next_frame().expect("end").is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn looping_single_file_and_all_corrupt_loop_ends() {
        let d = temp_dir("loop");
        let p = d.join("one.png");
        std::fs::write(&p, encode_png(&img(5))).expect("write");
        let mut s = FileSource::open(&p, true).expect("open");
        for seq in 0..3 {
            assert_eq!(s.next_frame().expect("ok").expect("frame").seq, seq);
        }

        let bad = d.join("bad");
        std::fs::create_dir_all(&bad).expect("mkdir");
        std::fs::write(bad.join("x.jpg"), b"junk").expect("write");
        let mut s = FileSource::open(&bad, true).expect("open");
        assert!(s.next_frame().is_err());
        assert!(
            s.next_frame().expect("end").is_none(),
            "no endless loop over corrupt files"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_path_and_empty_folder_name_the_path() {
        let err = FileSource::open(Path::new("/no/such/dir/x.png"), false).expect_err("missing");
        assert!(matches!(err, CaptureError::Open { .. }));
        assert!(err.to_string().contains("/no/such/dir/x.png"), "{err}");

        let d = temp_dir("empty");
        let err = FileSource::open(&d, false).expect_err("empty");
        assert!(err.to_string().contains("no .jpg"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
