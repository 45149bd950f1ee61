//! QUANTIZE (float32 -> uint8/int8, uint8 <-> int8 requantize) and DEQUANTIZE
//! (uint8/int8 per-tensor, int8 per-axis, float16 -> float32).

use crate::error::ModelError;
use crate::kernels::reference::fixedpoint::quantize_multiplier;
use crate::kernels::reference::quantize::{
    affine_quantize, dequantize, dequantize_per_channel, requantize,
};
use crate::model::{DType, Graph, OpKind, Quant, RequantMode};

use super::util::{f32s, f32s_mut, OpRef};
use super::{Kernel, RunCtx};

fn qrange(d: DType) -> (i32, i32) {
    if d == DType::U8 {
        (0, 255)
    } else {
        (-128, 127)
    }
}

/// `MlasQuantizeLinear`: divide, clamp to `[qmin - zp, qmax - zp]` (NaN becomes the lower
/// bound, as `maxps` returns its second operand), round half to even, add the zero point.
#[inline]
fn quantize_round_even(x: f32, scale: f32, zp: i32, qmin: i32, qmax: i32) -> i32 {
    let v = x / scale;
    let lo = (qmin - zp) as f32;
    let v = if v > lo { v } else { lo };
    let v = v.min((qmax - zp) as f32);
    round_half_even_small(v) as i32 + zp
}

/// `v.round_ties_even()` for `|v| <= 2^22` (callers clamp to an 8-bit range first): adding
/// and subtracting `1.5 * 2^23` rounds to an integer in the current rounding mode (nearest
/// even by default). Unlike `round_ties_even`, which without SSE4.1 is a `roundevenf` libm
/// call per element, this vectorizes with the baseline SSE2 / NEON (the input QUANTIZE of a
/// 300x300 image spent 5 ms in the call).
#[inline]
fn round_half_even_small(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    debug_assert!(v.abs() <= 4_194_304.0);
    (v + MAGIC) - MAGIC
}

/// [`quantize_round_even`] over a slice (`out[i]` from `x[i]`, as many as both hold); on
/// x86-64 16 lanes per step with SSE2 (baseline there, `kernels::x86_64::quantize_even_sse2`).
/// The image QUANTIZE at the head of ONNX graphs runs this on every pixel.
fn quantize_even_slice(x: &[f32], out: &mut [u8], scale: f32, zp: i32, qmin: i32, qmax: i32) {
    let n = x.len().min(out.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline, so every x86-64 CPU runs it.
    let i = unsafe {
        crate::kernels::x86_64::quantize_even_sse2(&x[..n], &mut out[..n], scale, zp, qmin, qmax)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let i = 0;
    for (o, &v) in out[i..n].iter_mut().zip(&x[i..n]) {
        *o = quantize_round_even(v, scale, zp, qmin, qmax) as u8;
    }
}

#[cfg(test)]
mod round_tests {
    /// The vector path of `quantize_even_slice` equals the scalar `quantize_round_even` on
    /// ties, near-ties, out-of-range values, infinities and NaN, for int8 and uint8 outputs and
    /// every tail length.
    #[test]
    fn quantize_even_slice_matches_scalar() {
        let mut x: Vec<f32> = (-600..=600).map(|i| i as f32 * 0.25).collect();
        x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e9, -1e9]);
        x.extend((-40..40).map(|i| (i as f32 * 0.5).next_up()));
        for (scale, zp, qmin, qmax) in [(0.5f32, 3, -128, 127), (1.0 / 127.5, 128, 0, 255)] {
            for len in [x.len(), x.len() - 1, x.len() - 2, x.len() - 3] {
                let mut got = vec![0u8; len];
                super::quantize_even_slice(&x[..len], &mut got, scale, zp, qmin, qmax);
                for (i, (&g, &v)) in got.iter().zip(&x).enumerate() {
                    let want = super::quantize_round_even(v, scale, zp, qmin, qmax) as u8;
                    assert_eq!(g, want, "x[{i}] = {v}, scale {scale}, zp {zp}");
                }
            }
        }
    }

    /// Pins `round_half_even_small` against `round_ties_even` on every half and quarter step
    /// of the clamped range and a few values either side of each tie.
    #[test]
    fn round_half_even_small_matches_round_ties_even() {
        for i in -1024..=1024 {
            for d in [0.0f32, 0.25, 0.5, 0.75] {
                let base = i as f32 * 0.5 + d;
                for v in [base, base.next_up(), base.next_down()] {
                    assert_eq!(super::round_half_even_small(v), v.round_ties_even(), "{v}");
                }
            }
        }
    }
}

