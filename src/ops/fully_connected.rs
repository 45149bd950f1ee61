//! FULLY_CONNECTED preparation: float32, uint8, int8 (per-tensor or per-channel weights).
//!
//! As TFLite `fully_connected.cc`: weights `[O, I]`; the input is flattened to
//! `[num_elements / I, I]`; the output is `[batches, O]`, or with `keep_num_dims` the input
//! shape with its last dimension replaced by `O`. Quantized FC requantizes in double precision
//! (LiteRT 2.x `kReference` kernels, see `kernels::reference::fully_connected`): per-tensor
//! weights keep their zero point and get TFLite's bias-scale check; per-channel (int8 only)
//! weights must be symmetric.

use bytemuck::Pod;

use crate::error::ModelError;
use crate::kernels::reference::conv::Q8;
use crate::kernels::reference::fixedpoint::activation_range_quantized;
use crate::kernels::reference::fully_connected as kfc;
use crate::kernels::reference::fully_connected::FcQuantParams;
use crate::model::{Activation, DType, Graph, OpKind, Quant, Tensor};

use super::conv::{check_bias, check_bias_scale, filter_quant, Operand};
use super::util::OpRef;
use super::{Kernel, RunCtx};

#[derive(Clone, Copy)]
struct Dims {
    batches: usize,
    accum_depth: usize,
    output_depth: usize,
}

struct FcF32 {
    dims: Dims,
    activation: Activation,
    weights: Operand<f32>,
    bias: Operand<f32>,
}

