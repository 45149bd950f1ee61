//! Every SIMD kernel against the scalar reference, bit for bit, on every tier this CPU runs
//! (`Isa::available()`), at 1 and 2 threads, over random shapes, strides, paddings, zero
//! points, multipliers (shifts on both sides), activation clamps, uint8 and int8 per-channel,
//! and both requantization modes (TFLite fixed point, ONNX Runtime float: `fp32rq` kernels).

use proptest::prelude::*;

use crate::kernels::Isa;
use crate::model::{Activation, Conv2DOptions, DType, Graph, Op, OpKind, Padding, Quant, Tensor};
use crate::ops::{Kernel, RunCtx};

/// Run op 0 of `graph` prepared for `isa` with `threads` threads; returns kernel name, output.
fn run_tier(graph: &Graph, isa: Isa, input: &[u8], threads: usize) -> (String, Vec<u8>) {
    let mut k: Box<dyn Kernel> = match graph.ops[0].kind {
        OpKind::Conv2D(_) => super::conv::prepare_with_isa(graph, 0, isa),
        OpKind::DepthwiseConv2D { .. } => super::depthwise::prepare_with_isa(graph, 0, isa),
        OpKind::Add { .. } => super::elementwise::prepare_with_isa(graph, 0, isa),
        _ => unreachable!("conv-like ops and ADD only"),
    }
    .expect("prepare");
    let op = &graph.ops[0];
    let bufs: Vec<crate::runtime::AlignedBuf> = op
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            Some(_) if i == 0 => crate::runtime::AlignedBuf::from_bytes(input),
            Some(id) => crate::runtime::AlignedBuf::from_bytes(
                graph.tensors[*id].data.as_deref().unwrap_or_default(),
            ),
            None => crate::runtime::AlignedBuf::zeroed(0),
        })
        .collect();
    let ins: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
    let mut out = crate::runtime::AlignedBuf::zeroed(graph.tensors[op.outputs[0]].byte_len());
    let ctx = RunCtx::with_threads(threads);
    k.run(&ctx, &ins, &mut [out.as_mut_slice()]);
    (k.name().to_string(), out.as_slice().to_vec())
}

/// The one check: every available tier and 1/2 threads equal the scalar reference.
fn check_all_tiers(graph: &Graph, input: &[u8]) -> Result<(), TestCaseError> {
    check_tiers_threads(graph, input, &[1, 2])
}

/// [`check_all_tiers`] at each thread count of `thread_counts`.
fn check_tiers_threads(
    graph: &Graph,
    input: &[u8],
    thread_counts: &[usize],
) -> Result<(), TestCaseError> {
    let (ref_name, want) = run_tier(graph, Isa::Scalar, input, 1);
    prop_assert!(ref_name.ends_with("__scalar"), "{}", ref_name);
    for isa in Isa::available() {
        for &threads in thread_counts {
            let (name, got) = run_tier(graph, isa, input, threads);
            if isa != Isa::Scalar {
                // Table kernels (`_lut`) are portable code chosen for SIMD tiers on purpose.
                prop_assert!(
                    !name.ends_with("__scalar") || name.contains("_lut"),
                    "{isa}: no SIMD kernel ({name})"
                );
            }
            if got != want {
                let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                prop_assert!(
                    false,
                    "{name} ({threads} threads) differs from {ref_name} at byte {first} of {}: \
                     {} vs {}",
                    want.len(),
                    got[first],
                    want[first]
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Case {
    signed: bool,
    per_channel: bool,
    batches: usize,
    in_h: usize,
    in_w: usize,
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    same: bool,
    in_zp: i32,
    w_zp: i32,
    out_zp: i32,
    in_scale: f32,
    w_scales: Vec<f32>,
    out_scale: f32,
    act: Activation,
    with_bias: bool,
    /// ONNX Runtime requantization (`RequantMode::OnnxRuntime`) instead of TFLite's.
    onnx: bool,
    seed: u64,
    /// 0: uniform random weight bytes. Otherwise weights `zw + noise` with |noise| <= spread
    /// and 1 in 32 a uniform outlier, like trained weights: the AVX2 `Maddubs` packing keeps
    /// them (uniform bytes mostly fall back to `Madd`) and moves the outliers to its residual.
    w_spread: u8,
}

fn act() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        Just(Activation::Relu6),
        Just(Activation::ReluN1To1)
    ]
}

fn zp_u8() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), Just(255), Just(128), 0i32..256]
}

