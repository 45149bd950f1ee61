//! A loaded model, prepared and planned, that runs frame after frame.
//!
//! Load time (`Session::new`): prepare one kernel per op, copy constants into aligned storage,
//! plan the arena. Run time (`Session::run`): walk the ops, hand each kernel views of its
//! tensors; nothing is allocated.

mod aligned;
pub mod pool;

use std::time::{Duration, Instant};

pub use aligned::AlignedBuf;

use crate::error::ModelError;
use crate::model::{Graph, TensorId};
use crate::ops::{self, Kernel, RunCtx};
use crate::plan::{self, Plan, Span};

/// Most inputs / outputs one op may have (views are built in fixed arrays so a run never
/// allocates).
pub const MAX_OP_INPUTS: usize = 64;
pub const MAX_OP_OUTPUTS: usize = 8;

/// Refuse models whose activations need more memory than an edge board has: 4 GiB, or half
/// the address space on 32-bit boards (computed in u64: `4usize << 30` is 0 there, which
/// refused every model on armv7).
pub const MAX_ARENA_BYTES: usize = {
    let limit = 4u64 << 30;
    let half_space = (usize::MAX / 2) as u64;
    (if limit < half_space {
        limit
    } else {
        half_space
    }) as usize
};
// Regression guard for the armv7 bug above, checked by every build for every target.
const _: () = assert!(MAX_ARENA_BYTES >= 1 << 30);

#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Give every tensor its own memory so all intermediates can be read after a run.
    pub preserve_all_tensors: bool,
    /// Threads kernels may use (1 = run on the calling thread only).
    pub threads: usize,
    /// Kernel tier; `None` = the process-wide one (`SPOTTER_ISA` or the best available).
    pub isa: Option<crate::kernels::Isa>,
}

/// Where an op's operand lives.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Absent,
    Const(usize),
    Arena(Span),
}

pub struct Session {
    graph: Graph,
    kernels: Vec<Box<dyn Kernel>>,
    /// Per op: input and output locations, resolved at load.
    op_inputs: Vec<Vec<Loc>>,
    op_outputs: Vec<Vec<Span>>,
    consts: Vec<AlignedBuf>,
    plan: Plan,
    arena: AlignedBuf,
    ctx: RunCtx,
}

