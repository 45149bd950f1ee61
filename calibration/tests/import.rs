//! ONNX and TF frozen-graph import through tract (issue #4): the tiny SSD-like fixture made by
//! scripts/calib/make_tf_fixture.py imports (cut to `Preprocessor/normalized` →
//! `concat_boxes`, `concat_scores`), matches TensorFlow's float outputs, calibrates on
//! ../shared/images, and the int8 TFLite it writes loads and runs in spotter.

use std::path::{Path, PathBuf};

use spotter::model::{tflite, DType, Graph, OpKind};
use spotter::runtime::{Session, SessionOptions};
use spotter_calibrate::dataset::{self, Normalize};
use spotter_calibrate::import::{Cut, ImportError};
use spotter_calibrate::{load_float, ranges::Method, run, tensor_values, Config};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// ../shared relative to the repository root (SPOTTER_SHARED overrides), as tests/common does.
fn shared() -> PathBuf {
    std::env::var_os("SPOTTER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spotter-import-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tf_cut() -> Cut {
    Cut {
        inputs: vec!["Preprocessor/normalized".into()],
        outputs: vec!["concat_boxes".into(), "concat_scores".into()],
        input_shape: None,
    }
}

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(data("tf_ssd_tiny.golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Run `g` (float) on each golden image preprocessed as the calibrator does; compare with
/// TensorFlow's outputs. Returns the largest absolute difference.
fn max_diff_vs_tf(g: &Graph) -> f32 {
    let golden = golden();
    let images = golden["images"].as_object().unwrap();
    let dir = tmpdir("golden-images");
    for name in images.keys() {
        std::fs::copy(shared().join("images").join(name), dir.join(name)).unwrap();
    }
    let t = g.tensor(g.inputs[0]);
    let (h, w) = (t.shape[1], t.shape[2]);
    let ds = dataset::load(
        &dir,
        None,
        w,
        h,
        Normalize::uniform(127.5, 127.5),
        &mut |_, _| {},
    )
    .unwrap();
    let mut s = Session::new(
        g.clone(),
        SessionOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let mut worst = 0f32;
    for (name, x) in ds.names.iter().zip(&ds.inputs) {
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.input_mut(0).copy_from_slice(&bytes);
        s.run();
        for (k, out) in ["concat_boxes", "concat_scores"].iter().enumerate() {
            let id = g.outputs[k];
            assert_eq!(g.tensor(id).name, *out);
            let ours = tensor_values(&s, id);
            let tf: Vec<f32> = golden["images"][name][out]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(ours.len(), tf.len(), "{name} {out}");
            for (a, b) in ours.iter().zip(&tf) {
                worst = worst.max((a - b).abs());
            }
        }
    }
    worst
}

fn kinds(g: &Graph) -> Vec<&'static str> {
    g.ops.iter().map(|o| o.kind.name()).collect()
}

#[test]
fn tf_frozen_graph_imports_cut_and_matches_tensorflow() {
    let g = load_float(&data("tf_ssd_tiny.pb"), &tf_cut()).unwrap();
    let k = kinds(&g);
    // Batch norm folded into the convs, Relu6 fused: only the residual ADD is left standing,
    // and the post-processing tail (LOGISTIC, the anchor decoding) was cut away.
    assert_eq!(k.iter().filter(|&&n| n == "CONV_2D").count(), 9, "{k:?}");
    assert_eq!(
        k.iter().filter(|&&n| n == "DEPTHWISE_CONV_2D").count(),
        2,
        "{k:?}"
    );
    assert_eq!(k.iter().filter(|&&n| n == "ADD").count(), 1, "{k:?}");
    assert!(
        !k.contains(&"MUL") && !k.contains(&"LOGISTIC") && !k.contains(&"RELU6"),
        "{k:?}"
    );
    for n in ["MAX_POOL_2D", "AVERAGE_POOL_2D", "CONCATENATION", "RESHAPE"] {
        assert!(k.contains(&n), "{n} missing: {k:?}");
    }
    assert_eq!(g.tensor(g.inputs[0]).shape, vec![1, 96, 96, 3]);
    let d = max_diff_vs_tf(&g);
    assert!(d < 2e-4, "float import differs from TensorFlow by {d}");
}

#[test]
fn onnx_twin_imports_nchw_and_matches_tensorflow() {
    // tf2onnx wrote NCHW convs with Transposes around them: the transposes are absorbed.
    let g = load_float(&data("tf_ssd_tiny.onnx"), &Cut::default()).unwrap();
    let k = kinds(&g);
    assert!(!k.contains(&"TRANSPOSE"), "{k:?}");
    assert_eq!(g.tensor(g.inputs[0]).shape, vec![1, 96, 96, 3]);
    let d = max_diff_vs_tf(&g);
    assert!(d < 2e-4, "float ONNX import differs from TensorFlow by {d}");
}

fn calibrate(model: &Path, cut: Cut, name: &str) -> (spotter_calibrate::Report, PathBuf) {
    let out = tmpdir(name).join("int8.tflite");
    let cfg = Config {
        model: model.to_path_buf(),
        cut,
        images: shared().join("images"),
        limit: None,
        norm: Normalize::uniform(127.5, 127.5),
        method: Method::Mse,
        out: out.clone(),
        keep_float: vec![],
        per_channel: true,
        int8_input: false,
        bias_correction: false,
        cle: false,
        eval_images: None,
        write_float: None,
        progress: false,
    };
    (run(&cfg).unwrap(), out)
}

/// The written int8 model loads in spotter, its convs are int8, and it runs.
fn check_int8_model(path: &Path) {
    let g = tflite::load(path).unwrap();
    let convs: Vec<_> = g
        .ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Conv2D(_) | OpKind::DepthwiseConv2D { .. }))
        .collect();
    assert_eq!(convs.len(), 11);
    for op in convs {
        assert_eq!(g.tensor(op.inputs[0].unwrap()).dtype, DType::I8);
    }
    let mut s = Session::new(g, SessionOptions::default()).unwrap();
    s.run();
}

// Measured (MSE ranges, per-channel, the 14 shared images, evaluated on them): 31.6 dB
// concat_boxes, 34.7 dB concat_scores, the same for the .pb and the .onnx. The floor leaves
// room for range-selection changes; the numbers are printed so a regression shows how much.
const SQNR_FLOOR_DB: f64 = 25.0;

#[test]
fn tf_frozen_graph_calibrates_to_an_int8_model_spotter_runs() {
    let (report, out) = calibrate(&data("tf_ssd_tiny.pb"), tf_cut(), "tf");
    for o in &report.outputs {
        println!("tf_ssd_tiny.pb output {}: {:.2} dB", o.name, o.sqnr_db);
        assert!(o.sqnr_db > SQNR_FLOOR_DB, "{o:?}");
    }
    assert_eq!(report.outputs.len(), 2);
    check_int8_model(&out);
}

#[test]
fn onnx_model_calibrates_to_an_int8_model_spotter_runs() {
    let (report, out) = calibrate(&data("tf_ssd_tiny.onnx"), Cut::default(), "onnx");
    for o in &report.outputs {
        println!("tf_ssd_tiny.onnx output {}: {:.2} dB", o.name, o.sqnr_db);
        assert!(o.sqnr_db > SQNR_FLOOR_DB, "{o:?}");
    }
    check_int8_model(&out);
}

#[test]
fn unknown_cut_names_are_errors_naming_the_flag() {
    let cut = Cut {
        outputs: vec!["no_such_node".into()],
        ..tf_cut()
    };
    let e = load_float(&data("tf_ssd_tiny.pb"), &cut).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("--outputs no_such_node"), "{msg}");
}

