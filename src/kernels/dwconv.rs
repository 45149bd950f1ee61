//! Depthwise 3x3 (multiplier 1) packing for SIMD kernels; ISA code in `kernels::x86_64` and
//! `kernels::aarch64`.
//!
//! [`DwLayout::Pairs`] (x86): per block of `bw` channels (16 for ymm, 32 for zmm) the kernel widens each tap's input
//! bytes to i16, interleaves tap pairs `(2p, 2p+1)` (`p < 5`; tap 9 is a dummy with weight 0)
//! with `unpacklo/hi_epi16` and multiplies with `vpmaddwd`. Within each 128-bit lane `L`,
//! `unpacklo` holds channels `8L+0..4` and `unpackhi` channels `8L+4..8`; weights, biases and
//! requantization arrays are stored in that order ([`lane_channel`]), and `packs_epi32(lo, hi)`
//! restores channel order.
//!
//! [`DwLayout::Cols`] (AVX2, `bw = 16`): the kernel builds, once per input column, four
//! vectors from the column's three filter-row taps `(r0, r1, r2)`: the byte interleave of
//! `r0` and `r1` widened to i16 pairs `(r0[c], r1[c])` for channels 0..8 and 8..16, and `r2`
//! widened to i32 (`(r2[c], 0)` as i16 pairs) for the same halves; each output pixel then
//! multiplies its three columns' vectors with `vpmaddwd`. Neighbouring output pixels share
//! columns (stride 1: two of three), so a pixel widens one new column instead of nine taps.
//! Weights i16 `[cblock][fx 0..3][part 0..4][8 lanes][2]` with parts `(w'(r0), w'(r1))` for
//! channels 0..8 and 8..16, then `(w'(r2), 0)` for both halves; bias and requantization
//! arrays in channel order.
//!
//! [`DwLayout::Taps`] (NEON `smlal`/`smlal2`): i16 `[cblock][tap 0..9][bw]` in channel order;
//! bias and requantization arrays in channel order too.
//!
//! Algebra (exact in wrapping i32): `sum_t (x_t - zx) * w'_t = sum_t x_t * w'_t - zx * sum_t w'_t`
//! with `w' = w - zw`, so `bias'[c] = bias[c] - zx * sum_t w'_t[c]`; taps outside the image read
//! `zx` and contribute 0. `x` is the raw value (u8 zero-extended or i8 sign-extended).

use crate::runtime::AlignedBuf;

use super::reference::conv::{ConvGeometry, QuantParams};
use super::requant::Requant;

/// Weight layout of a [`PackedDw`] (which one a tier's kernel reads: [`layout_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DwLayout {
    /// AVX-512: tap pairs interleaved for `vpmaddwd`, channels in 128-bit-lane order.
    Pairs,
    /// AVX2: per filter column, row pairs `(r0, r1)` and `(r2, 0)` for `vpmaddwd`, channels in
    /// order.
    Cols,
    /// NEON: one `bw`-channel row per tap, channels in order.
    Taps,
}

/// The layout the depthwise kernel of `isa` expects.
pub fn layout_for(isa: super::Isa) -> DwLayout {
    match isa {
        super::Isa::Neon | super::Isa::Dotprod => DwLayout::Taps,
        super::Isa::Avx2 | super::Isa::AvxVnni => DwLayout::Cols,
        _ => DwLayout::Pairs,
    }
}

pub struct PackedDw {
    pub geom: ConvGeometry,
    /// Channels per block (16 or 32).
    pub bw: usize,
    /// `Pairs`: i16 `[cblock][pair 0..5][half 0..2][bw/2 lanes][2 taps]`;
    /// `Cols`: i16 `[cblock][fx 0..3][part 0..4][bw/2 lanes][2]` (module docs);
    /// `Taps`: i16 `[cblock][tap 0..9][bw]`.
    pub weights: AlignedBuf,
    /// `bias'` in lane order (`Pairs`) or channel order (`Cols`, `Taps`), `cblocks * bw`
    /// entries.
    pub bias: Vec<i32>,
    pub requant: Requant,
    /// The raw input zero point byte: at least whole blocks (`cblocks * bw`) and a whole input
    /// row (`in_w * in_c`), so a kernel can read rows above or below the image here with the
    /// same column offsets as real rows (the `Cols` kernel does).
    pub zp_row: Vec<u8>,
}

