//! Cameras through `nokhwa` (feature `nokhwa`, off by default), for OSes without V4L2
//! (macOS AVFoundation, Windows Media Foundation). On Linux the `v4l2` source is used instead
//! when both features are on.

use std::path::Path;

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};
use nokhwa::Camera;

use crate::capture::{now_secs, CaptureError, Source, SourceOptions};
use crate::pipeline::Frame;
use crate::vision::image::RgbImage;

pub struct NokhwaSource {
    name: String,
    index: u32,
    opts: SourceOptions,
    camera: Option<Camera>,
    seq: u64,
}

fn requested(opts: &SourceOptions) -> RequestedFormat<'static> {
    let kind = match (opts.width, opts.height) {
        (Some(w), Some(h)) => RequestedFormatType::Closest(CameraFormat::new(
            Resolution::new(w, h),
            FrameFormat::MJPEG,
            opts.fps.unwrap_or(30),
        )),
        _ => RequestedFormatType::AbsoluteHighestFrameRate,
    };
    RequestedFormat::new::<RgbFormat>(kind)
}

impl NokhwaSource {
    /// Open camera number `index` (the OS's enumeration order).
    pub fn open(index: u32, opts: &SourceOptions) -> Result<Self, CaptureError> {
        let name = format!("camera:{index}");
        let camera = Self::start(index, opts).map_err(|e| CaptureError::open(&name, e))?;
        Ok(NokhwaSource {
            name,
            index,
            opts: opts.clone(),
            camera: Some(camera),
            seq: 0,
        })
    }

    /// `/dev/videoN` → camera N (so `--source /dev/video0` works with this backend too).
    pub fn open_path(path: &Path, opts: &SourceOptions) -> Result<Self, CaptureError> {
        let index = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("video"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                CaptureError::open(
                    path.display().to_string(),
                    "expected a camera path of the form /dev/videoN",
                )
            })?;
        Self::open(index, opts)
    }

    fn start(index: u32, opts: &SourceOptions) -> Result<Camera, String> {
        let mut camera = Camera::new(CameraIndex::Index(index), requested(opts))
            .map_err(|e| format!("open: {e}"))?;
        camera
            .open_stream()
            .map_err(|e| format!("start stream: {e}"))?;
        Ok(camera)
    }
}

impl Source for NokhwaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.camera.is_none() {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let cam = Self::start(self.index, &self.opts)
                .map_err(|e| CaptureError::disconnected(&self.name, format!("reopen: {e}")))?;
            self.camera = Some(cam);
        }
        let Some(camera) = self.camera.as_mut() else {
            return Err(CaptureError::disconnected(&self.name, "camera not open"));
        };
        let buffer = match camera.frame() {
            Ok(b) => b,
            Err(e) => {
                self.camera = None;
                return Err(CaptureError::disconnected(&self.name, e.to_string()));
            }
        };
        let rgb = buffer
            .decode_image::<RgbFormat>()
            .map_err(|e| CaptureError::corrupt(&self.name, e.to_string()))?;
        let image = RgbImage {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            data: rgb.into_raw(),
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
