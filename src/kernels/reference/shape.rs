//! PAD (`reference_ops::Pad`: constant padding) and DEPTH_TO_SPACE
//! (`reference_ops::DepthToSpace`, NHWC) over raw element bytes.

/// Constant pad of an N-d array of `elem`-byte elements. `pads[d] = (before, after)`;
/// `pad_value` holds one element's bytes.
pub fn pad_bytes(
    input: &[u8],
    in_shape: &[usize],
    pads: &[(usize, usize)],
    elem: usize,
    pad_value: &[u8],
    out: &mut [u8],
) {
    let rank = in_shape.len();
    if rank == 0 {
        out.copy_from_slice(input);
        return;
    }
    // Fill everything with the pad value, then copy rows of the innermost dimension.
    for chunk in out.chunks_exact_mut(elem) {
        chunk.copy_from_slice(pad_value);
    }
    let out_shape: Vec<usize> = (0..rank)
        .map(|d| in_shape[d] + pads[d].0 + pads[d].1)
        .collect();
    let rows: usize = in_shape[..rank - 1].iter().product();
    let row_len = in_shape[rank - 1] * elem;
    let mut idx = vec![0usize; rank.saturating_sub(1)];
    for r in 0..rows {
        // Output offset of this row's first element.
        let mut off = 0usize;
        for d in 0..rank - 1 {
            off = off * out_shape[d] + idx[d] + pads[d].0;
        }
        off = (off * out_shape[rank - 1] + pads[rank - 1].0) * elem;
        out[off..off + row_len].copy_from_slice(&input[r * row_len..(r + 1) * row_len]);
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < in_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// DEPTH_TO_SPACE on NHWC `[b, h, w, c]` input with `block`, elements of `elem` bytes.
/// Output `[b, h*bs, w*bs, c/(bs*bs)]`; `in_d = out_d + ((out_h % bs) * bs + out_w % bs) * out_c`.
pub fn depth_to_space_bytes(
    input: &[u8],
    in_shape: [usize; 4],
    block: usize,
    elem: usize,
    out: &mut [u8],
) {
    let [b, h, w, c] = in_shape;
    let (oh, ow, oc) = (h * block, w * block, c / (block * block));
    let mut o = 0;
    for ob in 0..b {
        for y in 0..oh {
            for x in 0..ow {
                for d in 0..oc {
                    let id = d + ((y % block) * block + x % block) * oc;
                    let src = ((ob * h + y / block) * w + x / block) * c + id;
                    out[o * elem..(o + 1) * elem]
                        .copy_from_slice(&input[src * elem..(src + 1) * elem]);
                    o += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_2d() {
        let input = [1u8, 2, 3, 4, 5, 6]; // [2,3]
        let mut out = [0u8; 4 * 4];
        pad_bytes(&input, &[2, 3], &[(1, 1), (0, 1)], 1, &[9], &mut out);
        assert_eq!(out, [9, 9, 9, 9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn depth_to_space_tflite_example() {
        // TFLite test: input [1,1,1,8] = 1..8, block 2 -> [1,2,2,2] = 1..8
        let input: Vec<u8> = (1..=8).collect();
        let mut out = [0u8; 8];
        depth_to_space_bytes(&input, [1, 1, 1, 8], 2, 1, &mut out);
        assert_eq!(out.to_vec(), input);
        // [1,1,2,4] = 1..8 -> [1,2,4,1]: rows [1,2,5,6],[3,4,7,8]
        let mut out2 = [0u8; 8];
        depth_to_space_bytes(&input, [1, 1, 2, 4], 2, 1, &mut out2);
        assert_eq!(out2, [1, 2, 5, 6, 3, 4, 7, 8]);
    }
}
