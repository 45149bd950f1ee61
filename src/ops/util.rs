//! Helpers shared by op preparation: typed byte views, tensor lookup with clear errors.

use crate::error::ModelError;
use crate::model::{DType, Graph, Op, Tensor};

/// View 64-byte-aligned little-endian bytes as `f32` (see the buffer contract of `Kernel`).
#[inline]
pub fn f32s(b: &[u8]) -> &[f32] {
    bytemuck::cast_slice(b)
}

#[inline]
pub fn f32s_mut(b: &mut [u8]) -> &mut [f32] {
    bytemuck::cast_slice_mut(b)
}

#[inline]
pub fn i8s(b: &[u8]) -> &[i8] {
    bytemuck::cast_slice(b)
}

#[inline]
pub fn i8s_mut(b: &mut [u8]) -> &mut [i8] {
    bytemuck::cast_slice_mut(b)
}

#[inline]
pub fn i32s(b: &[u8]) -> &[i32] {
    bytemuck::cast_slice(b)
}

#[inline]
pub fn i32s_mut(b: &mut [u8]) -> &mut [i32] {
    bytemuck::cast_slice_mut(b)
}

/// Decode little-endian constant bytes (any alignment) into typed vectors at prepare time.
pub fn const_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn const_i32(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn const_i64(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

/// Op context for error messages and tensor lookup during `prepare`.
pub struct OpRef<'g> {
    pub graph: &'g Graph,
    pub index: usize,
    pub op: &'g Op,
}

impl<'g> OpRef<'g> {
    pub fn new(graph: &'g Graph, index: usize) -> Self {
        OpRef {
            graph,
            index,
            op: &graph.ops[index],
        }
    }

    pub fn label(&self) -> String {
        self.graph.op_label(self.index)
    }

    pub fn err(&self, what: impl Into<String>) -> ModelError {
        ModelError::invalid_op(self.label(), what)
    }

    /// Required input `i`.
    pub fn input(&self, i: usize) -> Result<&'g Tensor, ModelError> {
        match self.op.inputs.get(i) {
            Some(Some(id)) => Ok(&self.graph.tensors[*id]),
            _ => Err(self.err(format!("missing input {i}"))),
        }
    }

    /// Optional input `i` (absent or index -1 in the file).
    pub fn opt_input(&self, i: usize) -> Option<&'g Tensor> {
        self.op
            .inputs
            .get(i)
            .copied()
            .flatten()
            .map(|id| &self.graph.tensors[id])
    }

    pub fn output(&self, i: usize) -> Result<&'g Tensor, ModelError> {
        match self.op.outputs.get(i) {
            Some(id) => Ok(&self.graph.tensors[*id]),
            None => Err(self.err(format!("missing output {i}"))),
        }
    }

    /// Constant data of input `i`, or an error naming the op.
    pub fn const_input(&self, i: usize) -> Result<&'g [u8], ModelError> {
        let t = self.input(i)?;
        t.data
            .as_deref()
            .ok_or_else(|| self.err(format!("input {i} ('{}') must be a constant", t.name)))
    }

    /// Per-tensor quantization of `t`, or an error naming the op and tensor.
    pub fn per_tensor_quant(&self, t: &Tensor) -> Result<(f32, i32), ModelError> {
        t.per_tensor_quant().ok_or_else(|| {
            self.err(format!(
                "tensor '{}' needs per-tensor quantization parameters",
                t.name
            ))
        })
    }

    pub fn expect_dtype(&self, t: &Tensor, allowed: &[DType]) -> Result<(), ModelError> {
        if allowed.contains(&t.dtype) {
            Ok(())
        } else {
            let names: Vec<_> = allowed.iter().map(|d| d.name()).collect();
            Err(self.err(format!(
                "tensor '{}' has type {}, expected {}",
                t.name,
                t.dtype,
                names.join(" or ")
            )))
        }
    }

    pub fn expect_rank(&self, t: &Tensor, rank: usize) -> Result<(), ModelError> {
        if t.shape.len() == rank {
            Ok(())
        } else {
            Err(self.err(format!(
                "tensor '{}' has shape {:?}, expected rank {rank}",
                t.name, t.shape
            )))
        }
    }
}
