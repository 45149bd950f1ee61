//! The int8 models written by spotter-calibrate run in spotter bit-exactly like LiteRT's
//! reference kernels (BUILTIN_REF): every output byte equals the goldens written by
//! `scripts/calib/make_litert_goldens.py`, on the kernel tier the process picks (`SPOTTER_ISA`
//! selects others). Models: the objectron SSD (`tests/data/calib/`) and the BlazeFace-like
//! detector (`tests/data/calib/blazeface/`: PRELU, PAD, MAX_POOL_2D, RESIZE_BILINEAR in int8).

mod common;

use common::*;
use spotter::model::tflite;
use spotter::runtime::{Session, SessionOptions};

#[test]
fn calibrated_int8_model_is_bit_exact_with_litert_reference() {
    check_goldens("tests/data/calib");
}

#[test]
fn calibrated_int8_blazeface_like_is_bit_exact_with_litert_reference() {
    check_goldens("tests/data/calib/blazeface");
}

fn check_goldens(dir: &str) {
    let dir = repo().join(dir);
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
    let inputs = repo().join(
        index["inputs"]
            .as_str()
            .unwrap_or("tests/goldens/objectron"),
    );
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
