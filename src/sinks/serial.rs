//! Serial sink: detections to a UART / USB CDC device, as JSON lines or as `spotter-wire` frames.
//!
//! Both formats carry the same content, the wire frame's fields (see `docs/serial-protocol.md`):
//! jsonl mode renders a frame *through* the wire representation (box and score as f32, labels
//! and camera name cut to 32 bytes, at most 255 detections), so `decode_stream` of a cobs stream
//! prints byte-for-byte the lines jsonl mode writes. One line:
//!
//! ```text
//! {"camera":"cam0","frame":42,"frame_time":1700000000.5,"width":640,"height":480,
//!  "detections":[{"id":7,"label":"person","class_id":0,"score":0.875,"box":[10.0,20.5,110.0,220.0]}]}
//! ```
//!
//! (one line on the wire). `FrameResult::inference_ms` and the per-detection zones are not sent.
//!
//! Never blocking the pipeline: `publish` encodes the frame and appends it to a bounded queue;
//! a writer thread owns the port. Full-policy: **drop oldest** — on a slow link the newest
//! detections matter most; drops are counted by [`Sink::dropped`]. If the port fails (device
//! unplugged, pty closed), the writer closes it, logs the outage once, and tries to reopen it
//! every `reopen_interval`; queued frames (at most `queue_capacity`, oldest dropped) are written
//! once it is back. A write that times out (receiver not reading, flow control) drops that
//! message (counted as dropped) without declaring an outage.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use spotter_wire as wire;

use super::{Sink, SinkError};
use crate::pipeline::FrameResult;

/// What goes over the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialFormat {
    /// One JSON object per frame, `\n`-terminated.
    Jsonl,
    /// `spotter-wire` frames: COBS-encoded, CRC-16 protected, `0x00`-delimited.
    Cobs,
}

impl fmt::Display for SerialFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SerialFormat::Jsonl => "jsonl",
            SerialFormat::Cobs => "cobs",
        })
    }
}

impl FromStr for SerialFormat {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(SerialFormat::Jsonl),
            "cobs" => Ok(SerialFormat::Cobs),
            other => Err(SerialError::BadFormat(other.to_string())),
        }
    }
}

/// Options of a [`SerialSink`].
#[derive(Clone, Debug)]
pub struct SerialOptions {
    /// Device path, e.g. `/dev/ttyUSB0` or `/dev/serial/by-id/...`.
    pub path: String,
    pub baud: u32,
    pub format: SerialFormat,
    /// Messages held while the writer is busy or the port is away (drop-oldest beyond).
    pub queue_capacity: usize,
    /// How long one write may wait for the device to accept bytes before the message is dropped.
    pub write_timeout: Duration,
    /// Delay between attempts to reopen a port that failed.
    pub reopen_interval: Duration,
}

impl SerialOptions {
    pub fn new(path: impl Into<String>, baud: u32, format: SerialFormat) -> Self {
        SerialOptions {
            path: path.into(),
            baud,
            format,
            queue_capacity: 64,
            write_timeout: Duration::from_millis(200),
            reopen_interval: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("serial format {0:?}: expected \"jsonl\" or \"cobs\"")]
    BadFormat(String),
    #[error("serial port {device}: cannot open at {baud} baud: {source}")]
    Open {
        device: String,
        baud: u32,
        #[source]
        source: serialport::Error,
    },
    #[error("serial queue capacity must be at least 1")]
    ZeroCapacity,
    #[error("frame {frame}: {field} = {value} does not fit the wire format (max {max})")]
    OutOfRange {
        frame: u64,
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("frame {frame}: wire encoding failed: {what}")]
    Encode { frame: u64, what: String },
    #[error("serial writer thread: {0}")]
    Thread(io::Error),
}

/// A frame in wire form: what both formats carry.
#[derive(Clone, Debug, PartialEq)]
pub struct WireFrame {
    pub header: wire::FrameHeader,
    pub detections: Vec<wire::Detection>,
}

fn fit_u16(frame: u64, field: &'static str, value: usize) -> Result<u16, SerialError> {
    u16::try_from(value).map_err(|_| SerialError::OutOfRange {
        frame,
        field,
        value: value as u64,
        max: u16::MAX.into(),
    })
}

/// Convert a pipeline frame to its wire content. Lossy by contract: box and score become f32,
/// strings are cut to 32 bytes at a char boundary, detections beyond 255 are left off (the
/// pipeline's detectors return at most 100). Fails only for sizes or class ids beyond u16.
pub fn to_wire(frame: &FrameResult) -> Result<WireFrame, SerialError> {
    let n = frame.frame;
    let header = wire::FrameHeader {
        frame: n,
        frame_time: frame.frame_time,
        width: fit_u16(n, "width", frame.width)?,
        height: fit_u16(n, "height", frame.height)?,
        camera: wire::bounded_str(&frame.camera),
    };
    let detections = frame
        .detections
        .iter()
        .take(wire::MAX_DETECTIONS)
        .map(|t| {
            let d = &t.detection;
            Ok(wire::Detection {
                track_id: t.id,
                class_id: fit_u16(n, "class_id", d.class_id)?,
                score: d.score,
                bbox: d.bbox.map(|c| c as f32),
                label: wire::bounded_str(&d.label),
            })
        })
        .collect::<Result<Vec<_>, SerialError>>()?;
    Ok(WireFrame { header, detections })
}

#[derive(Serialize)]
struct JsonLine<'a> {
    camera: &'a str,
    frame: u64,
    frame_time: f64,
    width: u16,
    height: u16,
    detections: Vec<JsonDetection<'a>>,
}

