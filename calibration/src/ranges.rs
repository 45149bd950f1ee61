//! Choosing a quantization range `[lo, hi]` for an activation from its statistics, and the int8
//! asymmetric parameters for a range.

use crate::stats::{TensorStats, BINS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The observed min and max.
    MinMax,
    /// Clip to the 0.01 % / 99.99 % percentiles.
    Percentile,
    /// TensorRT-style KL divergence between the clipped distribution and its 8-bit version.
    Entropy,
    /// Minimize the expected squared quantization error (clipping + rounding).
    Mse,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "minmax" => Method::MinMax,
            "percentile" => Method::Percentile,
            "entropy" => Method::Entropy,
            "mse" => Method::Mse,
            other => {
                return Err(format!(
                    "unknown method '{other}' (minmax, percentile, entropy, mse)"
                ))
            }
        })
    }
}

impl Method {
    pub fn needs_histogram(self) -> bool {
        self != Method::MinMax
    }
}

/// Percentile kept by [`Method::Percentile`] on each side.
pub const PERCENTILE: f64 = 99.99;

/// The range for `s`, always containing 0.
pub fn choose(s: &TensorStats, method: Method) -> (f32, f32) {
    let full = (s.min.min(0.0), s.max.max(0.0));
    if method == Method::MinMax || s.hist.is_empty() || s.bin_width() <= 0.0 {
        return full;
    }
    let (lo, hi) = match method {
        Method::MinMax => full,
        Method::Percentile => percentile(s),
        Method::Entropy => by_score(s, kl_score),
        Method::Mse => by_score(s, mse_score),
    };
    (lo.min(0.0), hi.max(0.0))
}

fn percentile(s: &TensorStats) -> (f32, f32) {
    let total: u64 = s.hist.iter().sum();
    let cut = ((1.0 - PERCENTILE / 100.0) * total as f64) as u64;
    let w = s.bin_width();
    let mut acc = 0;
    let mut lo_bin = 0;
    for (i, &c) in s.hist.iter().enumerate() {
        acc += c;
        if acc > cut {
            lo_bin = i;
            break;
        }
    }
    acc = 0;
    let mut hi_bin = BINS - 1;
    for (i, &c) in s.hist.iter().enumerate().rev() {
        acc += c;
        if acc > cut {
            hi_bin = i;
            break;
        }
    }
    // Keep the sides that do not cross zero at zero.
    let lo = if s.min >= 0.0 {
        0.0
    } else {
        s.lo + lo_bin as f32 * w
    };
    let hi = if s.max <= 0.0 {
        0.0
    } else {
        s.lo + (hi_bin + 1) as f32 * w
    };
    (lo, hi)
}

/// Try ranges `alpha * [lo, hi]` for alpha in (1/8, 1] and keep the one with the lowest score.
fn by_score(s: &TensorStats, score: fn(&TensorStats, f32, f32) -> f64) -> (f32, f32) {
    const STEPS: usize = 128;
    let mut best = (f64::INFINITY, s.lo, s.hi);
    for k in 0..STEPS {
        let alpha = 1.0 - k as f32 * (0.875 / STEPS as f32);
        let (lo, hi) = (s.lo * alpha, s.hi * alpha);
        let v = score(s, lo, hi);
        if v < best.0 {
            best = (v, lo, hi);
        }
    }
    (best.1, best.2)
}

/// Quantize-dequantize `x` with the int8 parameters of `[lo, hi]`.
fn fake_quant(x: f32, scale: f32, zp: i32) -> f32 {
    let q = ((x / scale).round() as i32 + zp).clamp(-128, 127);
    (q - zp) as f32 * scale
}

fn mse_score(s: &TensorStats, lo: f32, hi: f32) -> f64 {
    let (scale, zp) = int8_params(lo, hi);
    let w = s.bin_width();
    let mut err = 0.0f64;
    for (i, &c) in s.hist.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let x = s.lo + (i as f32 + 0.5) * w;
        let d = (x - fake_quant(x, scale, zp)) as f64;
        // Squared error at the bin center plus the spread inside the bin.
        let inside = if x > lo && x < hi {
            (w as f64).powi(2) / 12.0
        } else {
            0.0
        };
        err += c as f64 * (d * d + inside);
    }
    err
}

