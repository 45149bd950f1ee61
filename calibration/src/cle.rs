//! Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight
//! Equalization and Bias Correction", §4.1).
//!
//! For two layers `A → B` where A's output channel `i` feeds only B's input channel `i` through a
//! positive-scale-equivariant function `f` (`f(x / s) = f(x) / s` for `s > 0`), dividing A's
//! output channel `i` (weights and bias) by `s_i` and multiplying B's input channel `i` by `s_i`
//! leaves the network's function unchanged. With `r1_i` the range of A's output channel `i` and
//! `r2_i` that of B's input channel `i`, `s_i = sqrt(r1_i / r2_i)` (= `sqrt(r1_i r2_i) / r2_i`
//! in the paper) makes both ranges `sqrt(r1_i r2_i)`, which maximizes the summed relative
//! precision of the two layers' per-tensor quantized weights.
//!
//! Pairs handled: `CONV_2D | DEPTHWISE_CONV_2D` (multiplier 1) with no fused activation or a
//! fused RELU → optionally one PRELU op → `CONV_2D | DEPTHWISE_CONV_2D`. A chain conv → depthwise
//! → conv gives two pairs sharing the depthwise layer; as in the paper, pairs are equalized
//! in turn for a few rounds until the scales settle.
//!
//! RELU6 (fused or not) is *not* equalized across: `min(max(x / s, 0), 6) != min(max(x, 0), 6)
//! / s`, so scaling would change the float model. (AIMET replaces RELU6 by RELU first, which
//! changes the model's function; we prefer exactness.) MobileNetV2's expand → depthwise pairs
//! are therefore left alone.

use spotter::model::{Activation, DType, Graph, OpKind, TensorId};

/// Rounds over all pairs (the paper's iteration converges in a handful).
const ROUNDS: usize = 8;

/// One equalizable pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// First op (its output channels are scaled down).
    pub a: usize,
    /// Second op (its input channels are scaled up).
    pub b: usize,
}

fn f32_of(g: &Graph, t: TensorId) -> Vec<f32> {
    spotter::ops::util::const_f32(g.tensors[t].data.as_deref().unwrap_or(&[]))
}

fn set_f32(g: &mut Graph, t: TensorId, v: &[f32]) {
    g.tensors[t].data = Some(v.iter().flat_map(|x| x.to_le_bytes()).collect());
}

/// How a layer's weight tensor indexes channels: `Out` = output channel on axis 0 (CONV_2D),
/// `Last` = the channel on the last axis (DEPTHWISE_CONV_2D with multiplier 1, input channel ==
/// output channel), `In` = input channel on the last axis (CONV_2D).
#[derive(Clone, Copy)]
enum Axis {
    Out,
    Last,
    In,
}

/// Per-channel max |w|, and a function scaling a channel.
fn channel_of(shape: &[usize], axis: Axis, i: usize) -> usize {
    let last = *shape.last().unwrap_or(&1);
    match axis {
        Axis::Out => i / (shape.iter().skip(1).product::<usize>().max(1)),
        Axis::Last | Axis::In => i % last.max(1),
    }
}

fn ranges(w: &[f32], shape: &[usize], axis: Axis, channels: usize) -> Vec<f32> {
    let mut r = vec![0f32; channels];
    for (i, &v) in w.iter().enumerate() {
        let c = channel_of(shape, axis, i);
        if c < channels {
            r[c] = r[c].max(v.abs());
        }
    }
    r
}

/// Weight tensor id and channel axis of a layer, if it is a CLE-capable conv.
fn layer(g: &Graph, op: usize, as_second: bool) -> Option<(TensorId, Axis)> {
    let o = &g.ops[op];
    let axis = match &o.kind {
        OpKind::Conv2D(_) => {
            if as_second {
                Axis::In
            } else {
                Axis::Out
            }
        }
        OpKind::DepthwiseConv2D {
            depth_multiplier, ..
        } if *depth_multiplier == 1 => Axis::Last,
        _ => return None,
    };
    let w = o.inputs.get(1).copied().flatten()?;
    let t = &g.tensors[w];
    (t.is_const() && t.dtype == DType::F32 && t.shape.len() == 4).then_some((w, axis))
}

fn activation_ok(kind: &OpKind) -> bool {
    let act = match kind {
        OpKind::Conv2D(c) => c.activation,
        OpKind::DepthwiseConv2D { conv, .. } => conv.activation,
        _ => return false,
    };
    matches!(act, Activation::None | Activation::Relu)
}