impl Session {
    pub fn new(graph: Graph, options: SessionOptions) -> Result<Session, ModelError> {
        if let Some(isa) = options.isa.filter(|i| !i.supported()) {
            return Err(ModelError::Invalid {
                what: format!("this CPU cannot run kernel tier {isa}"),
            });
        }
        let mut kernels = Vec::with_capacity(graph.ops.len());
        let mut failures = Vec::new();
        for index in 0..graph.ops.len() {
            let prepared = match options.isa {
                Some(isa) => ops::prepare_with_isa(&graph, index, isa),
                None => ops::prepare(&graph, index),
            };
            match prepared {
                Ok(k) => kernels.push(k),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if !failures.is_empty() {
            return Err(ModelError::Invalid {
                what: failures.join("\n"),
            });
        }

        let plan = plan::plan(&graph, options.preserve_all_tensors);
        if plan.arena_size > MAX_ARENA_BYTES {
            return Err(ModelError::Invalid {
                what: format!(
                    "the model needs {} MiB of activation memory, more than the {} MiB limit",
                    plan.arena_size >> 20,
                    MAX_ARENA_BYTES >> 20
                ),
            });
        }
        let mut const_index = vec![usize::MAX; graph.tensors.len()];
        let mut consts = Vec::new();
        for (id, t) in graph.tensors.iter().enumerate() {
            if let Some(d) = &t.data {
                const_index[id] = consts.len();
                consts.push(AlignedBuf::from_bytes(d));
            }
        }
        let mut op_inputs = Vec::with_capacity(graph.ops.len());
        let mut op_outputs = Vec::with_capacity(graph.ops.len());
        for (index, op) in graph.ops.iter().enumerate() {
            if op.inputs.len() > MAX_OP_INPUTS || op.outputs.len() > MAX_OP_OUTPUTS {
                return Err(ModelError::invalid_op(
                    graph.op_label(index),
                    format!(
                        "{} inputs / {} outputs; at most {MAX_OP_INPUTS} / {MAX_OP_OUTPUTS} are supported",
                        op.inputs.len(),
                        op.outputs.len()
                    ),
                ));
            }
            op_inputs.push(
                op.inputs
                    .iter()
                    .map(|i| match i {
                        None => Loc::Absent,
                        Some(id) if graph.tensors[*id].is_const() => Loc::Const(const_index[*id]),
                        Some(id) => Loc::Arena(plan.spans[*id].expect("activations are planned")),
                    })
                    .collect(),
            );
            op_outputs.push(
                op.outputs
                    .iter()
                    .map(|o| plan.spans[*o].expect("outputs are planned"))
                    .collect(),
            );
        }
        let arena = AlignedBuf::zeroed(plan.arena_size);
        let ctx = RunCtx::with_threads(options.threads.max(1));
        log::debug!(
            "session: {} ops, arena {} KiB, {} constants",
            graph.ops.len(),
            plan.arena_size / 1024,
            consts.len()
        );
        Ok(Session {
            graph,
            kernels,
            op_inputs,
            op_outputs,
            consts,
            plan,
            arena,
            ctx,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_size
    }

    /// Kernel names in op order (for profiles and logs).
    pub fn kernel_names(&self) -> Vec<String> {
        self.kernels.iter().map(|k| k.name().to_string()).collect()
    }

    pub fn kernel_macs(&self) -> Vec<u64> {
        self.kernels.iter().map(|k| k.macs()).collect()
    }

    /// Bytes of graph input `i`, to be filled before `run`.
    pub fn input_mut(&mut self, i: usize) -> &mut [u8] {
        let id = self.graph.inputs[i];
        let s = self.plan.spans[id].expect("graph inputs are planned");
        &mut self.arena.as_mut_slice()[s.offset..s.offset + s.len]
    }

    /// Bytes of graph output `i` after `run`.
    pub fn output(&self, i: usize) -> &[u8] {
        self.tensor_bytes(self.graph.outputs[i])
            .expect("graph outputs are planned")
    }

    /// Current bytes of any tensor: constants, or arena contents (only meaningful for
    /// intermediates with `preserve_all_tensors`).
    pub fn tensor_bytes(&self, id: TensorId) -> Option<&[u8]> {
        let t = self.graph.tensors.get(id)?;
        if let Some(d) = &t.data {
            return Some(d);
        }
        let s = self.plan.spans[id]?;
        Some(&self.arena.as_slice()[s.offset..s.offset + s.len])
    }

    /// Run the whole graph once.
    pub fn run(&mut self) {
        self.run_observed(&mut |_, _| {});
    }

    /// Run, reporting each op's index and wall time to `observe` (for `--profile`).
    pub fn run_observed(&mut self, observe: &mut dyn FnMut(usize, Duration)) {
        let base = self.arena.as_mut_ptr();
        let arena_len = self.arena.len();
        for (index, kernel) in self.kernels.iter_mut().enumerate() {
            let mut ins: [&[u8]; MAX_OP_INPUTS] = [&[]; MAX_OP_INPUTS];
            let mut outs: [&mut [u8]; MAX_OP_OUTPUTS] = Default::default();
            let in_locs = &self.op_inputs[index];
            let out_spans = &self.op_outputs[index];
            for (slot, loc) in ins.iter_mut().zip(in_locs) {
                *slot = match *loc {
                    Loc::Absent => &[],
                    Loc::Const(c) => self.consts[c].as_slice(),
                    Loc::Arena(s) => {
                        debug_assert!(s.offset + s.len <= arena_len);
                        // SAFETY: the span lies inside the arena (planned from its size). The
                        // planner never lets an op's output overlap its inputs (their lifetimes
                        // overlap at this op), so these shared views do not alias the mutable
                        // output views created below.
                        unsafe { std::slice::from_raw_parts(base.add(s.offset), s.len) }
                    }
                };
            }
            for (slot, s) in outs.iter_mut().zip(out_spans) {
                debug_assert!(s.offset + s.len <= arena_len);
                // SAFETY: inside the arena as above; outputs of one op are distinct tensors with
                // overlapping lifetimes, so the planner gave them disjoint spans, disjoint from
                // every input of this op too.
                *slot = unsafe { std::slice::from_raw_parts_mut(base.add(s.offset), s.len) };
            }
            let start = Instant::now();
            kernel.run(
                &self.ctx,
                &ins[..in_locs.len()],
                &mut outs[..out_spans.len()],
            );
            observe(index, start.elapsed());
        }
    }
}
