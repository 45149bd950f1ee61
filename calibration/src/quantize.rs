//! Float graph + activation ranges → int8 graph.
//!
//! - Activations: int8 asymmetric per tensor. Ops whose int8 kernels do not requantize
//!   (RESHAPE, CONCATENATION, MAX/AVERAGE_POOL_2D, PAD, RESIZE_*, DEPTH_TO_SPACE) get one shared
//!   range for their inputs and output; LOGISTIC / SOFTMAX outputs use TFLite's fixed 1/256, -128.
//! - Weights: int8 symmetric (zero point 0), per output channel for CONV_2D (axis 0) and
//!   DEPTHWISE_CONV_2D (axis 3) when `per_channel`, per tensor otherwise and for
//!   FULLY_CONNECTED. Bias: int32 with scale `input_scale * weight_scale[c]`.
//! - Ops kept in float (`TFLite_Detection_PostProcess`, and those the user lists) get
//!   DEQUANTIZE before and QUANTIZE after as needed; graph inputs and outputs stay float (a
//!   QUANTIZE after each input, a DEQUANTIZE before each output) unless `int8_input`.
//!
//! Tensor ids of the float graph are preserved: tensor `i` of the float graph is the same value
//! (now int8 or still float) as tensor `i` of the quantized graph; new tensors are appended.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};
use spotter::model::{DType, Graph, Op, OpKind, Quant, Tensor, TensorId};

use crate::ranges::int8_params;

pub struct Options {
    pub per_channel: bool,
    pub int8_input: bool,
    /// Op indices to keep in float.
    pub keep_float: HashSet<usize>,
}

/// The quantized graph and how its tensors relate to the float graph's.
pub struct Quantized {
    pub graph: Graph,
    /// Float-graph activation id → id of the same value in `graph` (int8 or float).
    pub same: Vec<Option<TensorId>>,
    /// Quantized conv / depthwise / FC ops (with their int32 bias), in op order.
    pub biased: Vec<BiasedOp>,
}

/// A quantized op with an int32 bias (the ops bias correction adjusts).
#[derive(Clone, Copy, Debug)]
pub struct BiasedOp {
    /// Op index in the quantized graph.
    pub q_op: usize,
    /// Index of the same op in the float graph.
    pub float_op: usize,
    /// Its bias tensor in the quantized graph.
    pub bias: TensorId,
}

/// Whether an op can run in int8 here.
pub fn quantizable(kind: &OpKind) -> bool {
    use OpKind::*;
    matches!(
        kind,
        Conv2D(_)
            | DepthwiseConv2D { .. }
            | FullyConnected { .. }
            | Add { .. }
            | Mul { .. }
            | Concatenation { .. }
            | Reshape
            | Pad
            | MaxPool2D(_)
            | AveragePool2D(_)
            | Mean { .. }
            | Relu
            | Relu6
            | Prelu
            | ResizeBilinear { .. }
            | ResizeNearestNeighbor { .. }
            | Logistic
            | Softmax { .. }
            | DepthToSpace { .. }
    )
}

/// Ops that always stay float (their int8 forms are not what TFLite models use).
pub fn always_float(kind: &OpKind) -> bool {
    matches!(kind, OpKind::DetectionPostProcess(_))
}

/// Ops whose int8 kernels need the same quantization on inputs (data operands) and output.
fn same_scale_inputs(kind: &OpKind) -> Option<usize> {
    use OpKind::*;
    match kind {
        Concatenation { .. } => Some(usize::MAX),
        Reshape
        | Pad
        | MaxPool2D(_)
        | AveragePool2D(_)
        | DepthToSpace { .. }
        | ResizeBilinear { .. }
        | ResizeNearestNeighbor { .. } => Some(1),
        _ => None,
    }
}

/// Union-find over tensor ids.
struct Groups(Vec<usize>);
impl Groups {
    fn find(&mut self, i: usize) -> usize {
        let mut r = i;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut j = i;
        while self.0[j] != r {
            let n = self.0[j];
            self.0[j] = r;
            j = n;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra] = rb;
        }
    }
}