#[derive(Serialize)]
struct JsonDetection<'a> {
    id: u64,
    label: &'a str,
    class_id: u16,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

/// The JSON line (without `\n`) of a frame in wire form; jsonl mode and [`decode_stream`] both
/// print exactly this.
pub fn json_line(header: &wire::FrameHeader, detections: &[wire::Detection]) -> String {
    let line = JsonLine {
        camera: &header.camera,
        frame: header.frame,
        frame_time: header.frame_time,
        width: header.width,
        height: header.height,
        detections: detections
            .iter()
            .map(|d| JsonDetection {
                id: d.track_id,
                label: &d.label,
                class_id: d.class_id,
                score: d.score,
                bbox: d.bbox,
            })
            .collect(),
    };
    // Serializing plain structs of numbers and strings to a String cannot fail; non-finite
    // floats become `null`.
    serde_json::to_string(&line).unwrap_or_default()
}

/// The bytes jsonl mode sends for `frame`: its JSON line and `\n`.
pub fn encode_jsonl(frame: &FrameResult) -> Result<Vec<u8>, SerialError> {
    let w = to_wire(frame)?;
    let mut line = json_line(&w.header, &w.detections).into_bytes();
    line.push(b'\n');
    Ok(line)
}

/// The bytes cobs mode sends for `frame`: one delimited wire frame.
pub fn encode_cobs(frame: &FrameResult) -> Result<Vec<u8>, SerialError> {
    let w = to_wire(frame)?;
    let mut buf = vec![0u8; wire::max_encoded_len(w.detections.len())];
    let n = wire::encode_frame(&w.header, &w.detections, &mut buf).map_err(|e| {
        SerialError::Encode {
            frame: frame.frame,
            what: e.to_string(),
        }
    })?;
    buf.truncate(n);
    Ok(buf)
}

/// Counters of [`decode_stream`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames decoded and printed.
    pub frames: u64,
    pub crc_errors: u64,
    pub cobs_errors: u64,
    /// Delimited chunks longer than the largest possible frame.
    pub overflows: u64,
    /// Frames with a good CRC that did not parse (wrong version or type, bad lengths).
    pub malformed: u64,
    /// Bytes after the last delimiter at end of input (a frame cut off).
    pub trailing_bytes: u64,
}

impl DecodeStats {
    /// Rejected frames (a trailing partial frame is not counted here).
    pub fn errors(&self) -> u64 {
        self.crc_errors + self.cobs_errors + self.overflows + self.malformed
    }
}

const DECODE_BUF: usize = wire::max_encoded_len(wire::MAX_DETECTIONS);

