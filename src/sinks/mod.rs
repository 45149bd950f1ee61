//! Sinks: where detections go (stdout JSON lines, MQTT, serial).
//!
//! Contract: `publish` must not block the pipeline for long; a sink with slow I/O keeps its
//! own bounded queue with a stated full-policy and counts what it drops.

pub mod serial;
pub mod stdout;

use crate::pipeline::{FrameResult, PipelineStats};

pub mod mqtt;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{sink}: {what}")]
    Failed { sink: String, what: String },
}

pub trait Sink: Send {
    fn name(&self) -> &str;
    /// One processed frame.
    fn publish(&mut self, frame: &FrameResult) -> Result<(), SinkError>;
    /// Periodic statistics (about once per second).
    fn stats(&mut self, _stats: &PipelineStats) -> Result<(), SinkError> {
        Ok(())
    }
    /// Clean shutdown: end tracked objects, flush, say goodbye.
    fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Messages dropped so far by this sink's bounded queue.
    fn dropped(&self) -> u64 {
        0
    }
    /// What kind of sink this is (`"mqtt"`, `"serial"`, `"stdout"`), for metrics labels.
    fn kind(&self) -> &'static str {
        "sink"
    }
    /// Messages waiting in this sink's own queue right now (0 for sinks without one).
    fn queue_depth(&self) -> u64 {
        0
    }
}
