//! The capture thread: source → decode (inside the source) → resize to the model input →
//! [`LatestFrame`] mailbox.
//!
//! Decoding and resizing here overlaps them with inference on the other thread, so the
//! inference loop only copies the model-sized pixels into the model input.
//!
//! Error policy (the `Source` contract): `Corrupt` frames are counted and skipped;
//! `Disconnected` is logged once per outage, counted, and retried with exponential backoff
//! (0.1 s doubling up to `max_backoff`, beating the heartbeat while waiting, since waiting for
//! a camera is not a hang); `Open` is fatal and ends the stage with that error; the end of a
//! finite source ends the stage. The stage ends by closing the mailbox, so the consumer sees
//! `None` once the last frame was taken.
//!
//! Delivery: live sources (cameras, streams) use the keep-newest mailbox and count drops. With
//! `lossless` (image files and folders) the thread waits until the consumer has taken a frame
//! before putting the next one, so every image is processed; it still decodes and resizes the
//! next image while the current one is inferred.
//!
//! Buffers: the consumer hands every [`Prepared`] back through [`CaptureStage::recycle`]; the
//! model-sized buffer is reused and the decoded image is freed here, off the inference thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::{CaptureError, LatestFrame, Source};
use crate::pipeline::{Frame, Heartbeat};
use crate::vision::image::Resizer;

/// A captured frame and its pixels resized to the model input (RGB8).
#[derive(Debug)]
pub struct Prepared {
    pub frame: Frame,
    pub input: Vec<u8>,
}

/// Counters of the capture stage, shared with whoever reports health.
#[derive(Debug, Default)]
pub struct SourceStatus {
    /// Frames delivered to the mailbox.
    pub frames: AtomicU64,
    /// Frames that could not be decoded (or had an inconsistent size), skipped.
    pub corrupt: AtomicU64,
    /// Times the source went away (each counted once, however long it stayed away).
    pub outages: AtomicU64,
    /// False while the source is away.
    pub connected: AtomicBool,
}

/// Handle on a running capture thread.
pub struct CaptureStage {
    mailbox: Arc<LatestFrame<Prepared>>,
    recycle: Sender<Prepared>,
    taken: Sender<()>,
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    handle: Option<JoinHandle<()>>,
    error: Arc<Mutex<Option<CaptureError>>>,
}

/// What the capture thread needs besides the source.
pub struct CaptureParams {
    /// Model input size `(width, height)`.
    pub input_size: (usize, usize),
    pub max_backoff: Duration,
    pub heartbeat: Heartbeat,
    pub status: Arc<SourceStatus>,
    /// Never drop frames: wait for the consumer instead (finite, non-live sources).
    pub lossless: bool,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);

impl CaptureStage {
    pub fn spawn(source: Box<dyn Source>, params: CaptureParams) -> std::io::Result<CaptureStage> {
        let mailbox = Arc::new(LatestFrame::new());
        let stop = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (recycle, recycled) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (taken, taken_rx) = mpsc::channel();
        let worker = Worker {
            taken: taken_rx,
            source,
            params,
            mailbox: Arc::clone(&mailbox),
            stop: Arc::clone(&stop),
            error: Arc::clone(&error),
            recycled,
        };
        let handle = std::thread::Builder::new()
            .name("spotter-capture".into())
            .spawn(move || {
                worker.run();
                let _ = done_tx.send(());
            })?;
        Ok(CaptureStage {
            mailbox,
            recycle,
            taken,
            stop,
            done,
            handle: Some(handle),
            error,
        })
    }

    /// The next frame, waiting up to `timeout`. `Err(())` once the stage has ended and every
    /// frame was taken; `Ok(None)` on timeout.
    #[allow(clippy::result_unit_err)]
    pub fn take(&self, timeout: Duration) -> Result<Option<Prepared>, ()> {
        match self.mailbox.take_timeout(timeout) {
            Some(p) => {
                // Tells a lossless producer the slot is free (ignored if it has ended).
                let _ = self.taken.send(());
                Ok(Some(p))
            }
            None if self.mailbox.is_closed() => match self.mailbox.try_take() {
                Some(p) => Ok(Some(p)),
                None => Err(()),
            },
            None => Ok(None),
        }
    }

    /// Frames the keep-newest mailbox replaced before they were taken.
    pub fn drops(&self) -> u64 {
        self.mailbox.drops()
    }