/// Read `spotter-wire` frames from `reader` until end of input and write one JSON line per good
/// frame to `writer` (the same lines jsonl mode sends). Bad frames (garbage, CRC errors,
/// truncation) are skipped, counted, and logged at debug level. I/O errors are returned.
pub fn decode_stream(mut reader: impl Read, mut writer: impl Write) -> io::Result<DecodeStats> {
    // ~16 KiB of buffer; boxed to keep it off the caller's stack.
    let mut decoder = Box::new(wire::Decoder::<DECODE_BUF, { wire::MAX_DETECTIONS }>::new());
    let mut stats = DecodeStats::default();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut data = &chunk[..n];
        while !data.is_empty() {
            let (used, result) = decoder.feed(data);
            data = &data[used..];
            match result {
                None => {}
                Some(Ok(f)) => {
                    stats.frames += 1;
                    let mut line = json_line(&f.header, &f.detections);
                    line.push('\n');
                    writer.write_all(line.as_bytes())?;
                }
                Some(Err(e)) => {
                    log::debug!("serial decode: frame rejected: {e}");
                    match e {
                        wire::DecodeError::Crc { .. } => stats.crc_errors += 1,
                        wire::DecodeError::Cobs(_) => stats.cobs_errors += 1,
                        wire::DecodeError::Overflow => stats.overflows += 1,
                        _ => stats.malformed += 1,
                    }
                }
            }
        }
    }
    stats.trailing_bytes = decoder.pending() as u64;
    writer.flush()?;
    Ok(stats)
}

/// State shared by the sink (producer) and its writer thread.
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    dropped: AtomicU64,
    outages: AtomicU64,
    written: AtomicU64,
    connected: AtomicBool,
}

struct Queue {
    items: VecDeque<Vec<u8>>,
    closing: bool,
}

impl Shared {
    /// The queue, even if the other side panicked while holding the lock (the queue itself is
    /// always consistent: every mutation is a single push/pop).
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serial sink; see the module docs for the formats, queue policy and reconnection.
pub struct SerialSink {
    name: String,
    format: SerialFormat,
    capacity: usize,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl SerialSink {
    /// Open the port (failing if it cannot be opened now) and start the writer thread.
    pub fn open(options: SerialOptions) -> Result<SerialSink, SerialError> {
        if options.queue_capacity == 0 {
            return Err(SerialError::ZeroCapacity);
        }
        let port = open_port(&options)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::with_capacity(options.queue_capacity),
                closing: false,
            }),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            outages: AtomicU64::new(0),
            written: AtomicU64::new(0),
            connected: AtomicBool::new(true),
        });
        let name = format!("serial:{}", options.path);
        let format = options.format;
        let capacity = options.queue_capacity;
        let writer = Writer {
            options,
            shared: shared.clone(),
            port: None,
            dirty: false,
        };
        let handle = std::thread::Builder::new()
            .name("spotter-serial".into())
            .spawn(move || writer.run(port))
            .map_err(SerialError::Thread)?;
        Ok(SerialSink {
            name,
            format,
            capacity,
            shared,
            writer: Some(handle),
        })
    }

    /// Times the port failed (each outage is counted and logged once).
    pub fn outages(&self) -> u64 {
        self.shared.outages.load(Ordering::Relaxed)
    }

    /// Messages written completely.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Whether the writer currently has the port open.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Messages waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.lock().items.len()
    }

    fn shutdown(&mut self) {
        let Some(handle) = self.writer.take() else {
            return;
        };
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        if handle.join().is_err() {
            log::error!("{}: writer thread panicked", self.name);
        }
    }
}

impl Sink for SerialSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn publish(&mut self, frame: &FrameResult) -> Result<(), SinkError> {
        let bytes = match self.format {
            SerialFormat::Jsonl => encode_jsonl(frame),
            SerialFormat::Cobs => encode_cobs(frame),
        }
        .map_err(|e| SinkError::Failed {
            sink: self.name.clone(),
            what: e.to_string(),
        })?;
        let mut q = self.shared.lock();
        if q.closing {
            return Err(SinkError::Failed {
                sink: self.name.clone(),
                what: "sink is closed".into(),
            });
        }
        while q.items.len() >= self.capacity {
            q.items.pop_front();
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.items.push_back(bytes);
        drop(q);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Stops accepting frames, lets the writer send what is queued if the port is up and taking
    /// bytes, and joins it. Queued frames are discarded (and counted as dropped) if the port is
    /// away or a write times out, so closing takes at most about one `write_timeout`.
    fn close(&mut self) -> Result<(), SinkError> {
        self.shutdown();
        Ok(())
    }

    fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn kind(&self) -> &'static str {
        "serial"
    }

    fn queue_depth(&self) -> u64 {
        self.shared.lock().items.len() as u64
    }
}

