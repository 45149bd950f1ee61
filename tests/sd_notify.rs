//! sd_notify end to end with the real service path: a Unix datagram socket plays systemd and
//! `spotter run` (what deploy/spotter.service starts) must send READY=1, then WATCHDOG=1 about
//! every WATCHDOG_USEC/2 while frames flow, and no WATCHDOG=1 while the pipeline is stalled;
//! pings resume when frames flow again. The stall is real: the source is an MJPEG-over-HTTP
//! camera served by this test that keeps the connection open but stops sending (shorter than
//! the source's 5 s read timeout, so the capture thread sits blocked in `read`, as it would on a
//! hung IP camera). Also `spotter serve` reports READY=1 once listening, over an
//! abstract-namespace socket.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spotter::capture::decode::encode_jpeg;
use spotter::vision::image::RgbImage;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spotter-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Messages received within `window`, with their arrival times.
fn collect(sock: &UnixDatagram, window: Duration) -> Vec<(Instant, String)> {
    let end = Instant::now() + window;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => out.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
            Err(_) => break,
        }
    }
    out
}

fn count(msgs: &[(Instant, String)], what: &str) -> usize {
    msgs.iter().filter(|(_, m)| m == what).count()
}

/// An MJPEG camera on 127.0.0.1: 20 frames per second while `stalled` is false; while it is
/// true, connections stay open and silent.
struct Camera {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Camera {
    fn start() -> Camera {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let img = RgbImage {
            width: 160,
            height: 120,
            data: [40u8, 120, 200]
                .iter()
                .copied()
                .cycle()
                .take(160 * 120 * 3)
                .collect(),
        };
        let jpeg = encode_jpeg(&img, 90);
        let mut part = format!(
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        )
        .into_bytes();
        part.extend_from_slice(&jpeg);
        part.extend_from_slice(b"\r\n");
        let (st, sp) = (stalled.clone(), stop.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (part, st, sp) = (part.clone(), st.clone(), sp.clone());
                        std::thread::spawn(move || serve_camera(conn, &part, &st, &sp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Camera {
            addr,
            stalled,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/stream.mjpg", self.addr)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_camera(mut conn: TcpStream, part: &[u8], stalled: &AtomicBool, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    // The request head (we serve one stream whatever the path).
    let mut req = Vec::new();
    let mut b = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") && req.len() < 8192 {
        match conn.read(&mut b) {
            Ok(1) => req.push(b[0]),
            _ => return,
        }
    }
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n";
    if conn.write_all(head).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        if !stalled.load(Ordering::Relaxed) && conn.write_all(part).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_reports_ready_and_pings_stop_while_the_camera_stalls() {
    let camera = Camera::start();
    let dir = tmpdir("notify-run");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // 1 s watchdog: pings every ~500 ms while a frame was processed within the last second.
    let child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["run", "--threads", "1", "--source", &camera.url()])
        .current_dir(common::repo())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Kill(child);

    // Start-up: model load, source open, then READY=1 (and a STATUS line).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut startup = Vec::new();
    while count(&startup, "READY=1") == 0 {
        assert!(
            Instant::now() < deadline,
            "no READY=1 within 60 s: {startup:?}"
        );
        startup.extend(collect(&sock, Duration::from_millis(500)));
    }
    assert_eq!(count(&startup, "READY=1"), 1, "{startup:?}");

    // Frames flowing: periodic pings, never a gap as long as the watchdog period.
    let healthy = collect(&sock, Duration::from_millis(3000));
    assert!(
        healthy
            .iter()
            .chain(&startup)
            .any(|(_, m)| m.starts_with("STATUS=running")),
        "{startup:?} {healthy:?}"
    );
    let n = count(&healthy, "WATCHDOG=1");
    assert!(n >= 4, "expected ~6 pings in 3 s, got {n}: {healthy:?}");
    let times: Vec<Instant> = healthy
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap < Duration::from_millis(1000),
            "ping gap {gap:?} ≥ WATCHDOG_USEC"
        );
    }

    // The camera goes silent with the connection open: the capture thread blocks in read, no
    // frame reaches inference, and after at most the 1 s grace the pings stop. (The whole stall
    // stays under the MJPEG source's 5 s read timeout, after which it would reconnect.)
    camera.stalled.store(true, Ordering::Relaxed);
    let grace = collect(&sock, Duration::from_millis(1300));
    let stalled = collect(&sock, Duration::from_millis(2200));
    assert_eq!(
        count(&stalled, "WATCHDOG=1"),
        0,
        "pings continued while stalled: {stalled:?}"
    );
    assert!(
        grace
            .iter()
            .chain(&stalled)
            .any(|(_, m)| m.starts_with("STATUS=pipeline stalled")),
        "{grace:?} {stalled:?}"
    );

    // Frames again: pings resume.
    camera.stalled.store(false, Ordering::Relaxed);
    let back = collect(&sock, Duration::from_millis(3000));
    assert!(
        count(&back, "WATCHDOG=1") >= 3,
        "pings did not resume: {back:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without WATCHDOG_USEC: READY and STATUS, but no pings; `@name` (abstract) sockets work; a run
/// that ends (`--max-frames`) says STOPPING=1.
#[test]
fn run_without_watchdog_usec_over_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("spotter-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args([
            "run",
            "--threads",
            "1",
            "--source",
            "models/samples",
            "--max-frames",
            "3",
        ])
        .current_dir(common::repo())
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "spotter run --max-frames 3 did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let msgs = collect(&sock, Duration::from_millis(200));
    let order: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(count(&msgs, "READY=1"), 1, "{order:?}");
    assert_eq!(count(&msgs, "WATCHDOG=1"), 0, "{order:?}");
    assert_eq!(order.last(), Some(&"STOPPING=1"), "{order:?}");
    assert!(order.iter().any(|m| m.starts_with("STATUS=")), "{order:?}");
}

#[test]
fn serve_reports_ready_once_listening() {
    let dir = tmpdir("notify-serve");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["serve", "--http", "127.0.0.1:0"])
        .current_dir(common::repo())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Kill(child);
    let msgs = collect(&sock, Duration::from_secs(4));
    assert_eq!(count(&msgs, "READY=1"), 1, "{msgs:?}");
    assert!(count(&msgs, "WATCHDOG=1") >= 1, "{msgs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
