//! Frame sources: V4L2 devices, image files and folders, MJPEG over HTTP, a test pattern.
//!
//! [`open_source`] turns a `--source` argument into a [`Source`]; [`LatestFrame`] is the
//! single-slot mailbox between the capture thread and inference (keep newest, count drops).

pub mod decode;
pub mod files;
mod latest;
pub mod mjpeg;
#[cfg(feature = "nokhwa")]
pub mod nokhwa_source;
pub mod test_pattern;
#[cfg(all(target_os = "linux", feature = "v4l2"))]
pub mod v4l2;
pub mod yuv;

use std::path::{Path, PathBuf};

use crate::pipeline::Frame;

pub use latest::LatestFrame;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The device or stream is gone (unplugged, connection lost); the caller may reopen it.
    #[error("{source_name}: disconnected: {what}")]
    Disconnected { source_name: String, what: String },
    /// A frame could not be decoded; skip it and go on.
    #[error("{source_name}: corrupt frame: {what}")]
    Corrupt { source_name: String, what: String },
    #[error("{source_name}: {what}")]
    Open { source_name: String, what: String },
}

impl CaptureError {
    pub(crate) fn open(source_name: impl Into<String>, what: impl Into<String>) -> Self {
        CaptureError::Open {
            source_name: source_name.into(),
            what: what.into(),
        }
    }
    pub(crate) fn disconnected(source_name: impl Into<String>, what: impl Into<String>) -> Self {
        CaptureError::Disconnected {
            source_name: source_name.into(),
            what: what.into(),
        }
    }
    pub(crate) fn corrupt(source_name: impl Into<String>, what: impl Into<String>) -> Self {
        CaptureError::Corrupt {
            source_name: source_name.into(),
            what: what.into(),
        }
    }
}

/// A stream of frames.
///
/// Error contract for callers (the capture loop): `Corrupt` → skip and call again;
/// `Disconnected` → the source already dropped its connection/device; calling `next_frame`
/// again tries to reopen it (sources back off internally, so a retry loop does not spin);
/// `Open` → not recoverable by retrying.
pub trait Source: Send {
    fn name(&self) -> &str;
    /// Block until the next frame; `Ok(None)` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError>;
}

/// How to open a source; fields a source cannot honour are ignored (documented per source).
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// Requested frame size (cameras: nearest supported; test pattern: exact, default 640x480).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Requested frame rate (cameras: S_PARM; test pattern: pacing, default 30).
    pub fps: Option<u32>,
    /// Image files/folders: start over after the last image.
    pub loop_files: bool,
}

/// Open the source a `--source` argument names:
/// - `/dev/videoN` (any path under `/dev/`): a V4L2 camera (Linux, feature `v4l2`);
/// - `http://host[:port]/path`: an MJPEG stream (multipart/x-mixed-replace);
/// - `camera:N`: camera number N (`/dev/videoN` with V4L2, else the `nokhwa` backend);
/// - `test-pattern`: the synthetic moving pattern;
/// - an existing directory: its JPEG/PNG images in lexical order;
/// - anything else: a single image file.
pub fn open_source(spec: &str, opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    if spec == "test-pattern" {
        let w = opts.width.unwrap_or(640);
        let h = opts.height.unwrap_or(480);
        let fps = opts.fps.unwrap_or(30);
        return Ok(Box::new(test_pattern::TestPattern::new(w, h, fps)?));
    }
    if spec.starts_with("http://") {
        return Ok(Box::new(mjpeg::MjpegSource::open(spec)?));
    }
    if spec.starts_with("https://") || spec.starts_with("rtsp://") {
        return Err(CaptureError::open(
            spec,
            "unsupported scheme: only http:// MJPEG streams are supported",
        ));
    }
    if let Some(n) = spec.strip_prefix("camera:") {
        let index: u32 = n
            .parse()
            .map_err(|_| CaptureError::open(spec, "expected camera:N with N a camera number"))?;
        return open_camera_index(index, opts);
    }
    let path = Path::new(spec);
    if spec.starts_with("/dev/") {
        return open_camera(path, opts);
    }
    Ok(Box::new(files::FileSource::open(path, opts.loop_files)?))
}