    /// Give a processed frame's buffers back for reuse.
    pub fn recycle(&self, p: Prepared) {
        // A send error means the capture thread ended; the buffers are then simply freed.
        let _ = self.recycle.send(p);
    }

    /// The fatal error that ended the stage, if any.
    pub fn take_error(&self) -> Option<CaptureError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Stop the thread, waiting up to `timeout` for it. A thread blocked in a source read
    /// that does not return in time is left behind (it exits at its next frame or with the
    /// process) rather than hanging shutdown.
    pub fn stop(mut self, timeout: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.mailbox.close();
        match self.done.recv_timeout(timeout) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                log::warn!(
                    "capture thread did not stop within {:?} (blocked in the source); leaving it",
                    timeout
                );
            }
        }
    }
}

struct Worker {
    source: Box<dyn Source>,
    params: CaptureParams,
    mailbox: Arc<LatestFrame<Prepared>>,
    stop: Arc<AtomicBool>,
    error: Arc<Mutex<Option<CaptureError>>>,
    recycled: Receiver<Prepared>,
    taken: Receiver<()>,
}

impl Worker {
    fn run(mut self) {
        let status = Arc::clone(&self.params.status);
        status.connected.store(true, Ordering::Relaxed);
        let (w, h) = self.params.input_size;
        let mut resizer: Option<Resizer> = None;
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut outage: Option<Instant> = None;
        let mut backoff = FIRST_BACKOFF;
        let mut corrupt_logged = false;
        // Lossless: whether the frame put last has not been taken yet.
        let mut pending = false;
        while !self.stop.load(Ordering::Relaxed) {
            // Reuse model-sized buffers; decoded images are dropped here.
            while let Ok(p) = self.recycled.try_recv() {
                if spare.len() < 4 {
                    spare.push(p.input);
                }
            }
            match self.source.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(since) = outage.take() {
                        log::warn!(
                            "{}: frames again after {:.1} s",
                            self.source.name(),
                            since.elapsed().as_secs_f64()
                        );
                        status.connected.store(true, Ordering::Relaxed);
                        backoff = FIRST_BACKOFF;
                    }
                    let img = &frame.image;
                    if img.data.len() != img.width * img.height * 3 || img.data.is_empty() {
                        status.corrupt.fetch_add(1, Ordering::Relaxed);
                        log::warn!(
                            "{}: frame {} has {} bytes for {}x{} RGB; skipped",
                            self.source.name(),
                            frame.seq,
                            img.data.len(),
                            img.width,
                            img.height
                        );
                        continue;
                    }
                    if resizer
                        .as_ref()
                        .is_none_or(|r| r.src_size() != (img.width, img.height))
                    {
                        match Resizer::new(img.width, img.height, w, h) {
                            Ok(r) => resizer = Some(r),
                            Err(e) => {
                                status.corrupt.fetch_add(1, Ordering::Relaxed);
                                log::warn!("{}: {e}; frame skipped", self.source.name());
                                continue;
                            }
                        }
                    }
                    let mut input = spare.pop().unwrap_or_default();
                    input.resize(w * h * 3, 0);
                    if let Some(r) = &resizer {
                        r.resize(&img.data, &mut input);
                    }
                    if pending && !self.wait_taken() {
                        break;
                    }
                    status.frames.fetch_add(1, Ordering::Relaxed);
                    if !self.mailbox.put(Prepared { frame, input }) {
                        break; // closed: the consumer is gone
                    }
                    pending = self.params.lossless;
                }
                Ok(None) => {
                    log::info!("{}: end of source", self.source.name());
                    break;
                }
                Err(e @ CaptureError::Corrupt { .. }) => {
                    status.corrupt.fetch_add(1, Ordering::Relaxed);
                    // The first one is worth a warning; a stream of them is counted in stats.
                    if corrupt_logged {
                        log::debug!("{e}; skipped");
                    } else {
                        log::warn!("{e}; skipped (further corrupt frames are only counted)");
                        corrupt_logged = true;
                    }
                }
                Err(e @ CaptureError::Disconnected { .. }) => {
                    if outage.is_none() {
                        log::warn!("{e}; reconnecting");
                        status.outages.fetch_add(1, Ordering::Relaxed);
                        status.connected.store(false, Ordering::Relaxed);
                        outage = Some(Instant::now());
                    } else {
                        log::debug!("{e}; still reconnecting");
                    }
                    self.params.heartbeat.beat();
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(self.params.max_backoff);
                }
                Err(e @ CaptureError::Open { .. }) => {
                    log::error!("{e}");
                    *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    break;
                }
            }
        }
        self.mailbox.close();
    }

    /// Wait until the consumer took the last frame; `false` if it is gone or we must stop.
    fn wait_taken(&self) -> bool {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.taken.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Sleep, waking early when asked to stop.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::image::RgbImage;
    use std::collections::VecDeque;

    /// A scripted source.
    struct Script(VecDeque<Result<Option<Frame>, CaptureError>>);

    impl Source for Script {
        fn name(&self) -> &str {
            "script"
        }
        fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
            self.0.pop_front().unwrap_or(Ok(None))
        }
    }

    fn frame(seq: u64, v: u8) -> Result<Option<Frame>, CaptureError> {
        Ok(Some(Frame {
            seq,
            time: seq as f64,
            image: RgbImage {
                width: 4,
                height: 2,
                data: vec![v; 24],
            },
        }))
    }

    fn params(status: &Arc<SourceStatus>) -> CaptureParams {
        CaptureParams {
            input_size: (2, 1),
            max_backoff: Duration::from_millis(200),
            heartbeat: Heartbeat::new(),
            status: Arc::clone(status),
            lossless: false,
        }
    }

    #[test]
    fn resizes_skips_corrupt_and_survives_outages() {
        let script = Script(
            vec![
                frame(0, 10),
                Err(CaptureError::corrupt("script", "bad jpeg")),
                Err(CaptureError::disconnected("script", "gone")),
                Err(CaptureError::disconnected("script", "still gone")),
                frame(1, 20),
                Ok(Some(Frame {
                    seq: 2,
                    time: 2.0,
                    image: RgbImage {
                        width: 4,
                        height: 2,
                        data: vec![0; 5],
                    },
                })),
                frame(3, 30),
            ]
            .into(),
        );
        let status = Arc::new(SourceStatus::default());
        let p = params(&status);
        let hb = p.heartbeat.clone();
        let stage = CaptureStage::spawn(Box::new(script), p).expect("spawn");
        let mut got = Vec::new();
        while let Ok(p) = stage.take(Duration::from_secs(5)) {
            let p = p.expect("a frame within 5 s");
            assert_eq!(p.input.len(), 2 * 3);
            got.push((p.frame.seq, p.input[0]));
            stage.recycle(p);
        }
        // Frames may be dropped by the keep-newest mailbox but never reordered; the last one
        // always arrives.
        assert_eq!(got.last(), Some(&(3, 30)));
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(status.corrupt.load(Ordering::Relaxed), 2);
        assert_eq!(status.outages.load(Ordering::Relaxed), 1, "one outage");
        assert!(status.connected.load(Ordering::Relaxed));
        assert!(hb.since_last().is_some(), "retry loop beats");
        assert!(stage.take_error().is_none());
        stage.stop(Duration::from_secs(1));
    }

    #[test]
    fn lossless_delivers_every_frame_to_a_slow_consumer() {
        let script = Script((0..20).map(|i| frame(i, i as u8)).collect());
        let status = Arc::new(SourceStatus::default());
        let mut p = params(&status);
        p.lossless = true;
        let stage = CaptureStage::spawn(Box::new(script), p).expect("spawn");
        let mut seqs = Vec::new();
        while let Ok(p) = stage.take(Duration::from_secs(5)) {
            let p = p.expect("a frame within 5 s");
            seqs.push(p.frame.seq);
            std::thread::sleep(Duration::from_millis(5));
            stage.recycle(p);
        }
        assert_eq!(seqs, (0..20).collect::<Vec<u64>>());
        assert_eq!(stage.drops(), 0);
        stage.stop(Duration::from_secs(1));
    }

    #[test]
    fn open_error_is_fatal_and_reported() {
        let script = Script(vec![Err(CaptureError::open("script", "no such device"))].into());
        let status = Arc::new(SourceStatus::default());
        let stage = CaptureStage::spawn(Box::new(script), params(&status)).expect("spawn");
        assert!(stage.take(Duration::from_secs(5)).is_err());
        let e = stage.take_error().expect("error kept");
        assert!(e.to_string().contains("no such device"));
        stage.stop(Duration::from_secs(1));
    }
}
