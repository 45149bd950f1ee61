//! Sequential empirical bias correction (as AIMET's empirical bias correction, Nagel et al.
//! 2019 §4.2): quantization noise of weights and inputs shifts the mean of a layer's output;
//! that shift is measured on the calibration images and subtracted from the layer's bias.
//!
//! Done layer by layer in topological order: the shift of a conv is measured with every earlier
//! conv already corrected, so an error is corrected once, where it enters, not once more in every
//! later layer it propagates to (the all-at-once version over-corrects).
//!
//! The compared quantity is the *pre-activation* output (the int32 accumulator in float:
//! `conv(dequant(x_q), dequant(w_q)) + dequant(b_q)` vs `conv(x, w) + b`), computed by a one-op
//! float "probe" graph with the activation removed. The int8 output tensor cannot be used: a
//! fused ReLU/ReLU6 has already clipped it (its range is the post-activation one), so its mean
//! shift is not what the bias moves. Requantization rounding of the output is unbiased and left
//! out.
//!
//! Ops are grouped into levels: an op's level is the number of corrected ops on its longest
//! input path. All ops of one level depend on no other op of that level (e.g. the box and class
//! heads on one feature map), so one run of the quantized graph per level measures them all;
//! that is exactly the sequential order's result with fewer runs.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spotter::model::{Activation, Graph, Op, OpKind, Quant, Tensor};
use spotter::runtime::Session;

use crate::dataset::Dataset;
use crate::prep::f32_tensor;
use crate::progress::Progress;
use crate::quantize::{BiasedOp, Quantized};
use crate::{session, set_input, tensor_values};

/// What bias correction did to one op.
#[derive(Clone, Debug, Serialize)]
pub struct BiasCorrection {
    /// Op label in the float model (`op #12 CONV_2D`).
    pub op: String,
    /// The op's output tensor in the float model.
    pub tensor: String,
    /// Largest per-channel mean shift (int8 model minus float, float units) before correction.
    pub max_abs_shift: f32,
    /// RMS over channels of the mean shift, relative to the RMS of the float pre-activation
    /// output: how much of the signal the bias error was.
    pub relative_shift: f32,
}

/// A conv / depthwise / FC copy with the fused activation removed (the probe's op kind).
fn without_activation(kind: &OpKind) -> Option<OpKind> {
    Some(match kind {
        OpKind::Conv2D(c) => OpKind::Conv2D(spotter::model::Conv2DOptions {
            activation: Activation::None,
            ..c.clone()
        }),
        OpKind::DepthwiseConv2D {
            conv,
            depth_multiplier,
        } => OpKind::DepthwiseConv2D {
            conv: spotter::model::Conv2DOptions {
                activation: Activation::None,
                ..conv.clone()
            },
            depth_multiplier: *depth_multiplier,
        },
        OpKind::FullyConnected { keep_num_dims, .. } => OpKind::FullyConnected {
            activation: Activation::None,
            keep_num_dims: *keep_num_dims,
        },
        _ => return None,
    })
}

/// A float one-op session computing the pre-activation output of `kind` for an input of
/// `x_shape` with float weights `w` and bias `b`.
struct Probe {
    session: Session,
    channels: usize,
}

