//! Shipped defaults: where the default model, labels and sample images are found.
//!
//! Search order for the `models/` folder: `$SPOTTER_MODELS`, `./models`, the folder next to
//! the executable (`<exe dir>/models`, `<exe dir>/../share/spotter/models` as installed by the
//! .deb), then the source checkout the binary was built from.

use std::path::{Path, PathBuf};

pub const DEFAULT_MODEL: &str = "mobilenet_ssd_v2_coco_quant_postprocess.tflite";
pub const DEFAULT_LABELS: &str = "coco_labels.txt";

/// Candidate `models/` directories, in search order.
pub fn model_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("SPOTTER_MODELS") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("models"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.join("models"));
            dirs.push(dir.join("../share/spotter/models"));
        }
    }
    dirs.push(PathBuf::from("/usr/share/spotter/models"));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    dirs
}

fn find(name: &str) -> Option<PathBuf> {
    model_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The default model, if it can be found.
pub fn default_model() -> Option<PathBuf> {
    find(DEFAULT_MODEL)
}

/// Labels for `model`: the COCO labels next to the default model, or a label file next to the
/// model named `<stem>.labels`, `<stem>_labels.txt`, `labels.txt` or `labelmap.txt`.
pub fn labels_for(model: &Path) -> Option<PathBuf> {
    let dir = model.parent().unwrap_or(Path::new("."));
    let stem = model.file_stem()?.to_string_lossy().to_string();
    let mut candidates = vec![
        dir.join(format!("{stem}.labels")),
        dir.join(format!("{stem}_labels.txt")),
    ];
    if model.file_name().is_some_and(|n| n == DEFAULT_MODEL) {
        candidates.push(dir.join(DEFAULT_LABELS));
    }
    candidates.push(dir.join("labels.txt"));
    candidates.push(dir.join("labelmap.txt"));
    candidates.into_iter().find(|p| p.is_file())
}

/// The shipped sample images folder (`models/samples`).
pub fn samples_dir() -> Option<PathBuf> {
    model_dirs()
        .into_iter()
        .map(|d| d.join("samples"))
        .find(|p| p.is_dir())
}
