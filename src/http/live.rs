//! What the HTTP endpoint shows: the latest annotated frame, its detections, pipeline counters
//! and an inference latency histogram. Producers (the `run` pipeline, `serve`'s predictor) write
//! into a shared [`LiveState`]; HTTP workers read it. Writers never wait on HTTP clients: the
//! frame is stored as pixels and JPEG-encoded lazily, once per frame, by the first reader.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::pipeline::{FrameResult, Observer, PipelineStats, Preview, SinkQueue};
use crate::vision::image::RgbImage;

/// Upper bounds (seconds) of the inference latency histogram buckets: 1 ms .. 5 s, dense where
/// edge detectors live (10..500 ms).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.35, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram (cumulative rendering happens in [`render_metrics`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Per-bucket (non-cumulative) counts; one more than `LATENCY_BUCKETS` for +Inf.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if self.counts.len() != LATENCY_BUCKETS.len() + 1 {
            self.counts = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// Frames per second over a sliding window of recent frame times.
#[derive(Clone, Debug, Default)]
pub struct FpsMeter {
    times: std::collections::VecDeque<Instant>,
}

impl FpsMeter {
    const WINDOW: Duration = Duration::from_secs(10);

    pub fn tick(&mut self, now: Instant) {
        self.times.push_back(now);
        while self.times.len() > 2
            && now.duration_since(*self.times.front().unwrap_or(&now)) > Self::WINDOW
        {
            self.times.pop_front();
        }
    }

    /// Frames per second at `now` (0 with fewer than two frames or none in the window).
    pub fn fps(&self, now: Instant) -> f32 {
        let (Some(first), Some(last)) = (self.times.front(), self.times.back()) else {
            return 0.0;
        };
        if self.times.len() < 2 || now.duration_since(*last) > Self::WINDOW {
            return 0.0;
        }
        let span = last.duration_since(*first).as_secs_f32();
        if span <= 0.0 {
            0.0
        } else {
            (self.times.len() - 1) as f32 / span
        }
    }
}

/// Everything readers see, behind one lock.
#[derive(Debug, Default)]
struct Inner {
    /// Frame counter of the stored frame (increments on every publish).
    seq: u64,
    frame: Option<Arc<RgbImage>>,
    /// JPEG of `frame`, encoded on first request.
    jpeg: Option<(u64, Arc<Vec<u8>>)>,
    /// The detections document for the stored frame.
    detections: serde_json::Value,
    stats: PipelineStats,
    latency: Histogram,
    mqtt_queue_depth: u64,
    fps: FpsMeter,
    /// `stats.fps` comes from the pipeline (true) or from our own meter (false).
    external_fps: bool,
}

/// Shared state between producers and the HTTP endpoint. Cheap to clone (an `Arc`).
#[derive(Clone, Debug)]
pub struct LiveState {
    inner: Arc<Mutex<Inner>>,
    started: Instant,
}

impl Default for LiveState {
    fn default() -> Self {
        Self::new()
    }
}

/// A consistent copy of what the endpoint shows.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub seq: u64,
    pub detections: serde_json::Value,
    pub stats: PipelineStats,
    pub latency: Histogram,
    pub mqtt_queue_depth: u64,
    pub uptime: Duration,
}

