//! 8-bit ADD as one integer linear form, where it provably equals TFLite's.
//!
//! TFLite's quantized ADD rescales each input (`(x + o1) << 20`, a fixed-point multiply and a
//! rounding shift), adds, and rescales the sum: three roundings and two 64-bit products per
//! element. Its result is a rounding of a function that is linear in the two inputs up to
//! those small intermediate roundings, so for most layers a single form
//!
//! `y = clamp(floor((a * x + b * y + c) / 2^shift), act_min, act_max)`
//!
//! (`x`, `y` the input values, u8 or i8) gives the same byte for every one of the 65536 input
//! pairs. [`LinearAdd::fit`] takes the exact outputs of all pairs (the ADD table,
//! `ops::elementwise`), picks `a`, `b` near the real slopes, and computes the exact interval of
//! constants `c` that reproduces every pair: each pair with an output strictly inside the
//! activation range bounds `c` from both sides, a pair clamped at either end from one side.
//! Any `c` in the interval is exact for all pairs by construction (no sampling); if the
//! interval is empty for every candidate slope pair, there is no form and the table stays.
//! The SIMD kernel then needs two 32-bit multiplies and a shift per element.

use super::reference::elementwise::QuantAddParams;

/// `clamp(floor((a * x + b * y + c) / 2^shift), act_min, act_max)` (module docs); the sum
/// stays inside `i32` for every input pair (checked by [`LinearAdd::fit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearAdd {
    pub a: i32,
    pub b: i32,
    pub c: i32,
    pub shift: u32,
    pub act_min: i32,
    pub act_max: i32,
}

/// The value of raw input byte `i` (u8, or i8 when `signed`).
fn value(i: usize, signed: bool) -> i32 {
    if signed {
        i as u8 as i8 as i32
    } else {
        i as i32
    }
}

impl LinearAdd {
    /// Scalar model of the SIMD kernel.
    #[inline]
    pub fn apply(&self, x: i32, y: i32) -> i32 {
        // The sum is in range for every input pair (`fit`); a partial sum need not be, so the
        // steps wrap, like the SIMD lanes.
        let s = (self.a.wrapping_mul(x))
            .wrapping_add(self.b.wrapping_mul(y))
            .wrapping_add(self.c);
        (s >> self.shift).clamp(self.act_min, self.act_max)
    }

    /// The form that reproduces `table` (`table[x << 8 | y]`: the output byte of ADD `p` for
    /// raw input bytes `x`, `y`), with slopes near `p`'s (`QuantAddParams::slopes`) and its
    /// activation range, if one exists.
    pub fn fit(table: &[u8; 1 << 16], signed: bool, p: &QuantAddParams) -> Option<LinearAdd> {
        let (alpha, beta) = p.slopes();
        let (act_min, act_max) = (p.act_min, p.act_max);
        if !(alpha.is_finite() && beta.is_finite()) || act_min >= act_max {
            return None;
        }
        let out = |i: usize| -> i32 {
            let v = table[i];
            if signed {
                i32::from(v as i8)
            } else {
                i32::from(v)
            }
        };
        // Largest |input value| and the scale: |a x| + |b y| + |c| below 2^30 with room for
        // the constant (bounded by the output range plus both slopes' reach).
        let reach = 256.0 * (1.0 + 2.0 * (alpha.abs() + beta.abs()));
        let shift = (2f64.powi(30) / reach).log2().floor().clamp(0.0, 24.0) as u32;
        let scale = f64::from(1u32 << shift);
        let (a0, b0) = (
            (alpha * scale).round() as i64,
            (beta * scale).round() as i64,
        );
        const NUDGES: [i64; 13] = [0, 1, -1, 2, -2, 3, -3, 4, -4, 6, -6, 8, -8];
        for da in NUDGES {
            for db in NUDGES {
                let (a, b) = (a0 + da, b0 + db);
                let Some(c) = Self::constant_interval(&out, signed, a, b, shift, act_min, act_max)
                else {
                    continue;
                };
                // Slopes or constant past `i32`: not this candidate.
                let (Ok(a), Ok(b), Ok(c)) = (i32::try_from(a), i32::try_from(b), i32::try_from(c))
                else {
                    continue;
                };
                let form = LinearAdd {
                    a,
                    b,
                    c,
                    shift,
                    act_min,
                    act_max,
                };
                if form.in_range(signed) && form.reproduces(&out, signed) {
                    return Some(form);
                }
            }
        }
        None
    }

