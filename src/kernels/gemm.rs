//! Quantized GEMM for convolutions: packed-weight formats, the zero-point algebra, the
//! micro-kernel signature, and im2col. ISA code lives in `kernels::x86_64` and
//! `kernels::aarch64`.
//!
//! A conv is `C[m][n] = requant(bias[n] + sum_k (x[m][k] - zx) * (w[n][k] - zw))` where row `m`
//! is an output pixel and `k = (ky, kx, ic)` runs over its window (1x1 stride-1 convs read the
//! NHWC input directly as an `M x K` matrix; others go through [`im2col`]).
//!
//! Kernels see activations as `a = x` (uint8) or `a = x ^ 0x80 = x + 128` (int8, the kernel
//! flips the bit), with zero point `za = zx` or `zx + 128`, and weights `w' = w - zw`. Then,
//! exactly in wrapping 32-bit arithmetic (the reference also wraps),
//! ```text
//! sum_k (a - za) * w' = sum_k a * w'  -  za * sum_k w'
//! ```
//! so `col_bias[n] = bias[n] - za * sum_k w'[n][k]` is folded once at load.
//! - `Madd` format (AVX2 `vpmaddwd`): `w'` as i16 (|w'| <= 255, pair sums of u8*i16 fit i32).
//! - `Maddubs` format (AVX2 `vpmaddubsw`, u8 x s8 pair sums saturating to i16, accumulated in
//!   i16 over `MADDUBS_GROUP` quads before widening): `w' = s + r` where the s8 part `s` (in
//!   the `Vnni` layout) keeps every i16 lane provably unsaturated for any activations, and the
//!   few weights that would break that bound go to a sparse residual `r` (see
//!   [`GemmResidual`]); see `pack_maddubs` for the bound.
//! - `Vnni` format (`vpdpbusd`, u8 x s8): weights as s8 `s = w - 128` for uint8 (then
//!   `sum a*w' = sum a*s + (128 - zw) * sum a`: `row_factor = 128 - zw`, times each row's byte
//!   sum), or `s = w` for int8 (`zw = 0`, `row_factor = 0`).
//! - `Mla` format (NEON `smlal` by lane): `w'` as i16, one row of `nr` columns per k.
//! - `Sdot` format (Arm `sdot`, s8 x s8): the `Vnni` bytes, but the kernel feeds `a ^ 0x80 =
//!   a - 128` (as s8) instead of `a`: `sum a*s = sum (a ^ 0x80)*s + 128 * sum_k s`, and
//!   `128 * sum_k s[n][k]` is folded into `col_bias` too. For int8 `a ^ 0x80 = x`: the kernel
//!   flips only uint8 activations.
//!
//! Padding: K is padded to `kp` (a multiple of 4) with zero weights; A rows hold `kp` bytes and
//! padded bytes must be 0 (they enter row sums); window taps outside the image hold the input
//! zero point `zx` so `a - za = 0`.

use crate::runtime::AlignedBuf;

use super::reference::conv::ConvGeometry;
use super::requant::Requant;

/// Packed weight layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackFormat {
    /// i16 `w'`: `[n_block][kp/2][nr][2]`.
    Madd,
    /// s8: `[n_block][kp/4][nr][4]`.
    Vnni,
    /// i16 `w'`: `[n_block][kp][nr]`.
    Mla,
    /// s8 as `Vnni`; `col_bias` also holds `128 * sum_k s`.
    Sdot,
    /// s8 `s` as `Vnni` plus [`PackedGemm::residual`]; `s + r = w'`.
    Maddubs,
}

/// Most quads (4 K values) a `Maddubs` kernel sums in i16 lanes before widening to i32
/// (`GemmResidual::group`); packing bounds each lane's group of `2 * group` weights (see
/// `pack_maddubs`).
pub const MADDUBS_GROUP: usize = 4;

