//! Per-second statistics (I/O-free): frames and inference time accumulate over a window; every
//! `interval` the window becomes a [`PipelineStats`] snapshot.

use std::time::{Duration, Instant};

use super::PipelineStats;

/// Counters owned by other stages, read when a snapshot is taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub capture_drops: u64,
    pub corrupt_frames: u64,
    pub sink_drops: u64,
    pub source_outages: u64,
}

#[derive(Debug)]
pub struct StatsWindow {
    interval: Duration,
    start: Instant,
    frames_total: u64,
    window_frames: u64,
    window_infer_ms: f64,
}

impl StatsWindow {
    pub fn new(interval: Duration, now: Instant) -> Self {
        StatsWindow {
            interval,
            start: now,
            frames_total: 0,
            window_frames: 0,
            window_infer_ms: 0.0,
        }
    }

    /// One processed frame.
    pub fn frame(&mut self, inference_ms: f32) {
        self.frames_total += 1;
        self.window_frames += 1;
        self.window_infer_ms += f64::from(inference_ms);
    }

    pub fn frames(&self) -> u64 {
        self.frames_total
    }

    /// Whether a snapshot is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now.duration_since(self.start) >= self.interval
    }

    /// Close the window: fps over the window's wall time, mean inference time of its frames
    /// (0 if it had none), totals as given. Starts the next window at `now`.
    pub fn snapshot(&mut self, now: Instant, totals: Totals) -> PipelineStats {
        let secs = now.duration_since(self.start).as_secs_f64();
        let fps = if secs > 0.0 {
            self.window_frames as f64 / secs
        } else {
            0.0
        };
        let inference_ms = if self.window_frames > 0 {
            self.window_infer_ms / self.window_frames as f64
        } else {
            0.0
        };
        self.start = now;
        self.window_frames = 0;
        self.window_infer_ms = 0.0;
        PipelineStats {
            fps: fps as f32,
            inference_ms: inference_ms as f32,
            frames: self.frames_total,
            capture_drops: totals.capture_drops,
            corrupt_frames: totals.corrupt_frames,
            sink_drops: totals.sink_drops,
            source_outages: totals.source_outages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rates_and_totals() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1), t0);
        assert!(!w.due(t0 + Duration::from_millis(999)));
        for _ in 0..10 {
            w.frame(20.0);
        }
        w.frame(31.0);
        let t1 = t0 + Duration::from_secs(2);
        assert!(w.due(t1));
        let s = w.snapshot(
            t1,
            Totals {
                capture_drops: 3,
                corrupt_frames: 1,
                sink_drops: 2,
                source_outages: 1,
            },
        );
        assert_eq!(s.frames, 11);
        assert!((s.fps - 5.5).abs() < 1e-6);
        assert!((s.inference_ms - 21.0).abs() < 1e-6);
        assert_eq!((s.capture_drops, s.corrupt_frames, s.sink_drops), (3, 1, 2));
        assert_eq!(s.source_outages, 1);
        // Next window is empty.
        let s = w.snapshot(t1 + Duration::from_secs(1), Totals::default());
        assert_eq!((s.frames, s.fps, s.inference_ms), (11, 0.0, 0.0));
    }
}
