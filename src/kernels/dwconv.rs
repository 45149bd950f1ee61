//! Depthwise 3x3 (multiplier 1) packing for SIMD kernels; ISA code in `kernels::x86_64`.
//!
//! Per block of 16 channels the kernel widens each tap's 16 input bytes to i16, interleaves
//! tap pairs `(2p, 2p+1)` (`p < 5`; tap 9 is a dummy with weight 0) with `unpacklo/hi_epi16`
//! and multiplies with `vpmaddwd`. Within 128-bit lanes, `unpacklo` holds channels
//! `0-3, 8-11` and `unpackhi` channels `4-7, 12-15`; weights, biases and requantization
//! arrays are stored in that order ([`lane_channel`]).
//!
//! Algebra (exact in wrapping i32): `sum_t (x_t - zx) * w'_t = sum_t x_t * w'_t - zx * sum_t w'_t`
//! with `w' = w - zw`, so `bias'[c] = bias[c] - zx * sum_t w'_t[c]`; taps outside the image read
//! `zx` and contribute 0. `x` is the raw value (u8 zero-extended or i8 sign-extended).

use crate::runtime::AlignedBuf;

use super::reference::conv::{ConvGeometry, QuantParams};
use super::requant::Requant;

pub struct PackedDw {
    pub geom: ConvGeometry,
    /// i16 `[cblock][pair 0..5][half 0..2][8 lanes][2 taps]`.
    pub weights: AlignedBuf,
    /// `bias'` in lane order, `cblocks * 16` entries.
    pub bias: Vec<i32>,
    pub requant: Requant,
    /// The raw input zero point byte, `cblocks * 16` of them.
    pub zp_row: Vec<u8>,
}

/// Output rows (`b * out_h + oy`) `[row_begin, row_end)` of one call.
#[derive(Clone, Copy)]
pub struct DwRows {
    pub input: *const u8,
    pub output: *mut u8,
    pub row_begin: usize,
    pub row_end: usize,
}

/// # Safety
/// The CPU supports the kernel's ISA; `input`/`output` hold the whole NHWC tensors of `geom`.
pub type DwFn = unsafe fn(packed: &PackedDw, rows: &DwRows);

/// Channel (within a 16-block) of entry `i` (0..16) in lane order: half `i / 8`, lane `i % 8`.
pub fn lane_channel(i: usize) -> usize {
    let (half, lane) = (i / 8, i % 8);
    (lane & 3) + 4 * half + 8 * (lane >> 2)
}

impl PackedDw {
    /// `w[t * c + ch]` raw filter values (tap `t = ky * 3 + kx`), `zw = -filter_offset`,
    /// `zx = -input_offset`.
    pub fn pack(geom: &ConvGeometry, w: &[i32], bias: Option<&[i32]>, q: &QuantParams) -> PackedDw {
        let c = geom.in_c;
        let cblocks = c.div_ceil(16);
        let zw = -q.filter_offset;
        let zx = -q.input_offset;
        let wp = |t: usize, ch: usize| -> i32 {
            if t < 9 && ch < c {
                w[t * c + ch] - zw
            } else {
                0
            }
        };
        let mut wv = vec![0i16; cblocks * 5 * 2 * 8 * 2];
        let mut bv = vec![0i32; cblocks * 16];
        for cb in 0..cblocks {
            for i in 0..16 {
                let ch = cb * 16 + lane_channel(i);
                for pair in 0..5 {
                    let (half, lane) = (i / 8, i % 8);
                    let base = (((cb * 5 + pair) * 2 + half) * 8 + lane) * 2;
                    wv[base] = wp(2 * pair, ch) as i16;
                    wv[base + 1] = wp(2 * pair + 1, ch) as i16;
                }
                if ch < c {
                    let sum = (0..9).fold(0i32, |s, t| s.wrapping_add(wp(t, ch)));
                    let b = bias.map_or(0, |b| b[ch]);
                    bv[cb * 16 + i] = b.wrapping_sub(zx.wrapping_mul(sum));
                }
            }
        }
        PackedDw {
            geom: geom.clone(),
            weights: AlignedBuf::from_bytes(bytemuck::cast_slice(&wv)),
            bias: bv,
            requant: Requant::with_order(q, cblocks * 16, |i| (i / 16) * 16 + lane_channel(i % 16)),
            zp_row: vec![zx as u8; cblocks * 16],
        }
    }
}
