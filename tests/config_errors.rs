//! Issue 7, errors: every config error names the file, the key and the line; every failed open
//! of `spotter run` names the path and exits 2 (never 101, never a panic).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use spotter::config::Config;

/// A config with every section, one key per line, so each key's line is known.
const FULL: &str = r#"[model]
path = "m.tflite"
labels = "l.txt"
[source]
uri = "models/samples"
camera = "door"
width = 640
height = 480
fps = 10
loop = true
max_backoff = 5.0
[detect]
threshold = 0.4
labels = ["person"]
min_area = 100.0
max_area = 90000.0
[tracker]
iou_threshold = 0.3
max_missed_frames = 5
[mqtt]
url = "mqtt://localhost:1883"
prefix = "spotter"
qos = 1
client_id = "cam"
queue = 100
discovery = true
discovery_prefix = "homeassistant"
publish_detections = true
keep_alive = 30
[serial]
path = "/dev/ttyUSB0"
baud = 115200
format = "cobs"
queue = 64
[http]
listen = "127.0.0.1:8501"
[pipeline]
threads = 2
fps = 5.0
max_frames = 10
stdout_stats = true
"#;

/// `section.key` of every `key = value` line, with its 1-based line number.
fn keys() -> Vec<(String, usize, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, line) in FULL.lines().enumerate() {
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
        } else if let Some((k, v)) = line.split_once(" = ") {
            out.push((format!("{section}.{k}"), i + 1, v.to_string()));
        }
    }
    out
}

/// A value of the wrong type (or out of range) for `value`'s key.
fn bad_value(value: &str) -> &'static str {
    if value.starts_with('"') || value.starts_with('[') {
        "7"
    } else if value == "true" {
        "\"yes\""
    } else {
        "\"many\""
    }
}

#[test]
fn full_config_parses() {
    Config::parse(FULL, "t.toml").expect("the reference config is valid");
}

#[test]
fn every_key_with_a_bad_value_names_file_line_and_key() {
    let keys = keys();
    assert!(keys.len() >= 30, "{}", keys.len());
    let lines: Vec<&str> = FULL.lines().collect();
    for (key, line, value) in keys {
        let mut text = lines.clone();
        let name = key.rsplit('.').next().unwrap();
        let replaced = format!("{name} = {}", bad_value(&value));
        text[line - 1] = &replaced;
        let text = text.join("\n");
        let e = Config::parse(&text, "t.toml").expect_err(&key);
        let s = e.to_string();
        assert!(s.starts_with(&format!("t.toml:{line}:")), "{key}: {s}");
        assert!(s.contains(&key), "{key}: {s}");
    }
}

#[test]
fn every_key_misspelled_names_file_line_and_key() {
    let lines: Vec<&str> = FULL.lines().collect();
    for (key, line, value) in keys() {
        let mut text = lines.clone();
        let name = key.rsplit('.').next().unwrap();
        let replaced = format!("{name}x = {value}");
        text[line - 1] = &replaced;
        let s = Config::parse(&text.join("\n"), "t.toml")
            .expect_err(&key)
            .to_string();
        assert!(s.starts_with(&format!("t.toml:{line}:")), "{key}: {s}");
        assert!(s.contains(&format!("{name}x")), "{key}: {s}");
    }
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .arg("run")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run spotter");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_names(args: &[&str], path: &str) {
    let (code, stderr) = run(args);
    assert_eq!(code, Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(path),
        "{args:?}: must name {path}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn failed_opens_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let missing = d("missing.toml");
    assert_names(&["--config", &missing], &missing);
    let model = d("missing.tflite");
    assert_names(&["--model", &model, "--max-frames", "1"], &model);
    let labels = d("missing-labels.txt");
    assert_names(&["--labels", &labels, "--max-frames", "1"], &labels);
    let source = d("no-such-dir");
    assert_names(&["--source", &source, "--max-frames", "1"], &source);
    let serial = d("no-such-tty");
    assert_names(
        &[
            "--source",
            "models/samples",
            "--serial",
            &serial,
            "--max-frames",
            "1",
        ],
        &serial,
    );
    // A config file naming a missing CA file for mqtts://.
    let ca = d("missing-ca.pem");
    let cfg = dir.path().join("tls.toml");
    std::fs::write(
        &cfg,
        format!("[mqtt]\nurl = \"mqtts://127.0.0.1:8883\"\ntls_ca = \"{ca}\"\n"),
    )
    .unwrap();
    let (code, stderr) = run(&[
        "--config",
        cfg.to_str().unwrap(),
        "--source",
        "models/samples",
        "--max-frames",
        "1",
    ]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if code == Some(2) && !stderr.contains("mqtt-tls") {
        assert!(stderr.contains(&ca), "must name {ca}: {stderr}");
    }
}

#[test]
fn config_error_from_a_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[detect]\n\nthreshold = 3\n").unwrap();
    let (code, stderr) = run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    let want = format!("{}:3:", Path::new(&cfg).display());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stderr.contains("detect.threshold"), "{stderr}");
}