/// The sparse residual of the `Maddubs` format: per column block, the K indices where some
/// column's weight did not fit the i16 bound, with that block's residual weights there.
#[derive(Clone, Default)]
pub struct GemmResidual {
    /// Entries of block `nb`: `start[nb]..start[nb + 1]` (empty for other formats); always an
    /// even number, taken in pairs `(2p, 2p + 1)`.
    pub start: Vec<u32>,
    /// K index of each entry (a block with an odd count ends with a copy of its last index
    /// with zero weights).
    pub k: Vec<u32>,
    /// Per entry pair `p`, `nr` i16 pairs `(r[k[2p]], r[k[2p + 1]])` (so `vpmaddwd` with the
    /// broadcast pair `(a[k[2p]], a[k[2p + 1]])` gives both products' sum per column).
    pub w: Vec<i16>,
    /// Quads per i16 group (1..=`MADDUBS_GROUP`).
    pub group: usize,
}

/// Weights packed for one micro-kernel: `nr` columns per block, K padded to `kp`.
pub struct PackedGemm {
    pub format: PackFormat,
    /// True K (window size * input channels) and padded K (multiple of 4).
    pub k: usize,
    pub kp: usize,
    /// Output channels, columns per block, blocks.
    pub n: usize,
    pub nr: usize,
    pub n_blocks: usize,
    /// Packed weights (64-byte aligned).
    pub data: AlignedBuf,
    /// `bias[n] - za * sum_k w'[n][k]`, padded to `n_blocks * nr` with zeros.
    pub col_bias: Vec<i32>,
    /// `128 - zw` for the Vnni and Sdot formats with uint8 weights, else 0.
    pub row_factor: i32,
    /// Activations are int8: kernels xor each byte with 0x80 (Vnni, Madd and Mla formats;
    /// Sdot kernels flip uint8 activations instead).
    pub signed_act: bool,
    pub requant: Requant,
    /// `Maddubs` only: the weights the s8 part could not hold.
    pub residual: GemmResidual,
}

/// Quantized weights of a conv in GEMM order: `w[n * k + kk]`, raw values (uint8 or int8
/// widened) and their zero point (`-filter_offset`).
pub struct GemmWeights<'a> {
    pub w: &'a [i32],
    pub zw: i32,
    pub k: usize,
    pub n: usize,
    pub bias: Option<&'a [i32]>,
    /// Input zero point in the raw domain (`-input_offset`).
    pub zx: i32,
    pub signed_act: bool,
}

impl PackedGemm {
    /// The block of `t`'s range that micro-kernels run half width: its last one, if it holds
    /// at most `nr / 2` columns (the last block of the matrix, e.g. N = 24 in 16-column
    /// blocks: the SSD's 24-channel projections); a quarter to a half of the layer's
    /// multiplies saved.
    pub fn half_block(&self, t: &GemmRows) -> Option<usize> {
        let last = t.nb_end.checked_sub(1).filter(|&l| l >= t.nb_begin)?;
        (self.n - last * self.nr <= self.nr / 2).then_some(last)
    }

