//! spotter's own model IR: tensors with dtype, shape and quantization, operators in execution
//! order, graph inputs and outputs.
//!
//! Loaders (`tflite`, later ONNX) translate a file into this IR once; everything after load
//! (kernel preparation, weight packing, memory planning) works on it. We keep our own IR instead
//! of tract's so we control layout (always NHWC), packing and planning.

pub mod tflite;

mod ir;

pub use ir::*;
