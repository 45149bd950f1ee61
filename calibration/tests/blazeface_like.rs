//! End to end on the BlazeFace-like float detector (`tests/data/calib/blazeface_like.tflite`,
//! made by `scripts/calib/make_blazeface_like.py`: CONV_2D, DEPTHWISE_CONV_2D, PRELU, PAD,
//! MAX_POOL_2D, RESIZE_BILINEAR, ADD, RESHAPE, CONCATENATION): spotter-calibrate quantizes it
//! with photos from `../shared/images` (or `$SPOTTER_SHARED/images`), the int8 model it writes
//! loads back in spotter with every op in int8, runs, and tracks the float model.

use std::path::PathBuf;

use spotter::model::{tflite, DType, OpKind};
use spotter::runtime::{Session, SessionOptions};
use spotter_calibrate::{dataset::Normalize, ranges::Method, run, Config, Report};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    std::env::var_os("SPOTTER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
}

fn calibrate(bias_correction: bool, out: &str) -> Report {
    let out = std::env::temp_dir().join(format!("spotter-calib-{}-{out}", std::process::id()));
    let cfg = Config {
        model: repo().join("tests/data/calib/blazeface_like.tflite"),
        cut: Default::default(),
        images: shared().join("images"),
        limit: Some(6),
        norm: Normalize::uniform(127.5, 127.5),
        method: Method::Mse,
        out,
        keep_float: vec![],
        per_channel: true,
        int8_input: false,
        bias_correction,
        cle: false,
        eval_images: None,
        write_float: None,
        progress: false,
    };
    run(&cfg).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn blazeface_like_calibrates_and_runs_in_int8() {
    let report = calibrate(true, "bf.tflite");
    assert_eq!(report.calibration_images.len(), 6);
    assert_eq!(report.outputs.len(), 2);
    for o in &report.outputs {
        assert!(o.sqnr_db > 15.0, "{}: {:.2} dB", o.name, o.sqnr_db);
    }
    // Every conv / depthwise conv was bias-corrected (24 depthwise + conv pairs, the stem, the
    // FPN conv and 4 heads).
    assert_eq!(report.bias_corrections.len(), 1 + 2 * 16 + 1 + 4);

    let g = tflite::load(std::path::Path::new(&report.out)).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = std::collections::BTreeSet::new();
    for (i, op) in g.ops.iter().enumerate() {
        let out = g.tensor(op.outputs[0]);
        match op.kind {
            // Edges: float input -> int8, int8 outputs -> float.
            OpKind::Quantize { .. } => assert_eq!(out.dtype, DType::I8),
            OpKind::Dequantize => assert!(g.outputs.contains(&op.outputs[0])),
            _ => {
                assert_eq!(
                    out.dtype,
                    DType::I8,
                    "{} runs in {}",
                    g.op_label(i),
                    out.dtype
                );
                seen.insert(op.kind.name());
            }
        }
    }
    for name in [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "PRELU",
        "PAD",
        "MAX_POOL_2D",
        "RESIZE_BILINEAR",
        "ADD",
    ] {
        assert!(seen.contains(name), "no int8 {name} in {seen:?}");
    }
    let mut s = Session::new(g, SessionOptions::default()).unwrap();
    let x: Vec<u8> = (0..128 * 128 * 3)
        .flat_map(|i| (((i * 37) % 255) as f32 / 127.5 - 1.0).to_le_bytes())
        .collect();
    s.input_mut(0).copy_from_slice(&x);
    s.run();
    let y = spotter::ops::util::const_f32(s.output(1));
    assert_eq!(y.len(), 896 * 16);
    assert!(y.iter().all(|v| v.is_finite()));
    assert!(y.iter().any(|&v| v != y[0]), "constant output");
    let _ = std::fs::remove_file(&report.out);
}

/// Sequential bias correction must not cost output SQNR (the all-at-once version cost ~8 dB
/// on the SSD): on its own calibration images it can only remove mean error.
#[test]
fn bias_correction_does_not_lower_blazeface_like_output_sqnr() {
    let on = calibrate(true, "bf-on.tflite");
    let off = calibrate(false, "bf-off.tflite");
    for (a, b) in on.outputs.iter().zip(&off.outputs) {
        assert!(
            a.sqnr_db >= b.sqnr_db - 0.05,
            "{}: {:.2} dB with bias correction, {:.2} dB without",
            a.name,
            a.sqnr_db,
            b.sqnr_db
        );
    }
    for r in [&on, &off] {
        let _ = std::fs::remove_file(&r.out);
    }
}

/// Cross-layer equalization on a TF-made model (PRELU slopes [1, 1, C], depthwise → conv
/// pairs, no RELU6): the float outputs stay the same.
#[test]
fn cle_keeps_blazeface_like_float_outputs() {
    let path = repo().join("tests/data/calib/blazeface_like.tflite");
    let g = spotter_calibrate::load_float(&path, &Default::default())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut e = g.clone();
    let pairs = spotter_calibrate::cle::equalize(&mut e);
    // 16 blocks: depthwise -> 1x1 conv each (the stem conv feeds a PRELU whose output also
    // feeds the shortcut, so it does not qualify).
    assert_eq!(pairs.len(), 16, "{pairs:?}");
    let x: Vec<u8> = (0..128 * 128 * 3)
        .flat_map(|i| ((((i * 7919) % 509) as f32 / 254.5) - 1.0).to_le_bytes())
        .collect();
    let run = |g: &spotter::model::Graph, k: usize| {
        let mut s = Session::new(g.clone(), SessionOptions::default()).unwrap();
        s.input_mut(0).copy_from_slice(&x);
        s.run();
        spotter::ops::util::const_f32(s.output(k))
    };
    for k in 0..2 {
        let (a, b) = (run(&g, k), run(&e, k));
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(worst <= 1e-4 * scale, "output {k}: {worst} of {scale}");
    }
}
