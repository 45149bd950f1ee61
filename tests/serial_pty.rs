//! SerialSink against real pseudo-terminals: `openpty` pairs for the formats, and `socat` pty
//! pairs (killed and restarted) for a port that vanishes and comes back.
//!
//! Needs `socat` on PATH (Debian: `apt-get install -y socat`); the reconnect test fails with a
//! clear message if it is missing.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::pty::{openpty, OpenptyResult};
use serde_json::Value;
use spotter::detector::Detection;
use spotter::pipeline::{FrameResult, TrackedDetection};
use spotter::sinks::serial::{
    decode_stream, encode_jsonl, SerialFormat, SerialOptions, SerialSink,
};
use spotter::sinks::Sink;

/// Reads a tty in the background until EOF or an error (EIO once the other side is gone).
struct Collector {
    data: Arc<Mutex<Vec<u8>>>,
    _thread: JoinHandle<()>,
}

impl Collector {
    fn new(mut file: File) -> Collector {
        let data = Arc::new(Mutex::new(Vec::new()));
        let sink = data.clone();
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        Collector {
            data,
            _thread: thread,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }

    /// Wait until `done(bytes)` or panic after `timeout`.
    fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        loop {
            let b = self.bytes();
            if done(&b) {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {} bytes",
                b.len()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn count(bytes: &[u8], b: u8) -> usize {
    bytes.iter().filter(|&&x| x == b).count()
}

fn det(id: u64, label: &str, class_id: usize, score: f32, bbox: [f64; 4]) -> TrackedDetection {
    TrackedDetection {
        id,
        detection: Detection {
            label: label.into(),
            class_id,
            score,
            bbox,
        },
        zones: vec!["zone-a".into()],
    }
}

/// Frames whose floats are exact in f32, so the jsonl line equals the FrameResult's own JSON.
fn exact_frames() -> Vec<FrameResult> {
    (0..10u64)
        .map(|n| FrameResult {
            camera: "cam0".into(),
            frame: n,
            frame_time: 1_700_000_000.0 + n as f64 * 0.125,
            width: 640,
            height: 480,
            detections: (0..n % 4)
                .map(|i| {
                    det(
                        n * 10 + i,
                        ["person", "car", "dog"][i as usize % 3],
                        i as usize * 2,
                        0.5 + i as f32 * 0.125,
                        [1.5 * i as f64, 2.25, 300.0 + i as f64, 479.75],
                    )
                })
                .collect(),
            inference_ms: 9.5,
        })
        .collect()
}

/// Frames with values the wire rounds or cuts: both formats must still agree.
fn awkward_frames() -> Vec<FrameResult> {
    let mut frames = exact_frames();
    frames[1].camera = "ünïcode camera name longer than thirty-two bytes".into();
    frames[2].detections = (0..100)
        .map(|i| {
            det(
                u64::MAX - i,
                "a label that is much longer than the thirty-two byte bound é",
                i as usize,
                0.1 + i as f32 / 7.0,
                [0.1, 1.0 / 3.0, 639.99 + i as f64, 479.123456789],
            )
        })
        .collect();
    frames[3].frame_time = 1_700_000_000.123_456_7;
    frames
}

/// The FrameResult's serde JSON minus the fields serial does not carry.
fn expected_json(f: &FrameResult) -> Value {
    let mut v = serde_json::to_value(f).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("inference_ms");
    for d in obj.get_mut("detections").unwrap().as_array_mut().unwrap() {
        d.as_object_mut().unwrap().remove("zones");
    }
    v
}

struct Pty {
    master: File,
    /// Held open so the master never sees a hangup between the sink's opens.
    _slave: File,
    path: PathBuf,
}

fn pty() -> Pty {
    let OpenptyResult { master, slave } = openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&slave).expect("ttyname of pty slave");
    Pty {
        master: File::from(master),
        _slave: File::from(slave),
        path,
    }
}

fn options(path: &Path, format: SerialFormat) -> SerialOptions {
    let mut o = SerialOptions::new(path.to_str().unwrap(), 115_200, format);
    o.reopen_interval = Duration::from_millis(100);
    o.write_timeout = Duration::from_millis(500);
    o.queue_capacity = 256;
    o
}

#[test]
fn jsonl_lines_are_the_frames_json() {
    let p = pty();
    let mut sink = SerialSink::open(options(&p.path, SerialFormat::Jsonl)).unwrap();
    let reader = Collector::new(p.master);
    let frames = exact_frames();
    for f in &frames {
        sink.publish(f).unwrap();
    }
    let bytes = reader.wait_until(Duration::from_secs(10), "jsonl lines", |b| {
        count(b, b'\n') >= frames.len()
    });
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), frames.len());
    for (line, f) in lines.iter().zip(&frames) {
        let got: Value = serde_json::from_str(line).unwrap();
        assert_eq!(got, expected_json(f), "line {line}");
        assert_eq!(
            format!("{line}\n").as_bytes(),
            &encode_jsonl(f).unwrap()[..]
        );
    }
    sink.close().unwrap();
    assert_eq!(sink.dropped(), 0);
    assert_eq!(sink.written(), frames.len() as u64);
}

#[test]
fn cobs_frames_decode_to_the_jsonl_lines() {
    let frames = awkward_frames();
    let (pj, pc) = (pty(), pty());
    let mut jsonl = SerialSink::open(options(&pj.path, SerialFormat::Jsonl)).unwrap();
    let mut cobs = SerialSink::open(options(&pc.path, SerialFormat::Cobs)).unwrap();
    let (rj, rc) = (Collector::new(pj.master), Collector::new(pc.master));
    for f in &frames {
        jsonl.publish(f).unwrap();
        cobs.publish(f).unwrap();
    }
    let jbytes = rj.wait_until(Duration::from_secs(10), "jsonl", |b| {
        count(b, b'\n') >= frames.len()
    });
    // Each frame ends with a delimiter; the writer also sends one lone 0x00 on open.
    let cbytes = rc.wait_until(Duration::from_secs(10), "cobs", |b| {
        count(b, 0) > frames.len()
    });
    let mut decoded = Vec::new();
    let stats = decode_stream(&cbytes[..], &mut decoded).unwrap();
    assert_eq!(stats.frames, frames.len() as u64);
    assert_eq!(stats.errors(), 0);
    assert_eq!(stats.trailing_bytes, 0);
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        String::from_utf8(jbytes).unwrap()
    );
}

