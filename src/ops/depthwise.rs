//! DEPTHWISE_CONV_2D preparation: float32, uint8 (per-tensor), int8 (per-tensor or
//! per-channel on the filter's last axis). Quantization as TFLite `depthwise_conv.cc` Prepare
//! (see [`super::conv`]); the depth multiplier is `filter_channels / input_channels`, and a
//! non-zero `depth_multiplier` option must agree with it.

use bytemuck::Pod;

use crate::error::ModelError;
use crate::kernels::dwconv::{DwFn, DwRows, PackedDw};
use crate::kernels::reference::conv::{ConvGeometry, QuantParams, Q8};
use crate::kernels::reference::depthwise as kdw;
use crate::kernels::Isa;
use crate::model::{Activation, DType, Graph, OpKind, Quant};

use super::conv::{check_bias, geometry, quant_params, Operand, SyncPtr};
use super::util::OpRef;
use super::{Kernel, RunCtx};

struct DepthwiseF32 {
    geom: ConvGeometry,
    multiplier: usize,
    activation: Activation,
    filter: Operand<f32>,
    bias: Operand<f32>,
    macs: u64,
}

impl Kernel for DepthwiseF32 {
    fn name(&self) -> &str {
        "depthwise_f32__scalar"
    }
    fn macs(&self) -> u64 {
        self.macs
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        kdw::depthwise_f32(
            &self.geom,
            self.multiplier,
            self.activation,
            bytemuck::cast_slice(inputs[0]),
            self.filter.get(inputs).unwrap_or(&[]),
            self.bias.get(inputs),
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

struct DepthwiseQ8<T> {
    name: &'static str,
    geom: ConvGeometry,
    multiplier: usize,
    q: QuantParams,
    filter: Operand<T>,
    bias: Operand<i32>,
    macs: u64,
}

impl<T: Q8 + Pod> Kernel for DepthwiseQ8<T> {
    fn name(&self) -> &str {
        self.name
    }
    fn macs(&self) -> u64 {
        self.macs
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        kdw::depthwise_q8::<T>(
            &self.geom,
            self.multiplier,
            &self.q,
            bytemuck::cast_slice(inputs[0]),
            self.filter.get(inputs).unwrap_or(&[]),
            self.bias.get(inputs),
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

/// Quantized depthwise 3x3 (multiplier 1, dilation 1) with a SIMD kernel, split over output
/// rows and, on small layers, channel blocks.
struct DepthwiseSimd {
    name: String,
    packed: PackedDw,
    kernel: DwFn,
    macs: u64,
}

/// Task grid `(row chunks, channel-block ranges)` for `rows` output rows of `cblocks` channel
/// blocks on `threads` threads: one task single-threaded, else about `8 * threads` tasks
/// (threads take tasks dynamically, so several per thread even out the end of the op), over
/// rows first and over channel blocks as well when there are too few rows (the 10x10 and 5x5
/// layers of SSD MobileNet v2: a rows-only split leaves a thread with a whole extra row).
fn split_dw(threads: usize, rows: usize, cblocks: usize) -> (usize, usize) {
    if threads <= 1 {
        return (1, 1);
    }
    let target = 8 * threads;
    let tasks_r = rows.clamp(1, target);
    let tasks_c = target.div_ceil(tasks_r).clamp(1, cblocks.max(1));
    (tasks_r, tasks_c)
}

impl Kernel for DepthwiseSimd {
    fn name(&self) -> &str {
        &self.name
    }
    fn macs(&self) -> u64 {
        self.macs
    }
    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let g = &self.packed.geom;
        let rows = g.batches * g.out_h;
        let cblocks = g.in_c.div_ceil(self.packed.bw);
        let (tasks_r, tasks_c) = split_dw(ctx.threads(), rows, cblocks);
        let input = inputs[0].as_ptr();
        let out = SyncPtr(outputs[0].as_mut_ptr());
        let (packed, kernel) = (&self.packed, self.kernel);
        let input = SyncPtr(input as *mut u8);
        // Tasks numbered row-major, so the pool's contiguous per-thread blocks of tasks are
        // row ranges (the rows the previous op's same thread wrote).
        ctx.parallel_for(tasks_r * tasks_c, &|t| {
            let (tr, tc) = (t / tasks_c, t % tasks_c);
            let r = DwRows {
                input: input.get(),
                output: out.get(),
                row_begin: tr * rows / tasks_r,
                row_end: (tr + 1) * rows / tasks_r,
                block_begin: tc * cblocks / tasks_c,
                block_end: (tc + 1) * cblocks / tasks_c,
            };
            // SAFETY: the kernel was chosen for a tier this CPU supports; the buffers hold the
            // whole input/output tensors of `geom` (buffer contract); tasks write disjoint
            // (row, channel block) ranges of the output.
            unsafe { kernel(packed, &r) };
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn simd_depthwise(
    isa: Isa,
    op: &OpRef,
    geom: &ConvGeometry,
    multiplier: usize,
    q: &QuantParams,
    signed: bool,
    per_channel: bool,
    macs: u64,
) -> Option<Box<dyn Kernel>> {
    // ONNX Runtime numerics: the kernels' float epilogue (`kernels::requant`).
    let fp32 = q.float_scales.is_some();
    if multiplier != 1
        || geom.filter_h != 3
        || geom.filter_w != 3
        || geom.dilation_h != 1
        || geom.dilation_w != 1
    {
        return None;
    }
    let w_bytes = op.input(1).ok()?.data.as_deref()?;
    let bias: Option<Vec<i32>> = match op.opt_input(2) {
        None => None,
        Some(b) => Some(super::util::const_i32(b.data.as_deref()?)),
    };
    let (kernel, isa_name, bw) = crate::kernels::dwconv_for(isa, signed, fp32)?;
    let w: Vec<i32> = if signed {
        w_bytes.iter().map(|&b| b as i8 as i32).collect()
    } else {
        w_bytes.iter().map(|&b| b as i32).collect()
    };
    let dtype = match (signed, per_channel) {
        (false, _) => "qu8",
        (true, false) => "qi8",
        (true, true) => "qi8_perchannel",
    };
    Some(Box::new(DepthwiseSimd {
        name: format!(
            "dwconv3x3_{dtype}_{bw}c{}__{isa_name}",
            if fp32 { "_fp32rq" } else { "" }
        ),
        packed: PackedDw::pack_layout(
            geom,
            &w,
            bias.as_deref(),
            q,
            bw,
            crate::kernels::dwconv::layout_for(isa),
        ),
        kernel,
        macs,
    }))
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let isa =
        crate::kernels::isa::selected().map_err(|e| OpRef::new(graph, index).err(e.to_string()))?;
    prepare_with_isa(graph, index, isa)
}

/// [`prepare`] for a given kernel tier (tests compare tiers).
pub(crate) fn prepare_with_isa(
    graph: &Graph,
    index: usize,
    isa: Isa,
) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let OpKind::DepthwiseConv2D {
        conv: opts,
        depth_multiplier,
    } = &op.op.kind
    else {
        return Err(op.err("not a DEPTHWISE_CONV_2D op"));
    };
    let input = op.input(0)?;
    let filter = op.input(1)?;
    let bias = op.opt_input(2);
    let output = op.output(0)?;
    op.expect_rank(filter, 4)?;
    op.expect_rank(input, 4)?;
    let [one, kh, kw, out_c] = [
        filter.shape[0],
        filter.shape[1],
        filter.shape[2],
        filter.shape[3],
    ];
    let in_c = input.shape[3];
    if one != 1 || in_c == 0 || out_c % in_c != 0 {
        return Err(op.err(format!(
            "weights '{}' have shape {:?}; expected [1, KH, KW, {in_c} * multiplier]",
            filter.name, filter.shape
        )));
    }
    let multiplier = out_c / in_c;
    if *depth_multiplier != 0 && *depth_multiplier != multiplier {
        return Err(op.err(format!(
            "depth_multiplier {depth_multiplier} disagrees with weights '{}' {:?} and input \
             channels {in_c}",
            filter.name, filter.shape
        )));
    }
    let geom = geometry(&op, input, output, opts, kh, kw, out_c)?;
    let macs = (geom.output_len() * kh * kw) as u64;
    match input.dtype {
        DType::F32 => {
            op.expect_dtype(filter, &[DType::F32])?;
            op.expect_dtype(output, &[DType::F32])?;
            check_bias(&op, bias, DType::F32, out_c)?;
            Ok(Box::new(DepthwiseF32 {
                geom,
                multiplier,
                activation: opts.activation,
                filter: Operand::from_input(&op, 1),
                bias: Operand::from_input(&op, 2),
                macs,
            }))
        }
        DType::U8 | DType::I8 => {
            op.expect_dtype(filter, &[input.dtype])?;
            op.expect_dtype(output, &[input.dtype])?;
            check_bias(&op, bias, DType::I32, out_c)?;
            let q = quant_params(
                &op,
                input,
                filter,
                bias,
                output,
                opts.activation,
                out_c,
                3,
                opts.requant,
            )?;
            let per_channel_w = matches!(&filter.quant,
                Some(Quant::PerAxis { scales, .. }) if scales.len() > 1);
            let signed = input.dtype == DType::I8;
            if let Some(k) =
                simd_depthwise(isa, &op, &geom, multiplier, &q, signed, per_channel_w, macs)
            {
                return Ok(k);
            }
            if input.dtype == DType::U8 {
                Ok(Box::new(DepthwiseQ8::<u8> {
                    name: "depthwise_qu8__scalar",
                    geom,
                    multiplier,
                    q,
                    filter: Operand::from_input(&op, 1),
                    bias: Operand::from_input(&op, 2),
                    macs,
                }))
            } else {
                let per_channel = matches!(&filter.quant,
                    Some(Quant::PerAxis { scales, .. }) if scales.len() > 1);
                Ok(Box::new(DepthwiseQ8::<i8> {
                    name: if per_channel {
                        "depthwise_qi8_perchannel__scalar"
                    } else {
                        "depthwise_qi8__scalar"
                    },
                    geom,
                    multiplier,
                    q,
                    filter: Operand::from_input(&op, 1),
                    bias: Operand::from_input(&op, 2),
                    macs,
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
    use crate::model::{Conv2DOptions, Padding};
    use crate::ops::conv::tests::{
        f32_bytes, i32_bytes, i8_bytes, one_op_graph, pt, run_op, tensor,
    };

    fn kind(padding: Padding, stride: usize, dilation: usize, act: Activation, m: usize) -> OpKind {
        OpKind::DepthwiseConv2D {
            conv: Conv2DOptions {
                padding,
                stride_h: stride,
                stride_w: stride,
                dilation_h: dilation,
                dilation_w: dilation,
                activation: act,
                requant: Default::default(),
            },
            depth_multiplier: m,
        }
    }

    #[test]
    fn float_dilated_same() {
        // 3x3 input, 2x2 filter dilation 2, SAME stride 1: effective 3, pad 1.
        // Filter [[1, 0], [0, 1]] dilated: taps (y-1, x-1) and (y+1, x+1).
        let g = one_op_graph(
            kind(Padding::Same, 1, 2, Activation::None, 1),
            vec![
                tensor("in", &[1, 3, 3, 1], DType::F32, None, None),
                tensor(
                    "w",
                    &[1, 2, 2, 1],
                    DType::F32,
                    None,
                    Some(f32_bytes(&[1.0, 0.0, 0.0, 1.0])),
                ),
                tensor("out", &[1, 3, 3, 1], DType::F32, None, None),
            ],
            2,
        );
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let (name, out) = run_op(&g, &f32_bytes(&input));
        assert_eq!(name, "depthwise_f32__scalar");
        // (0,0): in(1,1) = 5; (1,1): in(0,0) + in(2,2) = 10; (1,2): in(0,1) = 2; (0,2): none
        let expected = [5.0, 6.0, 0.0, 8.0, 10.0, 2.0, 0.0, 4.0, 5.0];
        assert_eq!(out, f32_bytes(&expected));
    }

    #[test]
    fn int8_per_channel_multiplier2_relu6() {
        let w_quant = Some(Quant::PerAxis {
            axis: 3,
            scales: vec![1.0, 0.5],
            zero_points: vec![0, 0],
        });
        let g = one_op_graph(
            kind(Padding::Valid, 1, 1, Activation::Relu6, 2),
            vec![
                tensor("in", &[1, 1, 1, 1], DType::I8, pt(0.5, 0), None),
                tensor(
                    "w",
                    &[1, 1, 1, 2],
                    DType::I8,
                    w_quant,
                    Some(i8_bytes(&[3, 7])),
                ),
                tensor("b", &[2], DType::I32, None, Some(i32_bytes(&[0, 1]))),
                tensor("out", &[1, 1, 1, 2], DType::I8, pt(0.25, -10), None),
            ],
            3,
        );
        let (name, out) = run_op(&g, &i8_bytes(&[4]));
        assert_eq!(name, "depthwise_qi8_perchannel__scalar");
        // ch0: 12 * (0.5*1/0.25 = 2) = 24 - 10 = 14; ch1: 29 * 1 = 29 - 10 = 19
        // Relu6 max = -10 + 24 = 14 -> both clamp to 14.
        assert_eq!(out, i8_bytes(&[14, 14]));
    }
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref() {
    assert!(crate::ops::conv::litert_cases::check_file("depthwise.json") > 0);
}

#[cfg(test)]
#[test]
fn split_dw_covers_small_layers_with_channel_blocks() {
    // Single-threaded: one task.
    assert_eq!(split_dw(1, 5, 30), (1, 1));
    // Many rows: rows only.
    assert_eq!(split_dw(2, 75, 3), (16, 1));
    // 5x5 with 960 channels (30 blocks of 32): 5 row chunks x 4 block ranges.
    assert_eq!(split_dw(2, 5, 30), (5, 4));
    // Never more block ranges than blocks, never zero tasks.
    assert_eq!(split_dw(4, 1, 2), (1, 2));
    assert_eq!(split_dw(2, 0, 0), (1, 1));
}
