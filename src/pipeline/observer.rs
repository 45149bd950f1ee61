//! Read-only taps on the running pipeline for in-process consumers that are not sinks (the HTTP
//! endpoint's live state): every processed frame, each refreshed preview, each stats snapshot.
//!
//! Contract: called on the inference thread, so implementations must be quick and must not
//! block (take a short lock, copy, return). They cannot fail and cannot change the pipeline.

use super::{FrameResult, PipelineStats, Preview};

/// Depth of one sink's queue at a stats snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkQueue {
    /// [`crate::sinks::Sink::name`].
    pub sink: String,
    /// [`crate::sinks::Sink::kind`], e.g. `"mqtt"`.
    pub kind: &'static str,
    /// Messages waiting ([`crate::sinks::Sink::queue_depth`]).
    pub depth: u64,
}

pub trait Observer: Send {
    /// One processed frame (after tracking and zones; what sinks get).
    fn frame(&mut self, _result: &FrameResult) {}
    /// The preview was refreshed (about every `preview_interval`).
    fn preview(&mut self, _preview: &Preview) {}
    /// A statistics snapshot (every `stats_interval` and at the end of the run).
    fn stats(&mut self, _stats: &PipelineStats, _queues: &[SinkQueue]) {}
}
