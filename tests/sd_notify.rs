//! sd_notify end to end: a real Unix datagram socket plays systemd. `spotter notify-demo` (a
//! fake pipeline loop) must send READY=1, then WATCHDOG=1 about every WATCHDOG_USEC/2 while its
//! heartbeat beats, and no WATCHDOG=1 while the pipeline is stalled (control file present);
//! pings resume when it recovers. Also `spotter serve` reports READY=1 once listening, over an
//! abstract-namespace socket.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

#[test]
fn ready_then_watchdog_pings_that_stop_while_stalled() {
    let dir = tmpdir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let stall = dir.join("stall");
    // 400 ms watchdog: pings every ~200 ms.
    let child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["notify-demo", "--seconds", "20", "--stall-file"])
        .arg(&stall)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Kill(child);

    let first = collect(&sock, Duration::from_secs(5));
    let ready = first
        .iter()
        .position(|(_, m)| m == "READY=1")
        .unwrap_or_else(|| panic!("no READY=1 in {first:?}"));
    let _ = ready;
    // Healthy: periodic pings (the first window may include start-up).
    let healthy = collect(&sock, Duration::from_millis(1500));
    let n = count(&healthy, "WATCHDOG=1");
    assert!(n >= 4, "expected ~7 pings in 1.5 s, got {n}: {healthy:?}");
    let times: Vec<Instant> = healthy
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap < Duration::from_millis(400),
            "ping gap {gap:?} ≥ WATCHDOG_USEC"
        );
    }

    // Stall the fake pipeline: after at most the 400 ms grace, the pings stop.
    std::fs::write(&stall, b"").unwrap();
    let _grace = collect(&sock, Duration::from_millis(800));
    let stalled = collect(&sock, Duration::from_millis(1500));
    assert_eq!(
        count(&stalled, "WATCHDOG=1"),
        0,
        "pings continued while stalled: {stalled:?}"
    );

    // Recover: pings resume.
    std::fs::remove_file(&stall).unwrap();
    let back = collect(&sock, Duration::from_millis(1500));
    assert!(
        count(&back, "WATCHDOG=1") >= 3,
        "pings did not resume: {back:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_watchdog_without_watchdog_usec_and_abstract_socket_works() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("spotter-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let dir = tmpdir("notify-abstract");
    let child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["notify-demo", "--seconds", "20", "--stall-file"])
        .arg(dir.join("never"))
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Kill(child);
    let msgs = collect(&sock, Duration::from_secs(3));
    assert!(count(&msgs, "READY=1") == 1, "{msgs:?}");
    assert_eq!(count(&msgs, "WATCHDOG=1"), 0, "{msgs:?}");
    assert!(
        msgs.iter().any(|(_, m)| m.starts_with("STATUS=")),
        "{msgs:?}"
    );
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
