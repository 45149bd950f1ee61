//! The V4L2 source through its real ioctl/mmap/poll path, against the emulated device in
//! `tests/v4l2-emu/v4l2_emu.c` (an LD_PRELOAD shim; see its header for the knobs).
//!
//! LD_PRELOAD must be set when a process starts, so each scenario re-executes this test binary
//! with the shim preloaded and runs the ignored `child_probe` test in it; the child prints
//! `PROBE ...` lines and exits non-zero on failure. Needs a C compiler (`cc`).
#![cfg(all(target_os = "linux", feature = "v4l2"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use spotter::capture::v4l2::{PixelFormat, V4l2Config, V4l2Source};
use spotter::capture::{open_source, CaptureError, Source, SourceOptions};
use spotter::vision::image::RgbImage;

const SCENARIO: &str = "SPOTTER_V4L2_EMU_SCENARIO";

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Compile the shim once per test process.
fn shim() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v4l2-emu/v4l2_emu.c");
        let out = tmp().join(format!("libv4l2_emu-{}.so", std::process::id()));
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-ldl")
            .status()
            .unwrap_or_else(|e| {
                panic!("v4l2 emulator needs a C compiler: running `cc` failed: {e} (install gcc)")
            });
        assert!(status.success(), "compiling {} failed", src.display());
        out
    })
}

/// Run `scenario` in a child with the shim preloaded; returns its PROBE lines.
fn run_child(scenario: &str, env: &[(&str, String)]) -> Vec<String> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child_probe",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("LD_PRELOAD", shim())
    .env(SCENARIO, scenario);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scenario {scenario} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let lines: Vec<String> = stdout
        .lines()
        // libtest prints "test child_probe ... " without a newline before the child's output.
        .filter_map(|l| l.find("PROBE ").map(|i| l[i + 6..].to_string()))
        .collect();
    assert!(
        lines.iter().any(|l| l == "done"),
        "scenario {scenario} did not finish:\n{stdout}\n{stderr}"
    );
    lines
}