impl Probe {
    fn new(
        label: &str,
        kind: &OpKind,
        x_shape: &[usize],
        w: (&[usize], &[f32]),
        b: &[f32],
        y_shape: &[usize],
    ) -> Result<Probe> {
        let Some(kind) = without_activation(kind) else {
            bail!(
                "{label}: bias correction only handles CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED"
            )
        };
        let mut g = Graph {
            tensors: vec![
                f32_tensor("x", x_shape, None),
                f32_tensor("w", w.0, Some(w.1)),
                f32_tensor("b", &[b.len()], Some(b)),
                f32_tensor("y", y_shape, None),
            ],
            ops: vec![Op {
                kind,
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3],
            }],
            inputs: vec![0],
            outputs: vec![3],
        };
        g.validate()
            .map_err(|e| anyhow::anyhow!("{label}: bias-correction probe: {e}"))?;
        let session = session(g).with_context(|| format!("{label}: bias-correction probe"))?;
        Ok(Probe {
            session,
            channels: b.len(),
        })
    }

    /// Add the per-channel sums of the pre-activation output for input `x` to `sums`; returns
    /// the number of rows (output positions) added and the sum of squares.
    fn accumulate(&mut self, x: &[f32], sums: &mut [f64]) -> (usize, f64) {
        set_input(&mut self.session, x);
        self.session.run();
        let y = spotter::ops::util::const_f32(self.session.output(0));
        let mut sq = 0.0;
        for (i, &v) in y.iter().enumerate() {
            sums[i % self.channels] += v as f64;
            sq += (v as f64) * (v as f64);
        }
        (y.len() / self.channels.max(1), sq)
    }
}

fn f32_values(t: &Tensor) -> Vec<f32> {
    spotter::ops::util::const_f32(t.data.as_deref().unwrap_or(&[]))
}

/// Dequantized int8 weights of a quantized op.
fn dequantized_weights(t: &Tensor) -> Result<Vec<f32>> {
    let data = t.data.as_deref().unwrap_or(&[]);
    crate::prep::dequantize_const(t.dtype, t.quant.as_ref(), &t.shape, data)
        .with_context(|| format!("weights '{}'", t.name))
}

/// Per-channel scales of an int32 bias tensor.
fn bias_scales(t: &Tensor) -> Result<Vec<f32>> {
    let n = t.shape.first().copied().unwrap_or(0);
    match &t.quant {
        Some(Quant::PerAxis { scales, .. }) if scales.len() == n => Ok(scales.clone()),
        Some(Quant::PerTensor { scale, .. }) => Ok(vec![*scale; n]),
        _ => bail!(
            "bias '{}' has no usable quantization (expected one scale or one per channel)",
            t.name
        ),
    }
}

/// Level of each biased op (index into `biased`): corrected ops on its longest input path.
fn levels(g: &Graph, biased: &[BiasedOp]) -> Vec<usize> {
    let mut depth = vec![0usize; g.tensors.len()];
    let mut level_of_op = vec![None; g.ops.len()];
    for (k, b) in biased.iter().enumerate() {
        level_of_op[b.q_op] = Some(k);
    }
    let mut levels = vec![0; biased.len()];
    for (i, op) in g.ops.iter().enumerate() {
        let d_in = op
            .inputs
            .iter()
            .flatten()
            .map(|&t| depth[t])
            .max()
            .unwrap_or(0);
        let d_out = match level_of_op[i] {
            Some(k) => {
                levels[k] = d_in;
                d_in + 1
            }
            None => d_in,
        };
        for &o in &op.outputs {
            depth[o] = d_out;
        }
    }
    levels
}

