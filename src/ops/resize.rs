//! RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (float32, uint8, int8), NHWC.
//!
//! The output size comes from the output tensor's shape (TFLite reads it from the constant
//! `size` input; a constant `size` that disagrees with the output shape is an error). Source
//! coordinates are computed once here; see [`crate::kernels::reference::resize`] for which
//! TFLite function each dtype mirrors. Quantized resizes never requantize: TFLite copies or
//! interpolates raw values even when input and output quantization differ (checked against
//! LiteRT 2.3.0), and so do we.

use crate::error::ModelError;
use crate::kernels::reference::resize::{
    float_taps, int_taps, nearest_indices, resize_bilinear_f32, resize_bilinear_i8,
    resize_bilinear_u8, resize_nearest_bytes, FloatTap, IntTap, ResizeFlags, ResizeShape,
};
use crate::model::{DType, Graph, OpKind};

use super::util::{const_i32, f32s, f32s_mut, i8s, i8s_mut, OpRef};
use super::{Kernel, RunCtx};

enum Taps {
    Float {
        ys: Vec<FloatTap>,
        xs: Vec<FloatTap>,
    },
    Int {
        ys: Vec<IntTap>,
        xs: Vec<IntTap>,
    },
    Nearest {
        ys: Vec<usize>,
        xs: Vec<usize>,
    },
}

struct Resize {
    name: String,
    dtype: DType,
    shape: ResizeShape,
    taps: Taps,
}

impl Kernel for Resize {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let s = &self.shape;
        match (&self.taps, self.dtype) {
            (Taps::Float { ys, xs }, DType::F32) => {
                resize_bilinear_f32(s, ys, xs, f32s(inputs[0]), f32s_mut(&mut *outputs[0]))
            }
            (Taps::Float { ys, xs }, _) => resize_bilinear_u8(s, ys, xs, inputs[0], outputs[0]),
            (Taps::Int { ys, xs }, _) => {
                resize_bilinear_i8(s, ys, xs, i8s(inputs[0]), i8s_mut(&mut *outputs[0]))
            }
            (Taps::Nearest { ys, xs }, dt) => {
                resize_nearest_bytes(s, ys, xs, dt.size(), inputs[0], outputs[0])
            }
        }
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let (bilinear, flags) = match &op.op.kind {
        OpKind::ResizeBilinear {
            align_corners,
            half_pixel_centers,
        } => (true, (*align_corners, *half_pixel_centers)),
        OpKind::ResizeNearestNeighbor {
            align_corners,
            half_pixel_centers,
        } => (false, (*align_corners, *half_pixel_centers)),
        other => return Err(op.err(format!("resize cannot prepare {}", other.name()))),
    };
    let flags = ResizeFlags {
        align_corners: flags.0,
        half_pixel_centers: flags.1,
    };
    // resize_bilinear.cc Prepare rejects both flags; resize_nearest_neighbor.cc accepts them
    // (GetNearestNeighbor rounds, then clamps at 0).
    if bilinear && flags.align_corners && flags.half_pixel_centers {
        return Err(
            op.err("RESIZE_BILINEAR: if half_pixel_centers is true, align_corners must be false")
        );
    }
    let input = op.input(0)?;
    let out = op.output(0)?;
    op.expect_dtype(input, &[DType::F32, DType::U8, DType::I8])?;
    op.expect_dtype(out, &[input.dtype])?;
    op.expect_rank(input, 4)?;
    op.expect_rank(out, 4)?;
    let (i, o) = (&input.shape, &out.shape);
    if i[0] != o[0] || i[3] != o[3] || i[1] == 0 || i[2] == 0 || o[1] == 0 || o[2] == 0 {
        return Err(op.err(format!(
            "cannot resize '{}' {:?} to '{}' {:?} (batch and depth must match, sizes > 0)",
            input.name, i, out.name, o
        )));
    }
    if let Some(size) = op.opt_input(1) {
        if let Some(data) = &size.data {
            let v = if size.dtype == DType::I32 {
                const_i32(data)
            } else {
                vec![]
            };
            if v.len() != 2 || v[0] as i64 != o[1] as i64 || v[1] as i64 != o[2] as i64 {
                return Err(op.err(format!(
                    "size '{}' {:?} does not match output '{}' {:?}",
                    size.name, v, out.name, o
                )));
            }
        }
    }
    let shape = ResizeShape {
        batches: i[0],
        in_h: i[1],
        in_w: i[2],
        out_h: o[1],
        out_w: o[2],
        depth: i[3],
    };
    let (taps, base, tag) = match (bilinear, input.dtype) {
        (true, DType::I8) => (
            Taps::Int {
                ys: int_taps(i[1], o[1], flags),
                xs: int_taps(i[2], o[2], flags),
            },
            "resize_bilinear",
            "qi8",
        ),
        (true, dt) => (
            Taps::Float {
                ys: float_taps(i[1], o[1], flags),
                xs: float_taps(i[2], o[2], flags),
            },
            "resize_bilinear",
            if dt == DType::F32 { "f32" } else { "qu8" },
        ),
        (false, dt) => (
            Taps::Nearest {
                ys: nearest_indices(i[1], o[1], flags),
                xs: nearest_indices(i[2], o[2], flags),
            },
            "resize_nearest_neighbor",
            match dt {
                DType::F32 => "f32",
                DType::U8 => "qu8",
                _ => "qi8",
            },
        ),
    };
    Ok(Box::new(Resize {
        name: format!("{base}_{tag}__scalar"),
        dtype: input.dtype,
        shape,
        taps,
    }))
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_resize() {
    assert!(crate::ops::conv::litert_cases::check_file("resize.json") > 0);
}
