//! TFLite loader: parse + prepare (`Detector::from_graph`) + one inference on a small image.
//! Any panic, hang or out-of-bounds access is a bug: corrupt files must come back as errors.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spotter::detector::{Detector, DetectorOptions};
use spotter::model::tflite;
use spotter::vision::image::RgbImage;

fuzz_target!(|data: &[u8]| {
    let Ok(graph) = tflite::parse(data, Path::new("fuzz.tflite")) else {
        return;
    };
    let Ok(mut det) = Detector::from_graph(graph, None, DetectorOptions::default()) else {
        return;
    };
    let mut img = RgbImage::new(32, 24);
    for (i, p) in img.data.iter_mut().enumerate() {
        *p = (i * 31) as u8;
    }
    let _ = det.detect(&img, 0.3);
});
