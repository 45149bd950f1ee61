//! Operators: load-time preparation of each IR op into a [`Kernel`].
//!
//! `prepare` is translate time: it validates shapes and dtypes, derives quantization parameters
//! (fixed-point multipliers, lookup tables), converts or packs constant weights, and sizes any
//! scratch memory. [`Kernel::run`] is run time: it only computes, never allocates, never fails.
//!
//! One file per op family. Each exposes `pub fn prepare(graph: &Graph, index: usize)
//! -> Result<Box<dyn Kernel>, ModelError>`.

pub mod activation;
pub mod concat;
pub mod conv;
pub mod depthwise;
pub mod detection_postprocess;
pub mod elementwise;
pub mod fully_connected;
pub mod pool;
pub mod quantize;
pub mod reduce;
pub mod resize;
pub mod shape;
pub mod util;

#[cfg(test)]
mod simd_tests;

use crate::error::ModelError;
use crate::model::{Graph, OpKind};
use crate::runtime::pool::ThreadPool;

/// Shared, read-only state of a run: the threads kernels may use.
#[derive(Debug, Clone, Default)]
pub struct RunCtx {
    pool: Option<std::sync::Arc<ThreadPool>>,
}

impl RunCtx {
    /// A context with `threads` threads in total (1 = the calling thread only).
    pub fn with_threads(threads: usize) -> RunCtx {
        RunCtx {
            pool: (threads > 1).then(|| std::sync::Arc::new(ThreadPool::new(threads))),
        }
    }

    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.threads())
    }

    /// Run `f(i)` for `i in 0..tasks` on the pool (or inline with one thread). Tasks must write
    /// disjoint outputs and compute them exactly as a single-threaded run would.
    pub fn parallel_for(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        match &self.pool {
            Some(p) => p.run(tasks, f),
            None => (0..tasks).for_each(f),
        }
    }
}

/// A prepared operator.
///
/// Buffer contract: `inputs[i]` holds the bytes of op input `i` (an empty slice for an absent
/// optional input), constants included; `outputs[j]` the bytes of op output `j`. All buffers
/// start 64-byte aligned and are exactly `num_elements * dtype size` long, so typed views with
/// [`util::f32s`] etc. never fail. Outputs never alias inputs.
pub trait Kernel: Send {
    /// Self-describing name: op, dtype, ISA, e.g. `conv2d_qu8__scalar`.
    fn name(&self) -> &str;

    /// Multiply-accumulates per run (for GMAC/s in profiles); 0 when not meaningful.
    fn macs(&self) -> u64 {
        0
    }

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]);
}

/// Prepare op `index` of `graph` with kernels for tier `isa` (ops without SIMD kernels ignore
/// it); `prepare` uses the process-wide tier (`kernels::isa::selected`).
pub fn prepare_with_isa(
    graph: &Graph,
    index: usize,
    isa: crate::kernels::Isa,
) -> Result<Box<dyn Kernel>, ModelError> {
    match &graph.ops[index].kind {
        OpKind::Conv2D(_) => conv::prepare_with_isa(graph, index, isa),
        OpKind::DepthwiseConv2D { .. } => depthwise::prepare_with_isa(graph, index, isa),
        OpKind::Add { .. } | OpKind::Mul { .. } => elementwise::prepare_with_isa(graph, index, isa),
        _ => prepare(graph, index),
    }
}

/// Prepare op `index` of `graph`.
pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    match &graph.ops[index].kind {
        OpKind::Conv2D(_) => conv::prepare(graph, index),
        OpKind::DepthwiseConv2D { .. } => depthwise::prepare(graph, index),
        OpKind::FullyConnected { .. } => fully_connected::prepare(graph, index),
        OpKind::Add { .. } | OpKind::Mul { .. } => elementwise::prepare(graph, index),
        OpKind::Concatenation { .. } => concat::prepare(graph, index),
        OpKind::Reshape | OpKind::Pad | OpKind::DepthToSpace { .. } => shape::prepare(graph, index),
        OpKind::MaxPool2D(_) | OpKind::AveragePool2D(_) => pool::prepare(graph, index),
        OpKind::Mean { .. } => reduce::prepare(graph, index),
        OpKind::Relu
        | OpKind::Relu6
        | OpKind::Prelu
        | OpKind::Logistic
        | OpKind::Softmax { .. } => activation::prepare(graph, index),
        OpKind::ResizeBilinear { .. } | OpKind::ResizeNearestNeighbor { .. } => {
            resize::prepare(graph, index)
        }
        OpKind::Quantize { .. } | OpKind::Dequantize => quantize::prepare(graph, index),
        OpKind::DetectionPostProcess(_) => detection_postprocess::prepare(graph, index),
    }
}
