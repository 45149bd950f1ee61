//! Helpers shared by integration tests: repository paths, golden files, hashing.
#![allow(dead_code)]

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn coral_model() -> PathBuf {
    repo().join("models/mobilenet_ssd_v2_coco_quant_postprocess.tflite")
}

/// The read-only shared data folder beside the checkout (`../shared`), or `$SPOTTER_SHARED`.
pub fn shared() -> PathBuf {
    std::env::var_os("SPOTTER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Names of the golden images for the Coral model (`tests/goldens/coral/<name>.input.u8`).
pub fn coral_golden_names() -> Vec<String> {
    let dir = repo().join("tests/goldens/coral");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".input.u8"))
                .map(String::from)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no goldens in {}", dir.display());
    names
}
