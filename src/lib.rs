//! spotter: a lean edge inference runtime for quantized detectors.
//!
//! Layers, from file to frame:
//! - [`model`]: our IR and loaders (TFLite flatbuffers).
//! - [`ops`]: per-operator preparation (quantization parameters, packed weights) into kernels.
//! - [`kernels`]: the arithmetic: scalar reference kernels (the numerics oracle) and, per ISA,
//!   SIMD kernels that must match them bit for bit.
//! - [`plan`]: tensor lifetimes → offsets in one arena.
//! - [`runtime`]: a loaded, prepared, planned model that runs frame after frame.
//! - [`vision`]: image decode/resize, labels, box drawing.
//! - [`detector`]: model + labels + pre/post-processing = detections.
//! - [`board`], [`service`], [`http`]: deployment: target boards, systemd notifications,
//!   the HTTP endpoint (TF-Serving REST, metrics, preview).

pub mod board;
pub mod capture;
pub mod config;
pub mod defaults;
pub mod detector;
pub mod error;
pub mod http;
pub mod kernels;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod plan;
pub mod runtime;
pub mod service;
pub mod sinks;
pub mod vision;

pub use error::{InputError, ModelError};