/// Equalizable pairs of `g`, in op order.
pub fn find_pairs(g: &Graph) -> Vec<Pair> {
    let n = g.tensors.len();
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, op) in g.ops.iter().enumerate() {
        for &t in op.inputs.iter().flatten() {
            consumers[t].push(i);
        }
    }
    let is_output = |t: TensorId| g.outputs.contains(&t);
    // A tensor read by exactly one op (once), not a graph output.
    let single = |t: TensorId| (consumers[t].len() == 1 && !is_output(t)).then(|| consumers[t][0]);
    let mut pairs = Vec::new();
    for a in 0..g.ops.len() {
        let Some((wa, _)) = layer(g, a, false) else {
            continue;
        };
        if !activation_ok(&g.ops[a].kind) || consumers[wa].len() != 1 {
            continue;
        }
        let Some(mut b) = single(g.ops[a].outputs[0]) else {
            continue;
        };
        let mut mid = g.ops[a].outputs[0];
        if matches!(g.ops[b].kind, OpKind::Prelu) {
            // PRELU with a constant alpha is equivariant under positive per-channel scaling.
            let alpha_const = g.ops[b]
                .inputs
                .get(1)
                .copied()
                .flatten()
                .is_some_and(|t| g.tensors[t].is_const());
            if g.ops[b].inputs[0] != Some(mid) || !alpha_const {
                continue;
            }
            mid = g.ops[b].outputs[0];
            let Some(next) = single(mid) else { continue };
            b = next;
        }
        let Some((wb, _)) = layer(g, b, true) else {
            continue;
        };
        if g.ops[b].inputs[0] != Some(mid) || consumers[wb].len() != 1 {
            continue;
        }
        // Channel counts must agree (A's outputs = B's inputs).
        let ca = *g.tensors[g.ops[a].outputs[0]].shape.last().unwrap_or(&0);
        let cb = *g.tensors[wb].shape.last().unwrap_or(&0);
        if ca == 0 || ca != cb {
            continue;
        }
        pairs.push(Pair { a, b });
    }
    pairs
}

/// Equalize `pairs` in place (weights and the first layer's bias). Returns the scales of the
/// last round per pair (1.0 where a channel was skipped).
pub fn equalize_pairs(g: &mut Graph, pairs: &[Pair]) -> Vec<Vec<f32>> {
    let mut last = vec![Vec::new(); pairs.len()];
    for _ in 0..ROUNDS {
        for (k, p) in pairs.iter().enumerate() {
            let (Some((wa, axa)), Some((wb, axb))) = (layer(g, p.a, false), layer(g, p.b, true))
            else {
                continue;
            };
            let channels = *g.tensors[g.ops[p.a].outputs[0]].shape.last().unwrap_or(&0);
            let (sa, sb) = (g.tensors[wa].shape.clone(), g.tensors[wb].shape.clone());
            let mut w1 = f32_of(g, wa);
            let mut w2 = f32_of(g, wb);
            let r1 = ranges(&w1, &sa, axa, channels);
            let r2 = ranges(&w2, &sb, axb, channels);
            let s: Vec<f32> = r1
                .iter()
                .zip(&r2)
                .map(|(&x, &y)| {
                    let s = (x / y).sqrt();
                    if x > 0.0 && y > 0.0 && s.is_finite() && s > 0.0 {
                        s
                    } else {
                        1.0
                    }
                })
                .collect();
            for (i, v) in w1.iter_mut().enumerate() {
                *v /= s[channel_of(&sa, axa, i)];
            }
            for (i, v) in w2.iter_mut().enumerate() {
                *v *= s[channel_of(&sb, axb, i)];
            }
            set_f32(g, wa, &w1);
            set_f32(g, wb, &w2);
            if let Some(bias) = g.ops[p.a].inputs.get(2).copied().flatten() {
                let mut b = f32_of(g, bias);
                if b.len() == channels {
                    for (v, s) in b.iter_mut().zip(&s) {
                        *v /= s;
                    }
                    set_f32(g, bias, &b);
                }
            }
            last[k] = s;
        }
    }
    last
}

