//! Static memory planning: every activation tensor gets an offset in one arena.
//!
//! Each activation has a lifetime `[first, last]` in op indices (graph inputs start before op
//! 0; graph outputs live to the end). Tensors whose lifetimes overlap never share bytes; the rest
//! may. Placement is TFLite's "greedy by size": biggest tensors first, each at the lowest
//! aligned offset that does not collide with an already placed, lifetime-overlapping tensor.

use crate::model::Graph;

/// Alignment of every arena offset, in bytes: a full AVX-512 / cache line.
pub const ALIGN: usize = 64;

/// Where a tensor lives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// Arena span per tensor; `None` for constants.
    pub spans: Vec<Option<Span>>,
    pub arena_size: usize,
}

fn align_up(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// Plan the arena for `graph`. With `preserve_all`, no two tensors share memory (so every
/// intermediate can be read after a run, for debugging and golden tests).
pub fn plan(graph: &Graph, preserve_all: bool) -> Plan {
    let n = graph.tensors.len();
    let end = graph.ops.len() + 1;
    // Lifetimes in "time" units: graph inputs at 0, op i at i + 1.
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    let touch = |id: usize, t: usize, first: &mut Vec<usize>, last: &mut Vec<usize>| {
        first[id] = first[id].min(t);
        last[id] = last[id].max(t);
    };
    for &i in &graph.inputs {
        touch(i, 0, &mut first, &mut last);
    }
    for (k, op) in graph.ops.iter().enumerate() {
        for &id in op.inputs.iter().flatten().chain(op.outputs.iter()) {
            touch(id, k + 1, &mut first, &mut last);
        }
    }
    for &o in &graph.outputs {
        touch(o, end, &mut first, &mut last);
    }

    let mut order: Vec<usize> = (0..n)
        .filter(|&i| !graph.tensors[i].is_const() && first[i] != usize::MAX)
        .collect();
    // Biggest first; ties by first use for determinism.
    order.sort_by_key(|&i| (std::cmp::Reverse(graph.tensors[i].byte_len()), first[i], i));

    let mut spans: Vec<Option<Span>> = vec![None; n];
    let mut placed: Vec<usize> = Vec::with_capacity(order.len());
    let mut arena_size = 0;
    for &id in &order {
        let len = graph.tensors[id].byte_len();
        let size = align_up(len.max(1));
        let offset = if preserve_all {
            arena_size
        } else {
            // Collect conflicting intervals, sorted by offset, and take the first gap.
            let mut busy: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&o| first[o] <= last[id] && first[id] <= last[o])
                .map(|&o| {
                    let s = spans[o].expect("placed tensors have spans");
                    (s.offset, s.offset + align_up(s.len.max(1)))
                })
                .collect();
            busy.sort_unstable();
            let mut candidate = 0;
            for (start, stop) in busy {
                if candidate + size <= start {
                    break;
                }
                candidate = candidate.max(stop);
            }
            candidate
        };
        spans[id] = Some(Span { offset, len });
        arena_size = arena_size.max(offset + size);
        placed.push(id);
    }
    Plan { spans, arena_size }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DType, Op, OpKind, Tensor};

    fn t(name: &str, n: usize) -> Tensor {
        Tensor {
            name: name.into(),
            shape: vec![n],
            dtype: DType::U8,
            quant: None,
            data: None,
        }
    }

    /// a -> relu -> b -> relu -> c -> relu -> d: a and c may share, b and d may share.
    fn chain() -> Graph {
        let tensors = vec![t("a", 100), t("b", 100), t("c", 100), t("d", 100)];
        let ops = (0..3)
            .map(|i| Op {
                kind: OpKind::Relu,
                inputs: vec![Some(i)],
                outputs: vec![i + 1],
            })
            .collect();
        Graph {
            tensors,
            ops,
            inputs: vec![0],
            outputs: vec![3],
        }
    }

    #[test]
    fn live_tensors_never_overlap_and_dead_ones_are_reused() {
        let g = chain();
        let p = plan(&g, false);
        assert_eq!(p.arena_size, 2 * ALIGN * 2);
        let s: Vec<Span> = p.spans.iter().map(|s| s.unwrap()).collect();
        for (x, y) in [(0, 1), (1, 2), (2, 3)] {
            let (a, b) = (s[x], s[y]);
            assert!(a.offset + a.len <= b.offset || b.offset + b.len <= a.offset);
        }
        assert!(s.iter().all(|s| s.offset % ALIGN == 0));
    }

    #[test]
    fn preserve_all_gives_every_tensor_its_own_bytes() {
        let p = plan(&chain(), true);
        assert_eq!(p.arena_size, 4 * 128);
    }
}
