//! MEAN preparation: float32, uint8, int8, axes from a constant int32 input 1.
//!
//! Quantized means follow LiteRT's `kReference` kernel (`reduce.cc` `PrepareMeanOrSum` +
//! `EvalQuantizedMean`): `QuantizeMultiplier((double)in_scale / (double)out_scale)`, then
//! `reference_ops::QuantizedMeanOrSum`, for all axes and whether or not the input and output
//! quantization match (see `kernels::reference::mean`).

use bytemuck::Pod;

use crate::error::ModelError;
use crate::kernels::reference::conv::Q8;
use crate::kernels::reference::fixedpoint::quantize_multiplier;
use crate::kernels::reference::mean::{self as kmean, Reduction};
use crate::model::{DType, Graph, OpKind};

use super::util::{const_i32, OpRef};
use super::{Kernel, RunCtx};

struct MeanF32 {
    r: Reduction,
    sums: Vec<f32>,
}

impl Kernel for MeanF32 {
    fn name(&self) -> &str {
        "mean_f32__scalar"
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        kmean::mean_f32(
            &self.r,
            bytemuck::cast_slice(inputs[0]),
            &mut self.sums,
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

struct MeanQ8<T> {
    name: &'static str,
    r: Reduction,
    input_zero_point: i32,
    multiplier: i32,
    shift: i32,
    output_zero_point: i32,
    sums: Vec<i32>,
    _t: std::marker::PhantomData<T>,
}

impl<T: Q8 + Pod> Kernel for MeanQ8<T> {
    fn name(&self) -> &str {
        self.name
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        kmean::mean_q8::<T>(
            &self.r,
            self.input_zero_point,
            self.multiplier,
            self.shift,
            self.output_zero_point,
            bytemuck::cast_slice(inputs[0]),
            &mut self.sums,
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let OpKind::Mean { keep_dims } = &op.op.kind else {
        return Err(op.err("not a MEAN op"));
    };
    let input = op.input(0)?;
    let axis_t = op.input(1)?;
    let output = op.output(0)?;
    op.expect_dtype(axis_t, &[DType::I32])?;
    let rank = input.shape.len();
    if rank > 8 {
        return Err(op.err(format!(
            "input '{}' has rank {rank}; at most 8 is supported",
            input.name
        )));
    }
    // ResolveAxis: negative axes wrap, duplicates are dropped, out of range is an error.
    let mut axes: Vec<usize> = Vec::new();
    for a in const_i32(op.const_input(1)?) {
        let r = if a < 0 { a + rank as i32 } else { a };
        if r < 0 || r >= rank as i32 {
            return Err(op.err(format!(
                "axis {a} out of range for input '{}' of rank {rank}",
                input.name
            )));
        }
        if !axes.contains(&(r as usize)) {
            axes.push(r as usize);
        }
    }
    let expected: Vec<usize> = if *keep_dims {
        (0..rank)
            .map(|d| if axes.contains(&d) { 1 } else { input.shape[d] })
            .collect()
    } else {
        (0..rank)
            .filter(|d| !axes.contains(d))
            .map(|d| input.shape[d])
            .collect()
    };
    if output.shape != expected {
        return Err(op.err(format!(
            "output '{}' has shape {:?}, expected {expected:?}",
            output.name, output.shape
        )));
    }
    let r = Reduction::new(&input.shape, &axes);
    op.expect_dtype(output, &[input.dtype])?;
    match input.dtype {
        DType::F32 => Ok(Box::new(MeanF32 {
            sums: vec![0.0; r.output_len],
            r,
        })),
        DType::U8 | DType::I8 => {
            let (in_scale, in_zp) = op.per_tensor_quant(input)?;
            let (out_scale, out_zp) = op.per_tensor_quant(output)?;
            let (m, s) = quantize_multiplier(in_scale as f64 / out_scale as f64);
            let (multiplier, shift) = kmean::mean_multiplier(m, s, r.count);
            let sums = vec![0; r.output_len];
            Ok(if input.dtype == DType::U8 {
                Box::new(MeanQ8::<u8> {
                    name: "mean_qu8__scalar",
                    r,
                    input_zero_point: in_zp,
                    multiplier,
                    shift,
                    output_zero_point: out_zp,
                    sums,
                    _t: std::marker::PhantomData,
                })
            } else {
                Box::new(MeanQ8::<i8> {
                    name: "mean_qi8__scalar",
                    r,
                    input_zero_point: in_zp,
                    multiplier,
                    shift,
                    output_zero_point: out_zp,
                    sums,
                    _t: std::marker::PhantomData,
                })
            })
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
    fn float_mean_negative_axis_no_keep_dims() {
        let g = one_op_graph(
            OpKind::Mean { keep_dims: false },
            vec![
                tensor("in", &[2, 3], DType::F32, None, None),
                tensor("axis", &[1], DType::I32, None, Some(i32_bytes(&[-1]))),
                tensor("out", &[2], DType::F32, None, None),
            ],
            2,
        );
        let (name, out) = run_op(&g, &f32_bytes(&[1.0, 2.0, 4.0, -1.0, -2.0, -4.5]));
        assert_eq!(name, "mean_f32__scalar");
        assert_eq!(out, f32_bytes(&[7.0 / 3.0, -7.5 / 3.0]));
    }

    #[test]
    fn int8_mean_hw_keep_dims_requantized() {
        // [1, 2, 2, 1] mean over H, W; in scale 0.5 zp 2, out scale 0.25 zp -1.
        let g = one_op_graph(
            OpKind::Mean { keep_dims: true },
            vec![
                tensor("in", &[1, 2, 2, 1], DType::I8, pt(0.5, 2), None),
                tensor("axis", &[2], DType::I32, None, Some(i32_bytes(&[1, 2]))),
                tensor("out", &[1, 1, 1, 1], DType::I8, pt(0.25, -1), None),
            ],
            2,
        );
        // q - zp = 1, 2, 3, 5 -> mean 2.75 in units of 0.5 -> 5.5 in units of 0.25 -> 6 - 1 = 5
        let (name, out) = run_op(&g, &i8_bytes(&[3, 4, 5, 7]));
        assert_eq!(name, "mean_qi8__scalar");
        assert_eq!(out, i8_bytes(&[5]));
    }

    #[test]
    fn rejects_wrong_output_shape() {
        let g = one_op_graph(
            OpKind::Mean { keep_dims: true },
            vec![
                tensor("in", &[1, 2, 2, 1], DType::U8, pt(0.5, 2), None),
                tensor("axis", &[2], DType::I32, None, Some(i32_bytes(&[1, 2]))),
                tensor("out", &[1, 1], DType::U8, pt(0.5, 2), None),
            ],
            2,
        );
        let err = prepare(&g, 0).err().expect("error").to_string();
        assert!(err.contains("MEAN") && err.contains("'out'"), "{err}");
    }
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref() {
    assert!(crate::ops::conv::litert_cases::check_file("mean.json") > 0);
}
