//! spotter-calibrate: float TFLite model + calibration images → int8 TFLite model that spotter
//! and LiteRT both run.
//!
//! Pipeline ([`run`]): load → fold constant DEQUANTIZE (fp16 weights) → run the float graph on
//! every image collecting per-tensor statistics → choose ranges ([`ranges::Method`]) → quantize
//! ([`quantize`]) → sequential bias correction ([`bias`]) → write, reload and run the int8 model next to the float one
//! and report per-layer and per-output SQNR.

pub mod bias;
pub mod cle;
pub mod dataset;
pub mod import;
pub mod prep;
pub mod progress;
pub mod quantize;
pub mod ranges;
pub mod sqnr;
pub mod stats;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spotter::model::{tflite, DType, Graph, Quant, TensorId};
use spotter::runtime::{Session, SessionOptions};

use dataset::{Dataset, Normalize};
use progress::Progress;
use ranges::Method;
use sqnr::Sqnr;
use stats::TensorStats;

#[derive(Clone, Debug)]
pub struct Config {
    pub model: PathBuf,
    /// Where to cut an ONNX / TF model (`--inputs`, `--outputs`, `--input-shape`).
    pub cut: import::Cut,
    pub images: PathBuf,
    pub limit: Option<usize>,
    pub norm: Normalize,
    pub method: Method,
    pub out: PathBuf,
    /// Op indices or output tensor names of ops to keep in float.
    pub keep_float: Vec<String>,
    pub per_channel: bool,
    pub int8_input: bool,
    pub bias_correction: bool,
    /// Cross-layer equalization ([`cle`]) before calibration.
    pub cle: bool,
    /// Images for the SQNR report (default: the calibration images).
    pub eval_images: Option<PathBuf>,
    /// Also write the folded float32 model here (e.g. for other converters).
    pub write_float: Option<PathBuf>,
    pub progress: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub tensor: String,
    pub op: String,
    pub dtype: String,
    pub scale: Option<f32>,
    pub zero_point: Option<i32>,
    pub sqnr_db: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputReport {
    pub name: String,
    pub sqnr_db: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub out: String,
    pub method: String,
    pub per_channel: bool,
    pub bias_correction: bool,
    /// Layer pairs equalized by `--cle` (op labels of the float model).
    pub cle_pairs: Vec<(String, String)>,
    pub calibration_images: Vec<String>,
    pub skipped_images: Vec<(String, String)>,
    pub eval_images: Vec<String>,
    /// Worst first.
    pub layers: Vec<LayerReport>,
    pub outputs: Vec<OutputReport>,
    /// Per corrected op, in op order (empty when bias correction is off).
    pub bias_corrections: Vec<bias::BiasCorrection>,
}

/// Load a float model: a TFLite flatbuffer (its constant DEQUANTIZE ops folded), or an ONNX
/// model / TF frozen graph imported through tract ([`import`], cut as `cut` says).
pub fn load_float(path: &Path, cut: &import::Cut) -> Result<Graph> {
    let format = import::Format::from_path(path)?;
    let mut g = match format {
        import::Format::Tflite => {
            if !cut.inputs.is_empty() || !cut.outputs.is_empty() {
                bail!("--inputs / --outputs cut ONNX and TF models; a .tflite is used whole");
            }
            tflite::load(path)?
        }
        _ => import::import(path, format, cut)?,
    };
    prep::fold_constant_dequantize(&mut g)?;
    prep::prune(&mut g);
    if g.inputs.len() != 1 {
        bail!(
            "{}: the calibrator supports models with one image input, this one has {}",
            path.display(),
            g.inputs.len()
        );
    }
    let t = g.tensor(g.inputs[0]);
    if t.dtype != DType::F32 || t.shape.len() != 4 || t.shape[0] != 1 || t.shape[3] != 3 {
        bail!(
            "{}: input '{}' is {}{:?}; the calibrator needs a float32 [1, H, W, 3] image input",
            path.display(),
            t.name,
            t.dtype,
            t.shape
        );
    }
    Ok(g)
}

/// Resolve `--keep-float` items (op indices or op output tensor names) to op indices.
pub fn resolve_keep_float(g: &Graph, items: &[String]) -> Result<HashSet<usize>> {
    let mut out = HashSet::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if let Ok(i) = item.trim_start_matches('#').parse::<usize>() {
            if i >= g.ops.len() {
                bail!("--keep-float {item}: the model has {} ops", g.ops.len());
            }
            out.insert(i);
            continue;
        }
        let found = g
            .ops
            .iter()
            .position(|op| op.outputs.iter().any(|&o| g.tensors[o].name == item));
        match found {
            Some(i) => {
                out.insert(i);
            }
            None => bail!(
                "--keep-float {item}: no op has an output tensor of that name (use an op index or \
                 an output tensor name)"
            ),
        }
    }
    Ok(out)
}

