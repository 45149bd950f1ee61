//! A synthetic, deterministic moving pattern: colour bars, a moving white square and a frame
//! counter stripe. Frame `n` depends only on (width, height, n), so tests can compare exactly.

use std::time::{Duration, Instant};

use crate::capture::{now_secs, CaptureError, Source};
use crate::pipeline::Frame;
use crate::vision::image::RgbImage;

const BARS: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];

/// Render frame `n` of the pattern.
///
/// Layout: vertical colour bars; a white-bordered black square of side min(w,h)/4 moving
/// diagonally by 4 px per frame (bouncing within the image); the top 4 rows are a binary
/// counter of `n` (bit i: 8-px-wide cell i, white = 1) so a frame identifies itself.
pub fn render(width: usize, height: usize, n: u64) -> RgbImage {
    let mut data = vec![0u8; width * height * 3];
    for y in 0..height {
        for x in 0..width {
            let bar = BARS[x * BARS.len() / width.max(1)];
            data[(y * width + x) * 3..][..3].copy_from_slice(&bar);
        }
    }
    let side = (width.min(height) / 4).max(1);
    let pos = |range: usize| -> usize {
        if range == 0 {
            return 0;
        }
        // Bounce: triangle wave over [0, range].
        let t = (n.wrapping_mul(4) % (2 * range as u64)) as usize;
        if t <= range {
            t
        } else {
            2 * range - t
        }
    };
    let (sx, sy) = (pos(width - side), pos(height - side));
    for y in sy..sy + side {
        for x in sx..sx + side {
            let edge = y == sy || y == sy + side - 1 || x == sx || x == sx + side - 1;
            let v = if edge { 255 } else { 0 };
            data[(y * width + x) * 3..][..3].copy_from_slice(&[v, v, v]);
        }
    }
    for y in 0..height.min(4) {
        for x in 0..width {
            let bit = x / 8;
            let v = if bit < 64 && (n >> bit) & 1 == 1 {
                255
            } else {
                0
            };
            data[(y * width + x) * 3..][..3].copy_from_slice(&[v, v, v]);
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

/// Reads the frame counter that [`render`] draws (for tests and probes).
pub fn read_counter(img: &RgbImage) -> u64 {
    let mut n = 0u64;
    for bit in 0..(img.width / 8).min(64) {
        let x = bit * 8 + 4;
        if x < img.width && img.height > 0 && img.data[x * 3] > 127 {
            n |= 1 << bit;
        }
    }
    n
}

/// An endless test-pattern source paced at `fps` (0 = as fast as it is read).
#[derive(Debug)]
pub struct TestPattern {
    width: usize,
    height: usize,
    interval: Option<Duration>,
    seq: u64,
    start: Option<Instant>,
}

impl TestPattern {
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, CaptureError> {
        if width < 8 || height < 8 || width > 8192 || height > 8192 {
            return Err(CaptureError::open(
                "test-pattern",
                format!("size {width}x{height} out of range: expected 8..=8192 on each side"),
            ));
        }
        Ok(TestPattern {
            width: width as usize,
            height: height as usize,
            interval: (fps > 0).then(|| Duration::from_secs(1) / fps),
            seq: 0,
            start: None,
        })
    }
}

impl Source for TestPattern {
    fn name(&self) -> &str {
        "test-pattern"
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if let Some(interval) = self.interval {
            // Frame n is due at start + n*interval (no drift from render time).
            let start = *self.start.get_or_insert_with(Instant::now);
            let due = start + interval * (self.seq.min(u32::MAX as u64) as u32);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let image = render(self.width, self.height, self.seq);
        let frame = Frame {
            seq: self.seq,
            time: now_secs(),
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_moving_and_self_identifying() {
        let a = render(64, 48, 5);
        assert_eq!(a, render(64, 48, 5));
        assert_ne!(a, render(64, 48, 6), "the pattern moves");
        assert_eq!(read_counter(&a), 5);
        assert_eq!(read_counter(&render(640, 480, 123_456)), 123_456);
        assert_eq!(a.data.len(), 64 * 48 * 3);
    }

    #[test]
    fn paced_source_counts_frames() {
        let mut s = TestPattern::new(64, 16, 200).expect("open");
        let t0 = Instant::now();
        for seq in 0..5 {
            let f = s.next_frame().expect("ok").expect("frame");
            assert_eq!(f.seq, seq);
            assert_eq!(read_counter(&f.image), seq);
        }
        // Frames 0..4 at 200 fps: frame 4 is due 20 ms after the first.
        assert!(t0.elapsed() >= Duration::from_millis(19));
        assert!(TestPattern::new(4, 4, 30).is_err());
    }
}
