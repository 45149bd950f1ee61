//! `spotter detect [--model M] [--labels L] [--threshold 0.5] [--json] [--out DIR] IMAGE...`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use spotter::detector::{Detection, Detector, DetectorOptions};
use spotter::vision::image::RgbImage;
use spotter::vision::{draw, image, labels::Labels};

use super::UsageError;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (.tflite, or an ONNX QDQ int8 .onnx). Default: the shipped Coral SSD MobileNet v2 COCO.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Label file: "id  name" lines, one name per line, or a label_map.pbtxt.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Minimum score of a reported detection.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// One JSON object per image on stdout.
    #[arg(long)]
    json: bool,
    /// Write annotated copies of the inputs into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Threads for inference (default: 1).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Images (JPEG or PNG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct ImageResult<'a> {
    image: &'a str,
    width: usize,
    height: usize,
    detections: &'a [Detection],
}

/// Resolve the model path (explicit or default) with a clear error.
pub fn resolve_model(model: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match model {
        Some(m) => Ok(m),
        None => spotter::defaults::default_model().ok_or_else(|| {
            UsageError(format!(
                "no --model given and the default model {} was not found in {:?}",
                spotter::defaults::DEFAULT_MODEL,
                spotter::defaults::model_dirs()
            ))
            .into()
        }),
    }
}

/// Load labels from `--labels` or next to the model.
pub fn resolve_labels(labels: Option<PathBuf>, model: &Path) -> anyhow::Result<Option<Labels>> {
    let path = labels.or_else(|| spotter::defaults::labels_for(model));
    match path {
        Some(p) => {
            let l = Labels::load(&p).map_err(|e| UsageError(e.to_string()))?;
            Ok(Some(l))
        }
        None => Ok(None),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if !(0.0..=1.0).contains(&args.threshold) {
        return Err(UsageError(format!(
            "--threshold must be in [0, 1], got {}",
            args.threshold
        ))
        .into());
    }
    let model = resolve_model(args.model)?;
    let labels = resolve_labels(args.labels, &model)?;
    let options = DetectorOptions {
        threads: args.threads.max(1),
        ..Default::default()
    };
    let mut detector = Detector::load(&model, labels, options)?;
    log::info!("model {} loaded", model.display());
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
    }

    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let mut failed = 0;
    for path in &args.images {
        let img = match image::decode(path) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("spotter: skipping image: {e}");
                failed += 1;
                continue;
            }
        };
        let detections = match detector.detect(&img, args.threshold) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("spotter: skipping {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let shown = path.display().to_string();
        if args.json {
            let line = serde_json::to_string(&ImageResult {
                image: &shown,
                width: img.width,
                height: img.height,
                detections: &detections,
            })?;
            writeln!(stdout, "{line}")?;
        } else {
            writeln!(
                stdout,
                "{shown} ({}x{}): {} detections",
                img.width,
                img.height,
                detections.len()
            )?;
            for d in &detections {
                writeln!(
                    stdout,
                    "  {:<16} {:>3}  {:.3}  [{:.1}, {:.1}, {:.1}, {:.1}]",
                    d.label, d.class_id, d.score, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
                )?;
            }
        }
        if let Some(out) = &args.out {
            let target = annotated_path(out, path);
            let mut canvas = img.clone();
            annotate(&mut canvas, &detections);
            if let Err(e) = image::save(&canvas, &target) {
                eprintln!("spotter: cannot write {}: {e}", target.display());
                failed += 1;
            }
        }
    }
    stdout.flush()?;
    Ok(if failed > 0 { super::EXIT_RUNTIME } else { 0 })
}

/// `DIR/NAME.png` for PNG inputs, `DIR/NAME.jpg` otherwise.
fn annotated_path(out: &Path, input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into());
    let png = input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    out.join(format!("{stem}.{}", if png { "png" } else { "jpg" }))
}

/// Draw every detection's box, label and score.
pub fn annotate(canvas: &mut RgbImage, detections: &[Detection]) {
    for d in detections {
        let b = d.bbox.map(|v| v as f32);
        draw::draw_detection(canvas, b, d.class_id, &d.label, d.score);
    }
}
