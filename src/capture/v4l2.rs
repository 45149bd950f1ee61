//! V4L2 cameras (Linux, feature `v4l2`) through the `v4l` crate: format negotiation (prefer
//! MJPEG, else YUYV, else NV12), mmap streaming, YUYV/NV12 → RGB (BT.601 integer, see
//! [`super::yuv`]) or JPEG decode.
//!
//! Disconnects: a device that vanishes (ENODEV/EIO on dequeue, a poll error, no frame within
//! `frame_timeout`) yields `CaptureError::Disconnected`; the source then drops the device and
//! the next `next_frame` call tries to reopen it (paced by `reopen_delay`).
//!
//! The `v4l` crate panics in a few places on unexpected driver data (non-UTF-8 capability
//! strings, unknown field orders) and in its `Drop` impls when STREAMOFF/munmap/close fail with
//! anything but ENODEV. Those calls are wrapped in `catch_unwind` so a misbehaving device is an
//! error, not a crashed pipeline.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use crate::capture::{decode::decode_bytes, now_secs, yuv, CaptureError, Source};
use crate::pipeline::Frame;

/// Pixel formats spotter can consume, in order of preference: MJPEG moves the least data over
/// USB (and so gives the highest frame rates); YUYV and NV12 are converted on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
    Nv12,
}

impl PixelFormat {
    pub const PREFERENCE: [PixelFormat; 3] =
        [PixelFormat::Mjpeg, PixelFormat::Yuyv, PixelFormat::Nv12];

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Nv12 => *b"NV12",
        }
    }

    pub fn from_fourcc(f: [u8; 4]) -> Option<Self> {
        match &f {
            b"MJPG" | b"JPEG" => Some(PixelFormat::Mjpeg),
            b"YUYV" => Some(PixelFormat::Yuyv),
            b"NV12" => Some(PixelFormat::Nv12),
            _ => None,
        }
    }
}

/// The most preferred format among those a device offers.
pub fn choose_format(offered: &[[u8; 4]]) -> Option<PixelFormat> {
    PixelFormat::PREFERENCE.into_iter().find(|p| {
        offered
            .iter()
            .any(|f| PixelFormat::from_fourcc(*f) == Some(*p))
    })
}

/// `v` clamped to `[min, max]` and moved down onto the grid `min + k·step`.
pub fn snap(v: u32, min: u32, max: u32, step: u32) -> u32 {
    let v = v.clamp(min, max.max(min));
    if step <= 1 {
        return v;
    }
    min + (v - min) / step * step
}

/// The offered size closest to `want` (sum of absolute differences; ties → larger area).
pub fn choose_size(offered: &[(u32, u32)], want: (u32, u32)) -> Option<(u32, u32)> {
    offered.iter().copied().min_by_key(|&(w, h)| {
        let d = w.abs_diff(want.0) as u64 + h.abs_diff(want.1) as u64;
        (d, u64::MAX - w as u64 * h as u64)
    })
}

#[derive(Clone, Debug)]
pub struct V4l2Config {
    /// Requested size; the device's closest is used. Default 640x480.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Requested frame rate (S_PARM); the driver may pick another. `None`: device default.
    pub fps: Option<u32>,
    /// mmap buffers to request.
    pub buffers: u32,
    /// No frame for this long → Disconnected.
    pub frame_timeout: Duration,
    /// Minimum time between two reopen attempts.
    pub reopen_delay: Duration,
}

impl Default for V4l2Config {
    fn default() -> Self {
        V4l2Config {
            width: None,
            height: None,
            fps: None,
            buffers: 4,
            frame_timeout: Duration::from_secs(3),
            reopen_delay: Duration::from_millis(250),
        }
    }
}

/// What was agreed with the device.
#[derive(Clone, Debug, PartialEq)]
pub struct Negotiated {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per line (YUYV/NV12).
    pub stride: u32,
    /// Frame rate the driver reports after S_PARM, if it reports one.
    pub fps: Option<f64>,
    /// Every (fourcc, sizes) the device offered, for logs.
    pub offered: Vec<(String, Vec<(u32, u32)>)>,
}

