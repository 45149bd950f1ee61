//! Calibration images: list a folder, decode, resize with "spotter bilinear v1" to the model's
//! input size and normalize `(pixel - mean) / std` exactly as `spotter detect` does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use spotter::vision::image::{decode, resize_bilinear_v1};

/// Preprocessed float inputs, one `[h, w, 3]` array per image that decoded.
pub struct Dataset {
    pub names: Vec<String>,
    pub inputs: Vec<Vec<f32>>,
    /// Files that could not be decoded: `(file, reason)`.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Normalization of 8-bit pixels to model input values.
#[derive(Clone, Copy, Debug)]
pub struct Normalize {
    pub mean: f32,
    pub std: f32,
}

/// Regular, non-hidden files of `dir`, sorted by name.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the image folder {}", dir.display()))?;
    let mut files = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if !hidden && e.path().is_file() {
            files.push(e.path());
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("the image folder {} contains no files", dir.display());
    }
    Ok(files)
}

/// Decode and preprocess up to `limit` images of `dir` for a `w x h` RGB input.
/// Undecodable files are skipped and listed in [`Dataset::skipped`]; none decodable is an error.
pub fn load(
    dir: &Path,
    limit: Option<usize>,
    w: usize,
    h: usize,
    norm: Normalize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Dataset> {
    if !(norm.std.is_finite() && norm.std != 0.0 && norm.mean.is_finite()) {
        bail!("--mean/--std must be finite and --std non-zero");
    }
    let files = list_files(dir)?;
    let mut ds = Dataset {
        names: Vec::new(),
        inputs: Vec::new(),
        skipped: Vec::new(),
    };
    let mut pixels = vec![0u8; w * h * 3];
    for (k, f) in files.iter().enumerate() {
        if limit.is_some_and(|n| ds.inputs.len() >= n) {
            break;
        }
        progress(k, files.len());
        match decode(f) {
            Ok(img) => {
                resize_bilinear_v1(&img, w, h, &mut pixels)
                    .with_context(|| format!("resizing {}", f.display()))?;
                ds.inputs.push(
                    pixels
                        .iter()
                        .map(|&p| (p as f32 - norm.mean) / norm.std)
                        .collect(),
                );
                ds.names.push(
                    f.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            }
            Err(e) => ds.skipped.push((f.clone(), e.to_string())),
        }
    }
    progress(files.len(), files.len());
    if ds.inputs.is_empty() {
        bail!(
            "none of the {} files in {} could be decoded as an image (first error: {})",
            files.len(),
            dir.display(),
            ds.skipped
                .first()
                .map_or("none".to_string(), |(_, e)| e.clone())
        );
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spotter-calib-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const N: Normalize = Normalize {
        mean: 127.5,
        std: 127.5,
    };

    #[test]
    fn missing_and_empty_folders_are_clear_errors() {
        let e = load(
            Path::new("/nonexistent/imgs"),
            None,
            4,
            4,
            N,
            &mut |_, _| {},
        )
        .err()
        .unwrap();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("cannot read the image folder /nonexistent/imgs"),
            "{msg}"
        );
        let d = tmpdir("empty");
        let msg = format!(
            "{:#}",
            load(&d, None, 4, 4, N, &mut |_, _| {}).err().unwrap()
        );
        assert!(msg.contains("contains no files"), "{msg}");
    }

    #[test]
    fn unreadable_images_are_skipped_and_counted() {
        let d = tmpdir("mixed");
        std::fs::write(d.join("a_broken.png"), b"not a png").unwrap();
        std::fs::write(d.join("b_notes.txt"), b"hello").unwrap();
        let img = spotter::vision::image::RgbImage {
            width: 2,
            height: 2,
            data: vec![0, 255, 127, 10, 20, 30, 40, 50, 60, 70, 80, 90],
        };
        spotter::vision::image::save(&img, &d.join("c_ok.png")).unwrap();
        let ds = load(&d, None, 2, 2, N, &mut |_, _| {}).unwrap();
        assert_eq!(ds.names, vec!["c_ok.png"]);
        assert_eq!(ds.skipped.len(), 2);
        assert_eq!(ds.inputs[0][0], -1.0);
        assert_eq!(ds.inputs[0][1], 1.0);
        // Only broken files: an error that says so.
        std::fs::remove_file(d.join("c_ok.png")).unwrap();
        let msg = format!(
            "{:#}",
            load(&d, None, 2, 2, N, &mut |_, _| {}).err().unwrap()
        );
        assert!(msg.contains("none of the 2 files"), "{msg}");
    }
}