const SOCAT_MISSING: &str =
    "socat not found on PATH: this test needs it (Debian/Ubuntu: apt-get install -y socat)";

/// A socat-made pty pair reachable through two symlinks; killed (SIGTERM) on drop.
struct Socat {
    child: Child,
    a: PathBuf,
    b: PathBuf,
}

impl Socat {
    fn start(a: &Path, b: &Path) -> Socat {
        let _ = std::fs::remove_file(a);
        let _ = std::fs::remove_file(b);
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{SOCAT_MISSING} ({e})"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(a.exists() && b.exists()) {
            assert!(
                Instant::now() < deadline,
                "socat did not create {} and {}",
                a.display(),
                b.display()
            );
            thread::sleep(Duration::from_millis(10));
        }
        Socat {
            child,
            a: a.into(),
            b: b.into(),
        }
    }

    fn open_b(&self) -> File {
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(&self.b)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.b.display()))
    }

    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        // Never leave links to /dev/pts numbers that a new pty may reuse.
        let _ = std::fs::remove_file(&self.a);
        let _ = std::fs::remove_file(&self.b);
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        self.stop();
    }
}

fn frame(n: u64) -> FrameResult {
    FrameResult {
        camera: "cam0".into(),
        frame: n,
        frame_time: 1_700_000_000.0 + n as f64,
        width: 320,
        height: 240,
        detections: vec![det(n, "person", 0, 0.75, [1.0, 2.0, 3.0, 4.0])],
        inference_ms: 5.0,
    }
}

