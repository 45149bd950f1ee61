//! spotter's own model IR: tensors with dtype, shape and quantization, operators in execution
//! order, graph inputs and outputs.
//!
//! Loaders (`tflite`, `onnx`) translate a file into this IR once; everything after load
//! (kernel preparation, weight packing, memory planning) works on it. We keep our own IR instead
//! of tract's so we control layout (always NHWC), packing and planning.

pub mod onnx;
pub mod tflite;

mod ir;

pub use ir::*;

/// Load a model by its contents: TFLite (`TFL3` identifier) or ONNX (a protobuf ModelProto);
/// the extension only breaks ties for files that are neither.
pub fn load(path: &std::path::Path) -> Result<Graph, crate::error::ModelError> {
    let bytes = read_file(path)?;
    let is_tflite = bytes.len() >= 8 && &bytes[4..8] == b"TFL3";
    let onnx_ext = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !is_tflite && (onnx_ext || onnx::looks_like_onnx(&bytes)) {
        onnx::parse(&bytes, path)
    } else {
        tflite::parse(&bytes, path)
    }
}

/// Read a model file; a failed read names the path (the one place loaders do I/O).
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, crate::error::ModelError> {
    std::fs::read(path).map_err(|source| crate::error::ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}
