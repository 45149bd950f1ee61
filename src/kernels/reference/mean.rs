//! MEAN reference kernels.
//!
//! Mirrors LiteRT's `reference_ops::Mean<float, float>` and
//! `reference_ops::QuantizedMeanOrSum` (with `compute_sum == false`), which is what the
//! `kReference` MEAN kernel of LiteRT (`tflite/kernels/reduce.cc`, `EvalMean` →
//! `EvalQuantizedMean`) runs for every uint8/int8 case, whatever the axes and whether the
//! input and output quantization match. (Older TensorFlow releases special-cased 4-D H,W means
//! and equal quantization; LiteRT 2.x does not.)
//!
//! Sums are accumulated by walking the input in row-major order and adding each element to its
//! output slot, which is the order of TFLite's `Reduce` iterator.

/// Precomputed index map of a reduction: for each input element (row-major), its output slot.
///
/// Built at prepare time from the input shape and the resolved (deduplicated, non-negative)
/// axes; `count` is the number of input elements per output element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduction {
    pub input_dims: Vec<usize>,
    pub axes: Vec<usize>,
    pub output_len: usize,
    pub count: usize,
}

impl Reduction {
    pub fn new(input_dims: &[usize], axes: &[usize]) -> Self {
        let output_len = input_dims
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .product();
        let count = axes.iter().map(|&a| input_dims[a]).product();
        Reduction {
            input_dims: input_dims.to_vec(),
            axes: axes.to_vec(),
            output_len,
            count,
        }
    }

    pub fn input_len(&self) -> usize {
        self.input_dims.iter().product()
    }

    /// Call `f(input_index, output_index)` for every input element in row-major order
    /// (TFLite `ReducedOutputOffset` over `NextIndex`).
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let n = self.input_dims.len();
        if self.input_len() == 0 {
            return;
        }
        let mut index = [0usize; 8];
        debug_assert!(n <= index.len());
        let mut i = 0usize;
        loop {
            let mut out = 0usize;
            for (d, (&i_d, &dim)) in index.iter().zip(&self.input_dims).enumerate() {
                if !self.axes.contains(&d) {
                    out = out * dim + i_d;
                }
            }
            f(i, out);
            i += 1;
            // NextIndex: increment the last dimension with carry.
            let mut d = n;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                if index[d] < self.input_dims[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }
}

/// Float mean: per-slot float sums, then `sum / (float)count`.
/// `sums` is scratch of length `output_len` (prepared once, reused every run).
pub fn mean_f32(r: &Reduction, input: &[f32], sums: &mut [f32], output: &mut [f32]) {
    sums.fill(0.0);
    r.for_each(|i, o| sums[o] += input[i]);
    if r.count > 0 {
        let n = r.count as f32;
        for (out, &s) in output.iter_mut().zip(sums.iter()) {
            *out = s / n;
        }
    } else {
        output.fill(0.0);
    }
}

/// Multiplier of a quantized mean: `QuantizeMultiplier(in_scale / out_scale)` (computed by the
/// caller in f64 from the f32 scales) folded with `1 / count` exactly as
/// `QuantizedMeanOrSum` does: `s = min(floor(log2(count)), 32, 31 + shift)`,
/// `multiplier = (multiplier << s) / count` (truncating), `shift -= s`.
pub fn mean_multiplier(multiplier: i32, shift: i32, count: usize) -> (i32, i32) {
    if count == 0 {
        return (multiplier, shift);
    }
    let count = count as i64;
    let mut s = 63 - (count as u64).leading_zeros() as i32;
    s = s.min(32);
    s = s.min(31 + shift);
    let m = (((multiplier as i64) << s) / count) as i32;
    (m, shift - s)
}

/// Quantized mean (`QuantizedMeanOrSum<T, int32_t>` with `compute_sum == false`):
/// `sum - in_zp * count`, rescaled by the folded multiplier, plus `out_zp`, clamped to `T`.
/// `multiplier`/`shift` come from [`mean_multiplier`]. `sums` is scratch of length `output_len`.
#[allow(clippy::too_many_arguments)]
pub fn mean_q8<T: super::conv::Q8>(
    r: &Reduction,
    input_zero_point: i32,
    multiplier: i32,
    shift: i32,
    output_zero_point: i32,
    input: &[T],
    sums: &mut [i32],
    output: &mut [T],
) {
    sums.fill(0);
    output.fill(T::default());
    if r.count == 0 || r.input_len() == 0 {
        return;
    }
    r.for_each(|i, o| sums[o] = sums[o].wrapping_add(input[i].to_i32()));
    let zp_total = input_zero_point.wrapping_mul(r.count as i32);
    for (out, &s) in output.iter_mut().zip(sums.iter()) {
        let shifted = s.wrapping_sub(zp_total);
        let v = super::fixedpoint::multiply_by_quantized_multiplier(shifted, multiplier, shift)
            .wrapping_add(output_zero_point);
        *out = T::from_i32(v.clamp(T::MIN, T::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::fixedpoint::quantize_multiplier;

    #[test]
    fn reduction_maps_row_major() {
        let r = Reduction::new(&[2, 3, 2], &[1]);
        assert_eq!((r.output_len, r.count), (4, 3));
        let mut map = vec![];
        r.for_each(|i, o| map.push((i, o)));
        let outs: Vec<usize> = map.iter().map(|&(_, o)| o).collect();
        assert_eq!(outs, vec![0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3]);
    }

    #[test]
    fn float_mean_over_hw() {
        // [1, 2, 2, 2] NHWC, mean over H, W.
        let r = Reduction::new(&[1, 2, 2, 2], &[1, 2]);
        let input = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let mut sums = vec![0.0; 2];
        let mut out = vec![0.0; 2];
        mean_f32(&r, &input, &mut sums, &mut out);
        assert_eq!(out, vec![2.5, 25.0]);
    }

    #[test]
    fn mean_multiplier_folds_count() {
        // scale ratio 1 -> (2^30, 1); count 4 -> s = 2: (2^32)/4 = 2^30, shift -1 (i.e. 1/4).
        let (m, s) = quantize_multiplier(1.0);
        assert_eq!(mean_multiplier(m, s, 4), (1 << 30, -1));
        // count 3: s = 1, (2^31)/3 = 715827882, shift 0.
        assert_eq!(mean_multiplier(m, s, 3), (715_827_882, 0));
    }

    #[test]
    fn uint8_mean_equal_quant() {
        let r = Reduction::new(&[1, 3, 1, 1], &[1, 2]);
        let (m, s) = quantize_multiplier(1.0);
        let (m, s) = mean_multiplier(m, s, 3);
        let input: [u8; 3] = [130, 131, 131]; // zp 128: 2, 3, 3 -> mean 8/3 = 2.67 -> 3
        let mut sums = [0i32; 1];
        let mut out = [0u8; 1];
        mean_q8(&r, 128, m, s, 128, &input, &mut sums, &mut out);
        assert_eq!(out, [131]);
    }

    #[test]
    fn int8_mean_rescaled_and_clamped() {
        let r = Reduction::new(&[2, 2], &[1]);
        let (m, s) = quantize_multiplier(2.0); // in_scale / out_scale = 2
        let (m, s) = mean_multiplier(m, s, 2);
        let input: [i8; 4] = [-10, -11, 100, 120]; // zp 0
        let mut sums = [0i32; 2];
        let mut out = [0i8; 2];
        mean_q8(&r, 0, m, s, 1, &input, &mut sums, &mut out);
        // row0: -21 * 2 / 2 = -21 + 1 = -20; row1: 220 -> 221 clamped 127
        assert_eq!(out, [-20, 127]);
    }
}