impl LiveState {
    pub fn new() -> Self {
        LiveState {
            inner: Arc::new(Mutex::new(Inner {
                detections: serde_json::Value::Null,
                ..Default::default()
            })),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pipeline's hook: a processed frame, its annotated image (boxes drawn). Records the
    /// frame's inference time in the latency histogram.
    pub fn publish(&self, result: &FrameResult, annotated: RgbImage) {
        let doc = serde_json::to_value(result).unwrap_or(serde_json::Value::Null);
        self.publish_value(doc, annotated, Some(result.inference_ms as f64 / 1000.0));
    }

    /// Store a frame with an arbitrary detections document (what `serve` uses: the predict
    /// response); `inference_s` feeds the histogram and, unless the pipeline reports fps, the
    /// fps meter.
    pub fn publish_value(
        &self,
        detections: serde_json::Value,
        annotated: RgbImage,
        inference_s: Option<f64>,
    ) {
        let mut g = self.lock();
        g.seq += 1;
        g.frame = Some(Arc::new(annotated));
        g.jpeg = None;
        g.detections = detections;
        if let Some(s) = inference_s {
            g.latency.observe(s);
        }
        let now = Instant::now();
        g.fps.tick(now);
        if !g.external_fps {
            g.stats.fps = g.fps.fps(now);
            g.stats.frames += 1;
            if let Some(s) = inference_s {
                g.stats.inference_ms = (s * 1000.0) as f32;
            }
        }
    }

    /// Record an inference time without a frame (e.g. frames not shown).
    pub fn observe_inference(&self, seconds: f64) {
        self.lock().latency.observe(seconds);
    }

    /// The pipeline's counters (fps, frames, drops); from now on fps comes from here.
    pub fn set_stats(&self, stats: &PipelineStats) {
        let mut g = self.lock();
        g.stats = stats.clone();
        g.external_fps = true;
    }

    /// Messages waiting in the MQTT sink's queue.
    pub fn set_mqtt_queue_depth(&self, depth: u64) {
        self.lock().mqtt_queue_depth = depth;
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        let mut stats = g.stats.clone();
        if !g.external_fps {
            stats.fps = g.fps.fps(Instant::now());
        }
        Snapshot {
            seq: g.seq,
            detections: g.detections.clone(),
            stats,
            latency: g.latency.clone(),
            mqtt_queue_depth: g.mqtt_queue_depth,
            uptime: self.started.elapsed(),
        }
    }

    /// The latest frame as JPEG (encoded once per frame, outside the lock) and its counter.
    pub fn frame_jpeg(&self) -> Option<(u64, Arc<Vec<u8>>)> {
        let (seq, frame) = {
            let g = self.lock();
            if let Some((s, j)) = &g.jpeg {
                if *s == g.seq {
                    return Some((*s, j.clone()));
                }
            }
            (g.seq, g.frame.clone()?)
        };
        let jpeg = Arc::new(crate::capture::decode::encode_jpeg(&frame, 80));
        let mut g = self.lock();
        if g.seq == seq {
            g.jpeg = Some((seq, jpeg.clone()));
        }
        Some((seq, jpeg))
    }

    /// The `/detections.json` document: `{"seq", "detections": <latest>, "stats"}`.
    pub fn detections_json(&self) -> String {
        let s = self.snapshot();
        serde_json::json!({
            "seq": s.seq,
            "result": s.detections,
            "stats": s.stats,
            "mqtt_queue_depth": s.mqtt_queue_depth,
        })
        .to_string()
    }
}

/// Feeds a [`LiveState`] from a running pipeline (`spotter run --http`): every frame's
/// inference time goes into the latency histogram; each refreshed preview (already annotated,
/// about 5 per second) becomes the served frame and detections; each stats snapshot sets fps,
/// frame and drop counters and the MQTT queue depth (the sum over MQTT sinks).
#[derive(Debug)]
pub struct PipelineFeed {
    live: LiveState,
    camera: String,
}

impl PipelineFeed {
    pub fn new(live: LiveState) -> Self {
        // From the start, fps and counters come from the pipeline's snapshots, not from the
        // preview rate.
        live.set_stats(&PipelineStats::default());
        PipelineFeed {
            live,
            camera: String::new(),
        }
    }
}

impl Observer for PipelineFeed {
    fn frame(&mut self, result: &FrameResult) {
        if self.camera != result.camera {
            self.camera.clone_from(&result.camera);
        }
        self.live
            .observe_inference(f64::from(result.inference_ms) / 1000.0);
    }

    fn preview(&mut self, p: &Preview) {
        let doc = serde_json::json!({
            "camera": self.camera,
            "frame": p.frame,
            "frame_time": p.frame_time,
            "width": p.image.width,
            "height": p.image.height,
            "detections": p.detections,
        });
        self.live.publish_value(doc, p.image.clone(), None);
    }

    fn stats(&mut self, stats: &PipelineStats, queues: &[SinkQueue]) {
        self.live.set_stats(stats);
        let mqtt = queues
            .iter()
            .filter(|q| q.kind == "mqtt")
            .map(|q| q.depth)
            .sum();
        self.live.set_mqtt_queue_depth(mqtt);
    }
}

/// Static labels of `spotter_build_info`.
#[derive(Clone, Debug, Default)]
pub struct BuildInfo {
    pub version: String,
    pub board: String,
    pub isa: String,
    pub model: String,
}

fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_f64(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

/// Prometheus text exposition format 0.0.4 of a snapshot; every name starts with `spotter_`.
pub fn render_metrics(s: &Snapshot, info: &BuildInfo, up: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        let _ = writeln!(o, "# HELP spotter_{name} {help}");
        let _ = writeln!(o, "# TYPE spotter_{name} {kind}");
        for (suffix, value) in lines {
            let _ = writeln!(o, "spotter_{name}{suffix} {value}");
        }
    };
    metric(
        "up",
        "gauge",
        "1 while the pipeline heartbeat is recent.",
        &[(String::new(), (up as u8).to_string())],
    );
    metric(
        "build_info",
        "gauge",
        "Version, board, kernel tier and model of this process.",
        &[(
            format!(
                "{{version=\"{}\",board=\"{}\",isa=\"{}\",model=\"{}\"}}",
                label_value(&info.version),
                label_value(&info.board),
                label_value(&info.isa),
                label_value(&info.model)
            ),
            "1".into(),
        )],
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[(String::new(), fmt_f64(s.uptime.as_secs_f64()))],
    );
    let mut lines = Vec::new();
    let mut cumulative = 0u64;
    for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += s.latency.counts.get(i).copied().unwrap_or(0);
        lines.push((
            format!("_bucket{{le=\"{}\"}}", fmt_f64(*le)),
            cumulative.to_string(),
        ));
    }
    lines.push(("_bucket{le=\"+Inf\"}".into(), s.latency.count.to_string()));
    lines.push(("_sum".into(), fmt_f64(s.latency.sum)));
    lines.push(("_count".into(), s.latency.count.to_string()));
    metric(
        "inference_latency_seconds",
        "histogram",
        "Inference time per frame (preprocess, model, postprocess).",
        &lines,
    );
    metric(
        "fps",
        "gauge",
        "Processed frames per second.",
        &[(String::new(), fmt_f64(s.stats.fps as f64))],
    );
    metric(
        "frames_total",
        "counter",
        "Frames processed.",
        &[(String::new(), s.stats.frames.to_string())],
    );
    metric(
        "dropped_frames_total",
        "counter",
        "Frames not processed: reason=capture (inference busy, newest kept), reason=corrupt.",
        &[
            (
                "{reason=\"capture\"}".into(),
                s.stats.capture_drops.to_string(),
            ),
            (
                "{reason=\"corrupt\"}".into(),
                s.stats.corrupt_frames.to_string(),
            ),
        ],
    );
    metric(
        "sink_dropped_messages_total",
        "counter",
        "Messages sinks dropped because their bounded queues were full.",
        &[(String::new(), s.stats.sink_drops.to_string())],
    );
    metric(
        "source_outages_total",
        "counter",
        "Times the source (camera, stream) went away and capture reconnected.",
        &[(String::new(), s.stats.source_outages.to_string())],
    );
    metric(
        "mqtt_queue_depth",
        "gauge",
        "Messages waiting in the MQTT sink's queue.",
        &[(String::new(), s.mqtt_queue_depth.to_string())],
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_text() {
        let live = LiveState::new();
        for ms in [3.0, 40.0, 40.0, 9000.0] {
            live.observe_inference(ms / 1000.0);
        }
        live.set_mqtt_queue_depth(7);
        live.set_stats(&PipelineStats {
            fps: 12.5,
            frames: 100,
            capture_drops: 4,
            corrupt_frames: 1,
            sink_drops: 2,
            source_outages: 3,
            ..Default::default()
        });
        let text = render_metrics(&live.snapshot(), &BuildInfo::default(), true);
        for needle in [
            "spotter_up 1\n",
            "spotter_inference_latency_seconds_bucket{le=\"0.001\"} 0\n",
            "spotter_inference_latency_seconds_bucket{le=\"0.005\"} 1\n",
            "spotter_inference_latency_seconds_bucket{le=\"0.05\"} 3\n",
            "spotter_inference_latency_seconds_bucket{le=\"5\"} 3\n",
            "spotter_inference_latency_seconds_bucket{le=\"+Inf\"} 4\n",
            "spotter_inference_latency_seconds_count 4\n",
            "spotter_fps 12.5\n",
            "spotter_frames_total 100\n",
            "spotter_dropped_frames_total{reason=\"capture\"} 4\n",
            "spotter_mqtt_queue_depth 7\n",
            "spotter_source_outages_total 3\n",
            "# TYPE spotter_inference_latency_seconds histogram\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        // Every sample line is `name{labels} value` with a spotter_ name.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("spotter_"), "{line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn frames_are_encoded_once_and_replaced() {
        let live = LiveState::new();
        assert!(live.frame_jpeg().is_none());
        let img = RgbImage {
            width: 4,
            height: 2,
            data: vec![200; 24],
        };
        live.publish_value(serde_json::json!({"n": 1}), img.clone(), Some(0.01));
        let (s1, j1) = live.frame_jpeg().unwrap();
        let (s1b, j1b) = live.frame_jpeg().unwrap();
        assert_eq!(s1, s1b);
        assert!(Arc::ptr_eq(&j1, &j1b), "cached");
        assert!(j1.starts_with(&[0xFF, 0xD8]));
        live.publish_value(serde_json::json!({"n": 2}), img, None);
        let (s2, _) = live.frame_jpeg().unwrap();
        assert_eq!(s2, s1 + 1);
        let doc: serde_json::Value = serde_json::from_str(&live.detections_json()).unwrap();
        assert_eq!(doc["result"]["n"], 2);
        assert_eq!(doc["stats"]["frames"], 2);
    }

    #[test]
    fn pipeline_feed_fills_histogram_frame_and_counters() {
        use crate::detector::Detection;
        use crate::pipeline::TrackedDetection;
        let live = LiveState::new();
        let mut feed = PipelineFeed::new(live.clone());
        let det = TrackedDetection {
            id: 3,
            detection: Detection {
                label: "person".into(),
                class_id: 0,
                score: 0.8,
                bbox: [1.0, 1.0, 3.0, 2.0],
            },
            zones: vec![],
        };
        let result = FrameResult {
            camera: "door".into(),
            frame: 41,
            frame_time: 1.5,
            width: 4,
            height: 2,
            detections: vec![det.clone()],
            inference_ms: 30.0,
        };
        for _ in 0..3 {
            feed.frame(&result);
        }
        feed.preview(&Preview {
            frame: 41,
            frame_time: 1.5,
            image: RgbImage {
                width: 4,
                height: 2,
                data: vec![9; 24],
            },
            detections: vec![det],
        });
        let stats = PipelineStats {
            fps: 20.0,
            frames: 3,
            capture_drops: 5,
            ..Default::default()
        };
        let queue = |kind: &'static str, depth| SinkQueue {
            sink: kind.to_string(),
            kind,
            depth,
        };
        feed.stats(
            &stats,
            &[queue("mqtt", 4), queue("serial", 9), queue("mqtt", 1)],
        );
        let s = live.snapshot();
        assert_eq!(s.latency.count, 3);
        assert_eq!(
            s.stats, stats,
            "counters come from the pipeline, not the preview"
        );
        assert_eq!(s.mqtt_queue_depth, 5);
        assert_eq!(s.detections["camera"], "door");
        assert_eq!(s.detections["frame"], 41);
        assert_eq!(s.detections["detections"][0]["id"], 3);
        assert!(live.frame_jpeg().is_some());
    }

    #[test]
    fn fps_meter() {
        let t0 = Instant::now();
        let mut m = FpsMeter::default();
        assert_eq!(m.fps(t0), 0.0);
        for i in 0..11 {
            m.tick(t0 + Duration::from_millis(100 * i));
        }
        let f = m.fps(t0 + Duration::from_secs(1));
        assert!((f - 10.0).abs() < 0.01, "{f}");
        assert_eq!(m.fps(t0 + Duration::from_secs(60)), 0.0);
    }
}
