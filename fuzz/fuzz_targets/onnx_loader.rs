//! ONNX QDQ loader: protobuf parse + QDQ translation (`model::onnx::parse`) + prepare
//! (`Detector::from_graph`). Corrupt files must come back as errors: any panic, hang or
//! out-of-bounds access is a bug. No inference here: ONNX-origin convs run on the scalar int8
//! kernels (~2 s per SSD inference in release, many times that under ASan, past libFuzzer's
//! timeout); the kernels themselves are fuzzed with corrupt weights by `tflite_loader`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spotter::detector::{Detector, DetectorOptions};
use spotter::model::onnx;

fuzz_target!(|data: &[u8]| {
    let Ok(graph) = onnx::parse(data, Path::new("fuzz.onnx")) else {
        return;
    };
    let _ = Detector::from_graph(graph, None, DetectorOptions::default());
});
