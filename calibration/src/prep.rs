//! Float-graph cleanup before calibration: fold `DEQUANTIZE` of constants (fp16 or int8
//! weights) into float32 constants, then drop tensors nothing refers to.

use anyhow::{bail, Result};
use spotter::model::{DType, Graph, OpKind, Quant, Tensor, TensorId};

/// A float32 tensor: a constant with `data`, else an activation.
pub(crate) fn f32_tensor(name: &str, shape: &[usize], data: Option<&[f32]>) -> Tensor {
    Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: DType::F32,
        quant: None,
        data: data.map(|d| d.iter().flat_map(|v| v.to_le_bytes()).collect()),
    }
}

/// Conv options of the tests' convs: SAME padding, stride and dilation 1, TFLite numerics.
#[cfg(test)]
pub(crate) fn conv_same_s1(
    activation: spotter::model::Activation,
) -> spotter::model::Conv2DOptions {
    spotter::model::Conv2DOptions {
        padding: spotter::model::Padding::Same,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        activation,
        requant: Default::default(),
    }
}

/// Replace every `DEQUANTIZE` whose input is a constant by a float32 constant output.
/// Returns how many ops were folded.
pub fn fold_constant_dequantize(g: &mut Graph) -> Result<usize> {
    let mut folded = 0;
    let mut keep = Vec::with_capacity(g.ops.len());
    for (index, op) in std::mem::take(&mut g.ops).into_iter().enumerate() {
        let src = match (&op.kind, op.inputs.first()) {
            (OpKind::Dequantize, Some(Some(i))) if g.tensors[*i].is_const() => *i,
            _ => {
                keep.push(op);
                continue;
            }
        };
        let t = &g.tensors[src];
        let Some(data) = t.data.as_ref() else {
            unreachable!("checked is_const")
        };
        let values = dequantize_const(t.dtype, t.quant.as_ref(), &t.shape, data)
            .map_err(|e| anyhow::anyhow!("op #{index} DEQUANTIZE of constant '{}': {e}", t.name))?;
        let out = op.outputs[0];
        let o = &mut g.tensors[out];
        o.dtype = DType::F32;
        o.quant = None;
        o.data = Some(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        folded += 1;
    }
    g.ops = keep;
    Ok(folded)
}

/// Float values of a constant (fp16, float32, or 8-bit with per-tensor / per-axis quantization).
pub(crate) fn dequantize_const(
    dtype: DType,
    quant: Option<&Quant>,
    shape: &[usize],
    data: &[u8],
) -> Result<Vec<f32>> {
    Ok(match dtype {
        DType::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::I8 | DType::U8 => {
            let Some(q) = quant else {
                bail!("{dtype} constant without quantization parameters")
            };
            // Channel of element i along the quantized axis (per-tensor: always 0).
            let (axis, n) = match q {
                Quant::PerTensor { .. } => (0, 1),
                Quant::PerAxis { axis, scales, .. } => (*axis, scales.len()),
            };
            let inner: usize = shape.iter().skip(axis + 1).product();
            data.iter()
                .enumerate()
                .map(|(i, &b)| {
                    let c = if n == 1 { 0 } else { (i / inner) % n };
                    let v = if dtype == DType::I8 {
                        b as i8 as i32
                    } else {
                        b as i32
                    };
                    q.scale(c) * (v - q.zero_point(c)) as f32
                })
                .collect()
        }
        other => bail!("cannot dequantize a {other} constant"),
    })
}

/// Drop tensors no op or graph input/output refers to. Returns `remap[old] = Some(new)`.
pub fn prune(g: &mut Graph) -> Vec<Option<TensorId>> {
    let mut used = vec![false; g.tensors.len()];
    for op in &g.ops {
        for &i in op.inputs.iter().flatten() {
            used[i] = true;
        }
        for &o in &op.outputs {
            used[o] = true;
        }
    }
    for &i in g.inputs.iter().chain(&g.outputs) {
        used[i] = true;
    }
    let mut remap = vec![None; g.tensors.len()];
    let mut tensors = Vec::new();
    for (i, t) in std::mem::take(&mut g.tensors).into_iter().enumerate() {
        if used[i] {
            remap[i] = Some(tensors.len());
            tensors.push(t);
        }
    }
    g.tensors = tensors;
    let m = |i: TensorId| remap[i].expect("used tensors are kept");
    for op in &mut g.ops {
        for i in op.inputs.iter_mut().flatten() {
            *i = m(*i);
        }
        for o in &mut op.outputs {
            *o = m(*o);
        }
    }
    for i in g.inputs.iter_mut().chain(g.outputs.iter_mut()) {
        *i = m(*i);
    }
    remap
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotter::model::{Op, Tensor};

    fn t(name: &str, dtype: DType, data: Option<Vec<u8>>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: vec![2],
            dtype,
            quant: None,
            data,
        }
    }

    #[test]
    fn folds_fp16_dequantize_and_prunes_the_fp16_constant() {
        let h: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let mut g = Graph {
            tensors: vec![
                t("x", DType::F32, None),
                t("w16", DType::F16, Some(h)),
                t("w", DType::F32, None),
                t("y", DType::F32, None),
            ],
            ops: vec![
                Op {
                    kind: OpKind::Dequantize,
                    inputs: vec![Some(1)],
                    outputs: vec![2],
                },
                Op {
                    kind: OpKind::Add {
                        activation: Default::default(),
                    },
                    inputs: vec![Some(0), Some(2)],
                    outputs: vec![3],
                },
            ],
            inputs: vec![0],
            outputs: vec![3],
        };
        assert_eq!(fold_constant_dequantize(&mut g).unwrap(), 1);
        let remap = prune(&mut g);
        assert_eq!(remap, vec![Some(0), None, Some(1), Some(2)]);
        assert_eq!(g.ops.len(), 1);
        assert_eq!(g.ops[0].inputs, vec![Some(0), Some(1)]);
        let w = spotter::ops::util::const_f32(g.tensors[1].data.as_ref().unwrap());
        assert_eq!(w, vec![1.5, -2.0]);
        g.validate().unwrap();
    }

    #[test]
    fn dequantizes_per_axis_int8() {
        let q = Quant::PerAxis {
            axis: 1,
            scales: vec![0.5, 2.0],
            zero_points: vec![0, 1],
        };
        let v = dequantize_const(DType::I8, Some(&q), &[2, 2], &[2, 3, 254, 1]).unwrap();
        assert_eq!(v, vec![1.0, 4.0, -1.0, 0.0]);
    }
}