impl Drop for SerialSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn open_port(o: &SerialOptions) -> Result<Box<dyn serialport::SerialPort>, SerialError> {
    let open_error = |source: serialport::Error| SerialError::Open {
        device: o.path.clone(),
        baud: o.baud,
        source,
    };
    let builder = serialport::new(o.path.as_str(), o.baud).timeout(o.write_timeout);
    #[cfg(unix)]
    {
        let port = builder.open_native().map_err(open_error)?;
        set_nonblocking(&port).map_err(|e| open_error(e.into()))?;
        Ok(Box::new(port))
    }
    #[cfg(not(unix))]
    {
        builder.open().map_err(open_error)
    }
}

/// Put the port's descriptor in non-blocking mode.
///
/// Why: `serialport` polls for writability (bounded by the timeout) and then calls a *blocking*
/// `write(2)`, and a tty write in blocking mode only returns once every byte is in the tty
/// buffer. With a receiver that stopped reading, poll reports room for a few bytes, the write
/// of a whole frame then blocks forever, and so does `close()` joining the writer (regression
/// test `close_with_a_stalled_receiver_is_prompt`). Non-blocking, the write takes what fits and
/// returns; the next poll waits at most `write_timeout`, then the message counts as stalled.
#[cfg(unix)]
fn set_nonblocking(port: &serialport::TTYPort) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = port.as_raw_fd();
    // SAFETY: `fd` is the open descriptor owned by `port`, which outlives both calls;
    // F_GETFL/F_SETFL only read and set its status flags and touch no memory of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

enum WriteFailure {
    /// The device did not take the bytes within the timeout; the port still works.
    Stalled,
    /// The port is gone or broken.
    Gone(io::Error),
}

struct Writer {
    options: SerialOptions,
    shared: Arc<Shared>,
    port: Option<Box<dyn serialport::SerialPort>>,
    /// A message was cut off mid-way: the next one is preceded by a separator so the receiver
    /// can drop the fragment.
    dirty: bool,
}