    pub fn pack(
        wts: &GemmWeights,
        format: PackFormat,
        nr: usize,
        q: &super::reference::conv::QuantParams,
    ) -> PackedGemm {
        let (k, n) = (wts.k, wts.n);
        let kp = k.div_ceil(4) * 4;
        let n_blocks = n.div_ceil(nr);
        let za = if wts.signed_act { wts.zx + 128 } else { wts.zx };
        let wp = |nn: usize, kk: usize| wts.w[nn * k + kk] - wts.zw;
        let mut col_bias = vec![0i32; n_blocks * nr];
        for (nn, cb) in col_bias.iter_mut().enumerate().take(n) {
            let sum = (0..k).fold(0i32, |s, kk| s.wrapping_add(wp(nn, kk)));
            let b = wts.bias.map_or(0, |b| b[nn]);
            *cb = b.wrapping_sub(za.wrapping_mul(sum));
        }
        let mut residual = GemmResidual::default();
        let mut maddubs_data = None;
        let mut format = format;
        if format == PackFormat::Maddubs {
            // The group with the cheapest kernel loop (longer groups save widening multiplies
            // but need tighter weights, so more residual entries), unless the `Madd` kernel is
            // cheaper still.
            let packed = [MADDUBS_GROUP, 2, 1]
                .into_iter()
                .map(|g| {
                    let (v, r) = pack_maddubs(k, kp, n, nr, g, &wp);
                    (maddubs_cost(kp, n_blocks, &r), v, r)
                })
                .min_by_key(|(cost, ..)| *cost)
                .filter(|(cost, ..)| *cost < MADD_COST_PER_QUAD * kp / 4);
            match packed {
                Some((_, v, r)) => {
                    maddubs_data = Some(v);
                    residual = r;
                }
                None => {
                    // Too many weights break the bound: the `Madd` format (the caller picks
                    // its kernel, see `kernels::gemm_for_format`).
                    format = PackFormat::Madd;
                }
            }
        }
        let (data, row_factor) = match format {
            PackFormat::Madd => {
                let mut v = vec![0i16; n_blocks * kp * nr];
                for nb in 0..n_blocks {
                    for k2 in 0..kp / 2 {
                        for j in 0..nr {
                            for t in 0..2 {
                                let (nn, kk) = (nb * nr + j, k2 * 2 + t);
                                if nn < n && kk < k {
                                    v[((nb * (kp / 2) + k2) * nr + j) * 2 + t] = wp(nn, kk) as i16;
                                }
                            }
                        }
                    }
                }
                (AlignedBuf::from_bytes(bytemuck::cast_slice(&v)), 0)
            }
            PackFormat::Mla => {
                let mut v = vec![0i16; n_blocks * kp * nr];
                for nb in 0..n_blocks {
                    for kk in 0..k {
                        for j in 0..nr {
                            let nn = nb * nr + j;
                            if nn < n {
                                v[(nb * kp + kk) * nr + j] = wp(nn, kk) as i16;
                            }
                        }
                    }
                }
                (AlignedBuf::from_bytes(bytemuck::cast_slice(&v)), 0)
            }
            PackFormat::Maddubs => (
                maddubs_data.map_or_else(AlignedBuf::default, |v| AlignedBuf::from_bytes(&v)),
                0,
            ),
            PackFormat::Vnni | PackFormat::Sdot => {
                let unsigned = !wts.signed_act;
                let mut v = vec![0u8; n_blocks * kp * nr];
                for nb in 0..n_blocks {
                    for k4 in 0..kp / 4 {
                        for j in 0..nr {
                            for t in 0..4 {
                                let (nn, kk) = (nb * nr + j, k4 * 4 + t);
                                if nn < n && kk < k {
                                    let raw = wts.w[nn * k + kk];
                                    let s = if unsigned { raw - 128 } else { raw };
                                    v[((nb * (kp / 4) + k4) * nr + j) * 4 + t] = s as i8 as u8;
                                    if format == PackFormat::Sdot {
                                        col_bias[nn] = col_bias[nn].wrapping_add(128 * s);
                                    }
                                }
                            }
                        }
                    }
                }
                (
                    AlignedBuf::from_bytes(&v),
                    if unsigned { 128 - wts.zw } else { 0 },
                )
            }
        };
        PackedGemm {
            format,
            k,
            kp,
            n,
            nr,
            n_blocks,
            data,
            col_bias,
            row_factor,
            signed_act: wts.signed_act,
            requant: Requant::new(q, n_blocks * nr),
            residual,
        }
    }
}

/// Estimated AVX2 vector ALU operations (in half units) for a 3-row tile and one column
/// block. The loops are bound by the vector ALU ports (multiplies on two ports, adds on
/// three), not by loads or the front end, so broadcasts and weight loads cost nothing here:
/// - `Maddubs`, per quad of K: 6 `vpmaddubsw` + 6 `vpaddw` (12); per group one `vpmaddwd` +
///   `vpaddd` per accumulator, less the group's first `vpaddw`s, which add to zero (6);
/// - a residual entry: per row half a pair's merge and broadcast, 2 `vpmaddwd` + 2 `vpaddd`
///   (about 10.5, plus scalar byte work: 11);
/// - the widened-A `Madd` kernel, per 6 rows and K pair: 12 `vpmaddwd` + 12 `vpaddd` (24 per
///   quad and 3 rows).
///
/// So groups of 1, 2 and 4 quads cost 18, 15 and 13.5 per quad against `Madd`'s 24, and the
/// residual decides: early layers with large weights take groups of 1.
const MADDUBS_COST_PER_QUAD: usize = 2 * 12;
const MADDUBS_WIDEN_COST_PER_GROUP: usize = 2 * 6;
const RESIDUAL_COST_PER_ENTRY: usize = 2 * 11;
const MADD_COST_PER_QUAD: usize = 2 * 24;

