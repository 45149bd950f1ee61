//! ADD and MUL (float32, uint8, int8) with NumPy broadcasting up to rank 6; 8-bit ones of equal
//! shapes run a SIMD ADD kernel or a table of all input pairs where the tier has one, and on
//! x86 an ADD whose table one integer linear form reproduces runs that form in SIMD
//! (`kernels::add_linear`).
//!
//! Parameters are derived as in TFLite `add.cc` / `mul.cc` Prepare; see
//! [`crate::kernels::reference::elementwise`].

use crate::error::ModelError;
use crate::kernels::reference::broadcast::Broadcast;
use crate::kernels::reference::elementwise::{
    add_f32, add_quantized, mul_f32, mul_quantized, QuantAddParams, QuantMulParams,
};
use crate::kernels::reference::fixedpoint::{
    activation_range_f32, activation_range_quantized, quantize_multiplier,
};
use crate::model::{DType, Graph, OpKind};

use super::conv::SyncPtr;
use super::util::{f32s, f32s_mut, i8s, i8s_mut, OpRef};
use super::{Kernel, RunCtx};

enum Math {
    AddF32 { lo: f32, hi: f32 },
    MulF32 { lo: f32, hi: f32 },
    AddQ(QuantAddParams),
    MulQ(QuantMulParams),
}

struct Binary {
    name: String,
    dtype: DType,
    bc: Broadcast,
    math: Math,
}

impl Kernel for Binary {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, _ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let bc = &self.bc;
        match (&self.math, self.dtype) {
            (Math::AddF32 { lo, hi }, _) | (Math::MulF32 { lo, hi }, _) => {
                let is_add = matches!(self.math, Math::AddF32 { .. });
                let (a, b) = (f32s(inputs[0]), f32s(inputs[1]));
                let out = f32s_mut(&mut *outputs[0]);
                bc.for_each(|o, i, j| {
                    out[o] = if is_add {
                        add_f32(a[i], b[j], *lo, *hi)
                    } else {
                        mul_f32(a[i], b[j], *lo, *hi)
                    };
                });
            }
            (math, DType::U8) => {
                let (a, b) = (inputs[0], inputs[1]);
                let out = &mut *outputs[0];
                bc.for_each(|o, i, j| {
                    let (x, y) = (a[i] as i32, b[j] as i32);
                    out[o] = match math {
                        Math::AddQ(p) => add_quantized(x, y, p),
                        Math::MulQ(p) => mul_quantized(x, y, p),
                        _ => 0,
                    } as u8;
                });
            }
            (math, _) => {
                let (a, b) = (i8s(inputs[0]), i8s(inputs[1]));
                let out = i8s_mut(&mut *outputs[0]);
                bc.for_each(|o, i, j| {
                    let (x, y) = (a[i] as i32, b[j] as i32);
                    out[o] = match math {
                        Math::AddQ(p) => add_quantized(x, y, p),
                        Math::MulQ(p) => mul_quantized(x, y, p),
                        _ => 0,
                    } as i8;
                });
            }
        }
    }
}

/// 8-bit ADD of equal-shape inputs with a SIMD kernel, split into chunks over threads.
struct AddSimd {
    name: String,
    params: QuantAddParams,
    kernel: crate::kernels::AddFn,
}

impl Kernel for AddSimd {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let (params, kernel) = (&self.params, self.kernel);
        // SAFETY: the kernel's tier is supported (chosen at prepare).
        for_pairs(ctx, inputs, outputs, &|a, b, out, len| unsafe {
            kernel(params, a, b, out, len)
        });
    }
}