#[test]
fn uncut_tf_graph_with_a_uint8_input_is_rejected_with_the_fix() {
    // The whole graph starts at a uint8 placeholder: the calibrator asks for a cut.
    let cut = Cut {
        outputs: tf_cut().outputs,
        ..Cut::default()
    };
    let e = load_float(&data("tf_ssd_tiny.pb"), &cut).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("image") && msg.contains("--inputs"), "{msg}");
}

#[test]
fn unsupported_op_is_named_with_its_node() {
    // Conv + Tanh (no spotter op): the error names the ONNX node and the op.
    let e = load_float(&data("unsupported_tanh.onnx"), &Cut::default()).unwrap_err();
    let Some(ImportError::Unsupported { node, op, .. }) = e.downcast_ref::<ImportError>() else {
        panic!("{e:#}")
    };
    assert_eq!(node, "the_tanh");
    assert!(op.contains("Tanh"), "{op}");
    let msg = format!("{e:#}");
    assert!(msg.contains("the_tanh") && msg.contains("Tanh"), "{msg}");
}

#[test]
fn blazeface_like_nchw_onnx_imports_and_matches_onnx_runtime() {
    let g = load_float(&data("blaze_tiny.onnx"), &Cut::default()).unwrap();
    let k = kinds(&g);
    for n in [
        "PRELU",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "PAD",
        "RESIZE_BILINEAR",
        "SOFTMAX",
        "AVERAGE_POOL_2D",
        "FULLY_CONNECTED",
        "LOGISTIC",
    ] {
        assert!(k.contains(&n), "{n} missing: {k:?}");
    }
    // BatchNormalization folded into c0, Clip fused into c2, Relu into the residual ADD.
    assert!(!k.contains(&"RELU") && !k.contains(&"RELU6"), "{k:?}");
    assert_eq!(g.tensor(g.inputs[0]).shape, vec![1, 64, 64, 3]);

    let text = std::fs::read_to_string(data("blaze_tiny.golden.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dir = tmpdir("blaze-images");
    for name in golden["images"].as_object().unwrap().keys() {
        std::fs::copy(shared().join("images").join(name), dir.join(name)).unwrap();
    }
    let ds = dataset::load(
        &dir,
        None,
        64,
        64,
        Normalize::uniform(127.5, 127.5),
        &mut |_, _| {},
    )
    .unwrap();
    let mut s = Session::new(
        g.clone(),
        SessionOptions {
            preserve_all_tensors: true,
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    for (name, x) in ds.names.iter().zip(&ds.inputs) {
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.input_mut(0).copy_from_slice(&bytes);
        s.run();
        for (k, out) in ["boxes", "scores", "logits"].iter().enumerate() {
            let ours = tensor_values(&s, g.outputs[k]);
            let ort: Vec<f32> = golden["images"][name][out]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(ours.len(), ort.len(), "{name} {out}");
            let d = ours
                .iter()
                .zip(&ort)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 2e-4, "{name} {out}: differs from ONNX Runtime by {d}");
        }
    }
}
