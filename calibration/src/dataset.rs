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

/// Normalization of 8-bit pixels to model input values, per RGB channel:
/// `(pixel[c] - mean[c]) / std[c]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalize {
    /// The same mean and std for all three channels.
    pub fn uniform(mean: f32, std: f32) -> Normalize {
        Normalize {
            mean: [mean; 3],
            std: [std; 3],
        }
    }

    /// From the `--mean` / `--std` flag values: each a scalar or three comma-separated values
    /// (R, G, B). Errors name the flag.
    pub fn parse(mean: &str, std: &str) -> Result<Normalize> {
        let n = Normalize {
            mean: parse_channels("--mean", mean)?,
            std: parse_channels("--std", std)?,
        };
        if let Some(c) = n.std.iter().position(|&s| s == 0.0) {
            bail!("--std {std}: channel {c} is zero (input = (rgb - mean) / std)");
        }
        Ok(n)
    }
}

fn parse_channels(flag: &str, s: &str) -> Result<[f32; 3]> {
    let vals: Vec<f32> = s
        .split(',')
        .map(|v| {
            let v = v.trim();
            match v.parse::<f32>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => bail!("{flag} {s}: '{v}' is not a finite number"),
            }
        })
        .collect::<Result<_>>()?;
    match vals.as_slice() {
        [x] => Ok([*x; 3]),
        [r, g, b] => Ok([*r, *g, *b]),
        _ => bail!(
            "{flag} {s}: expected one value or three (R,G,B), got {}",
            vals.len()
        ),
    }
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
    if !(norm.std.iter().all(|s| s.is_finite() && *s != 0.0)
        && norm.mean.iter().all(|m| m.is_finite()))
    {
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
                        .enumerate()
                        .map(|(i, &p)| (p as f32 - norm.mean[i % 3]) / norm.std[i % 3])
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
        mean: [127.5; 3],
        std: [127.5; 3],
    };

    #[test]
    fn mean_and_std_take_a_scalar_or_three_values() {
        let n = Normalize::parse("123.7,116.3, 103.5", "58.4").unwrap();
        assert_eq!(n.mean, [123.7, 116.3, 103.5]);
        assert_eq!(n.std, [58.4; 3]);
        assert_eq!(Normalize::parse("127.5", "127.5").unwrap(), N);
        let msg = Normalize::parse("1,2", "1").unwrap_err().to_string();
        assert!(msg.contains("--mean 1,2") && msg.contains("got 2"), "{msg}");
        let msg = Normalize::parse("0", "1,x,2").unwrap_err().to_string();
        assert!(msg.contains("--std 1,x,2") && msg.contains("'x'"), "{msg}");
        let msg = Normalize::parse("0", "1,0,1").unwrap_err().to_string();
        assert!(
            msg.contains("--std") && msg.contains("channel 1 is zero"),
            "{msg}"
        );
    }

    #[test]
    fn per_channel_normalization_uses_each_channels_mean_and_std() {
        let d = tmpdir("perchannel");
        let img = spotter::vision::image::RgbImage {
            width: 1,
            height: 1,
            data: vec![100, 100, 100],
        };
        spotter::vision::image::save(&img, &d.join("p.png")).unwrap();
        let n = Normalize {
            mean: [100.0, 50.0, 0.0],
            std: [1.0, 2.0, 4.0],
        };
        let ds = load(&d, None, 1, 1, n, &mut |_, _| {}).unwrap();
        assert_eq!(ds.inputs[0], vec![0.0, 25.0, 25.0]);
    }

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