struct OpenDevice {
    // Drop order matters: the stream (STREAMOFF, munmap, REQBUFS 0) goes before the device fd.
    stream: Stream<'static>,
    _dev: Device,
    neg: Negotiated,
}

/// A V4L2 camera.
pub struct V4l2Source {
    path: PathBuf,
    name: String,
    cfg: V4l2Config,
    dev: Option<OpenDevice>,
    last_open: Instant,
    seq: u64,
    /// Negotiation of the most recent successful open.
    neg: Negotiated,
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("path", &self.path)
            .field("open", &self.dev.is_some())
            .field("neg", &self.neg)
            .finish()
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{e} (errno {code})"),
        None => e.to_string(),
    }
}

fn open_device(path: &Path, cfg: &V4l2Config) -> Result<OpenDevice, String> {
    let dev = Device::with_path(path).map_err(|e| format!("open: {}", errno_text(&e)))?;
    let caps = dev
        .query_caps()
        .map_err(|e| format!("VIDIOC_QUERYCAP: {}", errno_text(&e)))?;
    use v4l::capability::Flags;
    if !caps.capabilities.contains(Flags::VIDEO_CAPTURE) {
        return Err(format!(
            "{} ({}) is not a video capture device (capabilities {:?})",
            caps.card, caps.driver, caps.capabilities
        ));
    }
    if !caps.capabilities.contains(Flags::STREAMING) {
        return Err(format!(
            "{} ({}) does not support streaming I/O",
            caps.card, caps.driver
        ));
    }
    let formats = dev
        .enum_formats()
        .map_err(|e| format!("VIDIOC_ENUM_FMT: {}", errno_text(&e)))?;
    let want = (cfg.width.unwrap_or(640), cfg.height.unwrap_or(480));
    let mut offered = Vec::new();
    for f in &formats {
        let sizes: Vec<(u32, u32)> = match dev.enum_framesizes(f.fourcc) {
            Ok(list) => list
                .into_iter()
                .map(|fs| match fs.size {
                    v4l::framesize::FrameSizeEnum::Discrete(d) => (d.width, d.height),
                    // Stepwise/continuous: the wanted size clamped into range and snapped to
                    // the step grid (S_FMT would round it the same way).
                    v4l::framesize::FrameSizeEnum::Stepwise(s) => (
                        snap(want.0, s.min_width, s.max_width, s.step_width),
                        snap(want.1, s.min_height, s.max_height, s.step_height),
                    ),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        offered.push((f.fourcc.repr, sizes));
    }
    let fourccs: Vec<[u8; 4]> = offered.iter().map(|(f, _)| *f).collect();
    let describe = || {
        offered
            .iter()
            .map(|(f, s)| (String::from_utf8_lossy(f).into_owned(), s.clone()))
            .collect::<Vec<_>>()
    };
    let format = choose_format(&fourccs).ok_or_else(|| {
        format!(
            "device offers none of MJPG, YUYV, NV12 (offers {:?})",
            describe()
                .iter()
                .map(|(f, _)| f.clone())
                .collect::<Vec<_>>()
        )
    })?;
    let sizes = offered
        .iter()
        .find(|(f, _)| PixelFormat::from_fourcc(*f) == Some(format))
        .map(|(_, s)| s.as_slice())
        .unwrap_or(&[]);
    let (w, h) = choose_size(sizes, want).unwrap_or(want);
    let fmt = dev
        .set_format(&Format::new(w, h, FourCC::new(&format.fourcc())))
        .map_err(|e| format!("VIDIOC_S_FMT: {}", errno_text(&e)))?;
    if PixelFormat::from_fourcc(fmt.fourcc.repr) != Some(format) {
        return Err(format!(
            "asked for {} but the driver set {}",
            String::from_utf8_lossy(&format.fourcc()),
            String::from_utf8_lossy(&fmt.fourcc.repr)
        ));
    }
    let mut fps = None;
    if let Some(want_fps) = cfg.fps.filter(|&f| f > 0) {
        match dev.set_params(&v4l::video::capture::Parameters::with_fps(want_fps)) {
            Ok(p) if p.interval.numerator > 0 => {
                fps = Some(p.interval.denominator as f64 / p.interval.numerator as f64)
            }
            Ok(_) => {}
            // Not every driver supports S_PARM; the camera then runs at its default rate.
            Err(e) => log::warn!("{}: VIDIOC_S_PARM: {}", path.display(), errno_text(&e)),
        }
    } else if let Ok(p) = dev.params() {
        if p.interval.numerator > 0 {
            fps = Some(p.interval.denominator as f64 / p.interval.numerator as f64);
        }
    }
    let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, cfg.buffers.max(2))
        .map_err(|e| format!("mmap buffers: {}", errno_text(&e)))?;
    stream.set_timeout(cfg.frame_timeout);
    Ok(OpenDevice {
        stream,
        _dev: dev,
        neg: Negotiated {
            format,
            width: fmt.width,
            height: fmt.height,
            stride: fmt.stride,
            fps,
            offered: describe(),
        },
    })
}

fn open_device_guarded(path: &Path, cfg: &V4l2Config) -> Result<OpenDevice, String> {
    catch_unwind(AssertUnwindSafe(|| open_device(path, cfg)))
        .unwrap_or_else(|p| Err(format!("v4l crate panicked: {}", panic_text(p))))
}

/// Drop an open device, absorbing the `v4l` crate's panics on failed STREAMOFF/munmap/close.
fn close_device(dev: OpenDevice) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(dev))) {
        log::warn!("closing V4L2 device: {}", panic_text(p));
    }
}