/// The work of one call: output rows (`b * out_h + oy`) `[row_begin, row_end)`, channel
/// blocks (of `PackedDw::bw` channels) `[block_begin, block_end)` of each. `block_end` may
/// exceed the block count (kernels clamp it), so `0..usize::MAX` means every channel. Kernels
/// write exactly the output bytes of those rows and channels, so calls with disjoint
/// (row, block) ranges may run concurrently.
#[derive(Clone, Copy)]
pub struct DwRows {
    pub input: *const u8,
    pub output: *mut u8,
    pub row_begin: usize,
    pub row_end: usize,
    pub block_begin: usize,
    pub block_end: usize,
}

impl DwRows {
    /// Channel blocks `[begin, end)` of this call for a tensor of `cblocks` blocks (empty when
    /// the range lies past the last block).
    #[inline]
    pub fn blocks(&self, cblocks: usize) -> std::ops::Range<usize> {
        let end = self.block_end.min(cblocks);
        self.block_begin.min(end)..end
    }
}

/// # Safety
/// The CPU supports the kernel's ISA; `input`/`output` hold the whole NHWC tensors of `geom`.
pub type DwFn = unsafe fn(packed: &PackedDw, rows: &DwRows);

/// Channel (within a block of `bw`) of entry `i` in lane order: half `i / (bw/2)` (unpacklo
/// or unpackhi), i32 lane `i % (bw/2)` in 128-bit lane `lane / 4`.
pub fn lane_channel(i: usize, bw: usize) -> usize {
    let (half, lane) = (i / (bw / 2), i % (bw / 2));
    (lane & 3) + 4 * half + 8 * (lane >> 2)
}

impl PackedDw {
    /// `w[t * c + ch]` raw filter values (tap `t = ky * 3 + kx`), `zw = -filter_offset`,
    /// `zx = -input_offset`.
    pub fn pack(
        geom: &ConvGeometry,
        w: &[i32],
        bias: Option<&[i32]>,
        q: &QuantParams,
        bw: usize,
    ) -> PackedDw {
        Self::pack_layout(geom, w, bias, q, bw, DwLayout::Pairs)
    }

    /// [`PackedDw::pack`] for a given layout.
    pub fn pack_layout(
        geom: &ConvGeometry,
        w: &[i32],
        bias: Option<&[i32]>,
        q: &QuantParams,
        bw: usize,
        layout: DwLayout,
    ) -> PackedDw {
        let c = geom.in_c;
        let cblocks = c.div_ceil(bw);
        let hw = bw / 2;
        let zw = -q.filter_offset;
        let zx = -q.input_offset;
        let wp = |t: usize, ch: usize| -> i32 {
            if t < 9 && ch < c {
                w[t * c + ch] - zw
            } else {
                0
            }
        };
        // Channel (within its block) of entry `i` of a block's bias / requant arrays.
        let order = |i: usize| match layout {
            DwLayout::Pairs => lane_channel(i, bw),
            DwLayout::Cols | DwLayout::Taps => i,
        };
        // Pairs: 10 i16 per channel; Cols: 12 (3 columns x 2 parts x 2); Taps: 9.
        let mut wv = vec![0i16; cblocks * 6 * bw * 2];
        let mut bv = vec![0i32; cblocks * bw];
        for cb in 0..cblocks {
            for i in 0..bw {
                let ch = cb * bw + order(i);
                if layout == DwLayout::Taps {
                    for t in 0..9 {
                        wv[(cb * 9 + t) * bw + i] = wp(t, ch) as i16;
                    }
                }
                if layout == DwLayout::Cols {
                    let (half, lane) = (i / hw, i % hw);
                    for fx in 0..3 {
                        let at = |part: usize| (((cb * 3 + fx) * 4 + part) * hw + lane) * 2;
                        wv[at(half)] = wp(fx, ch) as i16;
                        wv[at(half) + 1] = wp(3 + fx, ch) as i16;
                        wv[at(2 + half)] = wp(6 + fx, ch) as i16;
                    }
                }
                for pair in (0..5).filter(|_| layout == DwLayout::Pairs) {
                    let (half, lane) = (i / hw, i % hw);
                    let base = (((cb * 5 + pair) * 2 + half) * hw + lane) * 2;
                    wv[base] = wp(2 * pair, ch) as i16;
                    wv[base + 1] = wp(2 * pair + 1, ch) as i16;
                }
                if ch < c {
                    let sum = (0..9).fold(0i32, |s, t| s.wrapping_add(wp(t, ch)));
                    let b = bias.map_or(0, |b| b[ch]);
                    bv[cb * bw + i] = b.wrapping_sub(zx.wrapping_mul(sum));
                }
            }
        }
        PackedDw {
            geom: geom.clone(),
            weights: AlignedBuf::from_bytes(bytemuck::cast_slice(&wv)),
            bias: bv,
            bw,
            requant: Requant::with_order(q, cblocks * bw, |i| (i / bw) * bw + order(i % bw)),
            zp_row: vec![zx as u8; (cblocks * bw).max(geom.in_w * c)],
        }
    }
}