/// Run `f(a, b, out, len)` over the pool on chunks of two equal-shape inputs and the output
/// (`for_chunks`): pointers to each chunk's first byte and its length, chunks disjoint.
fn for_pairs(
    ctx: &RunCtx,
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
    f: &(dyn Fn(*const u8, *const u8, *mut u8, usize) + Sync),
) {
    let len = outputs[0].len();
    let out = SyncPtr(outputs[0].as_mut_ptr());
    let (a, b) = (inputs[0].as_ptr(), inputs[1].as_ptr());
    let (a, b) = (SyncPtr(a as *mut u8), SyncPtr(b as *mut u8));
    for_chunks(ctx, len, &|s, e| {
        // SAFETY: inputs and output hold `len` bytes (equal shapes, checked at prepare); the
        // chunk `s..e` is inside them, and tasks write disjoint chunks.
        let (a, b, out) = unsafe { (a.get().add(s), b.get().add(s), out.get().add(s)) };
        f(a, b, out, e - s);
    });
}

/// 8-bit ADD of equal shapes through its integer linear form (`kernels::add_linear`, exact for
/// every input pair), split into chunks over threads.
struct AddLinear {
    name: String,
    form: crate::kernels::add_linear::LinearAdd,
    kernel: crate::kernels::AddLinearFn,
}

impl Kernel for AddLinear {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let (form, kernel) = (&self.form, self.kernel);
        // SAFETY: the kernel's tier is supported (chosen at prepare).
        for_pairs(ctx, inputs, outputs, &|a, b, out, len| unsafe {
            kernel(form, a, b, out, len)
        });
    }
}

/// 8-bit ADD or MUL through a table of all 65536 input pairs, built at load with the reference
/// function (so exact by construction): one load per element instead of three fixed-point
/// rescales (`kernels::binary_table_for` says on which tiers that wins). Equal shapes, split
/// into chunks over threads. 64 KiB per op; the lookups hit L1/L2 (activations cluster).
struct Table8 {
    name: String,
    /// `table[a << 8 | b]`: the output byte for input bytes `a`, `b`.
    table: Box<[u8; 1 << 16]>,
}

/// Call `f(start, end)` over the pool for chunks of `0..len` made of whole 64-byte lines (so
/// only the last chunk has a tail): one chunk single-threaded or for short tensors, else two
/// per thread.
fn for_chunks(ctx: &RunCtx, len: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let tasks = if ctx.threads() == 1 || len < 4096 {
        1
    } else {
        2 * ctx.threads()
    };
    let chunk = len.div_ceil(tasks).div_ceil(64) * 64;
    ctx.parallel_for(tasks, &|t| {
        f((t * chunk).min(len), ((t + 1) * chunk).min(len))
    });
}

impl Table8 {
    /// The table of `f` (raw byte values interpreted as `dtype`, result narrowed to a byte).
    fn new(name: String, dtype: DType, f: impl Fn(i32, i32) -> i32) -> Table8 {
        let val = |x: usize| -> i32 {
            if dtype == DType::I8 {
                x as u8 as i8 as i32
            } else {
                x as i32
            }
        };
        let mut table = Box::new([0u8; 1 << 16]);
        for (i, t) in table.iter_mut().enumerate() {
            *t = f(val(i >> 8), val(i & 255)) as u8;
        }
        Table8 { name, table }
    }
}

