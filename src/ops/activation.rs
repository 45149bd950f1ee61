//! RELU, RELU6, PRELU, LOGISTIC, SOFTMAX (see [`crate::kernels::reference::activation`]).
//!
//! Quantized SOFTMAX follows what LiteRT's kReference kernel runs: the gemmlowp fixed-point
//! `reference_ops::Softmax`, see [`crate::kernels::reference::activation::softmax_quantized_row`].

use crate::error::ModelError;
use crate::kernels::reference::activation::{
    logistic_f32, logistic_lut, prelu_f32, prelu_quantized, relu_x_bounds, relu_x_quantized,
    softmax_f32, softmax_quantized_row, PreluParams, SoftmaxQuantParams,
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
    SoftmaxQ {
        depth: usize,
        params: SoftmaxQuantParams,
        /// Per-row scratch (raw inputs widened, outputs before narrowing), sized in prepare.
        row: Vec<i32>,
        res: Vec<i32>,
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

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let signed = self.dtype == DType::I8;
        let (qmin, qmax) = qrange(self.dtype);
        match &mut self.act {
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
                let (src, dst) = (inputs[0], &mut *outputs[0]);
                let len = dst.len().min(src.len());
                // Big tables (the SSD's 1917 x 91 class logits) split over the pool; small
                // ones are not worth a wake-up.
                let tasks = if ctx.threads() == 1 || len < 32 * 1024 {
                    1
                } else {
                    2 * ctx.threads()
                };
                let chunk = len.div_ceil(tasks);
                let out = super::conv::SyncPtr(dst.as_mut_ptr());
                let lut: &[u8; 256] = lut;
                ctx.parallel_for(tasks, &|t| {
                    let (s, e) = ((t * chunk).min(len), ((t + 1) * chunk).min(len));
                    // SAFETY: `s..e` lies inside the output (`len` bytes) and tasks write
                    // disjoint chunks.
                    let o = unsafe { std::slice::from_raw_parts_mut(out.get().add(s), e - s) };
                    for (o, &b) in o.iter_mut().zip(&src[s..e]) {
                        *o = lut[usize::from(b)];
                    }
                });
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
            Act::SoftmaxQ {
                depth,
                params,
                row,
                res,
            } => {
                for (src, dst) in inputs[0]
                    .chunks_exact(*depth)
                    .zip(outputs[0].chunks_exact_mut(*depth))
                {
                    for (r, &b) in row.iter_mut().zip(src) {
                        *r = if signed { b as i8 as i32 } else { b as i32 };
                    }
                    softmax_quantized_row(row, params, qmin, qmax, res);
                    for (d, &q) in dst.iter_mut().zip(res.iter()) {
                        *d = q as u8; // two's complement byte for int8
                    }
                }
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
            let depth = *input.shape.last().unwrap_or(&1);
            if depth == 0 {
                return Err(op.err(format!(
                    "tensor '{}' has an empty last dimension",
                    input.name
                )));
            }
            let a = if dt == DType::F32 {
                Act::SoftmaxF32 { depth, beta: *beta }
            } else {
                let (si, _) = op.per_tensor_quant(input)?;
                let (so, zo) = op.per_tensor_quant(out)?;
                // activations.cc SoftmaxPrepare: int8 output must be zero point -128 and scale
                // within 0.001/256 of 1/256. A uint8 output's parameters are not checked and
                // not used: the reference kernel always produces (1/256, 0).
                if dt == DType::I8
                    && (zo != -128 || (so - 1.0 / 256.0).abs() > 0.001 * (1.0 / 256.0))
                {
                    return Err(op.err(format!(
                        "int8 output '{}' must have zero point -128 and scale 1/256, has ({so}, {zo})",
                        out.name
                    )));
                }
                let params = SoftmaxQuantParams::new(*beta, si).ok_or_else(|| {
                    op.err(format!(
                        "input '{}' scale {si} times beta {beta} is too small for the fixed-point softmax",
                        input.name
                    ))
                })?;
                Act::SoftmaxQ {
                    depth,
                    params,
                    row: vec![0; depth],
                    res: vec![0; depth],
                }
            };
            (a, "softmax")
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

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_relu() {
    assert!(crate::ops::conv::litert_cases::check_file("relu.json") > 0);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_prelu() {
    assert!(crate::ops::conv::litert_cases::check_file("prelu.json") > 0);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_logistic() {
    assert!(crate::ops::conv::litert_cases::check_file("logistic.json") > 0);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_softmax() {
    assert!(crate::ops::conv::litert_cases::check_file("softmax.json") > 0);
}

#[cfg(test)]
#[test]
fn softmax_int8_output_must_be_zp_minus_128_scale_1_256() {
    use crate::model::{Op, Quant, Tensor};
    let t = |name: &str, scale: f32, zero_point: i32| Tensor {
        name: name.into(),
        shape: vec![1, 6],
        dtype: DType::I8,
        quant: Some(Quant::PerTensor { scale, zero_point }),
        data: None,
    };
    let graph = |out: Tensor| Graph {
        tensors: vec![t("x", 0.1, 0), out],
        ops: vec![Op {
            kind: OpKind::Softmax { beta: 1.0 },
            inputs: vec![Some(0)],
            outputs: vec![1],
        }],
        inputs: vec![0],
        outputs: vec![1],
    };
    // LiteRT: "output->params.zero_point != -128" and "scale not near 1.f / 256".
    for (scale, zp) in [
        (1.0 / 256.0, 10),
        (1.0 / 128.0, -128),
        (1.002 / 256.0, -128),
    ] {
        let err = prepare(&graph(t("out", scale, zp)), 0)
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains("SOFTMAX") && err.contains("'out'"), "{err}");
    }
    // Within TFLite's 0.001/256 tolerance.
    assert!(prepare(&graph(t("out", 1.0009 / 256.0, -128)), 0).is_ok());
}
