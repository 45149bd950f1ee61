//! The inference loop: mailbox → detector → filters → tracker → zones → sinks, on the calling
//! thread, with a capture thread feeding it (see [`super::capture_stage`]).
//!
//! Contracts:
//! - Ends cleanly on `max_frames`, at the end of a finite source, or when the stop flag is set
//!   (signals): the capture thread is stopped, sinks get final stats and are closed (MQTT then
//!   sends its `end` events and `offline`).
//! - The reload flag (SIGHUP) calls the reloader between two frames; the filters it returns
//!   apply from the next frame on. Nothing is reconnected.
//! - The heartbeat beats after every processed frame (and from the capture retry loop).
//! - Stats are computed every `stats_interval`, stored in the shared snapshot and sent to every
//!   sink.
//! - A failing sink is logged (once per kind of failure, then every 100th) and kept: one broken
//!   output must not stop the others.
//! - Observers ([`Observer`], e.g. the HTTP endpoint) see every frame after the sinks, every
//!   refreshed preview and every stats snapshot, on this thread.
//! - No per-frame allocation of pixel buffers on this thread: the capture thread resizes into
//!   recycled buffers; the `FrameResult` is reused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::capture_stage::{CaptureParams, CaptureStage, SourceStatus};
use super::filter::Filters;
use super::observer::{Observer, SinkQueue};
use super::preview::{PreviewUpdater, SharedPreview};
use super::stats::{StatsWindow, Totals};
use super::track::{Tracker, TrackerConfig};
use super::{FrameResult, Heartbeat, PipelineStats};
use crate::capture::{CaptureError, Source};
use crate::detector::Detector;
use crate::error::InputError;
use crate::sinks::Sink;

/// Shared, once-per-interval statistics snapshot.
pub type SharedStats = Arc<Mutex<PipelineStats>>;

/// Called on SIGHUP: new filters to apply, or `None` to keep the current ones (the reloader
/// logs why).
pub type Reloader = Box<dyn FnMut() -> Option<Filters> + Send>;