impl Kernel for Table8 {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        let len = outputs[0].len();
        let out = SyncPtr(outputs[0].as_mut_ptr());
        let (a, b) = (inputs[0], inputs[1]);
        let table = &*self.table;
        for_chunks(ctx, len, &|s, e| {
            // SAFETY: tasks write disjoint chunks `s..e` of the `len`-byte output.
            let out = unsafe { std::slice::from_raw_parts_mut(out.get().add(s), e - s) };
            for ((o, &x), &y) in out.iter_mut().zip(&a[s..e]).zip(&b[s..e]) {
                *o = table[(x as usize) << 8 | y as usize];
            }
        });
    }
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
    isa: crate::kernels::Isa,
) -> Result<Box<dyn Kernel>, ModelError> {
    let op = OpRef::new(graph, index);
    let (is_add, activation) = match &op.op.kind {
        OpKind::Add { activation } => (true, *activation),
        OpKind::Mul { activation } => (false, *activation),
        other => return Err(op.err(format!("elementwise cannot prepare {}", other.name()))),
    };
    let in1 = op.input(0)?;
    let in2 = op.input(1)?;
    let out = op.output(0)?;
    op.expect_dtype(in1, &[DType::F32, DType::U8, DType::I8])?;
    op.expect_dtype(in2, &[in1.dtype])?;
    op.expect_dtype(out, &[in1.dtype])?;
    let bc = Broadcast::new(&in1.shape, &in2.shape, &out.shape).ok_or_else(|| {
        op.err(format!(
            "shapes {:?} ('{}') and {:?} ('{}') do not broadcast to output {:?} ('{}')",
            in1.shape, in1.name, in2.shape, in2.name, out.shape, out.name
        ))
    })?;
    let opname = if is_add { "add" } else { "mul" };
    let (math, tag) = match in1.dtype {
        DType::F32 => {
            let (lo, hi) = activation_range_f32(activation);
            let m = if is_add {
                Math::AddF32 { lo, hi }
            } else {
                Math::MulF32 { lo, hi }
            };
            (m, "f32")
        }
        dt => {
            let (s1, z1) = op.per_tensor_quant(in1)?;
            let (s2, z2) = op.per_tensor_quant(in2)?;
            let (so, zo) = op.per_tensor_quant(out)?;
            let (qmin, qmax) = if dt == DType::U8 {
                (0, 255)
            } else {
                (-128, 127)
            };
            let (act_min, act_max) = activation_range_quantized(activation, so, zo, qmin, qmax);
            let m = if is_add {
                Math::AddQ(QuantAddParams::prepare(
                    s1, z1, s2, z2, so, zo, act_min, act_max,
                ))
            } else {
                // mul.cc: `double real_multiplier = s1 * s2 / s_out;` evaluated in float.
                let real = (s1 * s2 / so) as f64;
                let (output_multiplier, output_shift) = quantize_multiplier(real);
                Math::MulQ(QuantMulParams {
                    input1_offset: -z1,
                    input2_offset: -z2,
                    output_offset: zo,
                    output_multiplier,
                    output_shift,
                    act_min,
                    act_max,
                })
            };
            (m, if dt == DType::U8 { "qu8" } else { "qi8" })
        }
    };
    let same = in1.shape == out.shape && in2.shape == out.shape;
    if same && crate::kernels::binary_table_for(isa) {
        let name = format!("{opname}_{tag}_lut64k__scalar");
        match &math {
            Math::AddQ(p) => {
                let table = Table8::new(name, in1.dtype, |x, y| add_quantized(x, y, p));
                let signed = in1.dtype == DType::I8;
                let form = crate::kernels::add_linear::LinearAdd::fit(&table.table, signed, p);
                if let (Some(form), Some((kernel, isa_name))) =
                    (form, crate::kernels::add_linear_for(isa, signed))
                {
                    return Ok(Box::new(AddLinear {
                        name: format!("add_{tag}_linear__{isa_name}"),
                        form,
                        kernel,
                    }));
                }
                return Ok(Box::new(table));
            }
            Math::MulQ(p) => {
                return Ok(Box::new(Table8::new(name, in1.dtype, |x, y| {
                    mul_quantized(x, y, p)
                })))
            }
            Math::AddF32 { .. } | Math::MulF32 { .. } => {}
        }
    }
    if let Math::AddQ(params) = &math {
        if let (true, Some((kernel, isa_name))) =
            (same, crate::kernels::add_for(isa, in1.dtype == DType::I8))
        {
            return Ok(Box::new(AddSimd {
                name: format!("add_{tag}__{isa_name}"),
                params: *params,
                kernel,
            }));
        }
    }
    Ok(Box::new(Binary {
        name: format!("{opname}_{tag}__scalar"),
        dtype: in1.dtype,
        bc,
        math,
    }))
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_add() {
    assert!(crate::ops::conv::litert_cases::check_file("add.json") > 0);
}

#[cfg(test)]
#[test]
fn matches_litert_builtin_ref_mul() {
    assert!(crate::ops::conv::litert_cases::check_file("mul.json") > 0);
}