fn kl_score(s: &TensorStats, lo: f32, hi: f32) -> f64 {
    let w = s.bin_width();
    let first = (((lo - s.lo) / w).round().max(0.0) as usize).min(BINS - 1);
    let last = ((((hi - s.lo) / w).round() as usize).max(first + 1)).min(BINS);
    let n = last - first;
    // P: the kept bins, outliers folded into the edge bins.
    let mut p: Vec<f64> = s.hist[first..last].iter().map(|&c| c as f64).collect();
    p[0] += s.hist[..first].iter().sum::<u64>() as f64;
    p[n - 1] += s.hist[last..].iter().sum::<u64>() as f64;
    // Q: P merged into 256 levels, spread back uniformly over the bins that were non-zero.
    let levels = 256.min(n);
    let mut q = vec![0.0f64; n];
    for l in 0..levels {
        let (a, b) = (l * n / levels, (l + 1) * n / levels);
        let sum: f64 = p[a..b].iter().sum();
        let nonzero = p[a..b].iter().filter(|&&v| v > 0.0).count();
        if nonzero > 0 {
            for j in a..b {
                if p[j] > 0.0 {
                    q[j] = sum / nonzero as f64;
                }
            }
        }
    }
    let (ps, qs): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if ps == 0.0 || qs == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(&q)
        .filter(|(&a, _)| a > 0.0)
        .map(|(&a, &b)| {
            let (a, b) = (a / ps, (b / qs).max(1e-12));
            a * (a / b).ln()
        })
        .sum()
}

/// Asymmetric int8 parameters for `[lo, hi]` (`lo <= 0 <= hi`): zero exactly representable.
pub fn int8_params(lo: f32, hi: f32) -> (f32, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let range = hi - lo;
    if range.is_nan() || range <= 1e-9 {
        return (1.0 / 255.0, -128);
    }
    let scale = range / 255.0;
    let zp = (-128.0 - lo / scale).round() as i32;
    (scale, zp.clamp(-128, 127))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f32]) -> TensorStats {
        let mut s = TensorStats::default();
        s.observe_minmax(values);
        s.start_histogram();
        s.observe_histogram(values);
        s
    }

    #[test]
    fn int8_params_put_zero_on_a_level() {
        assert_eq!(int8_params(0.0, 6.0), (6.0 / 255.0, -128));
        let (s, z) = int8_params(-1.0, 1.0);
        assert_eq!(s, 2.0 / 255.0);
        assert!(z == 0 || z == -1, "{z}");
        assert_eq!(int8_params(0.0, 0.0), (1.0 / 255.0, -128));
        // Negative-only range: zero at the top.
        assert_eq!(int8_params(-2.55, 0.0).1, 127);
    }

    #[test]
    fn outliers_are_clipped_by_histogram_methods() {
        // 100k values in [0, 1) and one outlier at 100.
        let mut v: Vec<f32> = (0..100_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        v.push(100.0);
        let s = stats(&v);
        assert_eq!(choose(&s, Method::MinMax), (0.0, 100.0));
        // (MSE keeps the outlier here: clipping one value at 100 costs more than the rounding
        // noise of 100k values at full range.)
        for m in [Method::Percentile, Method::Entropy] {
            let (lo, hi) = choose(&s, m);
            assert_eq!(lo, 0.0);
            assert!(hi < 20.0, "{m:?}: {hi}");
        }
        let (_, hi) = choose(&s, Method::Percentile);
        assert!((0.99..1.1).contains(&hi), "{hi}");
    }

    #[test]
    fn uniform_data_keeps_about_its_full_range_with_mse() {
        let v: Vec<f32> = (0..20_000)
            .map(|i| -1.0 + 2.0 * i as f32 / 20_000.0)
            .collect();
        let (lo, hi) = choose(&stats(&v), Method::Mse);
        assert!(lo < -0.9 && hi > 0.9, "{lo} {hi}");
    }
}