#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Camera name in every result.
    pub camera: String,
    /// Stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// Process at most this many frames per second (newer frames replace waiting ones).
    pub fps: Option<f64>,
    /// Longest wait between attempts to reopen a disconnected source.
    pub max_backoff: Duration,
    pub stats_interval: Duration,
    /// How often the preview frame is refreshed; `None`: no preview.
    pub preview_interval: Option<Duration>,
    pub tracker: TrackerConfig,
    /// How long shutdown waits for a capture thread blocked in its source.
    pub capture_stop_timeout: Duration,
    /// Process every frame (image files/folders) instead of keeping only the newest.
    pub lossless: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            camera: "camera".into(),
            max_frames: None,
            fps: None,
            max_backoff: Duration::from_secs(10),
            stats_interval: Duration::from_secs(1),
            preview_interval: Some(Duration::from_millis(200)),
            tracker: TrackerConfig::default(),
            capture_stop_timeout: Duration::from_secs(2),
            lossless: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("source: {0}")]
    Source(#[from] CaptureError),
    #[error("cannot start the capture thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("model input: {0}")]
    Input(#[from] InputError),
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    MaxFrames,
    SourceEnded,
    /// The stop flag was set (SIGINT/SIGTERM).
    Stopped,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub reason: StopReason,
    pub frames: u64,
    pub stats: PipelineStats,
    pub elapsed: Duration,
}

/// A detector, its sinks and the per-frame logic; [`Pipeline::run`] drives one source.
pub struct Pipeline {
    detector: Detector,
    sinks: Vec<Box<dyn Sink>>,
    filters: Filters,
    options: PipelineOptions,
    heartbeat: Heartbeat,
    stats: SharedStats,
    preview: SharedPreview,
    source_status: Arc<SourceStatus>,
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    reloader: Option<Reloader>,
    observers: Vec<Box<dyn Observer>>,
}

impl Pipeline {
    pub fn new(
        detector: Detector,
        sinks: Vec<Box<dyn Sink>>,
        filters: Filters,
        options: PipelineOptions,
    ) -> Pipeline {
        Pipeline {
            detector,
            sinks,
            filters,
            options,
            heartbeat: Heartbeat::new(),
            stats: Arc::new(Mutex::new(PipelineStats::default())),
            preview: Arc::new(Mutex::new(None)),
            source_status: Arc::new(SourceStatus::default()),
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            reloader: None,
            observers: Vec::new(),
        }
    }

    /// Liveness for the watchdog.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Latest statistics snapshot (updated every `stats_interval`).
    pub fn stats(&self) -> SharedStats {
        Arc::clone(&self.stats)
    }

    /// Latest annotated frame.
    pub fn preview(&self) -> SharedPreview {
        Arc::clone(&self.preview)
    }

    /// Capture-stage counters (outages, corrupt frames, connected).
    pub fn source_status(&self) -> Arc<SourceStatus> {
        Arc::clone(&self.source_status)
    }

    /// Set to end the run cleanly (signal handlers set it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Set to make the loop call the reloader before the next frame (SIGHUP).
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reload)
    }

    pub fn set_reloader(&mut self, reloader: Reloader) {
        self.reloader = Some(reloader);
    }

    /// Add a tap on frames, previews and stats (see [`Observer`] for the contract).
    pub fn add_observer(&mut self, observer: Box<dyn Observer>) {
        self.observers.push(observer);
    }

    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    pub fn set_filters(&mut self, filters: Filters) {
        self.filters = filters;
    }

    /// Process `source` until it ends, `max_frames`, or the stop flag. Sinks are closed
    /// before returning, also on error.
    pub fn run(&mut self, source: Box<dyn Source>) -> Result<RunSummary, PipelineError> {
        let started = Instant::now();
        let capture = CaptureStage::spawn(
            source,
            CaptureParams {
                input_size: self.detector.input_size(),
                max_backoff: self.options.max_backoff,
                heartbeat: self.heartbeat.clone(),
                status: Arc::clone(&self.source_status),
                lossless: self.options.lossless,
            },
        )?;
        let mut window = StatsWindow::new(self.options.stats_interval, started);
        let outcome = self.process(&capture, &mut window);
        // The capture thread stores a fatal error before closing the mailbox, so it is visible
        // once `process` saw the mailbox closed.
        let capture_error = capture.take_error();
        let stats = self.publish_stats(&mut window, &capture, Instant::now());
        capture.stop(self.options.capture_stop_timeout);
        self.close_sinks();
        if let Some(e) = capture_error {
            return Err(PipelineError::Source(e));
        }
        let reason = outcome?;
        Ok(RunSummary {
            reason,
            frames: stats.frames,
            stats,
            elapsed: started.elapsed(),
        })
    }

    fn process(
        &mut self,
        capture: &CaptureStage,
        window: &mut StatsWindow,
    ) -> Result<StopReason, PipelineError> {
        let mut tracker = Tracker::new(self.options.tracker.clone());
        let mut preview =
            PreviewUpdater::new(Arc::clone(&self.preview), self.options.preview_interval);
        let period = self
            .options
            .fps
            .filter(|f| f.is_finite() && *f > 0.0)
            .map(|f| Duration::from_secs_f64(1.0 / f));
        let mut next_due = Instant::now();
        let mut sink_errors = SinkErrorLog::default();
        let mut result = FrameResult {
            camera: self.options.camera.clone(),
            frame: 0,
            frame_time: 0.0,
            width: 0,
            height: 0,
            detections: Vec::new(),
            inference_ms: 0.0,
        };
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(StopReason::Stopped);
            }
            if self.reload.swap(false, Ordering::Relaxed) {
                self.reload_now();
            }
            let now = Instant::now();
            if window.due(now) {
                self.publish_stats(window, capture, now);
            }
            if period.is_some() && now < next_due {
                std::thread::sleep((next_due - now).min(Duration::from_millis(50)));
                continue;
            }
            // Wake up regularly to notice signals and emit stats while the source is quiet.
            let prepared = match capture.take(Duration::from_millis(100)) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(()) => return Ok(StopReason::SourceEnded),
            };
            let t0 = Instant::now();
            if let Some(period) = period {
                // Keep the average rate without bursting after a slow frame.
                next_due = (next_due + period).max(t0);
            }
            let frame = &prepared.frame;
            self.detector.set_resized_input(&prepared.input)?;
            self.detector.infer();
            let (w, h) = (frame.image.width, frame.image.height);
            let mut detections = self.detector.detections(w, h, self.filters.threshold);
            detections.retain(|d| self.filters.keep(d));
            let inference_ms = t0.elapsed().as_secs_f32() * 1e3;

            result.detections = tracker.update(&detections, frame.time);
            for d in &mut result.detections {
                self.filters.zones_into(&d.detection.bbox, &mut d.zones);
            }
            result.frame = frame.seq;
            result.frame_time = frame.time;
            result.width = w;
            result.height = h;
            result.inference_ms = inference_ms;
            for sink in &mut self.sinks {
                if let Err(e) = sink.publish(&result) {
                    sink_errors.log(sink.name(), &e.to_string());
                }
            }
            for o in &mut self.observers {
                o.frame(&result);
            }
            if let Some(slot) = preview.offer(
                Instant::now(),
                frame.seq,
                frame.time,
                &frame.image,
                &result.detections,
            ) {
                if let Some(p) = slot.as_ref() {
                    for o in &mut self.observers {
                        o.preview(p);
                    }
                }
            }
            window.frame(inference_ms);
            self.heartbeat.beat();
            capture.recycle(prepared);
            if self
                .options
                .max_frames
                .is_some_and(|max| window.frames() >= max)
            {
                return Ok(StopReason::MaxFrames);
            }
        }
    }

    fn reload_now(&mut self) {
        let Some(reloader) = self.reloader.as_mut() else {
            log::warn!("reload requested, but there is no config file to reload");
            return;
        };
        if let Some(filters) = reloader() {
            self.filters = filters;
        }
    }

    /// Close the stats window, store the snapshot and send it to the sinks.
    fn publish_stats(
        &mut self,
        window: &mut StatsWindow,
        capture: &CaptureStage,
        now: Instant,
    ) -> PipelineStats {
        let totals = Totals {
            capture_drops: capture.drops(),
            corrupt_frames: self.source_status.corrupt.load(Ordering::Relaxed),
            sink_drops: self.sinks.iter().map(|s| s.dropped()).sum(),
            source_outages: self.source_status.outages.load(Ordering::Relaxed),
        };
        let stats = window.snapshot(now, totals);
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = stats.clone();
        if !self.observers.is_empty() {
            let queues: Vec<SinkQueue> = self
                .sinks
                .iter()
                .map(|s| SinkQueue {
                    sink: s.name().to_string(),
                    kind: s.kind(),
                    depth: s.queue_depth(),
                })
                .collect();
            for o in &mut self.observers {
                o.stats(&stats, &queues);
            }
        }
        for sink in &mut self.sinks {
            if let Err(e) = sink.stats(&stats) {
                log::warn!("{}: stats: {e}", sink.name());
            }
        }
        stats
    }

    fn close_sinks(&mut self) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.close() {
                log::warn!("{}: close: {e}", sink.name());
            }
        }
    }
}

/// Rate-limited logging of sink failures: the first of each sink, then every 100th.
#[derive(Default)]
struct SinkErrorLog {
    counts: Vec<(String, u64)>,
}

impl SinkErrorLog {
    fn log(&mut self, sink: &str, what: &str) {
        let n = match self.counts.iter_mut().find(|(s, _)| s == sink) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counts.push((sink.to_string(), 1));
                1
            }
        };
        if n == 1 || n % 100 == 0 {
            log::warn!("{sink}: publish failed ({n} so far): {what}");
        }
    }
}
