//! MAX_POOL_2D / AVERAGE_POOL_2D preparation: float32, uint8, int8.
//!
//! As TFLite `pooling.cc`: padding from `ComputePaddingHeightWidth` with dilation 1; quantized
//! pools need equal input and output quantization (TFLite DCHECKs scale within 1e-6 and equal
//! zero points) and clamp with `CalculateActivationRangeQuantized`.

use bytemuck::Pod;

use crate::error::ModelError;
use crate::kernels::reference::conv::{ConvGeometry, Q8};
use crate::kernels::reference::fixedpoint::activation_range_quantized;
use crate::kernels::reference::pool as kpool;
use crate::model::{Activation, Conv2DOptions, DType, Graph, OpKind};

use super::conv::geometry;
use super::util::OpRef;
use super::{Kernel, RunCtx};

#[derive(Clone, Copy, PartialEq, Eq)]
enum PoolKind {
    Max,
    Average,
}

struct PoolF32 {
    kind: PoolKind,
    geom: ConvGeometry,
    activation: Activation,
}

impl Kernel for PoolF32 {
    fn name(&self) -> &str {
        match self.kind {
            PoolKind::Max => "max_pool2d_f32__scalar",
            PoolKind::Average => "average_pool2d_f32__scalar",
        }
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let input = bytemuck::cast_slice(inputs[0]);
        let output = bytemuck::cast_slice_mut(outputs[0]);
        match self.kind {
            PoolKind::Max => kpool::max_pool_f32(&self.geom, self.activation, input, output),
            PoolKind::Average => {
                kpool::average_pool_f32(&self.geom, self.activation, input, output)
            }
        }
    }
}

struct PoolQ8<T> {
    name: &'static str,
    kind: PoolKind,
    geom: ConvGeometry,
    act_min: i32,
    act_max: i32,
    _t: std::marker::PhantomData<T>,
}

impl<T: Q8 + Pod> Kernel for PoolQ8<T> {
    fn name(&self) -> &str {
        self.name
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let input: &[T] = bytemuck::cast_slice(inputs[0]);
        let output: &mut [T] = bytemuck::cast_slice_mut(outputs[0]);
        let (lo, hi) = (self.act_min, self.act_max);
        match self.kind {
            PoolKind::Max => kpool::max_pool_q8(&self.geom, lo, hi, input, output),
            PoolKind::Average => kpool::average_pool_q8(&self.geom, lo, hi, input, output),
        }
    }
}