/// Output columns `[lo, hi)` whose whole 3-tap window row lies inside the image horizontally,
/// so kernels can address those taps as `x0 + fx` without bounds checks (`x0 =
/// in_x(ox, 0)`); the other columns take a border path. `(0, 0)` when there are none.
pub fn interior_cols(g: &ConvGeometry) -> (usize, usize) {
    let inside = |ox: usize| (0..g.filter_w).all(|fx| g.in_x(ox, fx).is_some());
    match (0..g.out_w).find(|&ox| inside(ox)) {
        None => (0, 0),
        Some(lo) => {
            let hi = (lo..g.out_w).take_while(|&ox| inside(ox)).count() + lo;
            (lo, hi)
        }
    }
}

/// Byte offsets of input pixel `(b, in_y(oy, fy), 0)` for the 3 filter rows; `None` for rows
/// outside the image (their taps read the zero-point row).
pub fn row_offsets(g: &ConvGeometry, b: usize, oy: usize) -> [Option<usize>; 3] {
    [0, 1, 2].map(|fy| g.in_y(oy, fy).map(|iy| g.input_offset(b, iy, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(in_w: usize, stride: usize, pad: usize, out_w: usize) -> ConvGeometry {
        ConvGeometry {
            batches: 1,
            in_h: 4,
            in_w,
            in_c: 8,
            out_h: 4,
            out_w,
            out_c: 8,
            filter_h: 3,
            filter_w: 3,
            stride_h: 1,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_h: 1,
            pad_w: pad,
        }
    }

    #[test]
    fn interior_cols_excludes_exactly_the_padded_columns() {
        // SAME, stride 1: first and last column touch padding.
        assert_eq!(interior_cols(&geom(10, 1, 1, 10)), (1, 9));
        // Stride 2, left padding 1, right edge exactly covered: only column 0 is padded.
        assert_eq!(interior_cols(&geom(10, 2, 1, 5)), (1, 5));
        assert_eq!(interior_cols(&geom(10, 2, 0, 4)), (0, 4));
        // A 2-wide image with padding on both sides: no interior column.
        assert_eq!(interior_cols(&geom(2, 1, 1, 2)), (0, 0));
        for g in [geom(10, 1, 1, 10), geom(10, 2, 1, 5), geom(7, 2, 1, 4)] {
            let (lo, hi) = interior_cols(&g);
            for ox in 0..g.out_w {
                let all = (0..3).all(|fx| g.in_x(ox, fx).is_some());
                assert_eq!(all, (lo..hi).contains(&ox), "ox {ox}");
            }
        }
    }
}