/// Float values of tensor `id` after a run (int8 is dequantized).
pub fn tensor_values(session: &Session, id: TensorId) -> Vec<f32> {
    let t = session.graph().tensor(id);
    let bytes = session.tensor_bytes(id).unwrap_or(&[]);
    match (t.dtype, &t.quant) {
        (DType::F32, _) => spotter::ops::util::const_f32(bytes),
        (DType::I8, Some(Quant::PerTensor { scale, zero_point })) => bytes
            .iter()
            .map(|&b| scale * (b as i8 as i32 - zero_point) as f32)
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn set_input(session: &mut Session, x: &[f32]) {
    let g = session.graph();
    let t = g.tensor(g.inputs[0]);
    match (t.dtype, t.per_tensor_quant()) {
        (DType::I8, Some((scale, zp))) => {
            let q: Vec<u8> = x
                .iter()
                .map(|&v| ((v / scale).round() as i32 + zp).clamp(-128, 127) as i8 as u8)
                .collect();
            session.input_mut(0).copy_from_slice(&q);
        }
        _ => {
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            session.input_mut(0).copy_from_slice(&bytes);
        }
    }
}

pub(crate) fn session(g: Graph) -> Result<Session> {
    Ok(Session::new(
        g,
        SessionOptions {
            preserve_all_tensors: true,
            threads: 1,
            ..Default::default()
        },
    )?)
}

/// Float activations (non-constant float32 tensors), with the op producing each.
fn float_activations(g: &Graph) -> Vec<(TensorId, Option<usize>)> {
    let mut producer = vec![None; g.tensors.len()];
    for (i, op) in g.ops.iter().enumerate() {
        for &o in &op.outputs {
            producer[o] = Some(i);
        }
    }
    (0..g.tensors.len())
        .filter(|&t| !g.tensors[t].is_const() && g.tensors[t].dtype == DType::F32)
        .map(|t| (t, producer[t]))
        .collect()
}

/// Run the float graph over the dataset and collect statistics for every float activation.
pub fn collect_stats(
    g: &Graph,
    ds: &Dataset,
    histograms: bool,
    show_progress: bool,
) -> Result<HashMap<TensorId, TensorStats>> {
    let acts = float_activations(g);
    let mut s = session(g.clone())?;
    let mut stats: HashMap<TensorId, TensorStats> = acts
        .iter()
        .map(|&(t, _)| (t, TensorStats::default()))
        .collect();
    let mut p = Progress::new("calibration: min/max", show_progress);
    for (k, x) in ds.inputs.iter().enumerate() {
        p.update(k, ds.inputs.len());
        set_input(&mut s, x);
        s.run();
        for &(t, producer) in &acts {
            let v = tensor_values(&s, t);
            if let Some(bad) = stats.get_mut(&t).and_then(|st| st.observe_minmax(&v)) {
                bail!(
                    "{} in tensor '{}' ({}) on image {}: the float model produces non-finite \
                     activations; check --mean/--std and the model",
                    if bad.is_nan() { "NaN" } else { "Inf" },
                    g.tensors[t].name,
                    producer.map_or("graph input".to_string(), |i| format!(
                        "output of {}",
                        g.op_label(i)
                    )),
                    ds.names[k]
                );
            }
        }
    }
    p.update(ds.inputs.len(), ds.inputs.len());
    if histograms {
        stats.values_mut().for_each(TensorStats::start_histogram);
        let mut p = Progress::new("calibration: histograms", show_progress);
        for (k, x) in ds.inputs.iter().enumerate() {
            p.update(k, ds.inputs.len());
            set_input(&mut s, x);
            s.run();
            for &(t, _) in &acts {
                let v = tensor_values(&s, t);
                if let Some(st) = stats.get_mut(&t) {
                    st.observe_histogram(&v);
                }
            }
        }
        p.update(ds.inputs.len(), ds.inputs.len());
    }
    Ok(stats)
}

/// Run float and quantized models over `ds`; per-layer (worst first) and per-output SQNR.
pub fn evaluate(
    float_g: &Graph,
    q: &quantize::Quantized,
    ds: &Dataset,
    show_progress: bool,
) -> Result<(Vec<LayerReport>, Vec<OutputReport>)> {
    let acts = float_activations(float_g);
    let mut fs = session(float_g.clone())?;
    let mut qs = session(q.graph.clone())?;
    let mut acc: HashMap<TensorId, Sqnr> = HashMap::new();
    let mut p = Progress::new("evaluation", show_progress);
    for (k, x) in ds.inputs.iter().enumerate() {
        p.update(k, ds.inputs.len());
        set_input(&mut fs, x);
        fs.run();
        set_input(&mut qs, x);
        qs.run();
        for &(t, _) in &acts {
            let Some(u) = q.same[t] else { continue };
            let f = tensor_values(&fs, t);
            let v = tensor_values(&qs, u);
            if f.len() == v.len() {
                acc.entry(t).or_default().add(&f, &v);
            }
        }
    }
    p.update(ds.inputs.len(), ds.inputs.len());
    let mut layers: Vec<LayerReport> = acts
        .iter()
        .filter_map(|&(t, producer)| {
            let s = acc.get(&t)?;
            let qt = q.graph.tensor(q.same[t]?);
            let pq = qt.per_tensor_quant();
            Some(LayerReport {
                tensor: float_g.tensors[t].name.clone(),
                op: producer.map_or("input".to_string(), |i| float_g.op_label(i)),
                dtype: qt.dtype.to_string(),
                scale: pq.map(|p| p.0),
                zero_point: pq.map(|p| p.1),
                sqnr_db: s.db(),
            })
        })
        .collect();
    layers.sort_by(|a, b| a.sqnr_db.total_cmp(&b.sqnr_db));
    let outputs = float_g
        .outputs
        .iter()
        .map(|&o| OutputReport {
            name: float_g.tensors[o].name.clone(),
            sqnr_db: acc.get(&o).map_or(f64::NAN, Sqnr::db),
        })
        .collect();
    Ok((layers, outputs))
}

/// The whole tool: returns the report (the int8 model is written to `cfg.out`).
pub fn run(cfg: &Config) -> Result<Report> {
    let mut g = load_float(&cfg.model, &cfg.cut)?;
    let keep_float = resolve_keep_float(&g, &cfg.keep_float)?;
    quantize::check_supported(&g, &keep_float)
        .with_context(|| format!("{}", cfg.model.display()))?;
    if let Some(p) = &cfg.write_float {
        tflite::writer::save(&g, p)?;
    }
    // After --write-float: other converters get the model as it was.
    let cle_pairs = if cfg.cle {
        cle::equalize(&mut g)
            .iter()
            .map(|p| (g.op_label(p.a), g.op_label(p.b)))
            .collect()
    } else {
        Vec::new()
    };
    let input = g.tensor(g.inputs[0]);
    let (h, w) = (input.shape[1], input.shape[2]);
    let mut p = Progress::new("loading images", cfg.progress);
    let ds = dataset::load(&cfg.images, cfg.limit, w, h, cfg.norm, &mut |a, b| {
        p.update(a, b)
    })?;
    for (f, e) in &ds.skipped {
        eprintln!("warning: skipped {}: {e}", f.display());
    }
    let stats = collect_stats(&g, &ds, cfg.method.needs_histogram(), cfg.progress)?;
    let chosen: HashMap<TensorId, (f32, f32)> = stats
        .iter()
        .map(|(&t, s)| (t, ranges::choose(s, cfg.method)))
        .collect();
    let merged = quantize::merge_ranges(&g, &chosen, &keep_float);
    let opts = quantize::Options {
        per_channel: cfg.per_channel,
        int8_input: cfg.int8_input,
        keep_float,
    };
    let mut q = quantize::quantize(&g, &merged, &opts)?;
    let bias_corrections = if cfg.bias_correction {
        bias::correct_biases(&g, &mut q, &ds, cfg.progress)?
    } else {
        Vec::new()
    };
    // Write, then reload what was written: the report runs the file users get.
    tflite::writer::save(&q.graph, &cfg.out)?;
    let reloaded = tflite::load(&cfg.out)
        .with_context(|| "internal error: the written model does not load back")?;
    q.graph = reloaded;

    let eval_ds;
    let eval = match &cfg.eval_images {
        Some(dir) => {
            let mut p = Progress::new("loading eval images", cfg.progress);
            eval_ds = dataset::load(dir, None, w, h, cfg.norm, &mut |a, b| p.update(a, b))?;
            &eval_ds
        }
        None => &ds,
    };
    let (layers, outputs) = evaluate(&g, &q, eval, cfg.progress)?;
    Ok(Report {
        model: cfg.model.display().to_string(),
        out: cfg.out.display().to_string(),
        method: format!("{:?}", cfg.method).to_lowercase(),
        per_channel: cfg.per_channel,
        bias_correction: cfg.bias_correction,
        cle_pairs,
        calibration_images: ds.names.clone(),
        skipped_images: ds
            .skipped
            .iter()
            .map(|(f, e)| (f.display().to_string(), e.clone()))
            .collect(),
        eval_images: eval.names.clone(),
        layers,
        outputs,
        bias_corrections,
    })
}

/// The report as a text table (worst layers first).
pub fn format_report(r: &Report, max_layers: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} -> {} ({} images, {} skipped; method {}, per-channel {}, bias correction {}, CLE \
         pairs {})",
        r.model,
        r.out,
        r.calibration_images.len(),
        r.skipped_images.len(),
        r.method,
        r.per_channel,
        r.bias_correction,
        r.cle_pairs.len()
    );
    if let Some(worst) = r
        .bias_corrections
        .iter()
        .max_by(|a, b| a.relative_shift.total_cmp(&b.relative_shift))
    {
        let _ = writeln!(
            s,
            "bias correction: {} ops; largest mean shift removed: {:.1} % of the signal RMS \
             ({} '{}')",
            r.bias_corrections.len(),
            100.0 * worst.relative_shift,
            worst.op,
            worst.tensor.chars().take(60).collect::<String>()
        );
    }
    let _ = writeln!(
        s,
        "\noutputs (SQNR vs float on {} images):",
        r.eval_images.len()
    );
    for o in &r.outputs {
        let _ = writeln!(s, "  {:>8.2} dB  {}", o.sqnr_db, o.name);
    }
    let _ = writeln!(
        s,
        "\nlayers, worst first ({} of {}):\n  {:>8}  {:<24} {:>11} {:>5}  tensor",
        max_layers.min(r.layers.len()),
        r.layers.len(),
        "SQNR dB",
        "op",
        "scale",
        "zp"
    );
    for l in r.layers.iter().take(max_layers) {
        let name: String = l.tensor.chars().take(70).collect();
        let _ = writeln!(
            s,
            "  {:>8.2}  {:<24} {:>11} {:>5}  {}",
            l.sqnr_db,
            l.op,
            l.scale.map_or("-".into(), |v| format!("{v:.3e}")),
            l.zero_point.map_or("-".into(), |v| v.to_string()),
            name
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotter::model::{Activation, Op, OpKind, Tensor};

    fn tensor(name: &str, shape: &[usize], data: Option<Vec<f32>>) -> Tensor {
        crate::prep::f32_tensor(name, shape, data.as_deref())
    }

    /// x [1,2,2,3] → ADD(x, c) → y; `c` chosen by the test.
    fn add_graph(c: f32) -> Graph {
        let mut g = Graph {
            tensors: vec![
                tensor("x", &[1, 2, 2, 3], None),
                tensor("c", &[3], Some(vec![c; 3])),
                tensor("y", &[1, 2, 2, 3], None),
            ],
            ops: vec![Op {
                kind: OpKind::Add {
                    activation: Activation::None,
                },
                inputs: vec![Some(0), Some(1)],
                outputs: vec![2],
            }],
            inputs: vec![0],
            outputs: vec![2],
        };
        g.validate().unwrap();
        g
    }

    fn dataset(n: usize) -> Dataset {
        Dataset {
            names: (0..n).map(|i| format!("img{i}.png")).collect(),
            inputs: (0..n)
                .map(|i| {
                    (0..12)
                        .map(|k| (k as f32 - 6.0) / 6.0 + i as f32 * 0.01)
                        .collect()
                })
                .collect(),
            skipped: vec![],
        }
    }

    #[test]
    fn nan_activations_are_reported_with_the_layer_and_image() {
        let g = add_graph(f32::NAN);
        let e = collect_stats(&g, &dataset(2), false, false).err().unwrap();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("NaN in tensor 'y'")
                && msg.contains("op #0 ADD")
                && msg.contains("img0.png"),
            "{msg}"
        );
        // TFLite's float kernels clamp to +-FLT_MAX, so an Inf is seen where it enters: here
        // in the input.
        let mut ds = dataset(1);
        ds.inputs[0][5] = f32::INFINITY;
        let msg = format!(
            "{:#}",
            collect_stats(&add_graph(1.0), &ds, false, false)
                .err()
                .unwrap()
        );
        assert!(msg.contains("Inf in tensor 'x' (graph input)"), "{msg}");
    }

    #[test]
    fn unsupported_ops_are_named_and_can_be_kept_float() {
        // A fake-quant pair as QAT exports leave in float models: y -> QUANTIZE -> DEQUANTIZE.
        let mut g = add_graph(1.0);
        let mut q = tensor("q", &[1, 2, 2, 3], None);
        q.dtype = DType::I8;
        q.quant = Some(Quant::PerTensor {
            scale: 0.1,
            zero_point: 0,
        });
        g.tensors.push(q);
        g.tensors.push(tensor("z", &[1, 2, 2, 3], None));
        g.ops.push(Op {
            kind: OpKind::Quantize {
                mode: Default::default(),
            },
            inputs: vec![Some(2)],
            outputs: vec![3],
        });
        g.ops.push(Op {
            kind: OpKind::Dequantize,
            inputs: vec![Some(3)],
            outputs: vec![4],
        });
        g.outputs = vec![4];
        g.validate().unwrap();
        let msg = format!(
            "{:#}",
            quantize::check_supported(&g, &HashSet::new())
                .err()
                .unwrap()
        );
        assert!(
            msg.contains("op #1 QUANTIZE, op #2 DEQUANTIZE") && msg.contains("--keep-float 1,2"),
            "{msg}"
        );
        let keep = resolve_keep_float(&g, &["z".to_string()]).unwrap();
        assert_eq!(keep, HashSet::from([2]));
        let msg = format!("{:#}", quantize::check_supported(&g, &keep).err().unwrap());
        assert!(
            msg.contains("op #1 QUANTIZE") && !msg.contains("op #2"),
            "{msg}"
        );
        let keep = resolve_keep_float(&g, &["1".to_string(), "z".to_string()]).unwrap();
        quantize::check_supported(&g, &keep).unwrap();
        let e = resolve_keep_float(&g, &["nope".to_string()]).err().unwrap();
        assert!(e.to_string().contains("--keep-float nope"), "{e}");
    }

    #[test]
    fn run_skips_unreadable_images_and_counts_them_in_the_report() {
        let dir = std::env::temp_dir().join(format!("spotter-calib-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let images = dir.join("images");
        std::fs::create_dir_all(&images).unwrap();
        let model = dir.join("add.tflite");
        tflite::writer::save(&add_graph(0.25), &model).unwrap();
        for (k, name) in ["a.png", "c.png"].iter().enumerate() {
            let img = spotter::vision::image::RgbImage {
                width: 2,
                height: 2,
                data: (0..12).map(|i| (i * 20 + k * 7) as u8).collect(),
            };
            spotter::vision::image::save(&img, &images.join(name)).unwrap();
        }
        std::fs::write(
            images.join("b_truncated.jpg"),
            b"\xff\xd8\xff\xe0 not really",
        )
        .unwrap();
        let cfg = Config {
            model,
            cut: Default::default(),
            images,
            limit: None,
            norm: Normalize::uniform(127.5, 127.5),
            method: Method::MinMax,
            out: dir.join("add_int8.tflite"),
            keep_float: vec![],
            per_channel: true,
            int8_input: false,
            bias_correction: true,
            cle: false,
            eval_images: None,
            write_float: None,
            progress: false,
        };
        let r = run(&cfg).unwrap();
        assert_eq!(r.calibration_images, vec!["a.png", "c.png"]);
        assert_eq!(r.skipped_images.len(), 1);
        assert!(r.skipped_images[0].0.ends_with("b_truncated.jpg"), "{r:?}");
        let text = format_report(&r, 5);
        assert!(text.contains("2 images, 1 skipped"), "{text}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("b_truncated.jpg"), "{json}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn add_model_quantizes_runs_and_reports_high_sqnr() {
        let g = add_graph(0.5);
        let ds = dataset(3);
        let stats = collect_stats(&g, &ds, true, false).unwrap();
        let chosen = stats
            .iter()
            .map(|(&t, s)| (t, ranges::choose(s, Method::Mse)))
            .collect();
        let merged = quantize::merge_ranges(&g, &chosen, &HashSet::new());
        let opts = quantize::Options {
            per_channel: true,
            int8_input: false,
            keep_float: HashSet::new(),
        };
        let q = quantize::quantize(&g, &merged, &opts).unwrap();
        // QUANTIZE, ADD, DEQUANTIZE; float input and output keep their names.
        let kinds: Vec<&str> = q.graph.ops.iter().map(|o| o.kind.name()).collect();
        assert_eq!(kinds, vec!["QUANTIZE", "ADD", "DEQUANTIZE"]);
        assert_eq!(q.graph.tensor(q.graph.outputs[0]).name, "y");
        assert_eq!(q.graph.tensor(q.graph.outputs[0]).dtype, DType::F32);
        // Written and reloaded, it is the same graph and it runs.
        let bytes = tflite::writer::write(&q.graph).unwrap();
        let back = tflite::parse(&bytes, Path::new("q.tflite")).unwrap();
        assert_eq!(back.ops.len(), 3);
        let (layers, outputs) = evaluate(&g, &q, &ds, false).unwrap();
        assert!(outputs[0].sqnr_db > 35.0, "{outputs:?}");
        assert!(layers.iter().all(|l| l.sqnr_db > 35.0), "{layers:?}");
    }
}