/// [`MADDUBS_COST_PER_QUAD`] and friends for a whole `Maddubs` packing, per block (so
/// comparable with `MADD_COST_PER_QUAD * kp / 4`).
fn maddubs_cost(kp: usize, n_blocks: usize, r: &GemmResidual) -> usize {
    let kp4 = kp / 4;
    kp4 * MADDUBS_COST_PER_QUAD
        + kp4.div_ceil(r.group) * MADDUBS_WIDEN_COST_PER_GROUP
        + r.k.len() * RESIDUAL_COST_PER_ENTRY / n_blocks.max(1)
}

/// `Maddubs` packing of `w'` (`wp(n, k)`): the s8 part in the `Vnni` layout and the residual
/// (the caller weighs its cost, [`maddubs_cost`], against the other groups and the `Madd`
/// kernel).
///
/// The bound: a kernel lane (column `j`, half `h` of each quad) sums `a[k] * s[k]` in i16 over
/// the `2 * group` indices `k = 4q + 2h + {0, 1}` of a group of quads, starting from 0
/// (each `vpmaddubsw` pair sum, then wrapping `vpaddw`). With every `a` in `0..=255` and the
/// lane's positive weights summing to at most 128 and its negative ones to at least -128,
/// every partial sum lies in `[-32640, 32640]`: no pair sum saturates and the i16 sum is
/// exact. Weights outside s8 go to the residual first; then, while a lane breaks the bound,
/// its largest weight in the offending direction does. Real weights are concentrated, so few
/// move (the Coral SSD: 0.25% of weights, 3% of K indices per block).
fn pack_maddubs(
    k: usize,
    kp: usize,
    n: usize,
    nr: usize,
    group: usize,
    wp: &impl Fn(usize, usize) -> i32,
) -> (Vec<u8>, GemmResidual) {
    const L: usize = 2 * MADDUBS_GROUP;
    debug_assert!((1..=MADDUBS_GROUP).contains(&group));
    let n_blocks = n.div_ceil(nr);
    let kp4 = kp / 4;
    let mut data = vec![0u8; n_blocks * kp * nr];
    let mut res = GemmResidual {
        start: vec![0],
        group,
        ..GemmResidual::default()
    };
    for nb in 0..n_blocks {
        let mut rmap: std::collections::BTreeMap<usize, Vec<i16>> = Default::default();
        for j in 0..nr.min(n - nb * nr) {
            let nn = nb * nr + j;
            for g in (0..kp4).step_by(group) {
                for h in 0..2 {
                    let mut ks = [usize::MAX; L];
                    let mut vals = [0i32; L];
                    let mut rs = [0i32; L];
                    for (i, q) in (g..(g + group).min(kp4)).enumerate() {
                        for e in 0..2 {
                            let kk = 4 * q + 2 * h + e;
                            if kk < k {
                                ks[2 * i + e] = kk;
                                vals[2 * i + e] = wp(nn, kk);
                            }
                        }
                    }
                    for (v, r) in vals.iter_mut().zip(rs.iter_mut()) {
                        if !(-128..=127).contains(v) {
                            (*r, *v) = (*v, 0);
                        }
                    }
                    loop {
                        let pos: i32 = vals.iter().filter(|v| **v > 0).sum();
                        let neg: i32 = vals.iter().filter(|v| **v < 0).sum();
                        let i = if pos > 128 {
                            (0..L).max_by_key(|&i| vals[i]).unwrap_or(0)
                        } else if neg < -128 {
                            (0..L).min_by_key(|&i| vals[i]).unwrap_or(0)
                        } else {
                            break;
                        };
                        rs[i] += vals[i];
                        vals[i] = 0;
                    }
                    for i in 0..L {
                        let kk = ks[i];
                        if kk == usize::MAX {
                            continue;
                        }
                        data[((nb * kp4 + kk / 4) * nr + j) * 4 + kk % 4] = vals[i] as i8 as u8;
                        if rs[i] != 0 {
                            let e = rmap.entry(kk).or_insert_with(|| vec![0; 2 * nr]);
                            // |w'| <= 255: fits i16.
                            e[2 * j] = rs[i] as i16;
                        }
                    }
                }
            }
        }
        let entries: Vec<(usize, Vec<i16>)> = rmap.into_iter().collect();
        for pair in entries.chunks(2) {
            let (ka, wa) = &pair[0];
            let (kb, wb) = pair.get(1).map_or((*ka, None), |(k, w)| (*k, Some(w)));
            res.k.extend([*ka as u32, kb as u32]);
            for j in 0..nr {
                res.w.extend([wa[2 * j], wb.map_or(0, |w| w[2 * j])]);
            }
        }
        res.start.push(res.k.len() as u32);
    }
    (data, res)
}

