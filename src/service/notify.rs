//! The systemd notification protocol (`sd_notify(3)`) without libsystemd: one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for
//! Linux's abstract namespace).
//!
//! Messages we send: `READY=1` once the service works (model loaded, endpoint bound),
//! `STATUS=...` free text shown by `systemctl status`, `WATCHDOG=1` keep-alives, `STOPPING=1`.
//!
//! Watchdog contract: with `WatchdogSec=` set, systemd passes `WATCHDOG_USEC` (and
//! `WATCHDOG_PID`, which must be ours) and kills the service when no `WATCHDOG=1` arrives within
//! that time. [`start_watchdog`] pings every `WATCHDOG_USEC / 2`, but only while the pipeline's
//! [`Heartbeat`] beat within `WATCHDOG_USEC`: a stalled pipeline (camera driver hang, deadlock)
//! stops the pings and systemd restarts the service, while a merely slow one keeps them.
//!
//! Everything is best effort: outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op,
//! and a failed send is logged, never fatal.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::pipeline::Heartbeat;

/// Where `$NOTIFY_SOCKET` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyAddr {
    /// A socket file.
    Path(PathBuf),
    /// Linux abstract namespace: the name without the leading `@` (NUL on the wire).
    Abstract(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={value:?}: expected an absolute path or @abstract-name")]
    BadAddress { value: String },
    #[error("NOTIFY_SOCKET={addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("sd_notify message {message:?} contains a NUL byte or is empty")]
    BadMessage { message: String },
}

/// Parse a `$NOTIFY_SOCKET` value.
pub fn parse_notify_socket(value: &str) -> Result<NotifyAddr, NotifyError> {
    if let Some(name) = value.strip_prefix('@') {
        if !name.is_empty() {
            return Ok(NotifyAddr::Abstract(name.as_bytes().to_vec()));
        }
    } else if value.starts_with('/') {
        return Ok(NotifyAddr::Path(PathBuf::from(value)));
    }
    Err(NotifyError::BadAddress {
        value: value.to_string(),
    })
}

/// The watchdog period from `$WATCHDOG_USEC`/`$WATCHDOG_PID`: `None` when unset, zero,
/// unparsable, or meant for another process (`WATCHDOG_PID` differs from `our_pid`).
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: NotifyAddr,
}

impl Notifier {
    /// Connect to `addr` (an unbound datagram socket; nothing is sent yet).
    pub fn connect(addr: NotifyAddr) -> Result<Notifier, NotifyError> {
        let io_err = |source| NotifyError::Io {
            addr: describe(&addr),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(io_err)?;
        match &addr {
            NotifyAddr::Path(p) => sock.connect(p).map_err(io_err)?,
            NotifyAddr::Abstract(name) => connect_abstract(&sock, name).map_err(io_err)?,
        }
        Ok(Notifier { sock, addr })
    }

    /// From `$NOTIFY_SOCKET`; `Ok(None)` when it is unset or empty (not run by systemd).
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(v) if !v.is_empty() => Notifier::connect(parse_notify_socket(&v)?).map(Some),
            _ => Ok(None),
        }
    }

    /// Send one message (`KEY=VALUE` lines).
    pub fn notify(&self, message: &str) -> Result<(), NotifyError> {
        if message.is_empty() || message.contains('\0') {
            return Err(NotifyError::BadMessage {
                message: message.to_string(),
            });
        }
        self.sock
            .send(message.as_bytes())
            .map(|_| ())
            .map_err(|source| NotifyError::Io {
                addr: describe(&self.addr),
                source,
            })
    }
}

fn describe(addr: &NotifyAddr) -> String {
    match addr {
        NotifyAddr::Path(p) => p.display().to_string(),
        NotifyAddr::Abstract(n) => format!("@{}", String::from_utf8_lossy(n)),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_abstract(sock: &UnixDatagram, name: &[u8]) -> io::Result<()> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.connect_addr(&addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn connect_abstract(_sock: &UnixDatagram, _name: &[u8]) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

/// The process-wide notifier from the environment, resolved once.
fn global() -> Option<&'static Notifier> {
    static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| match Notifier::from_env() {
            Ok(n) => n,
            Err(e) => {
                log::warn!("systemd notification disabled: {e}");
                None
            }
        })
        .as_ref()
}

/// Send `message` to systemd if we run under it; returns whether it was sent.
pub fn notify(message: &str) -> bool {
    match global() {
        None => false,
        Some(n) => match n.notify(message) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("sd_notify: {e}");
                false
            }
        },
    }
}

/// `READY=1`: start-up is done (call after the model loaded and the sources/endpoints opened).
pub fn notify_ready() -> bool {
    notify("READY=1")
}

