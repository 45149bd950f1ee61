//! `spotter run` end to end with the real binary: stdout JSON lines on a folder of images,
//! config errors, serial output over a real pty pair (cobs decoded by `spotter decode-serial`
//! equals jsonl), SIGHUP reloading the threshold mid-run, SIGTERM ending it cleanly.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::pty::{openpty, OpenptyResult};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const SAMPLES: [&str; 5] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "horse.png",
    "rocket.jpg",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spotter() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spotter"));
    c.current_dir(repo()).env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    spotter().args(args).output().expect("run spotter")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spotter-run-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// A folder with copies of the given sample images.
fn sample_dir(tag: &str, names: &[&str]) -> PathBuf {
    let d = tmpdir(tag);
    for n in names {
        std::fs::copy(repo().join("models/samples").join(n), d.join(n)).expect("copy sample");
    }
    d
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Detections of `spotter detect --json` per image file name, without track ids/zones.
fn detect_reference(dir: &Path, threshold: &str) -> Vec<(String, Value)> {
    let mut args = vec!["detect", "--json", "--threshold", threshold];
    let paths: Vec<String> = SAMPLES
        .iter()
        .map(|n| dir.join(n).display().to_string())
        .collect();
    args.extend(paths.iter().map(String::as_str));
    let o = run(&args);
    assert!(o.status.success(), "detect failed: {}", stderr(&o));
    json_lines(&o.stdout)
        .into_iter()
        .map(|v| (v["image"].as_str().unwrap_or("").to_string(), v))
        .collect()
}

fn strip_track(d: &Value) -> Value {
    let mut d = d.clone();
    let o = d.as_object_mut().expect("detection object");
    o.remove("id");
    o.remove("zones");
    d
}

#[test]
fn folder_with_max_frames_prints_one_line_per_frame() {
    let dir = sample_dir("folder", &SAMPLES);
    let o = run(&[
        "run",
        "--source",
        dir.to_str().unwrap(),
        "--max-frames",
        "7",
        "--threshold",
        "0.4",
        "--camera",
        "bench",
    ]);
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    let lines = json_lines(&o.stdout);
    assert_eq!(lines.len(), 7, "one line per frame");
    let reference = detect_reference(&dir, "0.4");
    for (i, line) in lines.iter().enumerate() {
        // Image files are processed without drops, in name order, looping.
        assert_eq!(line["frame"], i as u64, "{line}");
        assert_eq!(line["camera"], "bench");
        let (_, want) = &reference[i % SAMPLES.len()];
        assert_eq!(line["width"], want["width"]);
        assert_eq!(line["height"], want["height"]);
        let got: Vec<Value> = line["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .map(strip_track)
            .collect();
        assert_eq!(
            &Value::Array(got),
            &want["detections"],
            "frame {i}: same detections as `spotter detect`"
        );
        for d in line["detections"].as_array().expect("detections") {
            assert!(d["id"].as_u64().is_some_and(|id| id >= 1), "{d}");
            assert!(d["zones"].is_array());
        }
        assert!(line["inference_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_arguments_uses_the_defaults() {
    // No camera on a test machine: the shipped model and the sample images.
    if spotter_first_camera_present() {
        eprintln!("skipping the default-source check: this machine has a camera");
        return;
    }
    let o = run(&["run", "--max-frames", "3"]);
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    let lines = json_lines(&o.stdout);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["camera"], "camera");
    assert_eq!(lines[0]["width"], 512, "astronaut.png comes first");
}

fn spotter_first_camera_present() -> bool {
    std::fs::read_dir("/dev")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("video"))
        })
        .unwrap_or(false)
}

#[test]
fn config_errors_exit_2_naming_file_key_and_line() {
    let dir = tmpdir("cfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[source]\ncamera = \"x\"\n\n[detect]\nthreshold = 1.5\n",
    )
    .unwrap();
    let o = run(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--max-frames",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}:5:13: detect.threshold", cfg.display())),
        "{e}"
    );
    assert!(e.contains("[0, 1]"), "{e}");

    std::fs::write(
        &cfg,
        "[mqtt]\nurl = \"mqtt://localhost:1883\"\nqos_level = 1\n",
    )
    .unwrap();
    let o = run(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--max-frames",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("bad.toml:3:") && e.contains("qos_level"), "{e}");

    std::fs::write(&cfg, "[detect\n").unwrap();
    let o = run(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml:1:"), "{}", stderr(&o));

    let o = run(&[
        "run",
        "--config",
        dir.join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));

    let o = run(&["run", "--threshold", "7", "--max-frames", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("command line: detect.threshold"),
        "{}",
        stderr(&o)
    );

    let o = run(&[
        "run",
        "--source",
        "/nonexistent/images",
        "--max-frames",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/images"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads a pty master until EOF/EIO in the background.
fn collect(mut master: File) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Run with `--serial` on a fresh pty; return what arrived at the master.
fn serial_run(dir: &Path, format: &str, frames: usize) -> Vec<u8> {
    let OpenptyResult { master, slave } = openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&slave).expect("ttyname");
    let rx = collect(File::from(master));
    let o = run(&[
        "run",
        "--source",
        dir.to_str().unwrap(),
        "--max-frames",
        &frames.to_string(),
        "--threshold",
        "0.3",
        "--serial",
        path.to_str().unwrap(),
        "--serial-format",
        format,
    ]);
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "no stdout sink when serial is configured"
    );
    // The process has exited, so its sink has flushed everything into the pty: read until
    // the line stays quiet (a writer may also send extra delimiters to resync the receiver).
    let delimiter = if format == "cobs" { 0u8 } else { b'\n' };
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(chunk) => got.extend(chunk),
            Err(_) if got.iter().filter(|&&b| b == delimiter).count() >= frames => break,
            Err(_) => assert!(
                Instant::now() < deadline,
                "{format}: only {} bytes arrived for {frames} frames",
                got.len()
            ),
        }
    }
    drop(slave);
    got
}

fn without_times(mut v: Value) -> Value {
    v.as_object_mut().expect("object").remove("frame_time");
    v
}

#[test]
fn serial_cobs_decodes_to_the_jsonl_lines() {
    let dir = sample_dir("serial", &SAMPLES);
    let frames = 6;
    let jsonl = serial_run(&dir, "jsonl", frames);
    let cobs = serial_run(&dir, "cobs", frames);

    let mut child = spotter()
        .args(["decode-serial", "--format", "cobs"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn decode-serial");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&cobs)
        .expect("write cobs");
    let decoded = child.wait_with_output().expect("decode-serial");
    assert!(decoded.status.success(), "{}", stderr(&decoded));

    let a: Vec<Value> = json_lines(&jsonl).into_iter().map(without_times).collect();
    let b: Vec<Value> = json_lines(&decoded.stdout)
        .into_iter()
        .map(without_times)
        .collect();
    assert_eq!(a.len(), frames);
    assert_eq!(
        a, b,
        "cobs decoded == jsonl (frame times differ between runs)"
    );
    assert!(
        a.iter()
            .any(|f| f["detections"].as_array().is_some_and(|d| !d.is_empty())),
        "some detections went over the line"
    );
    for (i, f) in a.iter().enumerate() {
        assert_eq!(f["frame"], i as u64);
    }

    // jsonl through decode-serial is the identity on JSON values.
    let mut child = spotter()
        .args(["decode-serial", "--format", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&jsonl)
        .expect("write");
    let out = child.wait_with_output().expect("decode-serial jsonl");
    assert!(out.status.success());
    assert_eq!(json_lines(&out.stdout), json_lines(&jsonl));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A running `spotter run` whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = spotter()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spotter run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    break;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a frame within 30 s")
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).expect("kill");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scores(frame: &Value) -> Vec<f64> {
    frame["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| d["score"].as_f64().expect("score"))
        .collect()
}

#[test]
fn sighup_changes_the_threshold_and_sigterm_ends_cleanly() {
    // One image, looped: every frame has the same detections.
    let dir = sample_dir("hup", &["coffee.png"]);
    let cfg = dir.join("spotter.toml");
    std::fs::write(&cfg, "[detect]\nthreshold = 0.2\n").expect("write config");
    let r = Running::start(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--source",
        dir.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let before = scores(&r.next());
    assert!(
        before.iter().any(|&s| s < 0.6) && before.iter().any(|&s| s >= 0.6),
        "need detections on both sides of 0.6 for this test: {before:?}"
    );

    std::fs::write(&cfg, "[detect]\nthreshold = 0.6\n").expect("rewrite config");
    r.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let s = scores(&r.next());
        if s.len() < before.len() {
            break s;
        }
        assert!(Instant::now() < deadline, "threshold never changed");
    };
    assert!(after.iter().all(|&s| s >= 0.6), "{after:?}");
    assert_eq!(
        after.len(),
        before.iter().filter(|&&s| s >= 0.6).count(),
        "exactly the detections at or above the new threshold"
    );

    // A broken file on reload is ignored: the run goes on with the running configuration.
    std::fs::write(&cfg, "[detect]\nthreshold = \"high\"\n").expect("break config");
    r.signal(Signal::SIGHUP);
    for _ in 0..3 {
        assert_eq!(scores(&r.next()).len(), after.len());
    }

    r.signal(Signal::SIGTERM);
    let mut r = r;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = r.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    let mut err = String::new();
    if let Some(mut e) = r.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.contains("reload"), "the bad reload is logged: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