/// Rows `[0, rows)` of A and C and a range of column blocks for one micro-kernel call.
#[derive(Clone, Copy)]
pub struct GemmRows {
    /// First A row; rows are `a_stride` bytes apart and hold `kp` readable bytes.
    pub a: *const u8,
    pub a_stride: usize,
    pub rows: usize,
    /// Output row 0 (NHWC pixel); rows are `c_stride` bytes apart, `n` bytes are written.
    pub c: *mut u8,
    pub c_stride: usize,
    pub nb_begin: usize,
    pub nb_end: usize,
}

/// A GEMM micro-kernel driver: for each tile of rows and each column block in range,
/// accumulate, add `col_bias` and the row term, requantize, store `min(nr, n - col)` bytes.
///
/// # Safety
/// The CPU supports the kernel's ISA; `rows.a` is valid for reads of `rows * a_stride` bytes
/// (the last row only `kp`), `rows.c` for writes of `rows * c_stride` bytes (the last row only
/// `n`); `packed` has the kernel's format and `nr`.
pub type GemmFn = unsafe fn(packed: &PackedGemm, rows: &GemmRows);

/// Copy the window of output pixels `[p0, p1)` (in `(b, oy, ox)` order) into `dst` rows of
/// `kp` bytes: taps outside the image get `zx` (the raw input zero point byte), K padding 0.
///
/// With dilation 1 the `filter_w` taps of one filter row are `filter_w * in_c` contiguous
/// input bytes whenever all of them are inside the image, so interior rows are one copy each
/// (tiny runs such as the 9 bytes of a 3x3 window over RGB use fixed-size moves, no memcpy
/// call); rows that touch the left/right border fall back to tap-by-tap copies.
pub fn im2col(
    g: &ConvGeometry,
    input: &[u8],
    zx: u8,
    kp: usize,
    p0: usize,
    p1: usize,
    dst: &mut [u8],
) {
    let c = g.in_c;
    let run = g.filter_w * c;
    let k = g.filter_h * run;
    // Pixel `p0`'s coordinates `(ox, oy, b)`, then stepped per row (no divisions per row).
    let mut pos = (
        p0 % g.out_w,
        (p0 / g.out_w) % g.out_h,
        p0 / (g.out_w * g.out_h),
    );
    let step = |(ox, oy, b): (usize, usize, usize)| match (ox + 1 == g.out_w, oy + 1 == g.out_h) {
        (false, _) => (ox + 1, oy, b),
        (true, false) => (0, oy + 1, b),
        (true, true) => (0, 0, b + 1),
    };
    // Interior fast path: output columns whose filter rows are wholly inside the image
    // horizontally, on output rows whose filter rows are all inside vertically, copy
    // `filter_h` runs from offsets fixed per output row (`row_off`, recomputed when the output
    // row changes), without per-tap checks.
    const FAST_FH: usize = 8;
    let (x_lo, x_hi) = if g.dilation_w == 1 && g.filter_h <= FAST_FH {
        super::dwconv::interior_cols(g)
    } else {
        (0, 0)
    };
    let mut row_off = [0usize; FAST_FH];
    let mut row_key = usize::MAX;
    let mut rows_inside = false;
    let rows = p1.saturating_sub(p0).min(dst.len() / kp);
    // Runs shorter than 16 bytes (3x3 over RGB: 9) are copied as whole 16-byte moves at each
    // run's offset; each move's extra bytes are overwritten by the next run, the K padding
    // re-zeroed after, and the last run's excess lands in the next row, which is written after
    // it. So: not on the last row, and only where the input holds 16 bytes from the run.
    let wide = run < 16 && kp.saturating_sub(k) < 4 && (g.filter_h - 1) * run + 16 <= 2 * kp;
    let mut last_off = 0;
    let mut r = 0;
    while r < rows {
        let row_start = r * kp;
        r += 1;
        let (ox, oy, b) = pos;
        if wide && rows_inside && b * g.out_h + oy == row_key && (x_lo..x_hi).contains(&ox) {
            // The rest of this output row's interior, but not the last row of `dst`, nor past
            // the last pixel whose runs have 16 input bytes.
            let x0 = (ox * g.stride_w - g.pad_w) * c;
            let step_x = g.stride_w * c;
            let room = match input.len().checked_sub(last_off + x0 + 16) {
                Some(spare) => spare / step_x + 1,
                None => 0,
            };
            let n = room.min(x_hi - ox).min(rows - r);
            if n > 0 {
                for j in 0..n {
                    let d0 = row_start + j * kp;
                    let xs = x0 + j * step_x;
                    for (fy, &o) in row_off.iter().enumerate().take(g.filter_h) {
                        let d = d0 + fy * run;
                        dst[d..d + 16].copy_from_slice(&input[o + xs..o + xs + 16]);
                    }
                    fill_run(&mut dst[d0 + k..d0 + kp], 0);
                }
                pos = step((ox + n - 1, oy, b));
                r += n - 1;
                continue;
            }
        }
        let row = &mut dst[row_start..row_start + kp];
        // K padding (at most 3 bytes, `kp` is `k` rounded up to 4): zero the last 4 bytes
        // first with one store; the window bytes copied below overwrite the real ones. (A
        // `fill` of 1..3 bytes per row would be a `memset` call per row.)
        if kp > k {
            row[kp - 4..].copy_from_slice(&[0; 4]);
        }
        let (ox, oy, b) = pos;
        pos = step(pos);
        if (x_lo..x_hi).contains(&ox) {
            let key = b * g.out_h + oy;
            if key != row_key {
                row_key = key;
                rows_inside = (0..g.filter_h).all(|fy| g.in_y(oy, fy).is_some());
                for (fy, o) in row_off.iter_mut().enumerate().take(g.filter_h) {
                    *o = g.in_y(oy, fy).map_or(0, |iy| g.input_offset(b, iy, 0));
                }
                last_off = row_off[..g.filter_h].iter().max().copied().unwrap_or(0);
            }
            if rows_inside {
                let x0 = (ox * g.stride_w - g.pad_w) * c;
                for (fy, &o) in row_off.iter().enumerate().take(g.filter_h) {
                    copy_run(
                        &mut row[fy * run..(fy + 1) * run],
                        &input[o + x0..o + x0 + run],
                    );
                }
                continue;
            }
        }
        // The whole filter row is inside the image horizontally (taps contiguous).
        let x_first = g.in_x(ox, 0);
        let x_inside =
            g.dilation_w == 1 && x_first.is_some() && g.in_x(ox, g.filter_w - 1).is_some();
        let mut o = 0;
        for fy in 0..g.filter_h {
            let iy = g.in_y(oy, fy);
            if let (Some(iy), Some(ix), true) = (iy, x_first, x_inside) {
                let s = g.input_offset(b, iy, ix);
                copy_run(&mut row[o..o + run], &input[s..s + run]);
                o += run;
                continue;
            }
            for fx in 0..g.filter_w {
                let d = &mut row[o..o + c];
                match (iy, g.in_x(ox, fx)) {
                    (Some(iy), Some(ix)) => {
                        let s = g.input_offset(b, iy, ix);
                        copy_run(d, &input[s..s + c]);
                    }
                    _ => fill_run(d, zx),
                }
                o += c;
            }
        }
        debug_assert_eq!(o, k);
    }
}