impl V4l2Source {
    /// Open and negotiate. A missing device, a non-capture node or no usable format → `Open`
    /// naming the device and what was expected.
    pub fn open(path: &Path, cfg: V4l2Config) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let dev = open_device_guarded(path, &cfg).map_err(|e| CaptureError::open(&name, e))?;
        log::info!("{name}: negotiated {:?}", dev.neg);
        Ok(V4l2Source {
            path: path.to_path_buf(),
            name,
            cfg,
            neg: dev.neg.clone(),
            dev: Some(dev),
            last_open: Instant::now(),
            seq: 0,
        })
    }

    /// The format agreed at the last successful open.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    pub fn is_open(&self) -> bool {
        self.dev.is_some()
    }

    /// Try to reopen the device once (no pacing). On success streaming resumes with the next
    /// `next_frame`; sequence numbers continue.
    pub fn reopen(&mut self) -> Result<(), CaptureError> {
        if let Some(d) = self.dev.take() {
            close_device(d);
        }
        self.last_open = Instant::now();
        let dev = open_device_guarded(&self.path, &self.cfg)
            .map_err(|e| CaptureError::disconnected(&self.name, format!("reopen: {e}")))?;
        log::info!("{}: reopened, negotiated {:?}", self.name, dev.neg);
        self.neg = dev.neg.clone();
        self.dev = Some(dev);
        Ok(())
    }

    /// Reopen, retrying every `reopen_delay` until it works or `timeout` has passed; the last
    /// error is returned on timeout.
    pub fn reopen_with_retry(&mut self, timeout: Duration) -> Result<(), CaptureError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.reopen() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() + self.cfg.reopen_delay > deadline => return Err(e),
                Err(_) => std::thread::sleep(self.cfg.reopen_delay),
            }
        }
    }

    fn lost(&mut self, what: String) -> CaptureError {
        if let Some(d) = self.dev.take() {
            close_device(d);
        }
        CaptureError::disconnected(&self.name, what)
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        if let Some(d) = self.dev.take() {
            close_device(d);
        }
    }
}

