//! RESHAPE (byte copy), PAD (constant paddings, int32/int64) and DEPTH_TO_SPACE.

use crate::error::ModelError;
use crate::kernels::reference::shape::{depth_to_space_bytes, pad_bytes};
use crate::model::{DType, Graph, OpKind};

use super::util::{const_i32, const_i64, OpRef};
use super::{Kernel, RunCtx};

struct Reshape;

impl Kernel for Reshape {
    fn name(&self) -> &str {
        "reshape__scalar"
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        outputs[0].copy_from_slice(inputs[0]);
    }
}

struct Pad {
    name: String,
    in_shape: Vec<usize>,
    pads: Vec<(usize, usize)>,
    elem: usize,
    pad_value: Vec<u8>,
}

impl Kernel for Pad {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        pad_bytes(
            inputs[0],
            &self.in_shape,
            &self.pads,
            self.elem,
            &self.pad_value,
            &mut *outputs[0],
        );
    }
}

struct DepthToSpace {
    name: String,
    in_shape: [usize; 4],
    block: usize,
    elem: usize,
}

impl Kernel for DepthToSpace {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        depth_to_space_bytes(
            inputs[0],
            self.in_shape,
            self.block,
            self.elem,
            &mut *outputs[0],
        );
    }
}

fn tag(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::U8 => "qu8",
        DType::I8 => "qi8",
        _ => "raw",
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let input = op.input(0)?;
    let out = op.output(0)?;
    op.expect_dtype(out, &[input.dtype])?;
    match &op.op.kind {
        OpKind::Reshape => {
            if input.num_elements() != out.num_elements() {
                return Err(op.err(format!(
                    "input '{}' {:?} and output '{}' {:?} differ in element count",
                    input.name, input.shape, out.name, out.shape
                )));
            }
            Ok(Box::new(Reshape))
        }
        OpKind::Pad => {
            op.expect_dtype(input, &[DType::F32, DType::U8, DType::I8, DType::I32])?;
            let pt = op.input(1)?;
            let raw = op.const_input(1)?;
            let vals: Vec<i64> = match pt.dtype {
                DType::I32 => const_i32(raw).into_iter().map(i64::from).collect(),
                DType::I64 => const_i64(raw),
                d => {
                    return Err(op.err(format!(
                        "paddings '{}' has type {d}, expected int32 or int64",
                        pt.name
                    )))
                }
            };
            let rank = input.shape.len();
            if vals.len() != rank * 2 || out.shape.len() != rank {
                return Err(op.err(format!("paddings '{}' must be [{rank}, 2]", pt.name)));
            }
            let mut pads = Vec::with_capacity(rank);
            for d in 0..rank {
                let (a, b) = (vals[2 * d], vals[2 * d + 1]);
                if a < 0 || b < 0 {
                    return Err(op.err(format!("negative padding in '{}'", pt.name)));
                }
                let (a, b) = (a as usize, b as usize);
                if input.shape[d] + a + b != out.shape[d] {
                    return Err(op.err(format!(
                        "padded shape of '{}' does not match output '{}' {:?}",
                        input.name, out.name, out.shape
                    )));
                }
                pads.push((a, b));
            }
            let elem = input.dtype.size();
            let pad_value = match op.opt_input(2) {
                Some(cv) => {
                    op.expect_dtype(cv, &[input.dtype])?;
                    let bytes = cv.data.as_deref().ok_or_else(|| {
                        op.err(format!("constant_values '{}' must be a constant", cv.name))
                    })?;
                    if bytes.len() < elem {
                        return Err(op.err(format!("constant_values '{}' is empty", cv.name)));
                    }
                    bytes[..elem].to_vec()
                }
                None => match input.dtype {
                    DType::U8 => vec![op.per_tensor_quant(out)?.1 as u8],
                    DType::I8 => vec![op.per_tensor_quant(out)?.1 as i8 as u8],
                    _ => vec![0u8; elem],
                },
            };
            Ok(Box::new(Pad {
                name: format!("pad_{}__scalar", tag(input.dtype)),
                in_shape: input.shape.clone(),
                pads,
                elem,
                pad_value,
            }))
        }
        OpKind::DepthToSpace { block_size } => {
            op.expect_rank(input, 4)?;
            let bs = *block_size;
            let s = &input.shape;
            if bs == 0
                || s[3] % (bs * bs) != 0
                || out.shape != [s[0], s[1] * bs, s[2] * bs, s[3] / (bs * bs)]
            {
                return Err(op.err(format!(
                    "block size {bs} does not map '{}' {:?} to '{}' {:?}",
                    input.name, s, out.name, out.shape
                )));
            }
            Ok(Box::new(DepthToSpace {
                name: format!("depth_to_space_{}__scalar", tag(input.dtype)),
                in_shape: [s[0], s[1], s[2], s[3]],
                block: bs,
                elem: input.dtype.size(),
            }))
        }
        other => Err(op.err(format!("shape cannot prepare {}", other.name()))),
    }
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_reshape() {
    assert!(crate::ops::conv::litert_cases::check_file("reshape.json") > 0);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_pad() {
    assert!(crate::ops::conv::litert_cases::check_file("pad.json") > 0);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_depth_to_space() {
    assert!(crate::ops::conv::litert_cases::check_file("depth_to_space.json") > 0);
}