fn q8_kernel<T: Q8 + Pod>(
    kind: PoolKind,
    geom: ConvGeometry,
    act: (i32, i32),
    names: [&'static str; 2],
) -> Box<dyn Kernel> {
    Box::new(PoolQ8::<T> {
        name: if kind == PoolKind::Max {
            names[0]
        } else {
            names[1]
        },
        kind,
        geom,
        act_min: act.0,
        act_max: act.1,
        _t: std::marker::PhantomData,
    })
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let (kind, opts) = match &op.op.kind {
        OpKind::MaxPool2D(o) => (PoolKind::Max, o),
        OpKind::AveragePool2D(o) => (PoolKind::Average, o),
        _ => return Err(op.err("not a pooling op")),
    };
    let input = op.input(0)?;
    let output = op.output(0)?;
    op.expect_rank(input, 4)?;
    if opts.filter_h == 0 || opts.filter_w == 0 {
        return Err(op.err("pooling window must be at least 1x1"));
    }
    let conv_opts = Conv2DOptions {
        padding: opts.padding,
        stride_h: opts.stride_h,
        stride_w: opts.stride_w,
        dilation_h: 1,
        dilation_w: 1,
        activation: opts.activation,
        requant: Default::default(),
    };
    let channels = input.shape[3];
    let geom = geometry(
        &op,
        input,
        output,
        &conv_opts,
        opts.filter_h,
        opts.filter_w,
        channels,
    )?;
    op.expect_dtype(output, &[input.dtype])?;
    match input.dtype {
        DType::F32 => Ok(Box::new(PoolF32 {
            kind,
            geom,
            activation: opts.activation,
        })),
        DType::U8 | DType::I8 => {
            let (in_scale, in_zp) = op.per_tensor_quant(input)?;
            let (out_scale, out_zp) = op.per_tensor_quant(output)?;
            if (in_scale - out_scale).abs() > 1e-6 || in_zp != out_zp {
                return Err(op.err(format!(
                    "input '{}' ({in_scale}, {in_zp}) and output '{}' ({out_scale}, {out_zp}) \
                     must have the same quantization",
                    input.name, output.name
                )));
            }
            Ok(if input.dtype == DType::U8 {
                let act = activation_range_quantized(
                    opts.activation,
                    out_scale,
                    out_zp,
                    u8::MIN.into(),
                    u8::MAX.into(),
                );
                q8_kernel::<u8>(
                    kind,
                    geom,
                    act,
                    ["max_pool2d_qu8__scalar", "average_pool2d_qu8__scalar"],
                )
            } else {
                let act = activation_range_quantized(
                    opts.activation,
                    out_scale,
                    out_zp,
                    i8::MIN.into(),
                    i8::MAX.into(),
                );
                q8_kernel::<i8>(
                    kind,
                    geom,
                    act,
                    ["max_pool2d_qi8__scalar", "average_pool2d_qi8__scalar"],
                )
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
    use crate::model::{Padding, Pool2DOptions};
    use crate::ops::conv::tests::{f32_bytes, i8_bytes, one_op_graph, pt, run_op, tensor};

    fn opts(padding: Padding, k: usize, stride: usize, act: Activation) -> Pool2DOptions {
        Pool2DOptions {
            padding,
            stride_h: stride,
            stride_w: stride,
            filter_h: k,
            filter_w: k,
            activation: act,
        }
    }

    #[test]
    fn float_average_same_stride2() {
        // 3x3 input, 2x2 window, SAME stride 2 -> 2x2, bottom/right windows clipped.
        let g = one_op_graph(
            OpKind::AveragePool2D(opts(Padding::Same, 2, 2, Activation::None)),
            vec![
                tensor("in", &[1, 3, 3, 1], DType::F32, None, None),
                tensor("out", &[1, 2, 2, 1], DType::F32, None, None),
            ],
            1,
        );
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let (name, out) = run_op(&g, &f32_bytes(&input));
        assert_eq!(name, "average_pool2d_f32__scalar");
        assert_eq!(out, f32_bytes(&[3.0, 4.5, 7.5, 9.0]));
    }

    #[test]
    fn int8_average_relu_and_max() {
        let tensors = || {
            vec![
                tensor("in", &[1, 2, 2, 1], DType::I8, pt(0.5, -4), None),
                tensor("out", &[1, 1, 1, 1], DType::I8, pt(0.5, -4), None),
            ]
        };
        let input = i8_bytes(&[-9, -8, -7, -7]); // sum -31 / 4 = -7.75 -> -8 -> Relu: -4
        let g = one_op_graph(
            OpKind::AveragePool2D(opts(Padding::Valid, 2, 2, Activation::Relu)),
            tensors(),
            1,
        );
        let (name, out) = run_op(&g, &input);
        assert_eq!(name, "average_pool2d_qi8__scalar");
        assert_eq!(out, i8_bytes(&[-4]));
        let g = one_op_graph(
            OpKind::AveragePool2D(opts(Padding::Valid, 2, 2, Activation::None)),
            tensors(),
            1,
        );
        assert_eq!(run_op(&g, &input).1, i8_bytes(&[-8]));
        let g = one_op_graph(
            OpKind::MaxPool2D(opts(Padding::Valid, 2, 2, Activation::None)),
            tensors(),
            1,
        );
        let (name, out) = run_op(&g, &input);
        assert_eq!(name, "max_pool2d_qi8__scalar");
        assert_eq!(out, i8_bytes(&[-7]));
    }

    #[test]
    fn rejects_requantizing_pool() {
        let g = one_op_graph(
            OpKind::MaxPool2D(opts(Padding::Valid, 2, 2, Activation::None)),
            vec![
                tensor("in", &[1, 2, 2, 1], DType::U8, pt(0.5, 0), None),
                tensor("out", &[1, 1, 1, 1], DType::U8, pt(0.25, 0), None),
            ],
            1,
        );
        let err = prepare(&g, 0).err().expect("error").to_string();
        assert!(
            err.contains("MAX_POOL_2D") && err.contains("same quantization"),
            "{err}"
        );
    }
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref() {
    assert!(crate::ops::conv::litert_cases::check_file("pool.json") > 0);
}