impl Source for V4l2Source {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.dev.is_none() {
            let wait = self
                .cfg
                .reopen_delay
                .saturating_sub(self.last_open.elapsed());
            std::thread::sleep(wait);
            self.reopen()?;
        }
        let Some(dev) = self.dev.as_mut() else {
            return Err(self.lost("device not open".into()));
        };
        let neg = dev.neg.clone();
        let result = catch_unwind(AssertUnwindSafe(|| match dev.stream.next() {
            Ok((buf, meta)) => {
                let used = (meta.bytesused as usize).min(buf.len());
                let used = if used == 0 { buf.len() } else { used };
                let data = &buf[..used];
                let (w, h, stride) = (neg.width as usize, neg.height as usize, neg.stride);
                Ok(match neg.format {
                    PixelFormat::Mjpeg => decode_bytes(data, &self.name),
                    PixelFormat::Yuyv => yuv::yuyv_to_rgb(data, w, h, stride as usize)
                        .map_err(|e| CaptureError::corrupt(&self.name, e)),
                    PixelFormat::Nv12 => yuv::nv12_to_rgb(data, w, h, stride as usize)
                        .map_err(|e| CaptureError::corrupt(&self.name, e)),
                })
            }
            Err(e) => Err(errno_text(&e)),
        }));
        let image = match result {
            Ok(Ok(decoded)) => decoded?,
            Ok(Err(e)) => return Err(self.lost(format!("dequeue: {e}"))),
            Err(p) => return Err(self.lost(format!("v4l crate panicked: {}", panic_text(p)))),
        };
        let frame = Frame {
            seq: self.seq,
            time: now_secs(),
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

/// Whether `path` is a V4L2 node that captures video: QUERYCAP says VIDEO_CAPTURE and it lists
/// at least one capture format (UVC metadata nodes list none).
pub fn is_capture_device(path: &Path) -> bool {
    catch_unwind(|| {
        let Ok(dev) = Device::with_path(path) else {
            return false;
        };
        let Ok(caps) = dev.query_caps() else {
            return false;
        };
        caps.capabilities
            .contains(v4l::capability::Flags::VIDEO_CAPTURE)
            && dev.enum_formats().map(|f| !f.is_empty()).unwrap_or(false)
    })
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_preference() {
        assert_eq!(
            choose_format(&[*b"YUYV", *b"MJPG"]),
            Some(PixelFormat::Mjpeg)
        );
        assert_eq!(
            choose_format(&[*b"NV12", *b"YUYV"]),
            Some(PixelFormat::Yuyv)
        );
        assert_eq!(
            choose_format(&[*b"H264", *b"NV12"]),
            Some(PixelFormat::Nv12)
        );
        assert_eq!(choose_format(&[*b"H264", *b"GREY"]), None);
    }

    #[test]
    fn size_choice() {
        let s = [(1920, 1080), (640, 480), (320, 240)];
        assert_eq!(choose_size(&s, (640, 480)), Some((640, 480)));
        assert_eq!(choose_size(&s, (300, 300)), Some((320, 240)));
        assert_eq!(choose_size(&s, (1280, 720)), Some((640, 480)));
        assert_eq!(choose_size(&[], (1, 1)), None);
        assert_eq!(snap(641, 16, 1920, 16), 640);
        assert_eq!(snap(5000, 16, 1920, 8), 1920);
        assert_eq!(snap(3, 16, 1920, 0), 16);
    }

    #[test]
    fn missing_device_is_an_open_error_naming_it() {
        let err = V4l2Source::open(Path::new("/dev/video-spotter-none"), V4l2Config::default())
            .expect_err("no such device");
        assert!(matches!(err, CaptureError::Open { .. }));
        assert!(err.to_string().contains("/dev/video-spotter-none"), "{err}");
        assert!(!is_capture_device(Path::new("/dev/null")));
    }
}