    /// The smallest constant `c` with which slopes `a`, `b` reproduce every pair, if the
    /// interval of such constants is not empty.
    fn constant_interval(
        out: &impl Fn(usize) -> i32,
        signed: bool,
        a: i64,
        b: i64,
        shift: u32,
        act_min: i32,
        act_max: i32,
    ) -> Option<i64> {
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        for i in 0..1usize << 16 {
            let l = a * i64::from(value(i >> 8, signed)) + b * i64::from(value(i & 255, signed));
            let t = i64::from(out(i));
            // floor((l + c) / 2^shift) == t  <=>  t * 2^shift - l <= c < (t + 1) * 2^shift - l;
            // at a clamped end only the side that keeps the clamp applies.
            if t > i64::from(act_min) {
                lo = lo.max((t << shift) - l);
            }
            if t < i64::from(act_max) {
                hi = hi.min(((t + 1) << shift) - l);
            }
            if lo >= hi {
                return None;
            }
        }
        Some(lo)
    }

    /// `a * x + b * y + c` stays inside `i32` for every input pair (it is linear: the corners
    /// bound it).
    fn in_range(&self, signed: bool) -> bool {
        let (vmin, vmax) = if signed { (-128i64, 127) } else { (0, 255) };
        [vmin, vmax].iter().all(|&x| {
            [vmin, vmax].iter().all(|&y| {
                let s = i64::from(self.a) * x + i64::from(self.b) * y + i64::from(self.c);
                i32::try_from(s).is_ok()
            })
        })
    }

    /// Every pair's output equals the table's (true by construction of `c`; checked anyway,
    /// 65536 evaluations at load).
    fn reproduces(&self, out: &impl Fn(usize) -> i32, signed: bool) -> bool {
        (0..1usize << 16)
            .all(|i| self.apply(value(i >> 8, signed), value(i & 255, signed)) == out(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::elementwise::add_quantized;

    fn table(p: &QuantAddParams, signed: bool) -> Box<[u8; 1 << 16]> {
        let mut t = Box::new([0u8; 1 << 16]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = add_quantized(value(i >> 8, signed), value(i & 255, signed), p) as u8;
        }
        t
    }

    #[test]
    fn fit_is_exact_for_every_pair_wherever_it_exists_and_exists_for_most_layers() {
        let (mut found, mut tried) = (0, 0);
        for i in 0..60u32 {
            let f = |k: u32| 0.01 + 0.07 * f64::from((i * k) % 17) / 17.0;
            let (s1, s2, so) = (f(3) as f32, f(5) as f32, (f(7) * 1.3) as f32);
            for signed in [false, true] {
                let (z1, z2, zo) = if signed {
                    (-(i as i32 % 20), 7, -128 + (i as i32 % 9))
                } else {
                    (120 + (i as i32 % 15), 131, 100 + (i as i32 % 40))
                };
                let act = if signed { (-128, 127) } else { (0, 255) };
                let p = QuantAddParams::prepare(s1, z1, s2, z2, so, zo, act.0, act.1);
                let t = table(&p, signed);
                tried += 1;
                if let Some(form) = LinearAdd::fit(&t, signed, &p) {
                    found += 1;
                    for k in 0..1usize << 16 {
                        let (x, y) = (value(k >> 8, signed), value(k & 255, signed));
                        assert_eq!(
                            form.apply(x, y),
                            add_quantized(x, y, &p),
                            "{form:?} {x} {y}"
                        );
                    }
                }
            }
        }
        // Most layers (the rest differ at rounding ties, which TFLite breaks away from zero:
        // not a floor of one linear form on both sides of the zero point).
        assert!(
            found * 4 >= tried * 3,
            "linear form for {found} of {tried} layers"
        );
    }
}
