//! CONCATENATION: TFLite `reference_ops::Concatenation` (plain copy) and
//! `ConcatenationWithScaling` (uint8 inputs whose quantization differs from the output's).

/// Requantization of one uint8 input in `ConcatenationWithScaling`:
/// `scale = s_in * (1 / s_out)`, `bias = -zp_in * scale`, all float32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConcatRescale {
    pub scale: f32,
    pub bias: f32,
    pub output_zero_point: i32,
}

impl ConcatRescale {
    pub fn new(
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
    ) -> Self {
        let inverse_output_scale = 1.0f32 / output_scale;
        let scale = input_scale * inverse_output_scale;
        let bias = -(input_zero_point as f32) * scale;
        ConcatRescale {
            scale,
            bias,
            output_zero_point,
        }
    }

    /// `clamp((int)round(q * scale + bias) + zp_out, 0, 255)`; no fused multiply-add.
    #[inline]
    pub fn apply(&self, q: u8) -> u8 {
        let v = (q as f32 * self.scale + self.bias).round() as i32 + self.output_zero_point;
        v.clamp(0, 255) as u8
    }
}

/// Copy `outer` blocks: for each outer index, each input contributes `copy_sizes[i]` elements.
/// `f(input, src_slice, dst_slice)` performs the per-input copy or rescale.
pub fn concat_blocks<T: Copy>(
    inputs: &[&[T]],
    copy_sizes: &[usize],
    outer: usize,
    out: &mut [T],
    mut f: impl FnMut(usize, &[T], &mut [T]),
) {
    let mut o = 0;
    for k in 0..outer {
        for (i, input) in inputs.iter().enumerate() {
            let n = copy_sizes[i];
            f(i, &input[k * n..(k + 1) * n], &mut out[o..o + n]);
            o += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_interleave() {
        let a = [1, 2, 3, 4];
        let b = [9, 8];
        let mut out = [0; 6];
        concat_blocks(&[&a, &b], &[2, 1], 2, &mut out, |_, s, d| {
            d.copy_from_slice(s)
        });
        assert_eq!(out, [1, 2, 9, 3, 4, 8]);
    }

    #[test]
    fn rescale_matches_formula() {
        // in: scale 0.5 zp 10; out: scale 0.25 zp 3 -> q_out = 2*(q-10)+3
        let r = ConcatRescale::new(0.5, 10, 0.25, 3);
        assert_eq!(r.apply(10), 3);
        assert_eq!(r.apply(20), 23);
        assert_eq!(r.apply(0), 0); // -17 clamps
        assert_eq!(r.apply(255), 255);
        // round half away from zero: scale 0.5/1.0 -> (q-0)*0.5
        let h = ConcatRescale::new(0.5, 0, 1.0, 0);
        assert_eq!(h.apply(3), 2);
        assert_eq!(h.apply(5), 3);
    }
}
