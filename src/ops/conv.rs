//! CONV_2D preparation, plus the helpers shared with DEPTHWISE_CONV_2D (and partly
//! FULLY_CONNECTED): weight/bias operands and the derivation of quantization parameters.
//!
//! Quantization follows TFLite's Prepare (`PopulateConvolutionQuantizationParams`,
//! `GetQuantizedConvolutionMultipler` in `kernels/kernel_util.cc`):
//! - uint8 (legacy per-tensor): `real = (double)(float)(in_scale * filter_scale) / out_scale`,
//!   with the bias-scale sanity check, one multiplier;
//! - int8 (always the per-channel kernel, per-tensor scales broadcast):
//!   `real[c] = (double)in_scale * (double)filter_scale[c] / (double)out_scale`; weight zero
//!   points must be 0 (the kernel has no weight offset);
//! - fused activation: `CalculateActivationRangeQuantized` on the output.

use bytemuck::Pod;

use crate::error::ModelError;
use crate::kernels::gemm::{GemmFn, GemmRows, GemmWeights, PackedGemm};
use crate::kernels::reference::conv::{self as kconv, ConvGeometry, QuantParams, Q8};
use crate::kernels::reference::fixedpoint::{activation_range_quantized, quantize_multiplier};
use crate::kernels::Isa;
use crate::model::{
    Activation, Conv2DOptions, DType, Graph, OpKind, Padding, Quant, RequantMode, Tensor,
};
use crate::runtime::AlignedBuf;

use super::util::OpRef;
use super::{Kernel, RunCtx};

/// A weight or bias operand: a typed copy of a constant, made once at prepare time, or a view
/// of a run-time input (e.g. weights produced by DEQUANTIZE), or absent.
pub(crate) enum Operand<T> {
    Const(Vec<T>),
    Runtime(usize),
    Absent,
}

impl<T: Pod> Operand<T> {
    /// Operand from optional input `i` of `op`.
    pub(crate) fn from_input(op: &OpRef, i: usize) -> Self {
        match op.opt_input(i) {
            None => Operand::Absent,
            Some(t) => match &t.data {
                Some(bytes) => Operand::Const(
                    bytes
                        .chunks_exact(std::mem::size_of::<T>())
                        .map(bytemuck::pod_read_unaligned)
                        .collect(),
                ),
                None => Operand::Runtime(i),
            },
        }
    }