/// Correct the biases of `q.biased` in place; returns what was done, in op order.
pub fn correct_biases(
    float_g: &Graph,
    q: &mut Quantized,
    ds: &Dataset,
    show_progress: bool,
) -> Result<Vec<BiasCorrection>> {
    let n_img = ds.inputs.len();
    // 1. Float pre-activation means of every biased op: one float run per image.
    let mut float_probes = Vec::with_capacity(q.biased.len());
    for b in &q.biased {
        let op = &float_g.ops[b.float_op];
        let label = float_g.op_label(b.float_op);
        let (Some(x), Some(w)) = (op.inputs[0], op.inputs.get(1).copied().flatten()) else {
            bail!("{label}: missing input or weights");
        };
        let wt = &float_g.tensors[w];
        let y_shape = &float_g.tensors[op.outputs[0]].shape;
        let channels = *y_shape.last().unwrap_or(&1);
        let bias = match op.inputs.get(2).copied().flatten() {
            Some(b) => f32_values(&float_g.tensors[b]),
            None => vec![0.0; channels],
        };
        float_probes.push(Probe::new(
            &label,
            &op.kind,
            &float_g.tensors[x].shape,
            (&wt.shape, &f32_values(wt)),
            &bias,
            y_shape,
        )?);
    }
    let mut float_sums: Vec<Vec<f64>> =
        float_probes.iter().map(|p| vec![0.0; p.channels]).collect();
    let mut float_sq = vec![0.0f64; q.biased.len()];
    let mut rows = vec![0usize; q.biased.len()];
    let mut fs = session(float_g.clone())?;
    let mut p = Progress::new("bias correction: float means", show_progress);
    for (k, x) in ds.inputs.iter().enumerate() {
        p.update(k, n_img);
        set_input(&mut fs, x);
        fs.run();
        for (j, b) in q.biased.iter().enumerate() {
            let Some(xin) = float_g.ops[b.float_op].inputs[0] else {
                continue;
            };
            let v = tensor_values(&fs, xin);
            let (r, sq) = float_probes[j].accumulate(&v, &mut float_sums[j]);
            rows[j] += r;
            float_sq[j] += sq;
        }
    }
    p.update(n_img, n_img);
    drop(float_probes);
    drop(fs);

    // 2. Level by level: run the quantized graph (earlier levels corrected) up to the last op
    //    of the level, probe each op of the level on its int8 input, shift its bias.
    let lv = levels(&q.graph, &q.biased);
    let max_level = lv.iter().copied().max().map_or(0, |m| m + 1);
    let mut out = vec![None; q.biased.len()];
    let mut p = Progress::new("bias correction: layer by layer", show_progress);
    for level in 0..max_level {
        p.update(level, max_level);
        let members: Vec<usize> = (0..q.biased.len()).filter(|&j| lv[j] == level).collect();
        let Some(last) = members.iter().map(|&j| q.biased[j].q_op).max() else {
            continue;
        };
        let mut prefix = q.graph.clone();
        prefix.ops.truncate(last + 1);
        prefix.outputs = prefix.ops[last].outputs.clone();
        let mut qs = session(prefix)?;
        let mut probes = Vec::with_capacity(members.len());
        for &j in &members {
            let b = &q.biased[j];
            let op = &q.graph.ops[b.q_op];
            let label = float_g.op_label(b.float_op);
            let (Some(x), Some(w), Some(bias)) = (
                op.inputs[0],
                op.inputs.get(1).copied().flatten(),
                op.inputs.get(2).copied().flatten(),
            ) else {
                bail!("{label}: quantized op without input, weights or bias");
            };
            let bt = &q.graph.tensors[bias];
            let scales = bias_scales(bt).with_context(|| label.clone())?;
            let bq = spotter::ops::util::const_i32(bt.data.as_deref().unwrap_or(&[]));
            let bf: Vec<f32> = bq
                .iter()
                .zip(&scales)
                .map(|(&v, &s)| v as f32 * s)
                .collect();
            let wt = &q.graph.tensors[w];
            let wf = dequantized_weights(wt).with_context(|| label.clone())?;
            let y_shape = &q.graph.tensors[op.outputs[0]].shape;
            probes.push((
                x,
                Probe::new(
                    &label,
                    &op.kind,
                    &q.graph.tensors[x].shape,
                    (&wt.shape, &wf),
                    &bf,
                    y_shape,
                )?,
            ));
        }
        let mut sums: Vec<Vec<f64>> = probes.iter().map(|(_, p)| vec![0.0; p.channels]).collect();
        for x in &ds.inputs {
            set_input(&mut qs, x);
            qs.run();
            for ((xin, probe), s) in probes.iter_mut().zip(&mut sums) {
                let v = tensor_values(&qs, *xin);
                probe.accumulate(&v, s);
            }
        }
        for (m, &j) in members.iter().enumerate() {
            let b = &q.biased[j];
            let n = rows[j].max(1) as f64;
            let shift: Vec<f64> = sums[m]
                .iter()
                .zip(&float_sums[j])
                .map(|(qs, fs)| (qs - fs) / n)
                .collect();
            let t = &mut q.graph.tensors[b.bias];
            let scales = bias_scales(t)?;
            let mut vals = spotter::ops::util::const_i32(t.data.as_deref().unwrap_or(&[]));
            for ((v, d), s) in vals.iter_mut().zip(&shift).zip(&scales) {
                let steps = (d / *s as f64).round();
                *v = (*v as f64 - steps).clamp(i32::MIN as f64, i32::MAX as f64) as i32;
            }
            t.data = Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect());
            let rms_shift =
                (shift.iter().map(|d| d * d).sum::<f64>() / shift.len().max(1) as f64).sqrt();
            let rms_signal = (float_sq[j] / (n * shift.len().max(1) as f64)).sqrt();
            out[j] = Some(BiasCorrection {
                op: float_g.op_label(b.float_op),
                tensor: float_g.tensors[float_g.ops[b.float_op].outputs[0]]
                    .name
                    .clone(),
                max_abs_shift: shift.iter().fold(0f64, |m, d| m.max(d.abs())) as f32,
                relative_shift: if rms_signal > 0.0 {
                    (rms_shift / rms_signal) as f32
                } else {
                    0.0
                },
            });
        }
    }
    p.update(max_level, max_level);
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize;
    use crate::ranges::{self, Method};
    use std::collections::HashSet;

    fn conv(activation: Activation) -> OpKind {
        OpKind::Conv2D(crate::prep::conv_same_s1(activation))
    }

    /// x [1,4,4,8] → CONV_2D 1x1 (2 channels) → y. Channel 0's small weights all round up to
    /// one step of its per-channel scale (0.0045 → 1/127), so with inputs around +2 the int8
    /// conv's output mean is shifted by about 7 * 0.0034 * 2 ≈ 0.047 (3 output steps).
    fn biased_conv_graph(activation: Activation) -> Graph {
        let mut w = vec![
            1.0f32, 0.0045, 0.0045, 0.0045, 0.0045, 0.0045, 0.0045, 0.0045,
        ];
        w.extend([0.5f32, -0.25, 0.125, 0.3, -0.2, 0.1, 0.05, 0.4]);
        let mut g = Graph {
            tensors: vec![
                f32_tensor("x", &[1, 4, 4, 8], None),
                f32_tensor("w", &[2, 1, 1, 8], Some(&w)),
                f32_tensor("b", &[2], Some(&[0.1, -0.2])),
                f32_tensor("y", &[1, 4, 4, 2], None),
            ],
            ops: vec![Op {
                kind: conv(activation),
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3],
            }],
            inputs: vec![0],
            outputs: vec![3],
        };
        g.validate().unwrap();
        g
    }

    fn dataset() -> Dataset {
        let n = 6;
        Dataset {
            names: (0..n).map(|i| format!("img{i}")).collect(),
            inputs: (0..n)
                .map(|i| {
                    (0..128)
                        .map(|k| 2.0 + ((k * 7 + i * 13) % 17) as f32 / 17.0 - 0.5)
                        .collect()
                })
                .collect(),
            skipped: vec![],
        }
    }

    fn quantized(g: &Graph, ds: &Dataset) -> Quantized {
        let stats = crate::collect_stats(g, ds, false, false).unwrap();
        let chosen = stats
            .iter()
            .map(|(&t, s)| (t, ranges::choose(s, Method::MinMax)))
            .collect();
        let merged = quantize::merge_ranges(g, &chosen, &HashSet::new());
        let opts = quantize::Options {
            per_channel: true,
            int8_input: false,
            keep_float: HashSet::new(),
        };
        quantize::quantize(g, &merged, &opts).unwrap()
    }

    /// Mean over the dataset of (int8 output - float output) for channel `c`.
    fn mean_shift(g: &Graph, q: &Quantized, ds: &Dataset, c: usize) -> f64 {
        let mut fs = session(g.clone()).unwrap();
        let mut qs = session(q.graph.clone()).unwrap();
        let (mut sum, mut n) = (0.0, 0);
        for x in &ds.inputs {
            set_input(&mut fs, x);
            fs.run();
            set_input(&mut qs, x);
            qs.run();
            let f = tensor_values(&fs, g.outputs[0]);
            let v = tensor_values(&qs, q.graph.outputs[0]);
            for (i, (a, b)) in f.iter().zip(&v).enumerate() {
                if i % 2 == c {
                    sum += (*b - *a) as f64;
                    n += 1;
                }
            }
        }
        sum / n as f64
    }

    #[test]
    fn bias_correction_removes_the_mean_output_shift_of_a_conv() {
        let g = biased_conv_graph(Activation::None);
        let ds = dataset();
        let mut q = quantized(&g, &ds);
        let before = mean_shift(&g, &q, &ds, 0);
        assert!(before > 0.03, "test premise: a visible shift, got {before}");
        let report = correct_biases(&g, &mut q, &ds, false).unwrap();
        let after = mean_shift(&g, &q, &ds, 0);
        assert!(after.abs() < before / 4.0, "before {before}, after {after}");
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].op, "op #0 CONV_2D");
        assert!(
            (report[0].max_abs_shift as f64 - before).abs() < 0.02,
            "{report:?} vs {before}"
        );
    }

    #[test]
    fn bias_correction_uses_the_pre_activation_mean_under_relu6() {
        // Same conv with a fused RELU6: the output range is [0, 6] and channel 0 (around 2.1)
        // is not clipped, so the correction must be the same as without the activation.
        let ds = dataset();
        let g = biased_conv_graph(Activation::Relu6);
        let mut q = quantized(&g, &ds);
        let before = mean_shift(&g, &q, &ds, 0);
        let report = correct_biases(&g, &mut q, &ds, false).unwrap();
        let after = mean_shift(&g, &q, &ds, 0);
        assert!(after.abs() < before / 4.0, "before {before}, after {after}");
        let g0 = biased_conv_graph(Activation::None);
        let mut q0 = quantized(&g0, &ds);
        let r0 = correct_biases(&g0, &mut q0, &ds, false).unwrap();
        assert!((report[0].max_abs_shift - r0[0].max_abs_shift).abs() < 1e-4);
    }

    #[test]
    fn levels_put_independent_convs_together_and_chains_in_order() {
        // x → conv a → conv b (chain), and conv c also on x (parallel to a).
        let w = vec![0.5f32; 8 * 8];
        let mut g = Graph {
            tensors: vec![
                f32_tensor("x", &[1, 2, 2, 8], None),
                f32_tensor("w", &[8, 1, 1, 8], Some(&w)),
                f32_tensor("b", &[8], Some(&[0.0; 8])),
                f32_tensor("a", &[1, 2, 2, 8], None),
                f32_tensor("bb", &[1, 2, 2, 8], None),
                f32_tensor("c", &[1, 2, 2, 8], None),
            ],
            ops: [(0, 3), (3, 4), (0, 5)]
                .iter()
                .map(|&(i, o)| Op {
                    kind: conv(Activation::None),
                    inputs: vec![Some(i), Some(1), Some(2)],
                    outputs: vec![o],
                })
                .collect(),
            inputs: vec![0],
            outputs: vec![4, 5],
        };
        g.validate().unwrap();
        let biased: Vec<BiasedOp> = (0..3)
            .map(|i| BiasedOp {
                q_op: i,
                float_op: i,
                bias: 2,
            })
            .collect();
        assert_eq!(levels(&g, &biased), vec![0, 1, 0]);
    }
}
