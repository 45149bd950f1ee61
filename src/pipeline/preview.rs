//! The latest annotated frame, for a live preview page.
//!
//! The inference loop refreshes it at most every `interval` (a copy of the frame plus drawing
//! costs ~1 ms; at 5 per second that is noise next to inference). Readers clone what they need
//! under the lock and release it quickly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::TrackedDetection;
use crate::vision::draw;
use crate::vision::image::RgbImage;

/// One annotated frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    pub frame: u64,
    /// Capture time, seconds since the Unix epoch.
    pub frame_time: f64,
    /// The frame with boxes, labels and scores drawn (zones/masks are not drawn).
    pub image: RgbImage,
    pub detections: Vec<TrackedDetection>,
}

/// Shared slot of the latest [`Preview`] (`None` until the first frame).
pub type SharedPreview = Arc<Mutex<Option<Preview>>>;

/// Rate limiter + drawing.
#[derive(Debug)]
pub struct PreviewUpdater {
    slot: SharedPreview,
    interval: Option<Duration>,
    last: Option<Instant>,
}

impl PreviewUpdater {
    /// `interval: None` disables the preview (the slot stays `None`).
    pub fn new(slot: SharedPreview, interval: Option<Duration>) -> Self {
        PreviewUpdater {
            slot,
            interval,
            last: None,
        }
    }

    /// Whether a frame processed at `now` should be drawn.
    pub fn due(&self, now: Instant) -> bool {
        match (self.interval, self.last) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(i), Some(last)) => now.duration_since(last) >= i,
        }
    }

    /// Draw `detections` on a copy of `image` and publish it (if due at `now`). Returns the
    /// new preview's slot (still locked) when it was refreshed, so callers can copy it out.
    pub fn offer(
        &mut self,
        now: Instant,
        frame: u64,
        frame_time: f64,
        image: &RgbImage,
        detections: &[TrackedDetection],
    ) -> Option<std::sync::MutexGuard<'_, Option<Preview>>> {
        if !self.due(now) {
            return None;
        }
        self.last = Some(now);
        let mut guard = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        // Reuse the previous preview's buffers when the size did not change.
        let mut p = guard.take().unwrap_or_else(|| Preview {
            frame,
            frame_time,
            image: RgbImage::new(0, 0),
            detections: Vec::new(),
        });
        p.frame = frame;
        p.frame_time = frame_time;
        p.image.clone_from(image);
        p.detections.clear();
        p.detections.extend_from_slice(detections);
        for d in &p.detections {
            let b = d.detection.bbox.map(|v| v as f32);
            draw::draw_detection(
                &mut p.image,
                b,
                d.detection.class_id,
                &d.detection.label,
                d.detection.score,
            );
        }
        *guard = Some(p);
        Some(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::Detection;

    #[test]
    fn rate_limited_and_annotated() {
        let slot: SharedPreview = Arc::new(Mutex::new(None));
        let mut u = PreviewUpdater::new(Arc::clone(&slot), Some(Duration::from_millis(200)));
        let img = RgbImage::new(64, 48);
        let d = TrackedDetection {
            id: 1,
            detection: Detection {
                label: "cat".into(),
                class_id: 16,
                score: 0.9,
                bbox: [10.0, 10.0, 40.0, 40.0],
            },
            zones: vec![],
        };
        let t0 = Instant::now();
        u.offer(t0, 0, 1.0, &img, std::slice::from_ref(&d));
        {
            let p = slot.lock().expect("lock");
            let p = p.as_ref().expect("preview");
            assert_eq!(p.frame, 0);
            assert_eq!(p.detections, vec![d.clone()]);
            assert_ne!(p.image, img, "boxes drawn");
        }
        u.offer(t0 + Duration::from_millis(100), 1, 1.1, &img, &[]);
        assert_eq!(
            slot.lock().expect("lock").as_ref().map(|p| p.frame),
            Some(0)
        );
        u.offer(t0 + Duration::from_millis(250), 2, 1.2, &img, &[]);
        let p = slot.lock().expect("lock");
        assert_eq!(
            p.as_ref().map(|p| (p.frame, p.image == img)),
            Some((2, true))
        );

        let mut off = PreviewUpdater::new(Arc::new(Mutex::new(None)), None);
        assert!(!off.due(t0));
        off.offer(t0, 0, 0.0, &img, &[]);
        assert!(off.slot.lock().expect("lock").is_none());
    }
}