impl Kernel for FcF32 {
    fn name(&self) -> &str {
        "fully_connected_f32__scalar"
    }
    fn macs(&self) -> u64 {
        (self.dims.batches * self.dims.accum_depth * self.dims.output_depth) as u64
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let d = self.dims;
        kfc::fully_connected_f32(
            d.batches,
            d.accum_depth,
            d.output_depth,
            self.activation,
            bytemuck::cast_slice(inputs[0]),
            self.weights.get(inputs).unwrap_or(&[]),
            self.bias.get(inputs),
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

struct FcQ8<T> {
    name: &'static str,
    dims: Dims,
    q: FcQuantParams,
    weights: Operand<T>,
    bias: Operand<i32>,
}

impl<T: Q8 + Pod> Kernel for FcQ8<T> {
    fn name(&self) -> &str {
        self.name
    }
    fn macs(&self) -> u64 {
        (self.dims.batches * self.dims.accum_depth * self.dims.output_depth) as u64
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let d = self.dims;
        kfc::fully_connected_q8::<T>(
            d.batches,
            d.accum_depth,
            d.output_depth,
            &self.q,
            bytemuck::cast_slice(inputs[0]),
            self.weights.get(inputs).unwrap_or(&[]),
            self.bias.get(inputs),
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

/// Quantization of a uint8/int8 fully connected op (TFLite `fully_connected.cc` Prepare checks,
/// LiteRT reference requantization).
fn fc_quant_params(
    op: &OpRef,
    input: &Tensor,
    weights: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
    activation: Activation,
    channels: usize,
) -> Result<FcQuantParams, ModelError> {
    let (in_scale, in_zp) = op.per_tensor_quant(input)?;
    let (out_scale, out_zp) = op.per_tensor_quant(output)?;
    let (f_scales, f_zps, per_channel) = filter_quant(op, weights, channels, 0)?;
    let filter_offset = if per_channel {
        if input.dtype != DType::I8 {
            return Err(op.err(format!(
                "per-channel quantized weights '{}' need int8 activations, input '{}' is {}",
                weights.name, input.name, input.dtype
            )));
        }
        if let Some(c) = f_zps.iter().position(|&z| z != 0) {
            return Err(op.err(format!(
                "per-channel weights '{}' have zero point {} on channel {c}; expected 0",
                weights.name, f_zps[c]
            )));
        }
        0
    } else {
        check_bias_scale(op, bias, in_scale, f_scales[0], out_scale)?;
        -f_zps[0]
    };
    let (qmin, qmax) = if output.dtype == DType::U8 {
        (0, 255)
    } else {
        (-128, 127)
    };
    let (act_min, act_max) = activation_range_quantized(activation, out_scale, out_zp, qmin, qmax);
    Ok(FcQuantParams {
        input_offset: -in_zp,
        filter_offset,
        output_offset: out_zp,
        effective_scales: f_scales
            .iter()
            .map(|&fs| in_scale as f64 * fs as f64 / out_scale as f64)
            .collect(),
        act_min,
        act_max,
    })
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let OpKind::FullyConnected {
        activation,
        keep_num_dims,
    } = &op.op.kind
    else {
        return Err(op.err("not a FULLY_CONNECTED op"));
    };
    let input = op.input(0)?;
    let weights = op.input(1)?;
    let bias = op.opt_input(2);
    let output = op.output(0)?;
    op.expect_rank(weights, 2)?;
    let [output_depth, accum_depth] = [weights.shape[0], weights.shape[1]];
    let input_len = input.num_elements();
    if accum_depth == 0 || input_len % accum_depth != 0 || input.shape.is_empty() {
        return Err(op.err(format!(
            "input '{}' {:?} cannot be flattened to rows of {accum_depth} (weights '{}' {:?})",
            input.name, input.shape, weights.name, weights.shape
        )));
    }
    let batches = input_len / accum_depth;
    let expected: Vec<usize> = if *keep_num_dims {
        let mut s = input.shape.clone();
        if let Some(last) = s.last_mut() {
            *last = output_depth;
        }
        s
    } else {
        vec![batches, output_depth]
    };
    if output.shape != expected {
        return Err(op.err(format!(
            "output '{}' has shape {:?}, expected {expected:?}",
            output.name, output.shape
        )));
    }
    let dims = Dims {
        batches,
        accum_depth,
        output_depth,
    };
    match input.dtype {
        DType::F32 => {
            op.expect_dtype(weights, &[DType::F32])?;
            op.expect_dtype(output, &[DType::F32])?;
            check_bias(&op, bias, DType::F32, output_depth)?;
            Ok(Box::new(FcF32 {
                dims,
                activation: *activation,
                weights: Operand::from_input(&op, 1),
                bias: Operand::from_input(&op, 2),
            }))
        }
        DType::U8 | DType::I8 => {
            op.expect_dtype(weights, &[input.dtype])?;
            op.expect_dtype(output, &[input.dtype])?;
            check_bias(&op, bias, DType::I32, output_depth)?;
            let q = fc_quant_params(&op, input, weights, bias, output, *activation, output_depth)?;
            if input.dtype == DType::U8 {
                Ok(Box::new(FcQ8::<u8> {
                    name: "fully_connected_qu8__scalar",
                    dims,
                    q,
                    weights: Operand::from_input(&op, 1),
                    bias: Operand::from_input(&op, 2),
                }))
            } else {
                let per_channel = matches!(&weights.quant,
                    Some(Quant::PerAxis { scales, .. }) if scales.len() > 1);
                Ok(Box::new(FcQ8::<i8> {
                    name: if per_channel {
                        "fully_connected_qi8_perchannel__scalar"
                    } else {
                        "fully_connected_qi8__scalar"
                    },
                    dims,
                    q,
                    weights: Operand::from_input(&op, 1),
                    bias: Operand::from_input(&op, 2),
                }))
            }
        }
        other => Err(op.err(format!(
            "input '{}' has unsupported type {other} (expected float32, uint8 or int8)",
            input.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::tests::{
        f32_bytes, i32_bytes, i8_bytes, one_op_graph, pt, run_op, tensor,
    };

    #[test]
    fn float_keep_num_dims() {
        let g = one_op_graph(
            OpKind::FullyConnected {
                activation: Activation::None,
                keep_num_dims: true,
            },
            vec![
                tensor("in", &[1, 2, 2], DType::F32, None, None),
                tensor(
                    "w",
                    &[3, 2],
                    DType::F32,
                    None,
                    Some(f32_bytes(&[1., 0., 0., 1., 1., 1.])),
                ),
                tensor("out", &[1, 2, 3], DType::F32, None, None),
            ],
            2,
        );
        let (name, out) = run_op(&g, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(name, "fully_connected_f32__scalar");
        assert_eq!(out, f32_bytes(&[1.0, 2.0, 3.0, 3.0, 4.0, 7.0]));
    }

    #[test]
    fn int8_per_tensor_keeps_weight_zero_point() {
        let g = one_op_graph(
            OpKind::FullyConnected {
                activation: Activation::None,
                keep_num_dims: false,
            },
            vec![
                tensor("in", &[2, 2], DType::I8, pt(0.5, 1), None),
                tensor(
                    "w",
                    &[1, 2],
                    DType::I8,
                    pt(0.25, 2),
                    Some(i8_bytes(&[4, 0])),
                ),
                tensor("b", &[1], DType::I32, pt(0.125, 0), Some(i32_bytes(&[3]))),
                tensor("out", &[2, 1], DType::I8, pt(0.5, -3), None),
            ],
            3,
        );
        let op = OpRef::new(&g, 0);
        let t = &g.tensors;
        let q = fc_quant_params(&op, &t[0], &t[1], Some(&t[2]), &t[3], Activation::None, 1)
            .expect("quant");
        assert_eq!(q.filter_offset, -2);
        assert_eq!(q.effective_scales, vec![0.25]);
        let (name, out) = run_op(&g, &i8_bytes(&[5, 1, -7, 3]));
        assert_eq!(name, "fully_connected_qi8__scalar");
        // row0: (2*4 + -2*0) + 3 = 11 * 0.25 = 2.75 -> 3 - 3 = 0
        // row1: (2*-8 + -2*2) + 3 = -17 * 0.25 = -4.25 -> -4 - 3 = -7
        assert_eq!(out, i8_bytes(&[0, -7]));
    }

    #[test]
    fn rejects_per_channel_uint8() {
        let w_quant = Some(Quant::PerAxis {
            axis: 0,
            scales: vec![0.5, 0.25],
            zero_points: vec![0, 0],
        });
        let g = one_op_graph(
            OpKind::FullyConnected {
                activation: Activation::None,
                keep_num_dims: false,
            },
            vec![
                tensor("in", &[1, 2], DType::U8, pt(0.5, 1), None),
                tensor("w", &[2, 2], DType::U8, w_quant, Some(vec![0; 4])),
                tensor("out", &[1, 2], DType::U8, pt(0.5, 0), None),
            ],
            2,
        );
        let err = prepare(&g, 0).err().expect("error").to_string();
        assert!(
            err.contains("FULLY_CONNECTED") && err.contains("'w'"),
            "{err}"
        );
    }
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref() {
    assert!(crate::ops::conv::litert_cases::check_file("fully_connected.json") > 0);
}