#[cfg(all(target_os = "linux", feature = "v4l2"))]
fn open_camera_index(index: u32, opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    open_camera(Path::new(&format!("/dev/video{index}")), opts)
}

#[cfg(all(not(all(target_os = "linux", feature = "v4l2")), feature = "nokhwa"))]
fn open_camera_index(index: u32, opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    Ok(Box::new(nokhwa_source::NokhwaSource::open(index, opts)?))
}

#[cfg(not(any(all(target_os = "linux", feature = "v4l2"), feature = "nokhwa")))]
fn open_camera_index(index: u32, opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    open_camera(Path::new(&format!("camera:{index}")), opts)
}

#[cfg(all(target_os = "linux", feature = "v4l2"))]
fn open_camera(path: &Path, opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    let cfg = v4l2::V4l2Config {
        width: opts.width,
        height: opts.height,
        fps: opts.fps,
        ..v4l2::V4l2Config::default()
    };
    Ok(Box::new(v4l2::V4l2Source::open(path, cfg)?))
}

#[cfg(all(not(all(target_os = "linux", feature = "v4l2")), feature = "nokhwa"))]
fn open_camera(path: &Path, opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    Ok(Box::new(nokhwa_source::NokhwaSource::open_path(
        path, opts,
    )?))
}

#[cfg(not(any(all(target_os = "linux", feature = "v4l2"), feature = "nokhwa")))]
fn open_camera(path: &Path, _opts: &SourceOptions) -> Result<Box<dyn Source>, CaptureError> {
    Err(CaptureError::open(
        path.display().to_string(),
        "camera support not built in (enable feature `v4l2` on Linux or `nokhwa`)",
    ))
}

/// The first V4L2 capture device under `/dev` (`/dev/video*` in natural order: video2 before
/// video10), for `spotter run` without `--source`. `None` if there is none or V4L2 support
/// is not built in.
pub fn first_camera() -> Option<PathBuf> {
    first_camera_in(Path::new("/dev"))
}

/// [`first_camera`] scanning `dir` instead of `/dev` (tests use a temporary folder).
pub fn first_camera_in(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let n: u64 = name.strip_prefix("video")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .map(|(_, p)| p)
        .find(|p| is_capture_device(p))
}

#[cfg(all(target_os = "linux", feature = "v4l2"))]
fn is_capture_device(path: &Path) -> bool {
    v4l2::is_capture_device(path)
}

#[cfg(not(all(target_os = "linux", feature = "v4l2")))]
fn is_capture_device(_path: &Path) -> bool {
    false
}

/// Seconds since the Unix epoch, for `Frame::time`.
pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_source_dispatches_and_names_bad_specs() {
        let mut tp = open_source(
            "test-pattern",
            &SourceOptions {
                width: Some(32),
                height: Some(16),
                fps: Some(0),
                ..Default::default()
            },
        )
        .expect("test pattern");
        let f = tp.next_frame().expect("frame").expect("some frame");
        assert_eq!((f.image.width, f.image.height), (32, 16));

        let err = open_source("/nonexistent/spotter/img.jpg", &SourceOptions::default())
            .err()
            .expect("missing file must fail");
        assert!(matches!(err, CaptureError::Open { .. }));
        assert!(
            err.to_string().contains("/nonexistent/spotter/img.jpg"),
            "{err}"
        );

        let err = open_source("rtsp://cam/stream", &SourceOptions::default())
            .err()
            .expect("rtsp unsupported");
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }

    #[test]
    fn first_camera_ignores_non_devices() {
        let dir = std::env::temp_dir().join(format!("spotter-cam-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("video0"), b"not a device").expect("write");
        std::fs::write(dir.join("videox"), b"").expect("write");
        assert_eq!(first_camera_in(&dir), None);
        assert_eq!(first_camera_in(&dir.join("missing")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