#[inline]
fn load(b: u8, signed: bool) -> i32 {
    if signed {
        b as i8 as i32
    } else {
        b as i32
    }
}

enum Q {
    FromF32 {
        scale: f32,
        zp: i32,
    },
    /// ONNX Runtime (`MlasQuantizeLinear`): `x / scale`, clamped, rounded half to even.
    FromF32Even {
        scale: f32,
        zp: i32,
    },
    /// ONNX Runtime's 8-bit → 8-bit rescale (QLinearConcat's table): dequantize in float,
    /// then quantize as [`Q::FromF32Even`].
    RequantEven {
        in_scale: f32,
        in_zp: i32,
        out_scale: f32,
        out_zp: i32,
    },
    Requant {
        in_zp: i32,
        out_zp: i32,
        mult: i32,
        shift: i32,
    },
    Deq {
        scale: f32,
        zp: i32,
    },
    /// Per-axis: `inner` = product of dims after `axis`, one (scale, zp) per axis index.
    DeqPerAxis {
        inner: usize,
        scales: Vec<f32>,
        zps: Vec<i32>,
    },
    DeqF16,
}

struct QKernel {
    name: String,
    in_signed: bool,
    out: DType,
    q: Q,
}

impl Kernel for QKernel {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let (qmin, qmax) = qrange(self.out);
        let signed = self.in_signed;
        match &self.q {
            Q::FromF32 { scale, zp } => {
                for (o, &x) in outputs[0].iter_mut().zip(f32s(inputs[0])) {
                    *o = affine_quantize(x, *scale, *zp, qmin, qmax) as u8;
                }
            }
            Q::FromF32Even { scale, zp } => {
                quantize_even_slice(f32s(inputs[0]), outputs[0], *scale, *zp, qmin, qmax);
            }
            Q::RequantEven {
                in_scale,
                in_zp,
                out_scale,
                out_zp,
            } => {
                for (o, &b) in outputs[0].iter_mut().zip(inputs[0]) {
                    let x = (load(b, signed) - in_zp) as f32 * in_scale;
                    *o = quantize_round_even(x, *out_scale, *out_zp, qmin, qmax) as u8;
                }
            }
            Q::Requant {
                in_zp,
                out_zp,
                mult,
                shift,
            } => {
                for (o, &b) in outputs[0].iter_mut().zip(inputs[0]) {
                    *o = requantize(load(b, signed), *in_zp, *out_zp, *mult, *shift, qmin, qmax)
                        as u8;
                }
            }
            Q::Deq { scale, zp } => {
                for (o, &b) in f32s_mut(&mut *outputs[0]).iter_mut().zip(inputs[0]) {
                    *o = dequantize(load(b, signed), *scale, *zp);
                }
            }
            Q::DeqPerAxis { inner, scales, zps } => {
                let n = scales.len();
                for (i, (o, &b)) in f32s_mut(&mut *outputs[0])
                    .iter_mut()
                    .zip(inputs[0])
                    .enumerate()
                {
                    let c = (i / inner) % n;
                    *o = dequantize_per_channel(load(b, signed), scales[c], zps[c]);
                }
            }
            Q::DeqF16 => {
                for (o, h) in f32s_mut(&mut *outputs[0])
                    .iter_mut()
                    .zip(inputs[0].chunks_exact(2))
                {
                    *o = half::f16::from_bits(u16::from_le_bytes([h[0], h[1]])).to_f32();
                }
            }
        }
    }
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let input = op.input(0)?;
    let out = op.output(0)?;
    if input.num_elements() != out.num_elements() {
        return Err(op.err(format!(
            "input '{}' {:?} and output '{}' {:?} differ in size",
            input.name, input.shape, out.name, out.shape
        )));
    }
    let in_signed = input.dtype == DType::I8;
    let (q, name) = match &op.op.kind {
        OpKind::Quantize { mode } => {
            op.expect_dtype(input, &[DType::F32, DType::U8, DType::I8])?;
            op.expect_dtype(out, &[DType::U8, DType::I8])?;
            let (so, zo) = op.per_tensor_quant(out)?;
            let onnx = *mode == RequantMode::OnnxRuntime;
            if input.dtype == DType::F32 && onnx {
                (
                    Q::FromF32Even { scale: so, zp: zo },
                    // `quantize_even_slice`: SSE2 lanes on x86-64, scalar elsewhere.
                    format!(
                        "quantize_f32_to_{}_even__{}",
                        out.dtype,
                        if cfg!(target_arch = "x86_64") {
                            "sse2"
                        } else {
                            "scalar"
                        }
                    ),
                )
            } else if onnx {
                let (si, zi) = op.per_tensor_quant(input)?;
                (
                    Q::RequantEven {
                        in_scale: si,
                        in_zp: zi,
                        out_scale: so,
                        out_zp: zo,
                    },
                    format!("requantize_{}_to_{}_even__scalar", input.dtype, out.dtype),
                )
            } else if input.dtype == DType::F32 {
                (
                    Q::FromF32 { scale: so, zp: zo },
                    format!("quantize_f32_to_{}__scalar", out.dtype),
                )
            } else {
                let (si, zi) = op.per_tensor_quant(input)?;
                // quantize.cc: effective scale = (double)s_in / (double)s_out.
                let (mult, shift) = quantize_multiplier(si as f64 / so as f64);
                (
                    Q::Requant {
                        in_zp: zi,
                        out_zp: zo,
                        mult,
                        shift,
                    },
                    format!("requantize_{}_to_{}__scalar", input.dtype, out.dtype),
                )
            }
        }
        OpKind::Dequantize => {
            op.expect_dtype(input, &[DType::U8, DType::I8, DType::F16])?;
            op.expect_dtype(out, &[DType::F32])?;
            match (input.dtype, &input.quant) {
                (DType::F16, _) => (Q::DeqF16, "dequantize_f16__scalar".to_string()),
                (_, Some(Quant::PerTensor { scale, zero_point })) => (
                    Q::Deq {
                        scale: *scale,
                        zp: *zero_point,
                    },
                    format!("dequantize_{}__scalar", input.dtype),
                ),
                (
                    DType::I8,
                    Some(Quant::PerAxis {
                        axis,
                        scales,
                        zero_points,
                    }),
                ) => {
                    let axis = *axis;
                    if axis >= input.shape.len()
                        || scales.len() != input.shape[axis]
                        || zero_points.len() != scales.len()
                    {
                        return Err(op.err(format!(
                            "per-axis quantization of '{}' does not match its shape {:?}",
                            input.name, input.shape
                        )));
                    }
                    let inner = input.shape[axis + 1..].iter().product::<usize>().max(1);
                    (
                        Q::DeqPerAxis {
                            inner,
                            scales: scales.clone(),
                            zps: zero_points.clone(),
                        },
                        "dequantize_i8_perchannel__scalar".to_string(),
                    )
                }
                _ => {
                    return Err(op.err(format!(
                        "tensor '{}' ({}) has no usable quantization parameters",
                        input.name, input.dtype
                    )))
                }
            }
        }
        other => return Err(op.err(format!("quantize cannot prepare {}", other.name()))),
    };
    Ok(Box::new(QKernel {
        name,
        in_signed,
        out: out.dtype,
        q,
    }))
}

#[cfg(test)]
#[test]
fn onnx_quantize_rounds_half_to_even() {
    // 0.5 / 1 ties: ONNX Runtime gives 0, 2, -2 where TFLite gives 1, 3, -3.
    assert_eq!(quantize_round_even(0.5, 1.0, 0, -128, 127), 0);
    assert_eq!(quantize_round_even(2.5, 1.0, 0, -128, 127), 2);
    assert_eq!(quantize_round_even(-2.5, 1.0, 0, -128, 127), -2);
    assert_eq!(affine_quantize(2.5, 1.0, 0, -128, 127), 3);
    assert_eq!(quantize_round_even(1e9, 1.0, 3, -128, 127), 127);
    assert_eq!(quantize_round_even(f32::NAN, 1.0, 3, -128, 127), -128);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_quantize() {
    assert!(crate::ops::conv::litert_cases::check_file("quantize.json") > 0);
}