/// `dst.fill(v)` with fixed-size stores for runs under 16 bytes (border taps of a few input
/// channels), where a `memset` call would cost more than the fill.
#[inline]
fn fill_run(dst: &mut [u8], v: u8) {
    let n = dst.len();
    if n >= 16 {
        dst.fill(v);
    } else if n >= 8 {
        let w = u64::from_ne_bytes([v; 8]).to_ne_bytes();
        dst[..8].copy_from_slice(&w);
        dst[n - 8..].copy_from_slice(&w);
    } else if n >= 4 {
        let w = u32::from_ne_bytes([v; 4]).to_ne_bytes();
        dst[..4].copy_from_slice(&w);
        dst[n - 4..].copy_from_slice(&w);
    } else if n >= 2 {
        dst[..2].copy_from_slice(&[v; 2]);
        dst[n - 2..].copy_from_slice(&[v; 2]);
    } else if n == 1 {
        dst[0] = v;
    }
}

/// `dst.copy_from_slice(src)` (equal lengths) with fixed-size, possibly overlapping moves for
/// runs under 16 bytes, where a `memcpy` call would cost more than the copy.
#[inline]
fn copy_run(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert_eq!(dst.len(), n);
    if n >= 16 || n != dst.len() {
        dst.copy_from_slice(src);
    } else if n >= 8 {
        let (a, z) = (&src[..8], &src[n - 8..]);
        let (a, z) = (u64::from_ne_bytes(arr(a)), u64::from_ne_bytes(arr(z)));
        dst[..8].copy_from_slice(&a.to_ne_bytes());
        dst[n - 8..].copy_from_slice(&z.to_ne_bytes());
    } else if n >= 4 {
        let (a, z) = (&src[..4], &src[n - 4..]);
        let (a, z) = (u32::from_ne_bytes(arr(a)), u32::from_ne_bytes(arr(z)));
        dst[..4].copy_from_slice(&a.to_ne_bytes());
        dst[n - 4..].copy_from_slice(&z.to_ne_bytes());
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// The first `N` bytes of `s` (callers pass exactly `N`).
#[inline]
fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

/// Pick the column blocking for `n` outputs among `1..=max_nv` vectors of `lanes` columns:
/// least padding, ties to wider blocks.
pub fn choose_nv(n: usize, lanes: usize, max_nv: usize) -> usize {
    (1..=max_nv)
        .rev()
        .min_by_key(|&nv| n.div_ceil(nv * lanes) * nv * lanes)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `pack_maddubs` splits `w' = s + r` exactly (K padding all zero) and keeps every
        /// i16 lane group of the kernel inside the no-saturation bound.
        #[test]
        fn maddubs_split_is_exact_and_every_lane_group_is_bounded(
            k in 1usize..70,
            n in 1usize..40,
            spread in 1i32..=255,
            group in 1usize..=MADDUBS_GROUP,
            seed in any::<u64>(),
        ) {
            let nr = 16;
            let kp = k.div_ceil(4) * 4;
            let wp = |nn: usize, kk: usize| {
                let h = (seed ^ (nn as u64 * 7919 + kk as u64 * 104_729))
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15);
                ((h >> 40) as i32 % (2 * spread + 1) - spread).clamp(-255, 255)
            };
            let (data, res) = pack_maddubs(k, kp, n, nr, group, &wp);
            prop_assert_eq!(res.group, group);
            let s = |nn: usize, kk: usize| {
                let (nb, j) = (nn / nr, nn % nr);
                data[((nb * (kp / 4) + kk / 4) * nr + j) * 4 + kk % 4] as i8 as i32
            };
            let r = |nn: usize, kk: usize| {
                let (nb, j) = (nn / nr, nn % nr);
                let (e0, e1) = (res.start[nb] as usize, res.start[nb + 1] as usize);
                (e0..e1)
                    .filter(|&e| res.k[e] as usize == kk)
                    .map(|e| i32::from(res.w[(e / 2) * 2 * nr + 2 * j + e % 2]))
                    .sum::<i32>()
            };
            for nn in 0..n {
                for kk in 0..kp {
                    let want = if kk < k { wp(nn, kk) } else { 0 };
                    prop_assert_eq!(s(nn, kk) + r(nn, kk), want, "n {} k {}", nn, kk);
                }
                for g in (0..kp / 4).step_by(group) {
                    for h in 0..2 {
                        let lane: Vec<i32> = (g..(g + group).min(kp / 4))
                            .flat_map(|q| [4 * q + 2 * h, 4 * q + 2 * h + 1])
                            .map(|kk| s(nn, kk))
                            .collect();
                        let pos: i32 = lane.iter().filter(|v| **v > 0).sum();
                        let neg: i32 = lane.iter().filter(|v| **v < 0).sum();
                        prop_assert!(pos <= 128 && neg >= -128, "n {} group {} {:?}", nn, g, lane);
                    }
                }
            }
        }

        /// `im2col` over any pixel range equals the tap-by-tap definition: window bytes, the
        /// zero point outside the image, zero K padding (the interior fast path included).
        #[test]
        fn im2col_matches_tap_by_tap_definition(
            batches in 1usize..3,
            in_h in 1usize..9,
            in_w in 1usize..11,
            in_c in 1usize..6,
            filter_h in 1usize..4,
            filter_w in 1usize..4,
            stride in 1usize..3,
            dilation in 1usize..3,
            pad in 0usize..3,
            range in (0.0f64..1.0, 0.0f64..1.0),
            seed in any::<u64>(),
        ) {
            let span = |inp: usize, f: usize| (inp + 2 * pad).saturating_sub(dilation * (f - 1) + 1);
            let (sh, sw) = (span(in_h, filter_h), span(in_w, filter_w));
            prop_assume!(sh > 0 && sw > 0);
            let g = ConvGeometry {
                batches, in_h, in_w, in_c,
                out_h: (sh - 1) / stride + 1,
                out_w: (sw - 1) / stride + 1,
                out_c: 1,
                filter_h, filter_w,
                stride_h: stride, stride_w: stride,
                dilation_h: dilation, dilation_w: dilation,
                pad_h: pad, pad_w: pad,
            };
            let input: Vec<u8> = (0..g.input_len())
                .map(|i| (seed.wrapping_mul(i as u64 + 1) >> 13) as u8)
                .collect();
            let pixels = batches * g.out_h * g.out_w;
            let (a, b) = (range.0 * pixels as f64, range.1 * pixels as f64);
            let (p0, p1) = ((a.min(b)) as usize, (a.max(b) as usize + 1).min(pixels));
            let k = filter_h * filter_w * in_c;
            let kp = k.div_ceil(4) * 4;
            let zx = 77u8;
            let mut got = vec![0xAAu8; (p1 - p0) * kp];
            im2col(&g, &input, zx, kp, p0, p1, &mut got);
            for (r, p) in (p0..p1).enumerate() {
                let (ox, oy, bb) = (p % g.out_w, (p / g.out_w) % g.out_h, p / (g.out_w * g.out_h));
                for kk in 0..kp {
                    let want = if kk >= k {
                        0
                    } else {
                        let (fy, fx, ic) = (kk / (filter_w * in_c), kk / in_c % filter_w, kk % in_c);
                        match (g.in_y(oy, fy), g.in_x(ox, fx)) {
                            (Some(iy), Some(ix)) => input[g.input_offset(bb, iy, ix) + ic],
                            _ => zx,
                        }
                    };
                    prop_assert_eq!(got[r * kp + kk], want, "pixel {} k {}", p, kk);
                }
            }
        }
    }
}
