//! RELU, RELU6, PRELU, LOGISTIC, SOFTMAX (see [`crate::kernels::reference::activation`]).
//!
//! Quantized SOFTMAX (TFLite's fixed-point `reference_ops::Softmax` with
//! `PreprocessSoftmaxScaling`) is not implemented yet and is rejected by prepare.

use crate::error::ModelError;
use crate::kernels::reference::activation::{
    logistic_f32, logistic_lut, prelu_f32, prelu_quantized, relu_x_bounds, relu_x_quantized,
    softmax_f32, PreluParams,
};
use crate::kernels::reference::broadcast::Broadcast;
use crate::kernels::reference::fixedpoint::quantize_multiplier;
use crate::model::{DType, Graph, OpKind};

use super::util::{f32s, f32s_mut, i8s, i8s_mut, OpRef};
use super::{Kernel, RunCtx};

enum Act {
    ReluF32 {
        six: bool,
    },
    ReluQ {
        in_zp: i32,
        out_zp: i32,
        mult: i32,
        shift: i32,
        lo: i32,
        hi: i32,
    },
    Lut(Box<[u8; 256]>),
    LogisticF32,
    SoftmaxF32 {
        depth: usize,
        beta: f32,
    },
    PreluF32(Broadcast),
    PreluQ(Broadcast, PreluParams),
}

struct ActKernel {
    name: String,
    dtype: DType,
    act: Act,
}

fn qrange(d: DType) -> (i32, i32) {
    if d == DType::U8 {
        (0, 255)
    } else {
        (-128, 127)
    }
}

impl Kernel for ActKernel {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let signed = self.dtype == DType::I8;
        let (qmin, qmax) = qrange(self.dtype);
        match &self.act {
            Act::ReluF32 { six } => {
                let out = f32s_mut(&mut *outputs[0]);
                for (o, &x) in out.iter_mut().zip(f32s(inputs[0])) {
                    // Relu: max(x, 0); Relu6: min(max(0, x), 6).
                    let r = if x > 0.0 { x } else { 0.0 };
                    *o = if *six && r > 6.0 { 6.0 } else { r };
                }
            }
            Act::ReluQ {
                in_zp,
                out_zp,
                mult,
                shift,
                lo,
                hi,
            } => {
                for (o, &b) in outputs[0].iter_mut().zip(inputs[0]) {
                    let q = if signed { b as i8 as i32 } else { b as i32 };
                    let v = relu_x_quantized(q, *in_zp, *out_zp, *mult, *shift, *lo, *hi);
                    *o = v as u8; // two's complement byte for int8
                }
            }
            Act::Lut(lut) => {
                for (o, &b) in outputs[0].iter_mut().zip(inputs[0]) {
                    *o = lut[b as usize];
                }
            }
            Act::LogisticF32 => {
                let out = f32s_mut(&mut *outputs[0]);
                for (o, &x) in out.iter_mut().zip(f32s(inputs[0])) {
                    *o = logistic_f32(x);
                }
            }
            Act::SoftmaxF32 { depth, beta } => {
                softmax_f32(f32s(inputs[0]), *depth, *beta, f32s_mut(&mut *outputs[0]));
            }
            Act::PreluF32(bc) => {
                let (x, a) = (f32s(inputs[0]), f32s(inputs[1]));
                let out = f32s_mut(&mut *outputs[0]);
                bc.for_each(|o, i, j| out[o] = prelu_f32(x[i], a[j]));
            }
            Act::PreluQ(bc, p) => {
                if signed {
                    let (x, a) = (i8s(inputs[0]), i8s(inputs[1]));
                    let out = i8s_mut(&mut *outputs[0]);
                    bc.for_each(|o, i, j| {
                        out[o] = prelu_quantized(x[i] as i32, a[j] as i32, p, qmin, qmax) as i8
                    });
                } else {
                    let (x, a) = (inputs[0], inputs[1]);
                    let out = &mut *outputs[0];
                    bc.for_each(|o, i, j| {
                        out[o] = prelu_quantized(x[i] as i32, a[j] as i32, p, qmin, qmax) as u8
                    });
                }
            }
        }
    }
}