/// Find and equalize all pairs; returns them.
pub fn equalize(g: &mut Graph) -> Vec<Pair> {
    let pairs = find_pairs(g);
    equalize_pairs(g, &pairs);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotter::model::{Op, Tensor};
    use spotter::runtime::{Session, SessionOptions};

    fn t(name: &str, shape: &[usize], data: Option<Vec<f32>>) -> Tensor {
        crate::prep::f32_tensor(name, shape, data.as_deref())
    }

    use crate::prep::conv_same_s1 as opts;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2654435761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 20000) as f32 / 10000.0 - 1.0
            })
            .collect()
    }

    /// x [1,5,5,3] → conv 3x3 (4 ch, `act1`) → PRELU → depthwise 3x3 (`act2`) → conv 1x1
    /// (2 ch) → y. Conv 1's channels have ranges 100x apart.
    fn chain(act1: Activation, act2: Activation) -> Graph {
        let mut w1 = values(4 * 9 * 3, 1);
        for (i, v) in w1.iter_mut().enumerate() {
            *v *= [20.0, 0.2, 3.0, 1.0][i / 27];
        }
        let mut g = Graph {
            tensors: vec![
                t("x", &[1, 5, 5, 3], None),
                t("w1", &[4, 3, 3, 3], Some(w1)),
                t("b1", &[4], Some(vec![0.5, -0.1, 0.2, 0.0])),
                t("h1", &[1, 5, 5, 4], None),
                t("alpha", &[1, 1, 4], Some(vec![0.1, 0.2, 0.3, 0.25])),
                t("p1", &[1, 5, 5, 4], None),
                t("w2", &[1, 3, 3, 4], Some(values(36, 2))),
                t("b2", &[4], Some(vec![0.1, 0.2, -0.3, 0.4])),
                t("h2", &[1, 5, 5, 4], None),
                t("w3", &[2, 1, 1, 4], Some(values(8, 3))),
                t("b3", &[2], Some(vec![0.0, 1.0])),
                t("y", &[1, 5, 5, 2], None),
            ],
            ops: vec![
                Op {
                    kind: OpKind::Conv2D(opts(act1)),
                    inputs: vec![Some(0), Some(1), Some(2)],
                    outputs: vec![3],
                },
                Op {
                    kind: OpKind::Prelu,
                    inputs: vec![Some(3), Some(4)],
                    outputs: vec![5],
                },
                Op {
                    kind: OpKind::DepthwiseConv2D {
                        conv: opts(act2),
                        depth_multiplier: 1,
                    },
                    inputs: vec![Some(5), Some(6), Some(7)],
                    outputs: vec![8],
                },
                Op {
                    kind: OpKind::Conv2D(opts(Activation::None)),
                    inputs: vec![Some(8), Some(9), Some(10)],
                    outputs: vec![11],
                },
            ],
            inputs: vec![0],
            outputs: vec![11],
        };
        g.validate().unwrap();
        g
    }

    fn run(g: &Graph, x: &[f32]) -> Vec<f32> {
        let mut s = Session::new(
            g.clone(),
            SessionOptions {
                threads: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.input_mut(0).copy_from_slice(&bytes);
        s.run();
        spotter::ops::util::const_f32(s.output(0))
    }

    #[test]
    fn cle_keeps_the_float_outputs_and_equalizes_channel_ranges() {
        let g = chain(Activation::None, Activation::Relu);
        let mut e = g.clone();
        let pairs = equalize(&mut e);
        assert_eq!(pairs, vec![Pair { a: 0, b: 2 }, Pair { a: 2, b: 3 }]);
        for seed in 10..13 {
            let x = values(75, seed);
            let (y0, y1) = (run(&g, &x), run(&e, &x));
            let scale = y0.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in y0.iter().zip(&y1) {
                assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
            }
        }
        // Pair (depthwise, conv) is equalized exactly by the last step; pair (conv, depthwise)
        // nearly (the depthwise range also moves with the second pair).
        let w = |g: &Graph, i: usize| f32_of(g, i);
        let r1 = ranges(&w(&e, 1), &[4, 3, 3, 3], Axis::Out, 4);
        let r2 = ranges(&w(&e, 6), &[1, 3, 3, 4], Axis::Last, 4);
        let r3 = ranges(&w(&e, 9), &[2, 1, 1, 4], Axis::In, 4);
        for c in 0..4 {
            assert!((r2[c] / r3[c] - 1.0).abs() < 1e-3, "{r2:?} {r3:?}");
            assert!((r1[c] / r2[c] - 1.0).abs() < 0.05, "{r1:?} {r2:?}");
        }
        // Before: conv 1's channel ranges differ ~100x; after, far less.
        let before = ranges(&w(&g, 1), &[4, 3, 3, 3], Axis::Out, 4);
        let spread = |r: &[f32]| {
            r.iter().fold(0f32, |m, &v| m.max(v)) / r.iter().fold(f32::MAX, |m, &v| m.min(v))
        };
        assert!(spread(&r1) < spread(&before) / 4.0, "{before:?} -> {r1:?}");
    }

    #[test]
    fn cle_does_not_equalize_across_relu6() {
        let g = chain(Activation::Relu6, Activation::Relu6);
        assert!(find_pairs(&g).is_empty());
        let g = chain(Activation::Relu6, Activation::None);
        assert_eq!(find_pairs(&g), vec![Pair { a: 2, b: 3 }]);
    }
}
