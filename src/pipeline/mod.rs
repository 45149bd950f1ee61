//! The streaming pipeline: source → preprocess/infer/postprocess → track/filter → sinks.
//!
//! Every queue between stages has an explicit full-policy (capture keeps only the newest frame
//! and counts drops; sinks never block the pipeline).

mod heartbeat;
mod track;
mod types;

pub use heartbeat::Heartbeat;
pub use track::*;
pub use types::*;
