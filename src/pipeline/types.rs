//! Values that flow between pipeline stages.

use serde::Serialize;

use crate::detector::Detection;
use crate::vision::image::RgbImage;

/// A captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Sequence number from the source, starting at 0, without gaps for delivered frames.
    pub seq: u64,
    /// Capture time, seconds since the Unix epoch.
    pub time: f64,
    pub image: RgbImage,
}

/// A detection with the id of the track it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackedDetection {
    /// Stable id of the tracked object (unique within a run).
    pub id: u64,
    #[serde(flatten)]
    pub detection: Detection,
    /// Names of the configured zones the box is in.
    pub zones: Vec<String>,
}

/// Everything the pipeline knows about one processed frame; what sinks receive.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameResult {
    pub camera: String,
    /// Frame number (the source's sequence number).
    pub frame: u64,
    /// Capture time, seconds since the Unix epoch.
    pub frame_time: f64,
    pub width: usize,
    pub height: usize,
    pub detections: Vec<TrackedDetection>,
    /// Inference time of this frame in milliseconds.
    pub inference_ms: f32,
}

/// Running counters published as stats/metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PipelineStats {
    pub fps: f32,
    pub inference_ms: f32,
    pub frames: u64,
    /// Frames the capture stage dropped because inference was busy (keep-newest policy).
    pub capture_drops: u64,
    /// Frames that could not be decoded (corrupt JPEG etc.), skipped.
    pub corrupt_frames: u64,
    /// Messages sinks dropped because their bounded queues were full.
    pub sink_drops: u64,
    /// Times the source went away (camera unplugged, stream lost) and was reconnected to;
    /// each outage counts once, however long it lasts.
    pub source_outages: u64,
}
