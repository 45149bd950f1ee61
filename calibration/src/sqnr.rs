//! Signal-to-quantization-noise ratio accumulation.

#[derive(Clone, Copy, Debug, Default)]
pub struct Sqnr {
    pub signal: f64,
    pub noise: f64,
}

impl Sqnr {
    pub fn add(&mut self, reference: &[f32], test: &[f32]) {
        for (&r, &t) in reference.iter().zip(test) {
            self.signal += (r as f64) * (r as f64);
            let d = r as f64 - t as f64;
            self.noise += d * d;
        }
    }

    /// `10 log10(signal / noise)` in dB (+inf for an exact match, -inf for a silent signal).
    pub fn db(&self) -> f64 {
        if self.noise == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (self.signal / self.noise).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqnr_of_a_known_error() {
        let mut s = Sqnr::default();
        s.add(&[1.0, -1.0], &[1.1, -1.1]);
        assert!((s.db() - 20.0).abs() < 1e-4, "{}", s.db());
        let mut e = Sqnr::default();
        e.add(&[1.0], &[1.0]);
        assert_eq!(e.db(), f64::INFINITY);
    }
}