fn decoded_frame_numbers(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    decode_stream(bytes, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["frame"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn port_vanishes_and_returns() {
    let version = Command::new("socat").arg("-V").output();
    assert!(
        matches!(&version, Ok(o) if o.status.success()),
        "{SOCAT_MISSING}"
    );

    let dir = std::env::temp_dir().join(format!("spotter-serial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let mut socat = Socat::start(&a, &b);
    let reader = Collector::new(socat.open_b());
    let mut sink = SerialSink::open(options(&a, SerialFormat::Cobs)).unwrap();

    for n in 0..5 {
        sink.publish(&frame(n)).unwrap();
    }
    let got = reader.wait_until(Duration::from_secs(10), "first frames", |b| {
        decoded_frame_numbers(b).len() >= 5
    });
    assert_eq!(decoded_frame_numbers(&got), vec![0, 1, 2, 3, 4]);
    assert_eq!(sink.outages(), 0);

    // The port vanishes. publish() must stay fast while the writer discovers the loss and
    // retries opening a path that does not exist.
    socat.stop();
    drop(reader);
    let mut slowest = Duration::ZERO;
    let outage_start = Instant::now();
    let mut n = 100;
    while outage_start.elapsed() < Duration::from_millis(800) {
        let t = Instant::now();
        sink.publish(&frame(n)).unwrap();
        slowest = slowest.max(t.elapsed());
        n += 1;
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        slowest < Duration::from_millis(50),
        "publish blocked for {slowest:?} during the outage"
    );
    assert_eq!(sink.outages(), 1, "the outage is counted once");
    assert!(!sink.is_connected());

    // It comes back (new pty numbers behind the same links): writing resumes.
    let socat2 = Socat::start(&a, &b);
    let reader2 = Collector::new(socat2.open_b());
    let mut m = 1000;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        sink.publish(&frame(m)).unwrap();
        m += 1;
        if decoded_frame_numbers(&reader2.bytes())
            .iter()
            .any(|&f| f >= 1000)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no frame arrived after the port came back"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(sink.is_connected());
    assert_eq!(sink.outages(), 1);
    // Frames arrive in order, without corruption.
    let after = reader2.wait_until(Duration::from_secs(5), "ordered frames", |b| {
        decoded_frame_numbers(b).last() == Some(&(m - 1))
    });
    let nums = decoded_frame_numbers(&after);
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
    let mut sink_out = Vec::new();
    let stats = decode_stream(&after[..], &mut sink_out).unwrap();
    assert_eq!(stats.errors(), 0, "{stats:?}");
    sink.close().unwrap();
    drop(socat2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn receiver_not_reading_never_blocks_publish() {
    let p = pty();
    let mut o = options(&p.path, SerialFormat::Cobs);
    o.queue_capacity = 4;
    o.write_timeout = Duration::from_millis(50);
    let mut sink = SerialSink::open(o).unwrap();
    // ~6.5 KB per frame: the pty buffer fills after a few frames and writes start timing out.
    let big = &awkward_frames()[2];
    let mut slowest = Duration::ZERO;
    for n in 0..200 {
        let mut f = big.clone();
        f.frame = n;
        let t = Instant::now();
        sink.publish(&f).unwrap();
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(50),
        "publish blocked for {slowest:?}"
    );
    assert!(sink.dropped() > 0, "a full queue drops the oldest frames");
    assert_eq!(sink.outages(), 0, "a stalled receiver is not an outage");

    // The receiver starts reading: later frames arrive intact (a frame cut by a timed-out
    // write is rejected by its CRC, and the stream resynchronizes at the next delimiter).
    let reader = Collector::new(p.master);
    for n in 1000..1003 {
        let mut f = big.clone();
        f.frame = n;
        sink.publish(&f).unwrap();
        thread::sleep(Duration::from_millis(100));
    }
    let got = reader.wait_until(Duration::from_secs(10), "frames after the stall", |b| {
        decoded_frame_numbers(b).contains(&1002)
    });
    let nums = decoded_frame_numbers(&got);
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
    sink.close().unwrap();
}

#[test]
/// Regression: the writer blocked in `write(2)` on a full pty (serialport's fd is blocking
/// after its poll), so `close()` hung joining it. The port is now non-blocking.
fn close_with_a_stalled_receiver_is_prompt() {
    let p = pty();
    let mut o = options(&p.path, SerialFormat::Cobs);
    o.queue_capacity = 64;
    o.write_timeout = Duration::from_millis(100);
    let mut sink = SerialSink::open(o).unwrap();
    for n in 0..64 {
        let mut f = awkward_frames()[2].clone();
        f.frame = n;
        sink.publish(&f).unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    sink.close().unwrap();
    // At most one timed-out write plus the one in flight, not one per queued message.
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "close took {:?}",
        t.elapsed()
    );
    assert!(sink.dropped() > 0);
    drop(p.master);
}
