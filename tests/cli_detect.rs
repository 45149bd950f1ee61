//! `spotter detect` end to end: JSON contract against LiteRT goldens, annotated output, exit
//! statuses, and corrupt model files (never a panic, always exit 2 naming the file).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn spotter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run spotter")
}

fn golden_cli(name: &str) -> serde_json::Value {
    read_json(&repo().join(format!("tests/goldens/coral/{name}.detections.json")))["cli"].clone()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spotter-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn json_matches_litert_reference_detections() {
    let names = coral_golden_names();
    let mut paths = Vec::new();
    for n in &names {
        let g = golden_cli(n);
        paths.push(g["image"].as_str().unwrap().to_string());
    }
    let mut args = vec!["detect", "--json", "--threshold", "0.3"];
    args.extend(paths.iter().map(String::as_str));
    let out = spotter(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), names.len());
    for (line, name) in lines.iter().zip(&names) {
        let ours: serde_json::Value = serde_json::from_str(line).unwrap();
        let want = golden_cli(name);
        assert_eq!(ours["width"], want["width"], "{name}");
        assert_eq!(ours["height"], want["height"], "{name}");
        let (o, w) = (
            ours["detections"].as_array().unwrap(),
            want["detections"].as_array().unwrap(),
        );
        assert_eq!(o.len(), w.len(), "{name}: {line}");
        for (a, b) in o.iter().zip(w) {
            assert_eq!(a["label"], b["label"], "{name}");
            assert_eq!(a["class_id"], b["class_id"], "{name}");
            assert_eq!(a["score"].as_f64(), b["score"].as_f64(), "{name}");
            for k in 0..4 {
                let (x, y) = (a["box"][k].as_f64().unwrap(), b["box"][k].as_f64().unwrap());
                assert!((x - y).abs() < 0.01, "{name}: box {k}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn out_dir_gets_annotated_images_at_original_size() {
    let dir = tmpdir("out");
    let out = spotter(&[
        "detect",
        "--out",
        dir.to_str().unwrap(),
        "models/samples/astronaut.png",
        "models/samples/rocket.jpg",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("person"), "{text}");
    let png = spotter::vision::image::decode(&dir.join("astronaut.png")).unwrap();
    let orig = spotter::vision::image::decode(
        Path::new("models/samples/astronaut.png")
            .canonicalize()
            .as_deref()
            .unwrap_or(&repo().join("models/samples/astronaut.png")),
    )
    .unwrap();
    assert_eq!((png.width, png.height), (orig.width, orig.height));
    assert_ne!(png.data, orig.data, "boxes were drawn");
    let jpg = spotter::vision::image::decode(&dir.join("rocket.jpg")).unwrap();
    assert_eq!((jpg.width, jpg.height), (640, 427));
}

#[test]
fn undecodable_image_is_skipped_and_reported_with_exit_1() {
    let dir = tmpdir("bad");
    let bad = dir.join("bad.jpg");
    std::fs::write(&bad, b"not an image").unwrap();
    let out = spotter(&[
        "detect",
        "--json",
        bad.to_str().unwrap(),
        "models/samples/chelsea.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jpg"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.contains("\"cat\""), "{stdout}");
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(spotter(&["detect"]).status.code(), Some(2));
    assert_eq!(
        spotter(&["detect", "--threshold", "abc", "x.png"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        spotter(&["detect", "--threshold", "7", "x.png"])
            .status
            .code(),
        Some(2)
    );
    let out = spotter(&["detect", "--model", "/nonexistent/model.tflite", "x.png"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.tflite"));
    let out = spotter(&[
        "detect",
        "--labels",
        "/nonexistent/labels.txt",
        "models/samples/chelsea.png",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

fn assert_model_rejected(bytes: &[u8], dir: &Path, tag: &str) {
    let model = dir.join(format!("{tag}.tflite"));
    std::fs::write(&model, bytes).unwrap();
    let out = spotter(&[
        "detect",
        "--json",
        "--model",
        model.to_str().unwrap(),
        "models/samples/chelsea.png",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{tag}: {stderr}");
    assert!(
        stderr.contains(&format!("{tag}.tflite")),
        "{tag}: message must name the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{tag}: {stderr}");
}

#[test]
fn empty_truncated_and_garbage_models_exit_2_naming_the_file() {
    let dir = tmpdir("models");
    let good = std::fs::read(coral_model()).unwrap();
    assert_model_rejected(&[], &dir, "empty");
    for (i, cut) in [
        3usize,
        8,
        64,
        4096,
        good.len() / 3,
        good.len() - 1,
        good.len() - 3,
    ]
    .iter()
    .enumerate()
    {
        assert_model_rejected(&good[..*cut], &dir, &format!("truncated{i}"));
    }
    assert_model_rejected(b"this is not a model at all, just text", &dir, "text");
    let mut header = good.clone();
    header[0..4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    assert_model_rejected(&header, &dir, "badroot");
}

/// Bit flips anywhere may still describe a valid model (e.g. in weights); what matters is that
/// nothing panics or crashes: exit 0 with output, or exit 2 with a message.
#[test]
fn bit_flipped_models_never_crash() {
    let dir = tmpdir("flips");
    let good = std::fs::read(coral_model()).unwrap();
    let mut state = 0x9e3779b97f4a7c15u64;
    for i in 0..40 {
        let mut bytes = good.clone();
        // Flips concentrated in the flatbuffer structure (the first and last 64 KiB hold the
        // tables and vtables), where they are most likely to hit offsets and lengths.
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let region = if state.is_multiple_of(2) {
                0..65536
            } else {
                good.len() - 65536..good.len()
            };
            let pos = region.start + (state as usize >> 8) % (region.end - region.start);
            bytes[pos] ^= 1 << (state % 8);
        }
        let model = dir.join(format!("flip{i}.tflite"));
        std::fs::write(&model, &bytes).unwrap();
        let out = spotter(&[
            "detect",
            "--json",
            "--model",
            model.to_str().unwrap(),
            "models/samples/chelsea.png",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => assert_eq!(
                String::from_utf8_lossy(&out.stdout).lines().count(),
                1,
                "flip{i}"
            ),
            Some(2) => assert!(
                stderr.contains(&format!("flip{i}.tflite")),
                "flip{i}: {stderr}"
            ),
            other => panic!("flip{i}: exit {other:?}: {stderr}"),
        }
    }
}

/// Regression: `spotter board check | grep -q ...` and `spotter bench ... | head -1` panicked
/// in `println!` once the reader had closed the pipe (exit 101 and a panic message). Now a
/// broken pipe ends the command quietly with status 0.
#[test]
fn writing_to_a_closed_stdout_is_not_a_panic() {
    for args in [
        &["board", "check", "--board", "x86_64"][..],
        &["bench", "--runs", "1", "--threads", "1", "--profile"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spotter"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn spotter");
        // Close the read end before spotter writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Regression: a missing model file printed its I/O cause twice ("No such file or directory
/// (os error 2): No such file or directory (os error 2)"): the typed error quotes it and
/// `{:#}` printed its `source()` again.
#[test]
fn missing_model_error_names_the_cause_once() {
    let out = spotter(&["detect", "--model", "/nonexistent/model.tflite", "x.png"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/model.tflite"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

/// `bench --profile` prints each op's mean and fastest time per run: one row per op of the
/// Coral model, the fastest never above the mean, and the op times adding up to about a run.
#[test]
fn bench_profile_reports_mean_and_fastest_time_per_op() {
    let out = spotter(&["bench", "--runs", "4", "--threads", "1", "--profile"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let mut lines = text.lines().skip(1);
    let header = lines.next().expect("header");
    assert!(
        header.contains("ms") && header.contains("min ms"),
        "{header}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    // The Coral SSD has 99 ops (convs, depthwise, adds, reshapes, ..., post-process).
    assert_eq!(rows.len(), 99, "{text}");
    for r in &rows {
        // ... kernel, mean ms, min ms, share %, GMAC/s
        let n = r.len();
        let (mean, min): (f64, f64) = (r[n - 4].parse().unwrap(), r[n - 3].parse().unwrap());
        assert!(min <= mean + 1e-4 && min >= 0.0, "{r:?}");
    }
}
