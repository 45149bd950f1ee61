//! The float (fp16-weight) objectron SSD from `../shared/models` loads and its raw outputs match
//! LiteRT's (BUILTIN_REF) within 1e-3 relative.

mod common;

use common::*;
use spotter::model::tflite;
use spotter::runtime::{Session, SessionOptions};

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn objectron_raw_outputs_match_litert() {
    let model = shared().join("models/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite");
    let graph = tflite::load(&model).unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::new(graph, SessionOptions::default()).unwrap();
    let dir = repo().join("tests/goldens/objectron");
    for name in ["astronaut", "coffee"] {
        let input = std::fs::read(dir.join(format!("{name}.input.f32"))).unwrap();
        session.input_mut(0).copy_from_slice(&input);
        session.run();
        for (k, file) in ["boxes", "logits"].iter().enumerate() {
            let want = f32s(&std::fs::read(dir.join(format!("{name}.{file}.f32"))).unwrap());
            let got = f32s(session.output(k));
            assert_eq!(want.len(), got.len(), "{name} {file}: length");
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let mut worst = 0f32;
            for (w, g) in want.iter().zip(&got) {
                // Relative to the value, with the tensor's magnitude as the floor near zero.
                let rel = (w - g).abs() / w.abs().max(scale * 1e-2);
                worst = worst.max(rel);
            }
            assert!(worst <= 1e-3, "{name} {file}: worst relative error {worst}");
        }
    }
}