fn scratch(tag: &str) -> PathBuf {
    let d = tmp().join(format!("v4l2-emu-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn yuyv_negotiation_frames_and_camera_scan() {
    let d = scratch("yuyv");
    // The emulated node lives in a scratch folder as a real (empty) file named video7, next to
    // a plain file video2 that is not a device: the scan must skip video2 and pick video7.
    std::fs::write(d.join("video2"), b"").expect("write");
    std::fs::write(d.join("video7"), b"").expect("write");
    let lines = run_child(
        "yuyv",
        &[
            ("V4L2_EMU_PATH", d.join("video7").display().to_string()),
            ("V4L2_EMU_FORMATS", "NV12,YUYV".into()),
            ("SCRATCH", d.display().to_string()),
        ],
    );
    assert!(
        lines.contains(&"format Yuyv 320x240".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"frames 6".to_string()), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("first_camera ") && l.ends_with("video7")),
        "{lines:?}"
    );
}

#[test]
fn mjpeg_preferred_and_decoded() {
    let d = scratch("mjpeg");
    let img = RgbImage {
        width: 640,
        height: 480,
        data: [200u8, 100, 50]
            .iter()
            .copied()
            .cycle()
            .take(640 * 480 * 3)
            .collect(),
    };
    let jpg = d.join("frame.jpg");
    std::fs::write(&jpg, spotter::capture::decode::encode_jpeg(&img, 95)).expect("write");
    let lines = run_child(
        "mjpeg",
        &[
            ("V4L2_EMU_FORMATS", "YUYV,MJPG,NV12".into()),
            ("V4L2_EMU_MJPEG", jpg.display().to_string()),
        ],
    );
    assert!(
        lines.contains(&"format Mjpeg 640x480 fps 15".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"frames 3".to_string()), "{lines:?}");
}

#[test]
fn nv12_when_it_is_all_there_is() {
    let lines = run_child("nv12", &[("V4L2_EMU_FORMATS", "NV12".into())]);
    assert!(
        lines.contains(&"format Nv12 640x480".to_string()),
        "{lines:?}"
    );
}

#[test]
fn device_vanishes_and_comes_back() {
    let d = scratch("vanish");
    let lines = run_child(
        "vanish",
        &[
            ("V4L2_EMU_FORMATS", "YUYV".into()),
            ("V4L2_EMU_FLAG", d.join("gone").display().to_string()),
            ("V4L2_EMU_VANISH_AFTER", "3".into()),
            ("V4L2_EMU_FPS", "30".into()),
        ],
    );
    assert!(lines.contains(&"before_vanish 3".to_string()), "{lines:?}");
    assert!(lines.contains(&"recovered".to_string()), "{lines:?}");
    assert!(lines.contains(&"recovered_retry".to_string()), "{lines:?}");
}

// ---------------------------------------------------------------------------------------------
// Child side (runs with the shim preloaded).

fn bt601(y: u8, u: u8, v: u8) -> [f64; 3] {
    let (y, u, v) = (y as f64 - 16.0, u as f64 - 128.0, v as f64 - 128.0);
    [
        1.164 * y + 1.596 * v,
        1.164 * y - 0.392 * u - 0.813 * v,
        1.164 * y + 2.017 * u,
    ]
    .map(|c| c.clamp(0.0, 255.0))
}

/// Check the emulator's band pattern (see v4l2_emu.c) for frame `n`.
fn check_bands(img: &RgbImage, n: u64) {
    let (w, h) = (img.width, img.height);
    let grey = (16 + (n * 10) % 220) as u8;
    let bands = [
        (81, 90, 240),
        (145, 54, 34),
        (41, 240, 110),
        (grey, 128, 128),
    ];
    for (b, &(y, u, v)) in bands.iter().enumerate() {
        let want = bt601(y, u, v);
        for row in [b * h / 4, b * h / 4 + h / 8, (b + 1) * h / 4 - 1] {
            for col in [0, w / 2, w - 1] {
                let px = &img.data[(row * w + col) * 3..][..3];
                for c in 0..3 {
                    assert!(
                        (px[c] as f64 - want[c]).abs() <= 1.5,
                        "frame {n} row {row} col {col}: {px:?} vs {want:?}"
                    );
                }
            }
        }
    }
}

fn wait_frame(src: &mut dyn Source, deadline: Instant) -> Result<spotter::pipeline::Frame, String> {
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match src.next_frame() {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => return Err("source ended".into()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("no frame before the deadline; last error: {last}"))
}

#[test]
#[ignore = "child process of the v4l2 emulation tests (needs LD_PRELOAD)"]
fn child_probe() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        println!("child_probe: not started by a v4l2 emulation test; nothing to do");
        return;
    };
    match scenario.as_str() {
        "yuyv" => {
            let path = PathBuf::from(std::env::var("V4L2_EMU_PATH").expect("path"));
            let scratch = PathBuf::from(std::env::var("SCRATCH").expect("scratch"));
            let cam = spotter::capture::first_camera_in(&scratch).expect("a camera");
            println!("PROBE first_camera {}", cam.display());
            let cfg = V4l2Config {
                width: Some(300),
                height: Some(200),
                ..V4l2Config::default()
            };
            let mut src = V4l2Source::open(&path, cfg).expect("open");
            let n = src.negotiated().clone();
            assert_eq!(n.format, PixelFormat::Yuyv);
            assert_eq!(n.stride, 640);
            println!("PROBE format {:?} {}x{}", n.format, n.width, n.height);
            let mut count = 0;
            for i in 0..6u64 {
                let f = src.next_frame().expect("frame").expect("some");
                assert_eq!(f.seq, i);
                assert_eq!((f.image.width, f.image.height), (320, 240));
                check_bands(&f.image, i);
                count += 1;
            }
            println!("PROBE frames {count}");
        }
        "mjpeg" => {
            let opts = SourceOptions {
                fps: Some(15),
                ..SourceOptions::default()
            };
            let mut src = open_source("/dev/video-emu0", &opts).expect("open_source");
            assert_eq!(src.name(), "/dev/video-emu0");
            let mut count = 0;
            for _ in 0..3 {
                let f = src.next_frame().expect("frame").expect("some");
                let px = &f.image.data[(240 * 640 + 320) * 3..][..3];
                assert!(
                    px[0].abs_diff(200) <= 4 && px[1].abs_diff(100) <= 4 && px[2].abs_diff(50) <= 4,
                    "{px:?}"
                );
                count += 1;
            }
            // Negotiation is checked through the concrete type.
            let src = V4l2Source::open(
                Path::new("/dev/video-emu0"),
                V4l2Config {
                    fps: Some(15),
                    ..V4l2Config::default()
                },
            )
            .expect("open");
            let n = src.negotiated();
            println!(
                "PROBE format {:?} {}x{} fps {}",
                n.format,
                n.width,
                n.height,
                n.fps.unwrap_or(0.0)
            );
            println!("PROBE frames {count}");
        }
        "nv12" => {
            let mut src = V4l2Source::open(Path::new("/dev/video-emu0"), V4l2Config::default())
                .expect("open");
            let n = src.negotiated().clone();
            println!("PROBE format {:?} {}x{}", n.format, n.width, n.height);
            for i in 0..2 {
                let f = src.next_frame().expect("frame").expect("some");
                check_bands(&f.image, i);
            }
        }
        "vanish" => {
            let flag = PathBuf::from(std::env::var("V4L2_EMU_FLAG").expect("flag"));
            let cfg = V4l2Config {
                reopen_delay: Duration::from_millis(50),
                ..V4l2Config::default()
            };
            let mut src = V4l2Source::open(Path::new("/dev/video-emu0"), cfg).expect("open");
            // 1. The emulator vanishes after 3 frames (VANISH_AFTER) by creating the flag.
            let mut frames = 0;
            let err = loop {
                match src.next_frame() {
                    Ok(Some(_)) => frames += 1,
                    Ok(None) => panic!("camera ended"),
                    Err(e) => break e,
                }
                assert!(frames <= 3, "device should have vanished");
            };
            println!("PROBE before_vanish {frames}");
            assert!(matches!(err, CaptureError::Disconnected { .. }), "{err}");
            assert!(!src.is_open());
            // While gone, the source keeps reporting Disconnected (reopen fails with ENOENT).
            match src.next_frame() {
                Err(CaptureError::Disconnected { what, .. }) => {
                    assert!(what.contains("reopen"), "{what}")
                }
                other => panic!("expected Disconnected while gone, got {other:?}"),
            }
            // Replug after 400 ms; the Source-level retry loop must recover within 5 s.
            let t0 = Instant::now();
            let replug = {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(400));
                    std::fs::remove_file(&flag).expect("remove flag");
                })
            };
            let f = wait_frame(&mut src, t0 + Duration::from_secs(5)).expect("recover");
            replug.join().expect("replug thread");
            assert_eq!(f.seq, 3, "sequence continues after reconnect");
            check_bands(&f.image, 0);
            println!("PROBE recovered");

            // 2. Control-file vanish: the test pulls the device itself; reopen_with_retry.
            std::fs::write(&flag, b"").expect("create flag");
            match src.next_frame() {
                Err(CaptureError::Disconnected { .. }) => {}
                other => panic!("expected Disconnected after pulling the device, got {other:?}"),
            }
            let replug = {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    std::fs::remove_file(&flag).expect("remove flag");
                })
            };
            let t0 = Instant::now();
            src.reopen_with_retry(Duration::from_secs(5))
                .expect("reopen within 5 s");
            assert!(t0.elapsed() < Duration::from_secs(5));
            replug.join().expect("replug thread");
            let f = src.next_frame().expect("frame").expect("some");
            check_bands(&f.image, 0);
            println!("PROBE recovered_retry");
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("PROBE done");
}