    #[inline]
    pub(crate) fn get<'a>(&'a self, inputs: &[&'a [u8]]) -> Option<&'a [T]> {
        match self {
            Operand::Const(v) => Some(v),
            Operand::Runtime(i) => Some(bytemuck::cast_slice(inputs[*i])),
            Operand::Absent => None,
        }
    }
}

/// Validate an optional bias (input 2): dtype and length.
pub(crate) fn check_bias(
    op: &OpRef,
    bias: Option<&Tensor>,
    dtype: DType,
    channels: usize,
) -> Result<(), ModelError> {
    if let Some(b) = bias {
        op.expect_dtype(b, &[dtype])?;
        if b.num_elements() != channels {
            return Err(op.err(format!(
                "bias '{}' has shape {:?}, expected {channels} elements",
                b.name, b.shape
            )));
        }
    }
    Ok(())
}

/// Filter scales and zero points, one per output channel (per-tensor values repeated), and
/// whether the filter is per-channel quantized (TFLite: more than one scale).
pub(crate) fn filter_quant(
    op: &OpRef,
    filter: &Tensor,
    channels: usize,
    channel_axis: usize,
) -> Result<(Vec<f32>, Vec<i32>, bool), ModelError> {
    match &filter.quant {
        Some(Quant::PerTensor { scale, zero_point }) => {
            Ok((vec![*scale; channels], vec![*zero_point; channels], false))
        }
        Some(Quant::PerAxis {
            axis,
            scales,
            zero_points,
        }) => {
            if scales.len() == 1 && zero_points.len() == 1 {
                return Ok((
                    vec![scales[0]; channels],
                    vec![zero_points[0]; channels],
                    false,
                ));
            }
            if *axis != channel_axis || scales.len() != channels || zero_points.len() != channels {
                return Err(op.err(format!(
                    "weights '{}' have per-axis quantization on axis {axis} with {} scales; \
                     expected {channels} scales on axis {channel_axis}",
                    filter.name,
                    scales.len()
                )));
            }
            Ok((scales.clone(), zero_points.clone(), true))
        }
        None => Err(op.err(format!(
            "weights '{}' of type {} have no quantization parameters",
            filter.name, filter.dtype
        ))),
    }
}

/// TFLite's `GetQuantizedConvolutionMultipler` bias check (legacy per-tensor path):
/// `|in_scale * filter_scale - bias_scale| / out_scale <= 0.02`, all in double.
pub(crate) fn check_bias_scale(
    op: &OpRef,
    bias: Option<&Tensor>,
    in_scale: f32,
    filter_scale: f32,
    out_scale: f32,
) -> Result<(), ModelError> {
    if let Some(b) = bias {
        let bias_scale = b.per_tensor_quant().map_or(0.0, |(s, _)| s) as f64;
        let exact = in_scale as f64 * filter_scale as f64;
        if (exact - bias_scale).abs() / out_scale as f64 > 0.02 {
            return Err(op.err(format!(
                "bias '{}' scale {bias_scale} is not input scale * weight scale ({exact})",
                b.name
            )));
        }
    }
    Ok(())
}

/// Derive [`QuantParams`] for a quantized conv / depthwise op.
#[allow(clippy::too_many_arguments)]
pub(crate) fn quant_params(
    op: &OpRef,
    input: &Tensor,
    filter: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
    activation: Activation,
    channels: usize,
    channel_axis: usize,
    requant: RequantMode,
) -> Result<QuantParams, ModelError> {
    let (in_scale, in_zp) = op.per_tensor_quant(input)?;
    let (out_scale, out_zp) = op.per_tensor_quant(output)?;
    let (f_scales, f_zps, per_channel) = filter_quant(op, filter, channels, channel_axis)?;
    let (qmin, qmax) = match output.dtype {
        DType::U8 => (u8::MIN_I32, u8::MAX_I32),
        _ => (i8::MIN_I32, i8::MAX_I32),
    };
    if per_channel && input.dtype != DType::I8 {
        return Err(op.err(format!(
            "per-channel quantized weights '{}' need int8 activations, input '{}' is {}",
            filter.name, input.name, input.dtype
        )));
    }
    let (multipliers, shifts, filter_offset) = if input.dtype == DType::U8 {
        // GetQuantizedConvolutionMultipler: the scale product is a float multiplication.
        let product = (in_scale * f_scales[0]) as f64;
        check_bias_scale(op, bias, in_scale, f_scales[0], out_scale)?;
        let (m, s) = quantize_multiplier(product / out_scale as f64);
        (vec![m; channels], vec![s; channels], -f_zps[0])
    } else {
        if let Some(c) = f_zps.iter().position(|&z| z != 0) {
            return Err(op.err(format!(
                "int8 weights '{}' have zero point {} on channel {c}; per-channel kernels \
                 need 0",
                filter.name, f_zps[c]
            )));
        }
        let (m, s): (Vec<i32>, Vec<i32>) = f_scales
            .iter()
            .map(|&fs| quantize_multiplier(in_scale as f64 * fs as f64 / out_scale as f64))
            .unzip();
        (m, s, 0)
    };
    let (act_min, act_max) = activation_range_quantized(activation, out_scale, out_zp, qmin, qmax);
    // ONNX Runtime (QLinearConv): `X_scale * W_scale[c] / Y_scale`, all in float.
    let float_scales = (requant == RequantMode::OnnxRuntime).then(|| {
        f_scales
            .iter()
            .map(|&fs| in_scale * fs / out_scale)
            .collect()
    });
    Ok(QuantParams {
        input_offset: -in_zp,
        filter_offset,
        output_offset: out_zp,
        multipliers,
        shifts,
        act_min,
        act_max,
        float_scales,
    })
}

/// `i32` bounds of the 8-bit types, for activation ranges.
trait Bounds {
    const MIN_I32: i32;
    const MAX_I32: i32;
}
impl<T: Q8> Bounds for T {
    const MIN_I32: i32 = T::MIN;
    const MAX_I32: i32 = T::MAX;
}

/// Spatial geometry of a conv-like op from TFLite's padding rules; checks the output shape.
#[allow(clippy::too_many_arguments)]
pub(crate) fn geometry(
    op: &OpRef,
    input: &Tensor,
    output: &Tensor,
    opts: &Conv2DOptions,
    filter_h: usize,
    filter_w: usize,
    out_c: usize,
) -> Result<ConvGeometry, ModelError> {
    op.expect_rank(input, 4)?;
    op.expect_rank(output, 4)?;
    if opts.stride_h == 0 || opts.stride_w == 0 || opts.dilation_h == 0 || opts.dilation_w == 0 {
        return Err(op.err("stride and dilation must be at least 1"));
    }
    let same = opts.padding == Padding::Same;
    let [n, ih, iw, ic] = [
        input.shape[0],
        input.shape[1],
        input.shape[2],
        input.shape[3],
    ];
    let (oh, pad_h) = kconv::window_out_and_pad(same, ih, filter_h, opts.stride_h, opts.dilation_h);
    let (ow, pad_w) = kconv::window_out_and_pad(same, iw, filter_w, opts.stride_w, opts.dilation_w);
    let expected = [n as i64, oh, ow, out_c as i64];
    if oh <= 0 || ow <= 0 || output.shape.iter().map(|&d| d as i64).ne(expected) {
        return Err(op.err(format!(
            "output '{}' has shape {:?}, but input {:?} with a {filter_h}x{filter_w} window \
             gives {expected:?}",
            output.name, output.shape, input.shape
        )));
    }
    Ok(ConvGeometry {
        batches: n,
        in_h: ih,
        in_w: iw,
        in_c: ic,
        out_h: oh as usize,
        out_w: ow as usize,
        out_c,
        filter_h,
        filter_w,
        stride_h: opts.stride_h,
        stride_w: opts.stride_w,
        dilation_h: opts.dilation_h,
        dilation_w: opts.dilation_w,
        pad_h,
        pad_w,
    })
}

struct ConvF32 {
    geom: ConvGeometry,
    activation: Activation,
    filter: Operand<f32>,
    bias: Operand<f32>,
    macs: u64,
}

impl Kernel for ConvF32 {
    fn name(&self) -> &str {
        "conv2d_f32__scalar"
    }
    fn macs(&self) -> u64 {
        self.macs
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let filter = self.filter.get(inputs).unwrap_or(&[]);
        kconv::conv_f32(
            &self.geom,
            self.activation,
            bytemuck::cast_slice(inputs[0]),
            filter,
            self.bias.get(inputs),
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

struct ConvQ8<T> {
    name: &'static str,
    geom: ConvGeometry,
    q: QuantParams,
    filter: Operand<T>,
    bias: Operand<i32>,
    macs: u64,
}

impl<T: Q8 + Pod> Kernel for ConvQ8<T> {
    fn name(&self) -> &str {
        self.name
    }
    fn macs(&self) -> u64 {
        self.macs
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let filter = self.filter.get(inputs).unwrap_or(&[]);
        kconv::conv_q8::<T>(
            &self.geom,
            &self.q,
            bytemuck::cast_slice(inputs[0]),
            filter,
            self.bias.get(inputs),
            bytemuck::cast_slice_mut(outputs[0]),
        );
    }
}

/// A raw pointer shared by the tasks of one `parallel_for`, each touching disjoint bytes.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);
// SAFETY: only used to hand disjoint regions of one buffer to the tasks of a `parallel_for`
// (the kernels document which bytes each task touches); the buffer outlives the call.
unsafe impl<T> Sync for SyncPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Send for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    #[inline]
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

/// Rows per task below which a GEMM splits over column blocks first ([`split_gemm`]).
const COLS_FIRST_ROWS: usize = 24;

/// Rows per tile (`MR`) of a micro-kernel from its self-describing tile name (`4x16_maddubs_g1`,
/// `8x32`, ...: rows `x` columns first), or 24 (a multiple of every kernel's) if it has none.
fn tile_mr(tile: &str) -> usize {
    tile.split('x')
        .next()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(24)
}

/// Quantized conv as a SIMD GEMM: 1x1 stride-1 convs read the NHWC input as the A matrix;
/// others gather windows into `scratch` (im2col, one `kp`-byte row per output pixel).
struct ConvGemm {
    name: String,
    geom: ConvGeometry,
    packed: PackedGemm,
    kernel: GemmFn,
    /// 1x1, stride 1, no padding, `in_c % 4 == 0`: no im2col.
    direct: bool,
    zx: u8,
    scratch: AlignedBuf,
    macs: u64,
    /// Column blocks per kernel call (see `run`).
    nb_chunk: usize,
    /// Rows per task unit when splitting over output pixels: the kernel's tile height, so
    /// only a task's last tile may be partial, and units are small enough to share evenly.
    row_unit: usize,
}

/// Packed weight bytes a kernel call should keep hot: half of the smallest L1 data cache of
/// the targets (32 KB on Cortex-A72), leaving room for the A rows of a tile.
const GEMM_L1_WEIGHT_BYTES: usize = 16 * 1024;

impl Kernel for ConvGemm {
    fn name(&self) -> &str {
        &self.name
    }
    fn macs(&self) -> u64 {
        self.macs
    }
    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let g = &self.geom;
        let input = inputs[0];
        let out = SyncPtr(outputs[0].as_mut_ptr());
        let rows = g.batches * g.out_h * g.out_w;
        let kp = self.packed.kp;
        let n = self.packed.n;
        let nbs = self.packed.n_blocks;
        let unit = self.row_unit;
        let units = rows.div_ceil(unit);
        let (tasks_m, tasks_n) = split_gemm(ctx.threads(), rows, units, nbs);
        // Rows of task row-chunk `tm`: whole units, spread evenly (chunks differ by at most
        // one unit, so no task is left with a sliver).
        let chunk = |tm: usize, parts: usize| {
            let u0 = tm * units / parts;
            let u1 = (tm + 1) * units / parts;
            ((u0 * unit).min(rows), (u1 * unit).min(rows))
        };
        let scratch = SyncPtr(self.scratch.as_mut_ptr());
        let (packed, kernel, direct, zx) = (&self.packed, self.kernel, self.direct, self.zx);
        let nb_chunk = self.nb_chunk;
        if !direct {
            // im2col first, as its own split over rows, so that the GEMM below may also split
            // over column blocks (tasks sharing rows then read the same scratch rows).
            let parts = units.min(2 * ctx.threads());
            ctx.parallel_for(parts, &|tm| {
                let (r0, r1) = chunk(tm, parts);
                // SAFETY: rows `r0..r1` of the `rows x kp` scratch belong to this task only.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(scratch.get().add(r0 * kp), (r1 - r0) * kp)
                };
                crate::kernels::gemm::im2col(g, input, zx, kp, r0, r1, dst);
            });
        }
        ctx.parallel_for(tasks_m * tasks_n, &|task| {
            let (tm, tn) = (task / tasks_n, task % tasks_n);
            let (r0, r1) = chunk(tm, tasks_m);
            if r0 == r1 {
                return;
            }
            let a = if direct {
                // SAFETY: row r0 of the `rows x in_c` input matrix.
                unsafe { input.as_ptr().add(r0 * kp) }
            } else {
                // SAFETY: row r0 of the scratch, filled above (no task writes it now).
                unsafe { scratch.get().add(r0 * kp) as *const u8 }
            };
            let (nb0, nb1) = (tn * nbs / tasks_n, (tn + 1) * nbs / tasks_n);
            // Column blocks in chunks whose packed weights stay in L1 while the kernel walks
            // every row of the task (kernels loop rows outside blocks: without chunks, a
            // weight matrix larger than L1 — up to 1.2 MB in the SSD heads — would stream
            // from L2 or beyond once per row tile).
            let mut c0 = nb0;
            while c0 < nb1 {
                let c1 = (c0 + nb_chunk).min(nb1);
                let rows_arg = GemmRows {
                    a,
                    a_stride: kp,
                    rows: r1 - r0,
                    // SAFETY: output row r0 of the `rows x n` output.
                    c: unsafe { out.get().add(r0 * n) },
                    c_stride: n,
                    nb_begin: c0,
                    nb_end: c1,
                };
                // SAFETY: the kernel was chosen for a tier this CPU supports (prepare); A rows
                // hold `kp` readable bytes (input rows when `direct`, scratch rows
                // otherwise), C rows `n` writable bytes, and tasks write disjoint (row, block)
                // ranges.
                unsafe { kernel(packed, &rows_arg) };
                c0 = c1;
            }
        });
    }
}

/// Task grid `(row chunks, column-block ranges)` for a GEMM of `rows` rows in `units` row
/// units and `nbs` column blocks on `threads` threads: one task single-threaded, else about
/// `4 * threads` near-equal tasks (threads take tasks dynamically, so several per thread even
/// out).
///
/// Split over rows first (A rows are then read by one task only), unless there are fewer than
/// [`COLS_FIRST_ROWS`] rows per task: then over column blocks first, so each thread streams
/// only its share of the weights, which there outweigh the activations (the SSD's 10x10 1x1
/// conv to 1280 channels went from 1.77x to 1.92x on 2 threads).
fn split_gemm(threads: usize, rows: usize, units: usize, nbs: usize) -> (usize, usize) {
    if threads <= 1 {
        return (1, 1);
    }
    let target = 4 * threads;
    if rows < COLS_FIRST_ROWS * target {
        let tasks_n = nbs.clamp(1, target);
        return (target.div_ceil(tasks_n).clamp(1, units), tasks_n);
    }
    let tasks_m = units.clamp(1, target);
    let tasks_n = target.div_ceil(tasks_m).clamp(1, nbs.max(1));
    (tasks_m, tasks_n)
}

/// A SIMD GEMM kernel for a quantized conv with constant weights, if `isa` has one.
#[allow(clippy::too_many_arguments)]
fn simd_conv(
    isa: Isa,
    op: &OpRef,
    geom: &ConvGeometry,
    q: &QuantParams,
    signed: bool,
    per_channel: bool,
    macs: u64,
) -> Option<Box<dyn Kernel>> {
    // ONNX Runtime numerics: the kernels' float epilogue (`kernels::requant`).
    let fp32 = q.float_scales.is_some();
    let filter = op.input(1).ok()?;
    let w_bytes = filter.data.as_deref()?;
    let bias: Option<Vec<i32>> = match op.opt_input(2) {
        None => None,
        Some(b) => Some(super::util::const_i32(b.data.as_deref()?)),
    };
    let choice = crate::kernels::gemm_for(isa, geom.out_c, signed, fp32)?;
    let w: Vec<i32> = if signed {
        w_bytes.iter().map(|&b| b as i8 as i32).collect()
    } else {
        w_bytes.iter().map(|&b| b as i32).collect()
    };
    let k = geom.filter_h * geom.filter_w * geom.in_c;
    let wts = GemmWeights {
        w: &w,
        zw: -q.filter_offset,
        k,
        n: geom.out_c,
        bias: bias.as_deref(),
        zx: -q.input_offset,
        signed_act: signed,
    };
    let packed = PackedGemm::pack(&wts, choice.format, choice.nr, q);
    // Packing may decline the chosen format for these weights (see `PackFormat::Maddubs`):
    // run the kernel of the format it packed instead.
    let choice = if packed.format == choice.format {
        choice
    } else {
        crate::kernels::gemm_for_format(isa, packed.format, signed, fp32)?
    };
    #[cfg(target_arch = "x86_64")]
    let tile = crate::kernels::x86_64::gemm_tile(&packed, choice.tile);
    #[cfg(not(target_arch = "x86_64"))]
    let tile = choice.tile;
    let direct = geom.filter_h == 1
        && geom.filter_w == 1
        && geom.stride_h == 1
        && geom.stride_w == 1
        && geom.pad_h == 0
        && geom.pad_w == 0
        && geom.in_c & 3 == 0;
    let rows = geom.batches * geom.out_h * geom.out_w;
    let scratch = AlignedBuf::zeroed(if direct { 0 } else { rows * packed.kp });
    let block_bytes = packed.data.len() / packed.n_blocks.max(1);
    let nb_chunk = (GEMM_L1_WEIGHT_BYTES / block_bytes.max(1)).max(1);
    let dtype = match (signed, per_channel) {
        (false, _) => "qu8",
        (true, false) => "qi8",
        (true, true) => "qi8_perchannel",
    };
    let shape = if direct {
        "conv1x1".to_string()
    } else {
        format!("conv{}x{}_im2col", geom.filter_h, geom.filter_w)
    };
    Some(Box::new(ConvGemm {
        name: format!(
            "{shape}_{dtype}_{}{}__{isa}",
            tile,
            if fp32 { "_fp32rq" } else { "" }
        ),
        geom: geom.clone(),
        packed,
        kernel: choice.kernel,
        direct,
        zx: (-q.input_offset) as u8,
        nb_chunk,
        row_unit: tile_mr(tile),
        scratch,
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
    let OpKind::Conv2D(opts) = &op.op.kind else {
        return Err(op.err("not a CONV_2D op"));
    };
    let input = op.input(0)?;
    let filter = op.input(1)?;
    let bias = op.opt_input(2);
    let output = op.output(0)?;
    op.expect_rank(filter, 4)?;
    let [out_c, kh, kw, f_in] = [
        filter.shape[0],
        filter.shape[1],
        filter.shape[2],
        filter.shape[3],
    ];
    let geom = geometry(&op, input, output, opts, kh, kw, out_c)?;
    if f_in != geom.in_c {
        return Err(op.err(format!(
            "weights '{}' have shape {:?}, input '{}' has {} channels (grouped convolution is \
             not supported)",
            filter.name, filter.shape, input.name, geom.in_c
        )));
    }
    let macs = (geom.output_len() * kh * kw * f_in) as u64;
    match input.dtype {
        DType::F32 => {
            op.expect_dtype(filter, &[DType::F32])?;
            op.expect_dtype(output, &[DType::F32])?;
            check_bias(&op, bias, DType::F32, out_c)?;
            Ok(Box::new(ConvF32 {
                geom,
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
                0,
                opts.requant,
            )?;
            let per_channel_w =
                matches!(&filter.quant, Some(Quant::PerAxis { scales, .. }) if scales.len() > 1);
            if let Some(k) = simd_conv(
                isa,
                &op,
                &geom,
                &q,
                input.dtype == DType::I8,
                per_channel_w,
                macs,
            ) {
                return Ok(k);
            }
            if input.dtype == DType::U8 {
                Ok(Box::new(ConvQ8::<u8> {
                    name: "conv2d_qu8__scalar",
                    geom,
                    q,
                    filter: Operand::from_input(&op, 1),
                    bias: Operand::from_input(&op, 2),
                    macs,
                }))
            } else {
                let per_channel = matches!(&filter.quant, Some(Quant::PerAxis { scales, .. }) if scales.len() > 1);
                Ok(Box::new(ConvQ8::<i8> {
                    name: if per_channel {
                        "conv2d_qi8_perchannel__scalar"
                    } else {
                        "conv2d_qi8__scalar"
                    },
                    geom,
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
pub(crate) mod tests {
    use super::*;
    use crate::model::{Op, Tensor};

    #[test]
    fn tile_mr_reads_the_rows_of_every_tile_name() {
        for (tile, mr) in [
            ("3x16_maddubs_g4", 3),
            ("4x16_maddubs_g1", 4),
            ("6x16", 6),
            ("12x16", 12),
            ("8x32", 8),
            ("6x64", 6),
            ("scalar", 24),
            ("0x16", 24),
        ] {
            assert_eq!(tile_mr(tile), mr, "{tile}");
        }
    }

    /// The SSD's 19x19 layers: 361 rows in 3-row units on 2 threads give each thread's
    /// contiguous block of tasks 180 and 181 rows (24-row units gave 192 and 169: 1.8x).
    #[test]
    fn gemm_rows_split_evenly_between_two_threads_at_19x19() {
        let (rows, unit) = (361usize, 3);
        let units = rows.div_ceil(unit);
        let (tm, tn) = split_gemm(2, rows, units, 6);
        assert_eq!((tm, tn), (8, 1));
        let end = |t: usize| (t * units / tm * unit).min(rows);
        let first_half = end(tm / 2);
        assert!(
            first_half.abs_diff(rows - first_half) <= unit,
            "{first_half} of {rows}"
        );
        // Few rows: column blocks first.
        assert_eq!(split_gemm(2, 100, 34, 20), (1, 8));
    }

    pub(crate) fn tensor(
        name: &str,
        shape: &[usize],
        dtype: DType,
        quant: Option<Quant>,
        data: Option<Vec<u8>>,
    ) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
            quant,
            data,
        }
    }

    pub(crate) fn pt(scale: f32, zero_point: i32) -> Option<Quant> {
        Some(Quant::PerTensor { scale, zero_point })
    }

    pub(crate) fn one_op_graph(kind: OpKind, tensors: Vec<Tensor>, n_inputs: usize) -> Graph {
        let inputs = (0..n_inputs).map(Some).collect();
        let outputs = vec![tensors.len() - 1];
        Graph {
            ops: vec![Op {
                kind,
                inputs,
                outputs: outputs.clone(),
            }],
            inputs: vec![0],
            outputs,
            tensors,
        }
    }

    /// Prepare op 0 and run it on the (non-constant) input bytes; constants come from the graph.
    pub(crate) fn run_op(graph: &Graph, input0: &[u8]) -> (String, Vec<u8>) {
        let mut k = crate::ops::prepare(graph, 0).expect("prepare");
        let op = &graph.ops[0];
        let owned: Vec<Vec<u8>> = op
            .inputs
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                Some(id) if i == 0 => {
                    let _ = id;
                    input0.to_vec()
                }
                Some(id) => graph.tensors[*id].data.clone().unwrap_or_default(),
                None => vec![],
            })
            .collect();
        // Re-home every buffer in 64-byte aligned storage (the Kernel buffer contract).
        let aligned: Vec<Vec<u64>> = owned
            .iter()
            .map(|b| vec![0u64; b.len().div_ceil(8)])
            .collect();
        let mut aligned = aligned;
        for (a, b) in aligned.iter_mut().zip(&owned) {
            bytemuck::cast_slice_mut::<u64, u8>(a)[..b.len()].copy_from_slice(b);
        }
        let ins: Vec<&[u8]> = aligned
            .iter()
            .zip(&owned)
            .map(|(a, b)| &bytemuck::cast_slice::<u64, u8>(a)[..b.len()])
            .collect();
        let out_t = &graph.tensors[op.outputs[0]];
        let out_len = out_t.byte_len();
        let mut out = vec![0u64; out_len.div_ceil(8)];
        {
            let out_bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut out)[..out_len];
            let mut outs: Vec<&mut [u8]> = vec![out_bytes];
            k.run(&RunCtx::default(), &ins, &mut outs);
        }
        let name = k.name().to_string();
        (
            name,
            bytemuck::cast_slice::<u64, u8>(&out)[..out_len].to_vec(),
        )
    }

    pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    pub(crate) fn i32_bytes(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    pub(crate) fn i8_bytes(v: &[i8]) -> Vec<u8> {
        v.iter().map(|&x| x as u8).collect()
    }

    fn opts(padding: Padding, stride: usize, dilation: usize, act: Activation) -> Conv2DOptions {
        Conv2DOptions {
            padding,
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            activation: act,
            requant: Default::default(),
        }
    }

    #[test]
    fn float_conv_same_stride2_end_to_end() {
        let g = one_op_graph(
            OpKind::Conv2D(opts(Padding::Same, 2, 1, Activation::None)),
            vec![
                tensor("in", &[1, 4, 4, 1], DType::F32, None, None),
                tensor(
                    "w",
                    &[1, 3, 3, 1],
                    DType::F32,
                    None,
                    Some(f32_bytes(&[1.0; 9])),
                ),
                tensor("b", &[1], DType::F32, None, Some(f32_bytes(&[0.5]))),
                tensor("out", &[1, 2, 2, 1], DType::F32, None, None),
            ],
            3,
        );
        let input: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let (name, out) = run_op(&g, &f32_bytes(&input));
        assert_eq!(name, "conv2d_f32__scalar");
        assert_eq!(out, f32_bytes(&[54.5, 45.5, 72.5, 54.5]));
    }

    #[test]
    fn int8_per_channel_conv_relu() {
        let w_quant = Some(Quant::PerAxis {
            axis: 0,
            scales: vec![0.5, 0.25],
            zero_points: vec![0, 0],
        });
        let g = one_op_graph(
            OpKind::Conv2D(opts(Padding::Valid, 1, 1, Activation::Relu)),
            vec![
                tensor("in", &[1, 1, 1, 2], DType::I8, pt(1.0, -1), None),
                tensor(
                    "w",
                    &[2, 1, 1, 2],
                    DType::I8,
                    w_quant,
                    Some(i8_bytes(&[2, 4, -8, 1])),
                ),
                tensor("b", &[2], DType::I32, None, Some(i32_bytes(&[1, 0]))),
                tensor("out", &[1, 1, 1, 2], DType::I8, pt(1.0, 3), None),
            ],
            3,
        );
        let (name, out) = run_op(&g, &i8_bytes(&[3, 5])); // real 4, 6
        assert!(name.contains("qi8_perchannel"), "{name}");
        // ch0: (8 + 24 + 1) * 0.5 = 16.5 -> 17 + 3 = 20; ch1: (-32 + 6) * 0.25 = -6.5 -> -7
        // + 3 = -4 -> Relu clamps at zero point 3.
        assert_eq!(out, i8_bytes(&[20, 3]));
    }

    #[test]
    fn uint8_multiplier_uses_float_scale_product() {
        // in 0.1 * filter 0.3 in float differs from the double product; the legacy uint8
        // path must use the float one (kernel_util.cc GetQuantizedConvolutionMultipler).
        let g = one_op_graph(
            OpKind::Conv2D(opts(Padding::Valid, 1, 1, Activation::Relu6)),
            vec![
                tensor("in", &[1, 1, 1, 1], DType::U8, pt(0.1, 128), None),
                tensor("w", &[1, 1, 1, 1], DType::U8, pt(0.3, 127), Some(vec![137])),
                tensor(
                    "b",
                    &[1],
                    DType::I32,
                    pt(0.1 * 0.3, 0),
                    Some(i32_bytes(&[0])),
                ),
                tensor("out", &[1, 1, 1, 1], DType::U8, pt(0.05, 0), None),
            ],
            3,
        );
        let op = OpRef::new(&g, 0);
        let q = quant_params(
            &op,
            &g.tensors[0],
            &g.tensors[1],
            Some(&g.tensors[2]),
            &g.tensors[3],
            Activation::Relu6,
            1,
            0,
            RequantMode::Tflite,
        )
        .expect("quant");
        let expected = quantize_multiplier((0.1f32 * 0.3f32) as f64 / 0.05f32 as f64);
        assert_eq!((q.multipliers[0], q.shifts[0]), expected);
        assert_eq!((q.filter_offset, q.act_min, q.act_max), (-127, 0, 120));
        // 10 * 10 = 100 * 0.6 = 60 -> clamp at quantized 6.0 = 120? no: 60 < 120.
        let (name, out) = run_op(&g, &[138]);
        assert!(name.contains("qu8"), "{name}");
        assert_eq!(out, vec![60]);
    }

    #[test]
    fn rejects_mismatched_output_shape_and_types() {
        let g = one_op_graph(
            OpKind::Conv2D(opts(Padding::Same, 2, 1, Activation::None)),
            vec![
                tensor("in", &[1, 4, 4, 1], DType::F32, None, None),
                tensor(
                    "w",
                    &[1, 3, 3, 1],
                    DType::F32,
                    None,
                    Some(f32_bytes(&[1.0; 9])),
                ),
                tensor("out", &[1, 4, 4, 1], DType::F32, None, None),
            ],
            2,
        );
        let err = prepare(&g, 0).err().expect("error").to_string();
        assert!(err.contains("CONV_2D") && err.contains("'out'"), "{err}");
        let g = one_op_graph(
            OpKind::Conv2D(opts(Padding::Same, 1, 1, Activation::None)),
            vec![
                tensor("in", &[1, 4, 4, 1], DType::I16, None, None),
                tensor(
                    "w",
                    &[1, 3, 3, 1],
                    DType::F32,
                    None,
                    Some(f32_bytes(&[1.0; 9])),
                ),
                tensor("out", &[1, 4, 4, 1], DType::F32, None, None),
            ],
            2,
        );
        let err = prepare(&g, 0).err().expect("error").to_string();
        assert!(err.contains("int16") && err.contains("'in'"), "{err}");
    }
}

/// Bit-exactness against LiteRT BUILTIN_REF on random single-op models
/// (`tests/data/ops/*.json`, generated by `scripts/goldens/op_cases.py`).
#[cfg(test)]
pub(crate) mod litert_cases {
    use super::tests::run_op;
    use crate::model::{
        Activation, Conv2DOptions, DType, Graph, Op, OpKind, Padding, Pool2DOptions, Quant, Tensor,
    };
    use serde_json::Value;

    fn dtype(s: &str) -> DType {
        match s {
            "float32" => DType::F32,
            "uint8" => DType::U8,
            "int8" => DType::I8,
            "int32" => DType::I32,
            "int64" => DType::I64,
            "float16" => DType::F16,
            other => panic!("dtype {other}"),
        }
    }

    fn bytes(dt: DType, v: &Value) -> Vec<u8> {
        let vals = v.as_array().expect("array");
        match dt {
            DType::F32 => vals
                .iter()
                .flat_map(|x| (x.as_f64().expect("f") as f32).to_le_bytes())
                .collect(),
            DType::U8 => vals.iter().map(|x| x.as_i64().expect("i") as u8).collect(),
            DType::I8 => vals
                .iter()
                .map(|x| x.as_i64().expect("i") as i8 as u8)
                .collect(),
            DType::I32 => vals
                .iter()
                .flat_map(|x| (x.as_i64().expect("i") as i32).to_le_bytes())
                .collect(),
            DType::I64 => vals
                .iter()
                .flat_map(|x| x.as_i64().expect("i").to_le_bytes())
                .collect(),
            DType::F16 => vals
                .iter()
                .flat_map(|x| half::f16::from_f64(x.as_f64().expect("f")).to_le_bytes())
                .collect(),
            other => panic!("dtype {other}"),
        }
    }

    fn usizes(v: &Value) -> Vec<usize> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_u64().expect("u") as usize)
            .collect()
    }

    fn activation(o: &Value) -> Activation {
        match o["activation"].as_str().unwrap_or("none") {
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "relu_n1_to_1" => Activation::ReluN1To1,
            _ => Activation::None,
        }
    }

    fn padding(o: &Value) -> Padding {
        if o["padding"] == "same" {
            Padding::Same
        } else {
            Padding::Valid
        }
    }

    /// `rank`: rank of the op's output (for axis normalization).
    fn kind(op: &str, o: &Value, rank: usize) -> OpKind {
        let conv = || {
            let s = usizes(&o["stride"]);
            let d = usizes(&o["dilation"]);
            Conv2DOptions {
                padding: padding(o),
                stride_h: s[0],
                stride_w: s[1],
                dilation_h: d[0],
                dilation_w: d[1],
                activation: activation(o),
                requant: Default::default(),
            }
        };
        let pool = || {
            let s = usizes(&o["stride"]);
            let f = usizes(&o["filter"]);
            Pool2DOptions {
                padding: padding(o),
                stride_h: s[0],
                stride_w: s[1],
                filter_h: f[0],
                filter_w: f[1],
                activation: activation(o),
            }
        };
        match op {
            "CONV_2D" => OpKind::Conv2D(conv()),
            "DEPTHWISE_CONV_2D" => OpKind::DepthwiseConv2D {
                conv: conv(),
                depth_multiplier: o["depth_multiplier"].as_u64().expect("m") as usize,
            },
            "FULLY_CONNECTED" => OpKind::FullyConnected {
                activation: activation(o),
                keep_num_dims: o["keep_num_dims"].as_bool().expect("b"),
            },
            "MAX_POOL_2D" => OpKind::MaxPool2D(pool()),
            "AVERAGE_POOL_2D" => OpKind::AveragePool2D(pool()),
            "MEAN" => OpKind::Mean {
                keep_dims: o["keep_dims"].as_bool().expect("b"),
            },
            "ADD" => OpKind::Add {
                activation: activation(o),
            },
            "MUL" => OpKind::Mul {
                activation: activation(o),
            },
            // The loader normalizes negative axes (Graph::validate); the test does it here.
            "CONCATENATION" => OpKind::Concatenation {
                axis: {
                    let a = o["axis"].as_i64().expect("axis");
                    (if a < 0 { a + rank as i64 } else { a }) as usize
                },
                activation: activation(o),
            },
            "RESHAPE" => OpKind::Reshape,
            "PAD" => OpKind::Pad,
            "DEPTH_TO_SPACE" => OpKind::DepthToSpace {
                block_size: o["block_size"].as_u64().expect("bs") as usize,
            },
            "RELU" => OpKind::Relu,
            "RELU6" => OpKind::Relu6,
            "PRELU" => OpKind::Prelu,
            "LOGISTIC" => OpKind::Logistic,
            "SOFTMAX" => OpKind::Softmax {
                beta: o["beta"].as_f64().expect("beta") as f32,
            },
            "RESIZE_BILINEAR" => OpKind::ResizeBilinear {
                align_corners: o["align_corners"].as_bool().expect("b"),
                half_pixel_centers: o["half_pixel_centers"].as_bool().expect("b"),
            },
            "RESIZE_NEAREST_NEIGHBOR" => OpKind::ResizeNearestNeighbor {
                align_corners: o["align_corners"].as_bool().expect("b"),
                half_pixel_centers: o["half_pixel_centers"].as_bool().expect("b"),
            },
            "QUANTIZE" => OpKind::Quantize {
                mode: Default::default(),
            },
            "DEQUANTIZE" => OpKind::Dequantize,
            other => panic!("op {other}"),
        }
    }

    /// Run every case of `file`; returns the number of cases checked.
    pub(crate) fn check_file(file: &str) -> usize {
        let path = format!("{}/tests/data/ops/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("read case file");
        let root: Value = serde_json::from_str(&text).expect("json");
        let cases = root["cases"].as_array().expect("cases");
        let mut failures = Vec::new();
        for (ci, c) in cases.iter().enumerate() {
            let tensors: Vec<Tensor> = c["tensors"]
                .as_array()
                .expect("tensors")
                .iter()
                .map(|t| {
                    let dt = dtype(t["dtype"].as_str().expect("dtype"));
                    let quant = t["quant"].as_object().map(|q| {
                        let scales: Vec<f32> = q["scales"]
                            .as_array()
                            .expect("s")
                            .iter()
                            .map(|x| x.as_f64().expect("f") as f32)
                            .collect();
                        let zps: Vec<i32> = q["zero_points"]
                            .as_array()
                            .expect("z")
                            .iter()
                            .map(|x| x.as_i64().expect("i") as i32)
                            .collect();
                        if scales.len() == 1 {
                            Quant::PerTensor {
                                scale: scales[0],
                                zero_point: zps[0],
                            }
                        } else {
                            Quant::PerAxis {
                                axis: q["axis"].as_u64().expect("a") as usize,
                                scales,
                                zero_points: zps,
                            }
                        }
                    });
                    Tensor {
                        name: t["name"].as_str().expect("n").into(),
                        shape: usizes(&t["shape"]),
                        dtype: dt,
                        quant,
                        data: t.get("data").filter(|d| !d.is_null()).map(|d| bytes(dt, d)),
                    }
                })
                .collect();
            let inputs = usizes(&c["inputs"]).into_iter().map(Some).collect();
            let outputs = usizes(&c["outputs"]);
            let op_name = c["op"].as_str().expect("op");
            let first = usizes(&c["inputs"])[0];
            let in_dt = tensors[first].dtype;
            let out_dt = tensors[outputs[0]].dtype;
            let rank = tensors[outputs[0]].shape.len();
            // `input0: null` when every op input is a constant (e.g. per-axis DEQUANTIZE).
            let input0 = if c["input0"].is_null() {
                tensors[first].data.clone().expect("constant input 0")
            } else {
                bytes(in_dt, &c["input0"])
            };
            let g = Graph {
                ops: vec![Op {
                    kind: kind(op_name, &c["options"], rank),
                    inputs,
                    outputs: outputs.clone(),
                }],
                inputs: vec![0],
                outputs,
                tensors,
            };
            let (name, out) = run_op(&g, &input0);
            let expected = bytes(out_dt, &c["expected"]);
            if out != expected {
                let elem = out_dt.size();
                let first = (0..out.len() / elem)
                    .find(|&i| out[i * elem..(i + 1) * elem] != expected[i * elem..(i + 1) * elem])
                    .unwrap_or(0);
                failures.push(format!(
                    "case {ci} ({op_name}, kernel {name}, options {}, tensors {}): first differing element {first}: got {:?}, want {:?}",
                    c["options"],
                    serde_json::to_string(&c["tensors"].as_array().expect("t").iter().map(|t| (t["dtype"].clone(), t["shape"].clone(), t["quant"].clone())).collect::<Vec<_>>()).unwrap_or_default(),
                    &out[first * elem..(first + 1) * elem],
                    &expected[first * elem..(first + 1) * elem],
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{file}: {} of {} cases differ from LiteRT:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
        cases.len()
    }
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref() {
    assert!(crate::ops::conv::litert_cases::check_file("conv2d.json") > 0);
}
