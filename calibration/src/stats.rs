//! Per-tensor activation statistics over the calibration set: min/max (pass 1) and a
//! fixed-range histogram (pass 2, for percentile / entropy / MSE range selection).

/// Histogram bins (as ONNX Runtime / TensorRT calibrators use).
pub const BINS: usize = 2048;

#[derive(Clone, Debug)]
pub struct TensorStats {
    pub min: f32,
    pub max: f32,
    /// Histogram over `[lo, hi] = [min(min, 0), max(max, 0)]` (empty until pass 2).
    pub hist: Vec<u64>,
    pub lo: f32,
    pub hi: f32,
}

impl Default for TensorStats {
    fn default() -> Self {
        TensorStats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: Vec::new(),
            lo: 0.0,
            hi: 0.0,
        }
    }
}

impl TensorStats {
    /// Pass 1: extend min/max. Returns the first non-finite value, if any.
    pub fn observe_minmax(&mut self, values: &[f32]) -> Option<f32> {
        for &v in values {
            if !v.is_finite() {
                return Some(v);
            }
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        None
    }

    /// Start pass 2: fix the histogram range from min/max.
    pub fn start_histogram(&mut self) {
        self.lo = self.min.min(0.0);
        self.hi = self.max.max(0.0);
        self.hist = vec![0; BINS];
    }

    pub fn bin_width(&self) -> f32 {
        (self.hi - self.lo) / BINS as f32
    }

    /// Pass 2: count values into the histogram.
    pub fn observe_histogram(&mut self, values: &[f32]) {
        let w = self.bin_width();
        if w <= 0.0 {
            self.hist[0] += values.len() as u64;
            return;
        }
        let inv = 1.0 / w;
        for &v in values {
            let b = ((v - self.lo) * inv) as isize;
            self.hist[b.clamp(0, BINS as isize - 1) as usize] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_then_histogram() {
        let mut s = TensorStats::default();
        assert_eq!(s.observe_minmax(&[0.5, 2.0, 1.0]), None);
        assert_eq!((s.min, s.max), (0.5, 2.0));
        s.start_histogram();
        assert_eq!((s.lo, s.hi), (0.0, 2.0));
        s.observe_histogram(&[0.0, 2.0, 1.0, 0.0009]);
        assert_eq!(s.hist[0], 2);
        assert_eq!(s.hist[BINS - 1], 1);
        assert_eq!(s.hist[BINS / 2], 1);
        assert!(s.observe_minmax(&[1.0, f32::NAN]).unwrap().is_nan());
    }
}