/// Check every op can be quantized or is kept float; errors name the op.
pub fn check_supported(g: &Graph, keep_float: &HashSet<usize>) -> Result<()> {
    let bad: Vec<String> = g
        .ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            !quantizable(&op.kind) && !always_float(&op.kind) && !keep_float.contains(i)
        })
        .map(|(i, _)| g.op_label(i))
        .collect();
    if !bad.is_empty() {
        bail!(
            "cannot quantize {} (no int8 support in the calibrator); keep them float with \
             --keep-float {}",
            bad.join(", "),
            g.ops
                .iter()
                .enumerate()
                .filter(|(i, op)| !quantizable(&op.kind)
                    && !always_float(&op.kind)
                    && !keep_float.contains(i))
                .map(|(i, _)| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    Ok(())
}

/// Final per-tensor activation ranges: chosen ranges merged over same-scale groups.
pub fn merge_ranges(
    g: &Graph,
    ranges: &HashMap<TensorId, (f32, f32)>,
    keep_float: &HashSet<usize>,
) -> HashMap<TensorId, (f32, f32)> {
    let mut groups = Groups((0..g.tensors.len()).collect());
    for (i, op) in g.ops.iter().enumerate() {
        if keep_float.contains(&i) || always_float(&op.kind) {
            continue;
        }
        if let Some(n) = same_scale_inputs(&op.kind) {
            for &t in op.inputs.iter().take(n).flatten() {
                if !g.tensors[t].is_const() && g.tensors[t].dtype == DType::F32 {
                    groups.union(t, op.outputs[0]);
                }
            }
        }
    }
    let mut merged: HashMap<usize, (f32, f32)> = HashMap::new();
    for (&t, &(lo, hi)) in ranges {
        let e = merged.entry(groups.find(t)).or_insert((lo, hi));
        *e = (e.0.min(lo), e.1.max(hi));
    }
    ranges
        .keys()
        .map(|&t| (t, merged[&groups.find(t)]))
        .collect()
}

fn f32_data(t: &Tensor) -> Vec<f32> {
    spotter::ops::util::const_f32(t.data.as_deref().unwrap_or(&[]))
}

/// Largest |bias| in int32 steps allowed: half the int32 range, so the accumulator
/// (bias + sum of products) keeps headroom.
pub const BIAS_LIMIT: f64 = (1u64 << 30) as f64;

/// Symmetric int8 weights: per channel along `axis` (or one scale when `axis` is None).
pub fn quantize_weights(w: &[f32], shape: &[usize], axis: Option<usize>) -> (Vec<i8>, Vec<f32>) {
    quantize_weights_min_scale(w, shape, axis, &[])
}

/// As [`quantize_weights`], with each channel's scale at least `min_scales[c]` (none when
/// `min_scales` is empty; one entry applies to all channels).
pub fn quantize_weights_min_scale(
    w: &[f32],
    shape: &[usize],
    axis: Option<usize>,
    min_scales: &[f32],
) -> (Vec<i8>, Vec<f32>) {
    let (channels, inner) = match axis {
        Some(a) => (shape[a], shape[a + 1..].iter().product::<usize>()),
        None => (1, w.len()),
    };
    let ch = |i: usize| {
        if channels == 1 {
            0
        } else {
            (i / inner) % channels
        }
    };
    let mut maxabs = vec![0f32; channels];
    for (i, &v) in w.iter().enumerate() {
        maxabs[ch(i)] = maxabs[ch(i)].max(v.abs());
    }
    let min_scale = |c: usize| match min_scales.len() {
        0 => 0.0,
        1 => min_scales[0],
        _ => min_scales.get(c).copied().unwrap_or(0.0),
    };
    let scales: Vec<f32> = maxabs
        .iter()
        .enumerate()
        .map(|(c, &m)| {
            let s = if m > 0.0 { m / 127.0 } else { 0.0 };
            let s = s.max(min_scale(c));
            if s > 0.0 {
                s
            } else {
                1.0
            }
        })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (v / scales[ch(i)]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales)
}

/// Weight scale floor per channel so that `bias[c] / (in_scale * w_scale[c])` fits in
/// [`BIAS_LIMIT`]: a channel with tiny weights but a large bias (a BN-folded, nearly constant
/// channel) would otherwise have its int32 bias clamped, i.e. silently zeroed. TFLite's
/// converter raises the weight scale the same way. Empty when no channel needs it.
pub fn bias_scale_floor(bias: &[f32], in_scale: f32, per_tensor: bool) -> Vec<f32> {
    let floor: Vec<f32> = bias
        .iter()
        .map(|&b| (b.abs() as f64 / (in_scale as f64 * BIAS_LIMIT)) as f32)
        .collect();
    if per_tensor {
        vec![floor.iter().copied().fold(0.0, f32::max)]
    } else {
        floor
    }
}

/// Quantize `g` with activation ranges `ranges` (after [`merge_ranges`]).
pub fn quantize(
    g: &Graph,
    ranges: &HashMap<TensorId, (f32, f32)>,
    opts: &Options,
) -> Result<Quantized> {
    let n = g.tensors.len();
    let mut q = Graph {
        tensors: g.tensors.clone(),
        ops: Vec::with_capacity(g.ops.len() + 8),
        inputs: g.inputs.clone(),
        outputs: g.outputs.clone(),
    };
    let is_float_op = |i: usize, op: &Op| always_float(&op.kind) || opts.keep_float.contains(&i);
    let params = |t: TensorId| -> Result<(f32, i32)> {
        match ranges.get(&t) {
            Some(&(lo, hi)) => Ok(int8_params(lo, hi)),
            None => bail!("no calibration range for tensor '{}'", g.tensors[t].name),
        }
    };

    // Domain of each activation: true = int8.
    let mut int8 = vec![false; n];
    for &i in &g.inputs {
        int8[i] = opts.int8_input;
    }
    for (i, op) in g.ops.iter().enumerate() {
        for &o in &op.outputs {
            int8[o] = !is_float_op(i, op);
        }
    }
    for (t, &is_int8) in int8.iter().enumerate() {
        if is_int8 && !g.tensors[t].is_const() {
            let (scale, zero_point) = params(t)?;
            let tt = &mut q.tensors[t];
            tt.dtype = DType::I8;
            tt.quant = Some(Quant::PerTensor { scale, zero_point });
        }
    }
    // Fixed output quantization of LOGISTIC / SOFTMAX.
    for (i, op) in g.ops.iter().enumerate() {
        if !is_float_op(i, op) && matches!(op.kind, OpKind::Logistic | OpKind::Softmax { .. }) {
            q.tensors[op.outputs[0]].quant = Some(Quant::PerTensor {
                scale: 1.0 / 256.0,
                zero_point: -128,
            });
        }
    }

    // Conversions made so far: (tensor, to_int8) → converted tensor.
    let mut converted: HashMap<(TensorId, bool), TensorId> = HashMap::new();
    let mut convert = |q: &mut Graph, t: TensorId, to_int8: bool| -> TensorId {
        if let Some(&c) = converted.get(&(t, to_int8)) {
            return c;
        }
        let src = q.tensors[t].clone();
        let new = Tensor {
            name: format!("{}_{}", src.name, if to_int8 { "int8" } else { "float" }),
            shape: src.shape.clone(),
            dtype: if to_int8 { DType::I8 } else { DType::F32 },
            quant: if to_int8 {
                let (scale, zero_point) = int8_params(ranges[&t].0, ranges[&t].1);
                Some(Quant::PerTensor { scale, zero_point })
            } else {
                None
            },
            data: None,
        };
        let id = q.tensors.len();
        q.tensors.push(new);
        q.ops.push(Op {
            kind: if to_int8 {
                OpKind::Quantize {
                    mode: Default::default(),
                }
            } else {
                OpKind::Dequantize
            },
            inputs: vec![Some(t)],
            outputs: vec![id],
        });
        converted.insert((t, to_int8), id);
        id
    };

    let mut biased = Vec::new();
    for (index, op) in g.ops.iter().enumerate() {
        let float_op = is_float_op(index, op);
        let mut new_op = op.clone();
        // Weight / bias operands of conv-like ops.
        let weight_axis = match &op.kind {
            OpKind::Conv2D(_) => Some(Some(0)),
            OpKind::DepthwiseConv2D { .. } => Some(Some(3)),
            OpKind::FullyConnected { .. } => Some(None),
            _ => None,
        };
        if !float_op {
            if let Some(axis) = weight_axis {
                let axis = if opts.per_channel { axis } else { None };
                let (Some(x), Some(w)) = (op.inputs[0], op.inputs.get(1).copied().flatten()) else {
                    bail!("{}: missing input or weights", g.op_label(index));
                };
                let wt = &g.tensors[w];
                if !wt.is_const() || wt.dtype != DType::F32 {
                    bail!(
                        "{}: weights '{}' must be a float32 constant (found {}{})",
                        g.op_label(index),
                        wt.name,
                        wt.dtype,
                        if wt.is_const() { "" } else { " activation" }
                    );
                }
                let in_scale = params(x)?.0;
                let out_c = *g.tensors[op.outputs[0]].shape.last().unwrap_or(&1);
                let bias_f = match op.inputs.get(2).copied().flatten() {
                    Some(b) => f32_data(&g.tensors[b]),
                    None => vec![0.0; out_c],
                };
                let floor = bias_scale_floor(&bias_f, in_scale, axis.is_none());
                let (wq, w_scales) =
                    quantize_weights_min_scale(&f32_data(wt), &wt.shape, axis, &floor);
                let b_scales: Vec<f32> = (0..bias_f.len())
                    .map(|c| in_scale * w_scales[if w_scales.len() == 1 { 0 } else { c }])
                    .collect();
                let bq: Vec<i32> = bias_f
                    .iter()
                    .zip(&b_scales)
                    .map(|(&b, &s)| {
                        (b as f64 / s as f64)
                            .round()
                            .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                    })
                    .collect();
                let w_id = q.tensors.len();
                q.tensors.push(Tensor {
                    name: wt.name.clone(),
                    shape: wt.shape.clone(),
                    dtype: DType::I8,
                    quant: Some(match axis {
                        Some(a) => Quant::PerAxis {
                            axis: a,
                            scales: w_scales.clone(),
                            zero_points: vec![0; w_scales.len()],
                        },
                        None => Quant::PerTensor {
                            scale: w_scales[0],
                            zero_point: 0,
                        },
                    }),
                    data: Some(wq.iter().map(|&v| v as u8).collect()),
                });
                let b_id = q.tensors.len();
                q.tensors.push(Tensor {
                    name: match op.inputs.get(2).copied().flatten() {
                        Some(b) => g.tensors[b].name.clone(),
                        None => format!("{}_bias", wt.name),
                    },
                    shape: vec![bq.len()],
                    dtype: DType::I32,
                    quant: Some(if b_scales.len() > 1 && axis.is_some() {
                        Quant::PerAxis {
                            axis: 0,
                            zero_points: vec![0; b_scales.len()],
                            scales: b_scales,
                        }
                    } else {
                        Quant::PerTensor {
                            scale: b_scales[0],
                            zero_point: 0,
                        }
                    }),
                    data: Some(bq.iter().flat_map(|v| v.to_le_bytes()).collect()),
                });
                new_op.inputs.resize(3, None);
                new_op.inputs[1] = Some(w_id);
                new_op.inputs[2] = Some(b_id);
            }
        }
        // Data operands: constants and activations in the op's domain.
        let data_inputs = if weight_axis.is_some() && !float_op {
            1
        } else {
            new_op.inputs.len()
        };
        let index_operand = matches!(op.kind, OpKind::Reshape | OpKind::Pad | OpKind::Mean { .. });
        for (k, slot) in new_op.inputs.iter_mut().enumerate().take(data_inputs) {
            let Some(t) = *slot else { continue };
            let tt = &g.tensors[t];
            if tt.is_const() {
                if !float_op && tt.dtype == DType::F32 && !(index_operand && k == 1) {
                    // A float constant operand (e.g. of ADD): quantize per tensor with its range.
                    let v = f32_data(tt);
                    let lo = v.iter().copied().fold(0f32, f32::min);
                    let hi = v.iter().copied().fold(0f32, f32::max);
                    let (scale, zero_point) = int8_params(lo, hi);
                    let id = q.tensors.len();
                    q.tensors.push(Tensor {
                        name: tt.name.clone(),
                        shape: tt.shape.clone(),
                        dtype: DType::I8,
                        quant: Some(Quant::PerTensor { scale, zero_point }),
                        data: Some(
                            v.iter()
                                .map(|&x| {
                                    ((x / scale).round() as i32 + zero_point).clamp(-128, 127) as i8
                                        as u8
                                })
                                .collect(),
                        ),
                    });
                    *slot = Some(id);
                }
                continue;
            }
            if tt.dtype != DType::F32 {
                continue;
            }
            if int8[t] == float_op {
                *slot = Some(convert(&mut q, t, !float_op));
            }
        }
        if !float_op && weight_axis.is_some() {
            if let Some(b) = new_op.inputs.get(2).copied().flatten() {
                biased.push(BiasedOp {
                    q_op: q.ops.len(),
                    float_op: index,
                    bias: b,
                });
            }
        }
        q.ops.push(new_op);
    }
    // Graph outputs stay float: a DEQUANTIZE into a float tensor that takes the output's name.
    let mut same: Vec<Option<TensorId>> = (0..n).map(Some).collect();
    for k in 0..q.outputs.len() {
        let o = q.outputs[k];
        if int8[o] {
            let name = q.tensors[o].name.clone();
            let f = convert(&mut q, o, false);
            q.tensors[o].name = format!("{name}_int8");
            q.tensors[f].name = name;
            q.outputs[k] = f;
            same[o] = Some(f);
        }
    }
    for (s, t) in same.iter_mut().zip(&g.tensors) {
        if t.is_const() {
            *s = None;
        }
    }
    let remap = crate::prep::prune(&mut q);
    for s in same.iter_mut() {
        *s = s.and_then(|t| remap[t]);
    }
    let biased = biased
        .into_iter()
        .filter_map(|b: BiasedOp| {
            Some(BiasedOp {
                bias: remap[b.bias]?,
                ..b
            })
        })
        .collect();
    q.validate()
        .map_err(|e| anyhow::anyhow!("internal error: the quantized graph is invalid: {e}"))?;
    Ok(Quantized {
        graph: q,
        same,
        biased,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_weights_are_symmetric_per_output_channel() {
        // conv weights [2, 1, 1, 2]: channel 0 = [1, -0.5], channel 1 = [0.1, 0.2]
        let (q, s) = quantize_weights(&[1.0, -0.5, 0.1, 0.2], &[2, 1, 1, 2], Some(0));
        assert_eq!(s, vec![1.0 / 127.0, 0.2 / 127.0]);
        assert_eq!(q, vec![127, -64, 64, 127]);
        // depthwise [1, 1, 2, 2], axis 3: channel c = elements c, c + 2
        let (q, s) = quantize_weights(&[1.0, 0.1, -2.0, 0.2], &[1, 1, 2, 2], Some(3));
        assert_eq!(s, vec![2.0 / 127.0, 0.2 / 127.0]);
        assert_eq!(q, vec![64, 64, -127, 127]);
        // All-zero channel: scale 1, weights 0.
        let (q, s) = quantize_weights(&[0.0, 0.0], &[1, 2], None);
        assert_eq!((q, s), (vec![0, 0], vec![1.0]));
    }

    /// SSD MobileNetV2 (oidv4) conv 0 has BN-folded channels with ~1e-9 weights and a bias of
    /// ~2.3: its int32 bias overflowed, was clamped and the channel came out 0 instead of 2.3.
    #[test]
    fn tiny_weights_with_a_large_bias_do_not_overflow_the_int32_bias() {
        let bias = [2.3f32, 0.1];
        let in_scale = 1.0 / 127.5;
        let floor = bias_scale_floor(&bias, in_scale, false);
        let w = [1e-9f32, -1e-9, 0.5, -0.25];
        let (q, s) = quantize_weights_min_scale(&w, &[2, 1, 1, 2], Some(0), &floor);
        assert_eq!(s[1], 0.5 / 127.0, "channel 1 needs no floor");
        assert_eq!(&q[..2], &[0, 0]);
        let steps = bias[0] as f64 / (in_scale as f64 * s[0] as f64);
        assert!(steps.abs() <= BIAS_LIMIT * 1.0001, "{steps}");
        // Per tensor: the largest floor applies.
        assert_eq!(bias_scale_floor(&bias, in_scale, true).len(), 1);
    }
}