fn zp_i8() -> impl Strategy<Value = i32> {
    prop_oneof![Just(-128), Just(127), Just(0), -128i32..128]
}

fn case(depthwise: bool) -> impl Strategy<Value = Case> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            1usize..=2,
            1usize..=7,
            1usize..=7,
            1usize..=40,
        ),
        (
            1usize..=80,
            prop_oneof![Just(1usize), Just(3)],
            1usize..=2,
            any::<bool>(),
        ),
        (zp_u8(), zp_u8(), zp_u8(), zp_i8(), zp_i8()),
        (
            1e-3f32..0.1,
            prop::collection::vec(1e-3f32..0.1, 80),
            1e-4f32..0.05,
        ),
        (
            act(),
            any::<bool>(),
            any::<u64>(),
            any::<bool>(),
            prop_oneof![Just(0u8), 1u8..=64],
        ),
    )
        .prop_map(move |(a, b, z, s, r)| {
            let signed = a.0;
            let k = if depthwise { 3 } else { b.1 };
            Case {
                signed,
                per_channel: signed && a.1,
                batches: a.2,
                in_h: a.3,
                in_w: a.4,
                in_c: a.5,
                out_c: if depthwise { a.5 } else { b.0 },
                k,
                stride: b.2,
                same: b.3,
                in_zp: if signed { z.3 } else { z.0 },
                w_zp: if signed { 0 } else { z.1 },
                out_zp: if signed { z.4 } else { z.2 },
                in_scale: s.0,
                w_scales: s.1,
                out_scale: s.2,
                act: r.0,
                with_bias: r.1,
                onnx: r.3,
                seed: r.2,
                w_spread: r.4,
            }
        })
}

/// xorshift bytes.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The weight bytes of `c` (see `Case::w_spread`).
fn weight_bytes(c: &Case, n: usize) -> Vec<u8> {
    let raw = bytes(c.seed, n);
    if c.w_spread == 0 {
        return raw;
    }
    let spread = i32::from(c.w_spread);
    let (lo, hi) = if c.signed { (-128, 127) } else { (0, 255) };
    let zw = if c.signed { 0 } else { c.w_zp };
    raw.iter()
        .zip(bytes(c.seed ^ 0x5eed, n))
        .map(|(&r, o)| {
            let v = if o % 32 == 0 {
                i32::from(r)
            } else {
                (zw + i32::from(r) % (2 * spread + 1) - spread).clamp(lo, hi)
            };
            v as u8
        })
        .collect()
}

