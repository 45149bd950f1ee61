//! CONCATENATION (float32, uint8, int8) along an already-normalized axis.
//!
//! TFLite `concatenation.cc`: uint8 goes through `ConcatenationWithScaling` (inputs whose
//! scale/zero point differ from the output's are requantized in float), int8 requires equal
//! quantization (Prepare rejects otherwise), float32 is a plain copy. A fused activation is
//! rejected, as TFLite's Prepare does (`params->activation != kTfLiteActNone`; checked against
//! LiteRT 2.3.0).

use crate::error::ModelError;
use crate::kernels::reference::concat::ConcatRescale;
use crate::model::{Activation, DType, Graph, OpKind};

use super::util::{f32s, f32s_mut, i8s, i8s_mut, OpRef};
use super::{Kernel, RunCtx};

struct Concat {
    name: String,
    dtype: DType,
    copy_sizes: Vec<usize>,
    outer: usize,
    /// uint8 only: `Some` for inputs that need requantization, as a 256-entry table
    /// (`ConcatRescale::apply` is a function of one byte, so the table is bit-exact).
    rescale: Vec<Option<Box<[u8; 256]>>>,
}

impl Kernel for Concat {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let n = self.copy_sizes.len();
        match self.dtype {
            DType::F32 => {
                let out = f32s_mut(&mut *outputs[0]);
                let mut o = 0;
                for k in 0..self.outer {
                    for (i, input) in inputs.iter().take(n).enumerate() {
                        let c = self.copy_sizes[i];
                        let src = &f32s(input)[k * c..(k + 1) * c];
                        out[o..o + c].copy_from_slice(src);
                        o += c;
                    }
                }
            }
            DType::U8 => {
                let out = &mut *outputs[0];
                let mut o = 0;
                for k in 0..self.outer {
                    for (i, input) in inputs.iter().take(n).enumerate() {
                        let c = self.copy_sizes[i];
                        let src = &input[k * c..(k + 1) * c];
                        match &self.rescale[i] {
                            None => out[o..o + c].copy_from_slice(src),
                            Some(lut) => {
                                for (d, s) in out[o..o + c].iter_mut().zip(src) {
                                    *d = lut[usize::from(*s)];
                                }
                            }
                        }
                        o += c;
                    }
                }
            }
            _ => {
                let out = i8s_mut(&mut *outputs[0]);
                let mut o = 0;
                for k in 0..self.outer {
                    for (i, input) in inputs.iter().take(n).enumerate() {
                        let c = self.copy_sizes[i];
                        out[o..o + c].copy_from_slice(&i8s(input)[k * c..(k + 1) * c]);
                        o += c;
                    }
                }
            }
        }
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let (axis, activation) = match &op.op.kind {
        OpKind::Concatenation { axis, activation } => (*axis, *activation),
        other => return Err(op.err(format!("concat cannot prepare {}", other.name()))),
    };
    if activation != Activation::None {
        return Err(op.err(format!(
            "fused activation {activation:?} is not supported (TFLite requires NONE)"
        )));
    }
    let out = op.output(0)?;
    op.expect_dtype(out, &[DType::F32, DType::U8, DType::I8])?;
    let rank = out.shape.len();
    if axis >= rank {
        return Err(op.err(format!("axis {axis} out of range for output rank {rank}")));
    }
    let outer: usize = out.shape[..axis].iter().product();
    let inner: usize = out.shape[axis + 1..].iter().product();
    let n_inputs = op.op.inputs.len();
    if n_inputs == 0 {
        return Err(op.err("no inputs"));
    }
    let mut copy_sizes = Vec::with_capacity(n_inputs);
    let mut rescale = Vec::with_capacity(n_inputs);
    let mut axis_sum = 0;
    let out_q = if out.dtype.is_q8() {
        Some(op.per_tensor_quant(out)?)
    } else {
        None
    };
    for i in 0..n_inputs {
        let t = op.input(i)?;
        op.expect_dtype(t, &[out.dtype])?;
        let matches = t.shape.len() == rank
            && t.shape
                .iter()
                .zip(&out.shape)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !matches {
            return Err(op.err(format!(
                "input {i} ('{}') shape {:?} does not fit output shape {:?} on axis {axis}",
                t.name, t.shape, out.shape
            )));
        }
        axis_sum += t.shape[axis];
        copy_sizes.push(t.shape[axis] * inner);
        let mut r = None;
        if let Some((so, zo)) = out_q {
            let (si, zi) = op.per_tensor_quant(t)?;
            if si != so || zi != zo {
                if out.dtype == DType::I8 {
                    return Err(op.err(format!(
                        "int8 input '{}' quantization ({si}, {zi}) differs from output's ({so}, {zo}); TFLite requires them equal",
                        t.name
                    )));
                }
                let rs = ConcatRescale::new(si, zi, so, zo);
                let mut lut = Box::new([0u8; 256]);
                for (q, v) in lut.iter_mut().enumerate() {
                    *v = rs.apply(q as u8);
                }
                r = Some(lut);
            }
        }
        rescale.push(r);
    }
    if axis_sum != out.shape[axis] {
        return Err(op.err(format!(
            "inputs sum to {axis_sum} along axis {axis}, output '{}' has {}",
            out.name, out.shape[axis]
        )));
    }
    let tag = match out.dtype {
        DType::F32 => "f32",
        DType::U8 => "qu8",
        _ => "qi8",
    };
    Ok(Box::new(Concat {
        name: format!("concatenation_{tag}__scalar"),
        dtype: out.dtype,
        copy_sizes,
        outer,
        rescale,
    }))
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_concatenation() {
    assert!(crate::ops::conv::litert_cases::check_file("concatenation.json") > 0);
}

#[cfg(test)]
#[test]
fn fused_activation_is_rejected_like_tflite() {
    use crate::model::{Op, Tensor};
    let t = |name: &str, shape: &[usize]| Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: DType::F32,
        quant: None,
        data: None,
    };
    let g = Graph {
        tensors: vec![t("a", &[1, 2]), t("b", &[1, 2]), t("out", &[1, 4])],
        ops: vec![Op {
            kind: OpKind::Concatenation {
                axis: 1,
                activation: Activation::Relu,
            },
            inputs: vec![Some(0), Some(1)],
            outputs: vec![2],
        }],
        inputs: vec![0, 1],
        outputs: vec![2],
    };
    let err = prepare(&g, 0).err().expect("must fail").to_string();
    assert!(
        err.contains("CONCATENATION") && err.contains("Relu"),
        "{err}"
    );
}
