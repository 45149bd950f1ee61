//! Graph rewrites after import, before calibration:
//! - a MUL or ADD by a per-channel (or scalar) constant right after CONV_2D /
//!   DEPTHWISE_CONV_2D / FULLY_CONNECTED is folded into its weights and bias (inference batch
//!   norm arrives as exactly that pair; so do a separate bias add and a scale);
//! - RELU / RELU6 right after one of those or an ADD / MUL becomes its fused activation.
//!
//! Only when the intermediate tensor is read by that one op and is not a graph output, so no
//! value anyone observes changes.

use spotter::model::{Activation, DType, Graph, OpKind, TensorId};

fn f32s(bytes: &[u8]) -> Vec<f32> {
    spotter::ops::util::const_f32(bytes)
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Readers of every tensor (op indices).
fn readers(g: &Graph) -> Vec<Vec<usize>> {
    let mut r = vec![Vec::new(); g.tensors.len()];
    for (i, op) in g.ops.iter().enumerate() {
        for &t in op.inputs.iter().flatten() {
            r[t].push(i);
        }
    }
    r
}

/// Per-channel values of constant `t` for `channels` output channels: a scalar, `[C]` or
/// `[1, .., 1, C]`. `None` if it is not such a constant.
fn per_channel(g: &Graph, t: TensorId, channels: usize) -> Option<Vec<f32>> {
    let c = &g.tensors[t];
    let data = c.data.as_ref()?;
    if c.dtype != DType::F32 {
        return None;
    }
    let v = f32s(data);
    let n = c.num_elements();
    let trailing_only = c.shape.iter().rev().skip(1).all(|&d| d == 1);
    match n {
        1 => Some(vec![v[0]; channels]),
        _ if n == channels && trailing_only => Some(v),
        _ => None,
    }
}

/// Output-channel count and axis of the weights of a conv / depthwise / FC op.
fn channels(kind: &OpKind, wshape: &[usize]) -> Option<(usize, usize)> {
    match kind {
        OpKind::Conv2D(_) | OpKind::FullyConnected { .. } => Some((wshape[0], 0)),
        OpKind::DepthwiseConv2D { .. } => Some((wshape[3], 3)),
        _ => None,
    }
}

fn activation_mut(kind: &mut OpKind) -> Option<&mut Activation> {
    match kind {
        OpKind::Conv2D(c) | OpKind::DepthwiseConv2D { conv: c, .. } => Some(&mut c.activation),
        OpKind::FullyConnected { activation, .. }
        | OpKind::Add { activation }
        | OpKind::Mul { activation } => Some(activation),
        _ => None,
    }
}

fn activation(kind: &OpKind) -> Option<Activation> {
    activation_mut(&mut kind.clone()).copied()
}

/// One rewrite, if any applies. Returns whether the graph changed.
fn step(g: &mut Graph) -> bool {
    let readers = readers(g);
    for i in 0..g.ops.len() {
        let out = g.ops[i].outputs[0];
        if g.outputs.contains(&out) || readers[out].len() != 1 {
            continue;
        }
        let j = readers[out][0];
        let next_out = g.ops[j].outputs[0];
        let fused_none = activation(&g.ops[i].kind) == Some(Activation::None);
        // RELU / RELU6 into the producer.
        let act = match g.ops[j].kind {
            OpKind::Relu => Some(Activation::Relu),
            OpKind::Relu6 => Some(Activation::Relu6),
            _ => None,
        };
        if let (Some(a), true) = (act, fused_none) {
            if let Some(slot) = activation_mut(&mut g.ops[i].kind) {
                *slot = a;
                g.ops[i].outputs[0] = next_out;
                g.ops.remove(j);
                return true;
            }
        }
        // MUL / ADD by a per-channel constant into conv / depthwise / FC weights and bias.
        let is_mul = matches!(
            g.ops[j].kind,
            OpKind::Mul {
                activation: Activation::None
            }
        );
        let is_add = matches!(
            g.ops[j].kind,
            OpKind::Add {
                activation: Activation::None
            }
        );
        if !(fused_none && (is_mul || is_add)) {
            continue;
        }
        let (Some(Some(w)), Some(Some(b))) = (
            g.ops[i].inputs.get(1).copied(),
            g.ops[i].inputs.get(2).copied(),
        ) else {
            continue;
        };
        let Some((c, axis)) = channels(&g.ops[i].kind, &g.tensors[w].shape) else {
            continue;
        };
        let other = g.ops[j]
            .inputs
            .iter()
            .flatten()
            .copied()
            .find(|&t| t != out);
        let Some(k) = other.and_then(|t| per_channel(g, t, c)) else {
            continue;
        };
        // The constant must not change the output shape by broadcasting.
        if g.tensors[next_out].shape != g.tensors[out].shape {
            continue;
        }
        let (Some(wd), Some(bd)) = (g.tensors[w].data.clone(), g.tensors[b].data.clone()) else {
            continue;
        };
        let mut bv = f32s(&bd);
        if is_mul {
            let mut wv = f32s(&wd);
            let inner: usize = g.tensors[w].shape[axis + 1..].iter().product();
            for (e, x) in wv.iter_mut().enumerate() {
                *x *= k[(e / inner) % c];
            }
            for (x, s) in bv.iter_mut().zip(&k) {
                *x *= s;
            }
            g.tensors[w].data = Some(bytes(&wv));
        } else {
            for (x, s) in bv.iter_mut().zip(&k) {
                *x += s;
            }
        }
        g.tensors[b].data = Some(bytes(&bv));
        g.ops[i].outputs[0] = next_out;
        g.ops.remove(j);
        return true;
    }
    false
}

/// Fold and fuse until nothing changes (each step removes one op), then drop tensors
/// nothing refers to any more.
pub fn fold_and_fuse(g: &mut Graph) {
    while step(g) {}
    crate::prep::prune(g);
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotter::model::{Conv2DOptions, Op, Padding, RequantMode, Tensor};

    fn t(name: &str, shape: &[usize], data: Option<Vec<f32>>) -> Tensor {
        crate::prep::f32_tensor(name, shape, data.as_deref())
    }

    #[test]
    fn batch_norm_after_conv_folds_and_relu6_fuses() {
        // x [1,1,1,2] → conv 1x1 (2 out) → mul [2] → add [2] → relu6 → y
        let conv = OpKind::Conv2D(Conv2DOptions {
            padding: Padding::Valid,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            activation: Activation::None,
            requant: RequantMode::Tflite,
        });
        let none = Activation::None;
        let mut g = Graph {
            tensors: vec![
                t("x", &[1, 1, 1, 2], None),
                t("w", &[2, 1, 1, 2], Some(vec![1.0, 2.0, 3.0, 4.0])),
                t("b", &[2], Some(vec![0.5, -0.5])),
                t("c", &[1, 1, 1, 2], None),
                t("scale", &[2], Some(vec![2.0, 10.0])),
                t("m", &[1, 1, 1, 2], None),
                t("shift", &[1, 1, 1, 2], Some(vec![1.0, 1.0])),
                t("a", &[1, 1, 1, 2], None),
                t("y", &[1, 1, 1, 2], None),
            ],
            ops: vec![
                Op {
                    kind: conv,
                    inputs: vec![Some(0), Some(1), Some(2)],
                    outputs: vec![3],
                },
                Op {
                    kind: OpKind::Mul { activation: none },
                    inputs: vec![Some(3), Some(4)],
                    outputs: vec![5],
                },
                Op {
                    kind: OpKind::Add { activation: none },
                    inputs: vec![Some(6), Some(5)],
                    outputs: vec![7],
                },
                Op {
                    kind: OpKind::Relu6,
                    inputs: vec![Some(7)],
                    outputs: vec![8],
                },
            ],
            inputs: vec![0],
            outputs: vec![8],
        };
        fold_and_fuse(&mut g);
        g.validate().unwrap();
        assert_eq!(g.ops.len(), 1);
        let OpKind::Conv2D(c) = &g.ops[0].kind else {
            panic!("{:?}", g.ops[0].kind)
        };
        assert_eq!(c.activation, Activation::Relu6);
        let w = f32s(
            g.tensors[g.ops[0].inputs[1].unwrap()]
                .data
                .as_ref()
                .unwrap(),
        );
        let b = f32s(
            g.tensors[g.ops[0].inputs[2].unwrap()]
                .data
                .as_ref()
                .unwrap(),
        );
        assert_eq!(w, vec![2.0, 4.0, 30.0, 40.0]);
        assert_eq!(b, vec![2.0, -4.0]);
        assert_eq!(g.tensors[g.outputs[0]].name, "y");
    }

    #[test]
    fn a_mul_whose_input_is_also_read_elsewhere_is_not_folded() {
        let none = Activation::None;
        let mut g = Graph {
            tensors: vec![
                t("x", &[1, 2], None),
                t("w", &[2, 2], Some(vec![1.0, 0.0, 0.0, 1.0])),
                t("b", &[2], Some(vec![0.0, 0.0])),
                t("f", &[1, 2], None),
                t("s", &[2], Some(vec![3.0, 3.0])),
                t("y", &[1, 2], None),
            ],
            ops: vec![
                Op {
                    kind: OpKind::FullyConnected {
                        activation: none,
                        keep_num_dims: false,
                    },
                    inputs: vec![Some(0), Some(1), Some(2)],
                    outputs: vec![3],
                },
                Op {
                    kind: OpKind::Mul { activation: none },
                    inputs: vec![Some(3), Some(4)],
                    outputs: vec![5],
                },
            ],
            inputs: vec![0],
            outputs: vec![5, 3],
        };
        fold_and_fuse(&mut g);
        assert_eq!(g.ops.len(), 2);
    }
}
