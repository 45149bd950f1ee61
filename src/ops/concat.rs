//! CONCATENATION (float32, uint8, int8) along an already-normalized axis.
//!
//! TFLite `concatenation.cc`: uint8 goes through `ConcatenationWithScaling` (inputs whose
//! scale/zero point differ from the output's are requantized in float), int8 requires equal
//! quantization (Prepare rejects otherwise), float32 is a plain copy. A fused activation is
//! rejected, as TFLite's Prepare does (`params->activation != kTfLiteActNone`; checked against
//! LiteRT 2.3.0).

use crate::error::ModelError;
use crate::kernels::reference::concat::ConcatRescale;
use crate::model::{Activation, DType, Graph, OpKind};

use super::conv::SyncPtr;
use super::util::OpRef;
use super::{Kernel, RunCtx};

struct Concat {
    name: String,
    /// Per input: bytes copied per outer index (`shape[axis] * inner * element size`).
    copy_sizes: Vec<usize>,
    /// uint8 only: `Some` for inputs that need requantization, as a 256-entry table
    /// (`ConcatRescale::apply` is a function of one byte, so the table is bit-exact).
    rescale: Vec<Option<Box<[u8; 256]>>>,
}

/// Outputs at least this big are split over the pool (the SSD's 1917 x 91 class logits);
/// smaller ones are not worth a wake-up.
const PARALLEL_BYTES: usize = 32 * 1024;

impl Concat {
    /// Output bytes `[lo, lo + out.len())`, from the inputs' bytes. The output is `outer` rows
    /// of the inputs' segments in order; each output byte is a copy (or the rescale table
    /// entry) of exactly one input byte, so any split of the range gives the same bytes.
    fn fill(&self, inputs: &[&[u8]], lo: usize, out: &mut [u8]) {
        let row: usize = self.copy_sizes.iter().sum();
        let hi = lo + out.len();
        let mut pos = lo;
        while pos < hi {
            let (k, within) = (pos / row, pos % row);
            let mut seg = 0;
            for (i, &len) in self.copy_sizes.iter().enumerate() {
                if within < seg + len {
                    let take = (seg + len - within).min(hi - pos);
                    let from = k * len + (within - seg);
                    let src = &inputs[i][from..from + take];
                    let dst = &mut out[pos - lo..pos - lo + take];
                    match self.rescale.get(i).and_then(|r| r.as_deref()) {
                        None => dst.copy_from_slice(src),
                        Some(lut) => {
                            for (d, s) in dst.iter_mut().zip(src) {
                                *d = lut[usize::from(*s)];
                            }
                        }
                    }
                    pos += take;
                    break;
                }
                seg += len;
            }
        }
    }
}

