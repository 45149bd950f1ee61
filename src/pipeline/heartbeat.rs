//! Liveness of the pipeline, for the systemd watchdog and health checks.
//!
//! The inference loop calls [`Heartbeat::beat`] after every processed frame (and while idle
//! waiting for a camera, from its retry loop). A watchdog thread pings systemd only while the
//! last beat is recent, so a stalled pipeline stops pinging and gets restarted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Heartbeat {
    start: Instant,
    /// Milliseconds since `start` of the last beat (0 = never).
    last_ms: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    pub fn new() -> Self {
        Heartbeat {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn beat(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Time since the last beat; `None` if it never beat.
    pub fn since_last(&self) -> Option<Duration> {
        match self.last_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.start
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }

    /// Alive = beat within `max_silence`.
    pub fn alive(&self, max_silence: Duration) -> bool {
        self.since_last().is_some_and(|d| d <= max_silence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_keep_it_alive_silence_does_not() {
        let h = Heartbeat::new();
        assert!(!h.alive(Duration::from_secs(1)));
        h.beat();
        assert!(h.alive(Duration::from_secs(1)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!h.alive(Duration::from_millis(10)));
    }
}
