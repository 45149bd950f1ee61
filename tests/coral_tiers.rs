//! The whole Coral model on every kernel tier this CPU runs, at 1 and 2 threads, reproduces
//! the scalar run byte for byte in every tensor (intermediates included).

mod common;

use spotter::kernels::Isa;
use spotter::model::tflite;
use spotter::runtime::{Session, SessionOptions};

fn run(isa: Isa, threads: usize, input: &[u8]) -> Session {
    let graph = tflite::load(&common::coral_model()).unwrap();
    let opts = SessionOptions {
        preserve_all_tensors: true,
        threads,
        isa: Some(isa),
    };
    let mut s = Session::new(graph, opts).unwrap();
    s.input_mut(0).copy_from_slice(input);
    s.run();
    s
}

#[test]
fn every_tier_matches_scalar_on_every_tensor() {
    let dir = common::repo().join("tests/goldens/coral");
    let name = common::coral_golden_names()
        .into_iter()
        .next()
        .expect("a golden image");
    let input = std::fs::read(dir.join(format!("{name}.input.u8"))).unwrap();
    let reference = run(Isa::Scalar, 1, &input);
    let n = reference.graph().tensors.len();
    let mut bad = Vec::new();
    for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
        for threads in [1, 2] {
            let s = run(isa, threads, &input);
            for t in 0..n {
                if s.tensor_bytes(t) != reference.tensor_bytes(t) {
                    bad.push(format!(
                        "{isa} x{threads}: tensor {t} '{}'",
                        s.graph().tensors[t].name
                    ));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