impl Writer {
    fn run(mut self, initial: Box<dyn serialport::SerialPort>) {
        self.attach(initial);
        let mut next_attempt = Instant::now();
        loop {
            // No reopening once closing: queued messages are then dropped, not waited for.
            let closing = self.shared.lock().closing;
            if self.port.is_none() && !closing && Instant::now() >= next_attempt {
                match open_port(&self.options) {
                    Ok(p) => {
                        log::info!("serial port {}: reopened, resuming", self.options.path);
                        self.attach(p);
                    }
                    Err(e) => {
                        log::debug!("{e}");
                        next_attempt = Instant::now() + self.options.reopen_interval;
                    }
                }
            }
            let msg = {
                let mut q = self.shared.lock();
                loop {
                    if q.closing && (q.items.is_empty() || self.port.is_none()) {
                        let left = q.items.len() as u64;
                        self.shared.dropped.fetch_add(left, Ordering::Relaxed);
                        q.items.clear();
                        return;
                    }
                    if self.port.is_none() {
                        // Sleep until the next reopen attempt (or close); keep messages queued.
                        let wait = next_attempt.saturating_duration_since(Instant::now());
                        if wait.is_zero() {
                            break None;
                        }
                        q = self
                            .shared
                            .wake
                            .wait_timeout(q, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                        continue;
                    }
                    if let Some(m) = q.items.pop_front() {
                        break Some(m);
                    }
                    q = self.shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(msg) = msg else { continue };
            match self.write_message(&msg) {
                Ok(()) => {
                    self.shared.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(WriteFailure::Stalled) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    log::debug!(
                        "serial port {}: write timed out, message dropped",
                        self.options.path
                    );
                    // Closing: do not spend a timeout on each remaining message of a receiver
                    // that is not reading; the loop drops them on the next pass.
                    if self.shared.lock().closing {
                        self.port = None;
                        self.shared.connected.store(false, Ordering::Relaxed);
                    }
                }
                Err(WriteFailure::Gone(e)) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    self.port = None;
                    self.shared.connected.store(false, Ordering::Relaxed);
                    self.shared.outages.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "serial port {}: write failed ({e}); reopening every {} ms, queueing up to {} frames (oldest dropped)",
                        self.options.path,
                        self.options.reopen_interval.as_millis(),
                        self.options.queue_capacity,
                    );
                    next_attempt = Instant::now() + self.options.reopen_interval;
                }
            }
        }
    }

    fn attach(&mut self, port: Box<dyn serialport::SerialPort>) {
        self.port = Some(port);
        self.shared.connected.store(true, Ordering::Relaxed);
        // A fresh receiver may hold a partial frame from before; a lone delimiter flushes it
        // and is ignored by decoders. JSON lines need nothing: a fresh port has no fragment.
        self.dirty = self.options.format == SerialFormat::Cobs;
    }

    fn write_message(&mut self, msg: &[u8]) -> Result<(), WriteFailure> {
        if self.dirty {
            let sep: &[u8] = match self.options.format {
                SerialFormat::Cobs => &[0],
                SerialFormat::Jsonl => b"\n",
            };
            self.write_all(sep)?;
            self.dirty = false;
        }
        self.write_all(msg)
    }

    fn write_all(&mut self, mut buf: &[u8]) -> Result<(), WriteFailure> {
        let Some(port) = self.port.as_mut() else {
            return Err(WriteFailure::Gone(io::ErrorKind::NotConnected.into()));
        };
        let total = buf.len();
        while !buf.is_empty() {
            match port.write(buf) {
                Ok(0) => return Err(WriteFailure::Gone(io::ErrorKind::WriteZero.into())),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    self.dirty = buf.len() < total;
                    return Err(WriteFailure::Stalled);
                }
                Err(e) => return Err(WriteFailure::Gone(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::Detection;
    use crate::pipeline::TrackedDetection;

    fn frame(n: u64) -> FrameResult {
        FrameResult {
            camera: "cam0".into(),
            frame: n,
            frame_time: 1_700_000_000.5,
            width: 640,
            height: 480,
            detections: vec![TrackedDetection {
                id: 7,
                detection: Detection {
                    label: "person".into(),
                    class_id: 0,
                    score: 0.875,
                    bbox: [10.0, 20.5, 110.0, 220.0],
                },
                zones: vec!["door".into()],
            }],
            inference_ms: 12.5,
        }
    }

    #[test]
    fn jsonl_line_shape() {
        let line = String::from_utf8(encode_jsonl(&frame(42)).unwrap()).unwrap();
        assert_eq!(
            line,
            "{\"camera\":\"cam0\",\"frame\":42,\"frame_time\":1700000000.5,\"width\":640,\"height\":480,\
             \"detections\":[{\"id\":7,\"label\":\"person\",\"class_id\":0,\"score\":0.875,\
             \"box\":[10.0,20.5,110.0,220.0]}]}\n"
        );
    }

    #[test]
    fn cobs_decodes_to_jsonl_line() {
        let mut f = frame(3);
        f.detections[0].detection.score = 0.1;
        f.detections[0].detection.bbox = [0.1, 1.0 / 3.0, 639.99, 479.123456789];
        f.detections[0].detection.label =
            "a very long label that exceeds thirty-two bytes é".into();
        f.camera = "ünïcode-camera".into();
        let mut stream = vec![0x42, 0x42, 0];
        stream.extend(encode_cobs(&f).unwrap());
        stream.extend(encode_cobs(&frame(4)).unwrap());
        let mut out = Vec::new();
        let stats = decode_stream(&stream[..], &mut out).unwrap();
        let mut expected = encode_jsonl(&f).unwrap();
        expected.extend(encode_jsonl(&frame(4)).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert_eq!(stats.frames, 2);
        assert_eq!(stats.errors(), 1);
    }

    #[test]
    fn out_of_range_is_a_typed_error() {
        let mut f = frame(1);
        f.width = 70_000;
        let e = encode_cobs(&f).unwrap_err();
        assert!(
            matches!(
                e,
                SerialError::OutOfRange {
                    field: "width",
                    value: 70_000,
                    ..
                }
            ),
            "{e}"
        );
        let mut f = frame(1);
        f.detections[0].detection.class_id = 1 << 20;
        assert!(matches!(
            encode_jsonl(&f),
            Err(SerialError::OutOfRange {
                field: "class_id",
                ..
            })
        ));
    }

    #[test]
    fn decode_stream_counts_trailing_partial_frame() {
        let mut stream = encode_cobs(&frame(1)).unwrap();
        let second = encode_cobs(&frame(2)).unwrap();
        stream.extend_from_slice(&second[..10]);
        let mut out = Vec::new();
        let stats = decode_stream(&stream[..], &mut out).unwrap();
        assert_eq!(stats.frames, 1);
        assert_eq!(stats.trailing_bytes, 10);
    }

    #[test]
    fn format_parses() {
        assert_eq!("cobs".parse::<SerialFormat>().unwrap(), SerialFormat::Cobs);
        assert_eq!(
            "jsonl".parse::<SerialFormat>().unwrap(),
            SerialFormat::Jsonl
        );
        assert!("json".parse::<SerialFormat>().is_err());
    }
}
