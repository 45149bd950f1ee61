//! The streaming pipeline: source → preprocess/infer/postprocess → track/filter → sinks.
//!
//! Every queue between stages has an explicit full-policy (capture keeps only the newest frame
//! and counts drops; sinks never block the pipeline).
//!
//! Stages, one file each: [`capture_stage`] (capture thread: decode, resize, reconnect),
//! [`runner`] (the inference loop and its shutdown/reload contract), [`filter`] (scores,
//! areas, masks, zones), `track` (IoU tracker), [`stats`] (per-second statistics),
//! [`preview`] (latest annotated frame), [`observer`] (taps for the HTTP endpoint).

pub mod capture_stage;
pub mod filter;
mod heartbeat;
pub mod observer;
pub mod preview;
pub mod runner;
pub mod stats;
mod track;
mod types;

pub use capture_stage::SourceStatus;
pub use filter::Filters;
pub use heartbeat::Heartbeat;
pub use observer::{Observer, SinkQueue};
pub use preview::{Preview, SharedPreview};
pub use runner::{
    Pipeline, PipelineError, PipelineOptions, Reloader, RunSummary, SharedStats, StopReason,
};
pub use track::*;
pub use types::*;