fn graph(c: &Case, depthwise: bool) -> Option<Graph> {
    let dt = if c.signed { DType::I8 } else { DType::U8 };
    let pad = if c.same {
        Padding::Same
    } else {
        Padding::Valid
    };
    let out_dim = |i: usize| {
        let (o, _) =
            crate::kernels::reference::conv::window_out_and_pad(c.same, i, c.k, c.stride, 1);
        o
    };
    let (oh, ow) = (out_dim(c.in_h), out_dim(c.in_w));
    if oh <= 0 || ow <= 0 {
        return None;
    }
    let n = c.out_c;
    let w_len = if depthwise {
        c.k * c.k * n
    } else {
        n * c.k * c.k * c.in_c
    };
    let w_shape = if depthwise {
        vec![1, c.k, c.k, n]
    } else {
        vec![n, c.k, c.k, c.in_c]
    };
    let w_quant = if c.per_channel {
        Some(Quant::PerAxis {
            axis: if depthwise { 3 } else { 0 },
            scales: c.w_scales[..n].to_vec(),
            zero_points: vec![0; n],
        })
    } else {
        Some(Quant::PerTensor {
            scale: c.w_scales[0],
            zero_point: c.w_zp,
        })
    };
    let bias: Vec<u8> = bytes(c.seed ^ 0xb1a5, n * 4)
        .chunks_exact(4)
        .flat_map(|b| (i32::from_le_bytes([b[0], b[1], b[2], b[3]]) >> 14).to_le_bytes())
        .collect();
    let mut tensors = vec![
        Tensor {
            name: "in".into(),
            shape: vec![c.batches, c.in_h, c.in_w, c.in_c],
            dtype: dt,
            quant: Some(Quant::PerTensor {
                scale: c.in_scale,
                zero_point: c.in_zp,
            }),
            data: None,
        },
        Tensor {
            name: "w".into(),
            shape: w_shape,
            dtype: dt,
            quant: w_quant,
            data: Some(weight_bytes(c, w_len)),
        },
    ];
    if c.with_bias {
        tensors.push(Tensor {
            name: "b".into(),
            shape: vec![n],
            dtype: DType::I32,
            quant: Some(Quant::PerTensor {
                scale: c.in_scale * c.w_scales[0],
                zero_point: 0,
            }),
            data: Some(bias),
        });
    }
    tensors.push(Tensor {
        name: "out".into(),
        shape: vec![c.batches, oh as usize, ow as usize, n],
        dtype: dt,
        quant: Some(Quant::PerTensor {
            scale: c.out_scale,
            zero_point: c.out_zp,
        }),
        data: None,
    });
    let conv = Conv2DOptions {
        padding: pad,
        stride_h: c.stride,
        stride_w: c.stride,
        dilation_h: 1,
        dilation_w: 1,
        activation: c.act,
        requant: if c.onnx {
            crate::model::RequantMode::OnnxRuntime
        } else {
            crate::model::RequantMode::Tflite
        },
    };
    let kind = if depthwise {
        OpKind::DepthwiseConv2D {
            conv,
            depth_multiplier: 1,
        }
    } else {
        OpKind::Conv2D(conv)
    };
    let n_in = tensors.len() - 1;
    Some(Graph {
        ops: vec![Op {
            kind,
            inputs: (0..n_in).map(Some).collect(),
            outputs: vec![n_in],
        }],
        inputs: vec![0],
        outputs: vec![n_in],
        tensors,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conv_simd_matches_scalar(c in case(false)) {
        if let Some(g) = graph(&c, false) {
            let input = bytes(c.seed ^ 0x1234, g.tensors[0].num_elements());
            check_all_tiers(&g, &input)?;
        }
    }

    #[test]
    fn depthwise_simd_matches_scalar(c in case(true)) {
        if let Some(g) = graph(&c, true) {
            let input = bytes(c.seed ^ 0x1234, g.tensors[0].num_elements());
            check_all_tiers(&g, &input)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Depthwise split over (rows x channel blocks): few rows and many channels (several
    /// 16/32-channel blocks plus a tail) so every thread count from 1 to 4 splits channel
    /// blocks, and the result still equals the reference bit for bit.
    #[test]
    fn depthwise_channel_block_split_matches_reference(
        c in case(true),
        in_c in 1usize..=150,
        hw in (1usize..=5, 1usize..=5),
    ) {
        // Per-channel scales for every channel (the strategy draws 80).
        let w_scales = (0..in_c).map(|i| c.w_scales[i % c.w_scales.len()]).collect();
        let c = Case { in_c, out_c: in_c, in_h: hw.0, in_w: hw.1, batches: 1, w_scales, ..c };
        if let Some(g) = graph(&c, true) {
            let input = bytes(c.seed ^ 0x5678, g.tensors[0].num_elements());
            check_tiers_threads(&g, &input, &[1, 2, 3, 4])?;
        }
    }
}

/// Wide shapes: every avx512 column blocking (16..64), many row tiles, both threads splits;
/// K = 4700 is past the AVX2 widened-A kernel's stack buffer (`WIDE_KMAX`, its fallback).
#[test]
fn conv_simd_matches_scalar_wide() {
    for (i, (in_c, out_c, hw)) in [
        (32, 16, 9),
        (16, 96, 11),
        (24, 144, 5),
        (64, 160, 3),
        (96, 273, 2),
        (8, 1280, 1),
        (4700, 20, 2),
    ]
    .into_iter()
    .enumerate()
    {
        for (signed, onnx) in [(false, false), (true, false), (false, true), (true, true)] {
            let c = Case {
                signed,
                per_channel: signed,
                batches: 1,
                in_h: hw,
                in_w: hw + 1,
                in_c,
                out_c,
                k: 1,
                stride: 1,
                same: true,
                in_zp: if signed { -3 } else { 130 },
                w_zp: if signed { 0 } else { 101 },
                out_zp: if signed { 5 } else { 120 },
                in_scale: 0.02,
                w_scales: (0..out_c)
                    .map(|j| 0.002 + 0.0001 * (j % 17) as f32)
                    .collect(),
                out_scale: 0.03,
                act: Activation::Relu6,
                with_bias: true,
                onnx,
                seed: 77 + i as u64,
                w_spread: if i % 2 == 0 { 0 } else { 30 },
            };
            let g = graph(&c, false).expect("valid");
            let input = bytes(c.seed, g.tensors[0].num_elements());
            check_all_tiers(&g, &input).expect("bit exact");
        }
    }
}

/// Wide depthwise rows: the AVX2 kernel's sliding column window rotates its registers every
/// three pixels, so rows of 8 to 20 interior pixels at strides 1, 2 and 3 (the stride-3 path
/// builds every column), with and without padding, whole 16-channel blocks plus a tail block,
/// cover every rotation phase and remainder; all tiers equal the reference.
#[test]
fn depthwise_simd_matches_scalar_wide_rows() {
    let mut i = 0u64;
    for in_w in [9, 10, 11, 17, 18, 19, 23] {
        for stride in [1, 2, 3] {
            for (same, in_c) in [(true, 32), (false, 40), (true, 21)] {
                i += 1;
                let signed = i.is_multiple_of(2);
                let c = Case {
                    signed,
                    per_channel: signed,
                    batches: 1,
                    in_h: 4,
                    in_w,
                    in_c,
                    out_c: in_c,
                    k: 3,
                    stride,
                    same,
                    in_zp: if signed { -5 } else { 127 },
                    w_zp: if signed { 0 } else { 120 },
                    out_zp: if signed { 2 } else { 119 },
                    in_scale: 0.02,
                    w_scales: (0..80).map(|j| 0.002 + 0.0002 * (j % 13) as f32).collect(),
                    out_scale: 0.02,
                    act: Activation::Relu6,
                    with_bias: true,
                    onnx: i.is_multiple_of(3),
                    seed: 900 + i,
                    w_spread: if i % 4 == 1 { 0 } else { 40 },
                };
                let g = graph(&c, true).expect("valid");
                let input = bytes(c.seed ^ 0x77, g.tensors[0].num_elements());
                check_all_tiers(&g, &input).expect("bit exact");
            }
        }
    }
}

/// Trained-like weights (concentrated, plus outliers past the i16 bound) keep the AVX2
/// `Maddubs` kernel, residual included, and it equals the reference.
#[test]
fn avx2_maddubs_kernel_with_residual_matches_scalar() {
    if !Isa::Avx2.supported() {
        return;
    }
    let mut tiles = std::collections::BTreeSet::new();
    for (signed, onnx, w_spread) in [
        (false, false, 24),
        (true, false, 24),
        (false, true, 24),
        // Wide weights (like the Coral SSD's first layers) leave groups of one quad, whose
        // kernel runs 4-row tiles (63 rows: a 3-row tail).
        (false, false, 64),
        (true, false, 64),
    ] {
        let c = Case {
            signed,
            per_channel: signed,
            batches: 1,
            in_h: 7,
            in_w: 9,
            in_c: 72,
            out_c: 40,
            k: 1,
            stride: 1,
            same: true,
            in_zp: if signed { -7 } else { 121 },
            w_zp: if signed { 0 } else { 131 },
            out_zp: if signed { 3 } else { 117 },
            in_scale: 0.02,
            w_scales: (0..40).map(|j| 0.002 + 0.0001 * j as f32).collect(),
            out_scale: 0.05,
            act: Activation::None,
            with_bias: true,
            onnx,
            seed: 4242,
            w_spread,
        };
        let g = graph(&c, false).expect("valid");
        let input = bytes(c.seed ^ 1, g.tensors[0].num_elements());
        check_all_tiers(&g, &input).expect("bit exact");
        let (name, _) = run_tier(&g, Isa::Avx2, &input, 1);
        assert!(name.contains("maddubs"), "{name}");
        tiles.insert(name.split("maddubs_").nth(1).unwrap_or("").to_string());
    }
    assert!(tiles.iter().any(|t| t.starts_with("g1")), "{tiles:?}");
    assert!(tiles.iter().any(|t| !t.starts_with("g1")), "{tiles:?}");
}

/// An equal-shape 8-bit ADD: input 0 is the runtime input, input 1 a constant of `len` bytes.
#[allow(clippy::too_many_arguments)]
fn add_graph(
    signed: bool,
    len: usize,
    scales: (f32, f32, f32),
    zps: (i32, i32, i32),
    act: Activation,
    seed: u64,
) -> Graph {
    let dt = if signed { DType::I8 } else { DType::U8 };
    let t = |name: &str, scale: f32, zero_point: i32, data: Option<Vec<u8>>| Tensor {
        name: name.into(),
        shape: vec![1, len],
        dtype: dt,
        quant: Some(Quant::PerTensor { scale, zero_point }),
        data,
    };
    Graph {
        ops: vec![Op {
            kind: OpKind::Add { activation: act },
            inputs: vec![Some(0), Some(1)],
            outputs: vec![2],
        }],
        inputs: vec![0],
        outputs: vec![2],
        tensors: vec![
            t("a", scales.0, zps.0, None),
            t("b", scales.1, zps.1, Some(bytes(seed ^ 0xadd, len))),
            t("out", scales.2, zps.2, None),
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn add_simd_matches_scalar(
        signed in any::<bool>(),
        len in 1usize..=100,
        scales in (1e-3f32..0.2, 1e-3f32..0.2, 1e-3f32..0.4),
        zu in (zp_u8(), zp_u8(), zp_u8()),
        zi in (zp_i8(), zp_i8(), zp_i8()),
        act in act(),
        seed in any::<u64>(),
    ) {
        let zps = if signed { zi } else { zu };
        let g = add_graph(signed, len, scales, zps, act, seed);
        check_all_tiers(&g, &bytes(seed, len))?;
    }
}

/// Residual ADDs like Coral's (uint8, ReLU-free, and int8 with ReLU6) take the linear-form
/// kernel on the x86 SIMD tiers where it exists, and equal the reference at lengths past the
/// 32-byte loop and the 2-thread chunking; both dtypes and both kinds of kernel are seen.
#[test]
fn add_linear_form_kernel_matches_scalar() {
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..12u64 {
        for signed in [false, true] {
            let f = i as f32;
            let scales = (0.021 + 0.003 * f, 0.017 + 0.002 * f, 0.03 + 0.0013 * f);
            let zps = if signed {
                (-3 - i as i32, 5, -128)
            } else {
                (120 + i as i32, 131, 127)
            };
            let act = if signed {
                Activation::Relu6
            } else {
                Activation::None
            };
            let len = 10_007 + i as usize;
            let g = add_graph(signed, len, scales, zps, act, 99 + i);
            check_all_tiers(&g, &bytes(i, len)).expect("bit exact");
            if Isa::Avx2.supported() {
                let (name, _) = run_tier(&g, Isa::Avx2, &bytes(i, len), 1);
                seen.insert((signed, name.contains("_linear__")));
            }
        }
    }
    if Isa::Avx2.supported() {
        assert!(
            seen.contains(&(false, true)) && seen.contains(&(true, true)),
            "{seen:?}"
        );
    }
}

/// ONNX Runtime requantization selects the `fp32rq` SIMD kernels (not the scalar fallback
/// they used before) for both conv shapes and depthwise, and they match the reference.
#[test]
fn onnx_requant_mode_runs_fp32rq_simd_kernels() {
    for (depthwise, k) in [(false, 1), (false, 3), (true, 3)] {
        let c = Case {
            signed: true,
            per_channel: true,
            batches: 1,
            in_h: 5,
            in_w: 6,
            in_c: 24,
            out_c: 24,
            k,
            stride: 1,
            same: true,
            in_zp: -7,
            w_zp: 0,
            out_zp: 3,
            in_scale: 0.02,
            w_scales: (0..80).map(|j| 0.001 + 0.0003 * (j % 11) as f32).collect(),
            out_scale: 0.01,
            act: Activation::None,
            with_bias: true,
            onnx: true,
            seed: 5 + k as u64,
            w_spread: 0,
        };
        let g = graph(&c, depthwise).expect("valid");
        let input = bytes(c.seed, g.tensors[0].num_elements());
        for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
            let (name, _) = run_tier(&g, isa, &input, 1);
            assert!(name.contains("_fp32rq__"), "{isa}: {name}");
        }
        check_all_tiers(&g, &input).expect("bit exact");
    }
}