fn tag(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::U8 => "qu8",
        _ => "qi8",
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let input = op.input(0)?;
    let out = op.output(0)?;
    op.expect_dtype(input, &[DType::F32, DType::U8, DType::I8])?;
    op.expect_dtype(out, &[input.dtype])?;
    if input.num_elements() != out.num_elements() {
        return Err(op.err(format!(
            "input '{}' {:?} and output '{}' {:?} differ in size",
            input.name, input.shape, out.name, out.shape
        )));
    }
    let dt = input.dtype;
    let (act, base) = match &op.op.kind {
        OpKind::Relu | OpKind::Relu6 => {
            let six = matches!(op.op.kind, OpKind::Relu6);
            let a = if dt == DType::F32 {
                Act::ReluF32 { six }
            } else {
                let (si, zi) = op.per_tensor_quant(input)?;
                let (so, zo) = op.per_tensor_quant(out)?;
                let (mult, shift) = quantize_multiplier(si as f64 / so as f64);
                let (qmin, qmax) = qrange(dt);
                let act_max = if six { 6.0 } else { f32::INFINITY };
                let (lo, hi) = relu_x_bounds(0.0, act_max, so, zo, qmin, qmax);
                Act::ReluQ {
                    in_zp: zi,
                    out_zp: zo,
                    mult,
                    shift,
                    lo,
                    hi,
                }
            };
            (a, if six { "relu6" } else { "relu" })
        }
        OpKind::Logistic => {
            let a = if dt == DType::F32 {
                Act::LogisticF32
            } else {
                let (si, zi) = op.per_tensor_quant(input)?;
                let (so, zo) = op.per_tensor_quant(out)?;
                if so != 1.0 / 256.0 {
                    return Err(op.err(format!(
                        "output '{}' scale {so} must be 1/256 (TFLite requirement)",
                        out.name
                    )));
                }
                Act::Lut(Box::new(logistic_lut(si, zi, so, zo, dt == DType::I8)))
            };
            (a, "logistic")
        }
        OpKind::Softmax { beta } => {
            if dt != DType::F32 {
                return Err(op.err(format!(
                    "quantized ({dt}) SOFTMAX is not supported yet (tensor '{}')",
                    input.name
                )));
            }
            let depth = *input.shape.last().unwrap_or(&1);
            if depth == 0 {
                return Err(op.err(format!(
                    "tensor '{}' has an empty last dimension",
                    input.name
                )));
            }
            (Act::SoftmaxF32 { depth, beta: *beta }, "softmax")
        }
        OpKind::Prelu => {
            let alpha = op.input(1)?;
            op.expect_dtype(alpha, &[dt])?;
            let bc = Broadcast::new(&input.shape, &alpha.shape, &out.shape)
                .filter(|_| input.shape == out.shape)
                .ok_or_else(|| {
                    op.err(format!(
                        "alpha '{}' {:?} does not broadcast to input '{}' {:?}",
                        alpha.name, alpha.shape, input.name, input.shape
                    ))
                })?;
            let a = if dt == DType::F32 {
                Act::PreluF32(bc)
            } else {
                let (si, zi) = op.per_tensor_quant(input)?;
                let (sa, za) = op.per_tensor_quant(alpha)?;
                let (so, zo) = op.per_tensor_quant(out)?;
                // activations.cc: `double real_multiplier_1 = s_in / s_out;` (float division),
                // `real_multiplier_2 = s_in * s_alpha / s_out` (float).
                let (m1, sh1) = quantize_multiplier((si / so) as f64);
                let (m2, sh2) = quantize_multiplier((si * sa / so) as f64);
                Act::PreluQ(
                    bc,
                    PreluParams {
                        input_offset: -zi,
                        alpha_offset: -za,
                        output_offset: zo,
                        output_multiplier_1: m1,
                        output_shift_1: sh1,
                        output_multiplier_2: m2,
                        output_shift_2: sh2,
                    },
                )
            };
            (a, "prelu")
        }
        other => return Err(op.err(format!("activation cannot prepare {}", other.name()))),
    };
    Ok(Box::new(ActKernel {
        name: format!("{base}_{}__scalar", tag(dt)),
        dtype: dt,
        act,
    }))
}