impl Kernel for Concat {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let out = &mut *outputs[0];
        let total = out.len();
        let tasks = if ctx.threads() > 1 && total >= PARALLEL_BYTES {
            (total / (PARALLEL_BYTES / 2)).clamp(1, 4 * ctx.threads())
        } else {
            1
        };
        if tasks == 1 {
            self.fill(inputs, 0, out);
            return;
        }
        let dst = SyncPtr(out.as_mut_ptr());
        let this = &*self;
        ctx.parallel_for(tasks, &|t| {
            let (lo, hi) = (t * total / tasks, (t + 1) * total / tasks);
            // SAFETY: bytes `lo..hi` of the output buffer (length `total`) belong to this task
            // only; the buffer outlives the `parallel_for`.
            let part = unsafe { std::slice::from_raw_parts_mut(dst.get().add(lo), hi - lo) };
            this.fill(inputs, lo, part);
        });
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let (axis, activation) = match &op.op.kind {
        OpKind::Concatenation { axis, activation } => (*axis, *activation),
        other => return Err(op.err(format!("concat cannot prepare {}", other.name()))),
    };
    if activation != Activation::None {
        return Err(op.err(format!(
            "fused activation {activation:?} is not supported (TFLite requires NONE)"
        )));
    }
    let out = op.output(0)?;
    op.expect_dtype(out, &[DType::F32, DType::U8, DType::I8])?;
    let rank = out.shape.len();
    if axis >= rank {
        return Err(op.err(format!("axis {axis} out of range for output rank {rank}")));
    }
    let inner: usize = out.shape[axis + 1..].iter().product();
    let n_inputs = op.op.inputs.len();
    if n_inputs == 0 {
        return Err(op.err("no inputs"));
    }
    let mut copy_sizes = Vec::with_capacity(n_inputs);
    let mut rescale = Vec::with_capacity(n_inputs);
    let mut axis_sum = 0;
    let out_q = if out.dtype.is_q8() {
        Some(op.per_tensor_quant(out)?)
    } else {
        None
    };
    for i in 0..n_inputs {
        let t = op.input(i)?;
        op.expect_dtype(t, &[out.dtype])?;
        let matches = t.shape.len() == rank
            && t.shape
                .iter()
                .zip(&out.shape)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !matches {
            return Err(op.err(format!(
                "input {i} ('{}') shape {:?} does not fit output shape {:?} on axis {axis}",
                t.name, t.shape, out.shape
            )));
        }
        axis_sum += t.shape[axis];
        copy_sizes.push(t.shape[axis] * inner * out.dtype.size());
        let mut r = None;
        if let Some((so, zo)) = out_q {
            let (si, zi) = op.per_tensor_quant(t)?;
            if si != so || zi != zo {
                if out.dtype == DType::I8 {
                    return Err(op.err(format!(
                        "int8 input '{}' quantization ({si}, {zi}) differs from output's ({so}, {zo}); TFLite requires them equal",
                        t.name
                    )));
                }
                let rs = ConcatRescale::new(si, zi, so, zo);
                let mut lut = Box::new([0u8; 256]);
                for (q, v) in lut.iter_mut().enumerate() {
                    *v = rs.apply(q as u8);
                }
                r = Some(lut);
            }
        }
        rescale.push(r);
    }
    if axis_sum != out.shape[axis] {
        return Err(op.err(format!(
            "inputs sum to {axis_sum} along axis {axis}, output '{}' has {}",
            out.name, out.shape[axis]
        )));
    }
    let tag = match out.dtype {
        DType::F32 => "f32",
        DType::U8 => "qu8",
        _ => "qi8",
    };
    Ok(Box::new(Concat {
        name: format!("concatenation_{tag}__scalar"),
        copy_sizes,
        rescale,
    }))
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_concatenation() {
    assert!(crate::ops::conv::litert_cases::check_file("concatenation.json") > 0);
}

#[cfg(test)]
#[test]
fn fused_activation_is_rejected_like_tflite() {
    use crate::model::{Op, Tensor};
    let t = |name: &str, shape: &[usize]| Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: DType::F32,
        quant: None,
        data: None,
    };
    let g = Graph {
        tensors: vec![t("a", &[1, 2]), t("b", &[1, 2]), t("out", &[1, 4])],
        ops: vec![Op {
            kind: OpKind::Concatenation {
                axis: 1,
                activation: Activation::Relu,
            },
            inputs: vec![Some(0), Some(1)],
            outputs: vec![2],
        }],
        inputs: vec![0, 1],
        outputs: vec![2],
    };
    let err = prepare(&g, 0).err().expect("must fail").to_string();
    assert!(
        err.contains("CONCATENATION") && err.contains("Relu"),
        "{err}"
    );
}

/// The parallel split of big outputs: uint8 with a requantized input, float32, several outer
/// rows, segment boundaries inside task ranges; every thread count gives the bytes of a plain
/// per-row copy.
#[cfg(test)]
#[test]
fn parallel_concat_matches_serial_copy() {
    use crate::kernels::reference::concat::ConcatRescale;
    use crate::ops::conv::tests::{one_op_graph, pt, tensor};
    let kind = OpKind::Concatenation {
        axis: 1,
        activation: Activation::None,
    };
    let sizes = [40usize, 21, 70];
    for dtype in [DType::U8, DType::F32] {
        let esize = dtype.size();
        let quant =
            |i: usize| (dtype == DType::U8).then_some(if i == 1 { (0.5, 3) } else { (0.25, 128) });
        let mut tensors: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let q = quant(i).and_then(|(sc, zp)| pt(sc, zp));
                tensor(&format!("in{i}"), &[3, s, 100], dtype, q, None)
            })
            .collect();
        let out_q = quant(0).and_then(|(sc, zp)| pt(sc, zp));
        tensors.push(tensor("out", &[3, 131, 100], dtype, out_q, None));
        let g = one_op_graph(kind.clone(), tensors, sizes.len());
        let inputs: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                (0..3 * s * 100 * esize)
                    .map(|j| (j * 7 + i * 31 + j / 251) as u8)
                    .collect()
            })
            .collect();
        // Expected: per outer row, each input's row in order (input 1 of the uint8 case
        // requantized to the output's (0.25, 128)).
        let mut want = Vec::new();
        for k in 0..3 {
            for (i, &s) in sizes.iter().enumerate() {
                let row = &inputs[i][k * s * 100 * esize..(k + 1) * s * 100 * esize];
                if dtype == DType::U8 && i == 1 {
                    let rs = ConcatRescale::new(0.5, 3, 0.25, 128);
                    want.extend(row.iter().map(|&b| rs.apply(b)));
                } else {
                    want.extend_from_slice(row);
                }
            }
        }
        for threads in 1..=4 {
            let mut k = prepare(&g, 0).expect("prepare");
            let ctx = RunCtx::with_threads(threads);
            let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
            let mut out = vec![0u8; want.len()];
            k.run(&ctx, &ins, &mut [out.as_mut_slice()]);
            assert!(out == want, "{dtype} concat at {threads} threads differs");
        }
    }
}