/// Issue 7: `spotter run` on the emulated camera; the device vanishes mid-run (control file)
/// and returns. Capture must resume within 5 s without restarting the process, the outage must
/// be logged and counted (`source_outages` in the stats lines).
#[test]
fn spotter_run_resumes_after_the_camera_vanishes() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    let d = scratch("run-vanish");
    let flag = d.join("gone");
    // `spotter run` treats /dev/... as a camera; the shim serves this path (nothing on disk).
    let dev = PathBuf::from(format!("/dev/video-emu-run{}", std::process::id()));
    let cfg = d.join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "[source]\nuri = \"{}\"\nmax_backoff = 0.5\n[pipeline]\nstdout_stats = true\nthreads = 1\nfps = 10\n",
            dev.display()
        ),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("LD_PRELOAD", shim())
        .env("V4L2_EMU_PATH", &dev)
        .env("V4L2_EMU_FORMATS", "YUYV")
        .env("V4L2_EMU_FLAG", &flag)
        .env("V4L2_EMU_FPS", "30")
        .env("RUST_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn spotter run");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<(Instant, serde_json::Value)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send((Instant::now(), v)).is_err() {
                    break;
                }
            }
        }
    });
    let err_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err_sink = err_text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = err_sink.lock().unwrap_or_else(|p| p.into_inner());
            s.push_str(&line);
            s.push('\n');
        }
    });
    let is_frame = |v: &serde_json::Value| v.get("frame").is_some();
    // Wait for `n` frame lines (or a stats line matching `stat`), up to `within`.
    let wait =
        |what: &str, within: Duration, mut pred: Box<dyn FnMut(&serde_json::Value) -> bool>| {
            let deadline = Instant::now() + within;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok((t, v)) if pred(&v) => return t,
                    Ok(_) => {}
                    Err(_) => panic!(
                        "no {what} within {within:?}; stderr:\n{}",
                        err_text.lock().unwrap_or_else(|p| p.into_inner())
                    ),
                }
            }
        };
    let mut frames = 0;
    wait(
        "5 frames",
        Duration::from_secs(60),
        Box::new(move |v| {
            frames += usize::from(is_frame(v));
            frames >= 5
        }),
    );
    std::fs::write(&flag, b"").expect("pull the camera");
    std::thread::sleep(Duration::from_secs(2));
    // Drain what was captured before the outage.
    while rx.try_recv().is_ok() {}
    let back = Instant::now();
    std::fs::remove_file(&flag).expect("plug the camera back");
    let resumed = wait(
        "a frame after the camera returned",
        Duration::from_secs(5),
        Box::new(is_frame),
    );
    eprintln!(
        "capture resumed {:?} after the camera returned",
        resumed - back
    );
    wait(
        "a stats line counting the outage",
        Duration::from_secs(10),
        Box::new(|v| v["stats"]["source_outages"].as_u64() == Some(1)),
    );
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(100));
    let log = err_text.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(log.contains("reconnecting"), "outage not logged:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}
