//! The Coral uint8 SSD, run on the golden inputs, must reproduce every tensor LiteRT's
//! reference kernels (BUILTIN_REF) produced, bit for bit: all intermediates by sha256, the last
//! layers byte by byte. Goldens come from `scripts/goldens/make_goldens.py`.

mod common;

use common::*;
use spotter::model::tflite;
use spotter::runtime::{Session, SessionOptions};

fn check_image(session: &mut Session, name: &str) -> Vec<String> {
    let dir = repo().join("tests/goldens/coral");
    let input = std::fs::read(dir.join(format!("{name}.input.u8"))).unwrap();
    session.input_mut(0).copy_from_slice(&input);
    session.run();
    let golden = read_json(&dir.join(format!("{name}.tensors.json")));
    let n = session.graph().tensors.len();
    let mut mismatches = Vec::new();
    for t in golden["tensors"].as_array().unwrap() {
        let index = t["index"].as_u64().unwrap() as usize;
        if index >= n {
            continue; // LiteRT-internal temporaries of the post-process op
        }
        let ours = session.tensor_bytes(index).unwrap();
        let want = t["sha256"].as_str().unwrap();
        if sha256_hex(ours) != want {
            mismatches.push(format!(
                "{name}: tensor {index} '{}'",
                t["name"].as_str().unwrap()
            ));
        }
        // Raw last-layer dumps: byte comparison for a readable failure.
        let raw = dir.join(format!("{name}.t{index}.bin"));
        if let Ok(bytes) = std::fs::read(&raw) {
            if bytes != ours {
                let diffs = bytes.iter().zip(ours).filter(|(a, b)| a != b).count();
                let max = bytes
                    .iter()
                    .zip(ours)
                    .map(|(a, b)| (*a as i32 - *b as i32).abs())
                    .max()
                    .unwrap_or(0);
                mismatches.push(format!(
                    "{name}: t{index}: {diffs} of {} bytes differ (max |diff| {max})",
                    bytes.len()
                ));
            }
        }
    }
    mismatches
}

#[test]
fn every_tensor_matches_litert_reference() {
    let graph = tflite::load(&coral_model()).unwrap();
    let opts = SessionOptions {
        preserve_all_tensors: true,
        ..Default::default()
    };
    let mut session = Session::new(graph, opts).unwrap();
    let mut all = Vec::new();
    for name in coral_golden_names() {
        all.extend(check_image(&mut session, &name));
    }
    assert!(
        all.is_empty(),
        "{} mismatches:\n{}",
        all.len(),
        all.join("\n")
    );
}
