//! CONCATENATION (float32, uint8, int8) along an already-normalized axis.
//!
//! TFLite `concatenation.cc`: uint8 goes through `ConcatenationWithScaling` (inputs whose
//! scale/zero point differ from the output's are requantized in float), int8 requires equal
//! quantization (Prepare rejects otherwise), float32 is a plain copy. TFLite's Prepare rejects a
//! fused activation; we apply it as a clamp (float) or as the quantized activation range.

use crate::error::ModelError;
use crate::kernels::reference::concat::ConcatRescale;
use crate::kernels::reference::elementwise::clamp_f32;
use crate::kernels::reference::fixedpoint::{activation_range_f32, activation_range_quantized};
use crate::model::{Activation, DType, Graph, OpKind};

use super::util::{f32s, f32s_mut, i8s, i8s_mut, OpRef};
use super::{Kernel, RunCtx};

struct Concat {
    name: String,
    dtype: DType,
    copy_sizes: Vec<usize>,
    outer: usize,
    /// uint8 only: `Some` for inputs that need requantization.
    rescale: Vec<Option<ConcatRescale>>,
    activation: Activation,
    f_range: (f32, f32),
    q_range: (i32, i32),
}

impl Kernel for Concat {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let n = self.copy_sizes.len();
        let act = self.activation != Activation::None;
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
                if act {
                    let (lo, hi) = self.f_range;
                    out.iter_mut().for_each(|v| *v = clamp_f32(*v, lo, hi));
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
                            Some(r) => {
                                for (d, s) in out[o..o + c].iter_mut().zip(src) {
                                    *d = r.apply(*s);
                                }
                            }
                        }
                        o += c;
                    }
                }
                if act {
                    let (lo, hi) = self.q_range;
                    out.iter_mut()
                        .for_each(|v| *v = (*v as i32).clamp(lo, hi) as u8);
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
                if act {
                    let (lo, hi) = self.q_range;
                    out.iter_mut()
                        .for_each(|v| *v = (*v as i32).clamp(lo, hi) as i8);
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
                r = Some(ConcatRescale::new(si, zi, so, zo));
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
    let q_range = match out_q {
        Some((so, zo)) => {
            let (qmin, qmax) = if out.dtype == DType::U8 {
                (0, 255)
            } else {
                (-128, 127)
            };
            activation_range_quantized(activation, so, zo, qmin, qmax)
        }
        None => (0, 0),
    };
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
        activation,
        f_range: activation_range_f32(activation),
        q_range,
    }))
}