/// `STATUS=...` for `systemctl status` (newlines become spaces).
pub fn notify_status(status: &str) -> bool {
    notify(&format!("STATUS={}", status.replace(['\n', '\0'], " ")))
}

/// `STOPPING=1`: shutting down on purpose.
pub fn notify_stopping() -> bool {
    notify("STOPPING=1")
}

/// The watchdog period systemd asked for, if any (see [`parse_watchdog`]).
pub fn watchdog_period() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// Start the watchdog thread if systemd asked for one (`WATCHDOG_USEC` set and a notify socket
/// present): it sends `WATCHDOG=1` every period/2 while `heartbeat` is alive within the period.
/// The thread lives as long as the process.
pub fn start_watchdog(heartbeat: Heartbeat) -> Option<JoinHandle<()>> {
    let period = watchdog_period()?;
    global()?;
    let stop = Arc::new(AtomicBool::new(false));
    spawn_watchdog(heartbeat, period, stop, notify)
}

/// The watchdog loop with its parts injected (tests): `send` delivers one message; the loop ends
/// when `stop` is set (checked at least every 100 ms).
pub fn spawn_watchdog<F>(
    heartbeat: Heartbeat,
    period: Duration,
    stop: Arc<AtomicBool>,
    send: F,
) -> Option<JoinHandle<()>>
where
    F: Fn(&str) -> bool + Send + 'static,
{
    let interval = (period / 2).max(Duration::from_millis(1));
    let spawned = std::thread::Builder::new()
        .name("sd-watchdog".into())
        .spawn(move || {
            let mut stalled = false;
            while !stop.load(Ordering::Relaxed) {
                if heartbeat.alive(period) {
                    if stalled {
                        log::warn!("pipeline heartbeat is back; resuming watchdog pings");
                        stalled = false;
                    }
                    send("WATCHDOG=1");
                } else if !stalled {
                    stalled = true;
                    log::error!(
                        "pipeline heartbeat silent for more than {period:?}: withholding \
                         watchdog pings so systemd restarts the service"
                    );
                    send("STATUS=pipeline stalled; withholding watchdog pings");
                }
                sleep_unless_stopped(interval, &stop);
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            log::error!("cannot start the watchdog thread: {e}");
            None
        }
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn parses_socket_addresses() {
        assert_eq!(
            parse_notify_socket("/run/systemd/notify").unwrap(),
            NotifyAddr::Path("/run/systemd/notify".into())
        );
        assert_eq!(
            parse_notify_socket("@sd-notify-1").unwrap(),
            NotifyAddr::Abstract(b"sd-notify-1".to_vec())
        );
        assert!(parse_notify_socket("relative").is_err());
        assert!(parse_notify_socket("@").is_err());
        assert!(parse_notify_socket("").is_err());
    }

    #[test]
    fn parses_watchdog_env() {
        assert_eq!(
            parse_watchdog(Some("2000000"), None, 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_watchdog(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(parse_watchdog(Some("2000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }

    #[test]
    fn sends_to_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("spotter-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connect(NotifyAddr::Path(path.clone())).unwrap();
        n.notify("READY=1\nSTATUS=hi").unwrap();
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=hi");
        assert!(n.notify("").is_err());
        let _ = std::fs::remove_dir_all(&dir);

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("spotter-notify-test-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
            let server = UnixDatagram::bind_addr(&addr).unwrap();
            let n = Notifier::connect(parse_notify_socket(&format!("@{name}")).unwrap()).unwrap();
            n.notify("WATCHDOG=1").unwrap();
            let len = server.recv(&mut buf).unwrap();
            assert_eq!(&buf[..len], b"WATCHDOG=1");
        }
    }

    #[test]
    fn watchdog_pings_only_while_the_heartbeat_is_alive() {
        let hb = Heartbeat::new();
        hb.beat();
        let sent = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = sent.clone();
        let h = spawn_watchdog(
            hb.clone(),
            Duration::from_millis(200),
            stop.clone(),
            move |m| {
                s2.lock().unwrap().push(m.to_string());
                true
            },
        )
        .unwrap();
        // Keep beating for ~0.5 s: pings every 100 ms.
        for _ in 0..10 {
            hb.beat();
            std::thread::sleep(Duration::from_millis(50));
        }
        let pings_alive = sent.lock().unwrap().len();
        assert!(pings_alive >= 3, "{:?}", sent.lock().unwrap());
        // Stop beating: after the 200 ms grace the pings stop.
        std::thread::sleep(Duration::from_millis(400));
        let n1 = sent.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(400));
        let n2 = sent.lock().unwrap().len();
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        assert_eq!(n1, n2, "no pings while stalled: {:?}", sent.lock().unwrap());
        assert!(sent
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.starts_with("STATUS=pipeline stalled")));
    }
}
