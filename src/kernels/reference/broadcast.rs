//! NumPy-style broadcasting index walk, as TFLite's `NdArrayDescsForElementwiseBroadcast` +
//! `BroadcastBinaryFunction4DSlow` (generalised to rank <= 6; the per-element arithmetic does
//! not depend on the loop order, so results equal TFLite's 4D/6D slow paths).

/// Maximum supported rank.
pub const MAX_RANK: usize = 6;

/// Strides of two broadcast inputs over an output shape, all extended to [`MAX_RANK`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    out: [usize; MAX_RANK],
    s1: [usize; MAX_RANK],
    s2: [usize; MAX_RANK],
}

fn extend(shape: &[usize]) -> [usize; MAX_RANK] {
    let mut e = [1usize; MAX_RANK];
    e[MAX_RANK - shape.len()..].copy_from_slice(shape);
    e
}

fn strides(ext: &[usize; MAX_RANK], out: &[usize; MAX_RANK]) -> [usize; MAX_RANK] {
    let mut s = [0usize; MAX_RANK];
    let mut acc = 1;
    for d in (0..MAX_RANK).rev() {
        s[d] = if ext[d] == 1 && out[d] != 1 { 0 } else { acc };
        acc *= ext[d];
    }
    s
}

impl Broadcast {
    /// `None` if the shapes do not broadcast to `out` or a rank exceeds [`MAX_RANK`].
    pub fn new(in1: &[usize], in2: &[usize], out: &[usize]) -> Option<Self> {
        if in1.len() > MAX_RANK || in2.len() > MAX_RANK || out.len() > MAX_RANK {
            return None;
        }
        let (e1, e2, eo) = (extend(in1), extend(in2), extend(out));
        for d in 0..MAX_RANK {
            let ok1 = e1[d] == eo[d] || e1[d] == 1;
            let ok2 = e2[d] == eo[d] || e2[d] == 1;
            if !ok1 || !ok2 || eo[d] != e1[d].max(e2[d]) {
                return None;
            }
        }
        Some(Broadcast {
            out: eo,
            s1: strides(&e1, &eo),
            s2: strides(&e2, &eo),
        })
    }

    /// Calls `f(out_index, in1_index, in2_index)` for every output element in row-major order.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let o = &self.out;
        let mut idx = 0usize;
        for a in 0..o[0] {
            for b in 0..o[1] {
                for c in 0..o[2] {
                    for d in 0..o[3] {
                        for e in 0..o[4] {
                            let base1 = a * self.s1[0]
                                + b * self.s1[1]
                                + c * self.s1[2]
                                + d * self.s1[3]
                                + e * self.s1[4];
                            let base2 = a * self.s2[0]
                                + b * self.s2[1]
                                + c * self.s2[2]
                                + d * self.s2[3]
                                + e * self.s2[4];
                            for g in 0..o[5] {
                                f(idx, base1 + g * self.s1[5], base2 + g * self.s2[5]);
                                idx += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_indices() {
        let b = Broadcast::new(&[2, 1, 3], &[1, 2, 1], &[2, 2, 3]).unwrap();
        let mut v = Vec::new();
        b.for_each(|o, i, j| v.push((o, i, j)));
        assert_eq!(v.len(), 12);
        assert_eq!(v[4], (4, 1, 1)); // out [0,1,1]: in1 [0,0,1]=1, in2 [0,1,0]=1
        assert_eq!(v[7], (7, 4, 0)); // out [1,0,1]: in1 [1,0,1]=4, in2 [0,0,0]=0
        assert!(Broadcast::new(&[2, 3], &[3, 3], &[2, 3]).is_none());
    }
}
