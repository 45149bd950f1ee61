//! The int8 objectron model written by spotter-calibrate (`tests/data/calib/`) runs in spotter
//! bit-exactly like LiteRT's reference kernels (BUILTIN_REF): every output byte equals the
//! goldens written by `scripts/calib/make_litert_goldens.py`, on every available kernel tier
//! the process picks (`SPOTTER_ISA` selects others).

mod common;

use common::*;
use spotter::model::tflite;
use spotter::runtime::{Session, SessionOptions};

#[test]
fn calibrated_int8_model_is_bit_exact_with_litert_reference() {
    let dir = repo().join("tests/data/calib");
    let index = read_json(&dir.join("index.json"));
    let model = dir.join(index["model"].as_str().unwrap());
    let bytes = std::fs::read(&model).unwrap();
    assert_eq!(
        sha256_hex(&bytes),
        index["model_sha256"].as_str().unwrap(),
        "the model changed since the goldens were made"
    );
    let graph = tflite::load(&model).unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::new(graph, SessionOptions::default()).unwrap();
    let inputs = repo().join("tests/goldens/objectron");
    let mut mismatches = Vec::new();
    for name in index["images"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let input = std::fs::read(inputs.join(format!("{name}.input.f32"))).unwrap();
        session.input_mut(0).copy_from_slice(&input);
        session.run();
        for k in 0..index["outputs"].as_array().unwrap().len() {
            let want = std::fs::read(dir.join(format!("{name}.out{k}.bin"))).unwrap();
            let got = session.output(k);
            assert_eq!(want.len(), got.len(), "{name} output {k}: length");
            let diffs = want
                .chunks(4)
                .zip(got.chunks(4))
                .filter(|(a, b)| a != b)
                .count();
            if diffs > 0 {
                mismatches.push(format!(
                    "{name} output {k}: {diffs} of {} values differ",
                    want.len() / 4
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
