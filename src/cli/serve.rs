//! `spotter serve`: one detector behind the TF-Serving-style REST API, metrics and a preview
//! page (see `spotter::http`). Under systemd it reports READY once listening and keeps the
//! watchdog fed from a ticker that stops beating if an inference hangs.
//!
//! [`ServedDetector`] and [`build_info`] are shared with `spotter run --http`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spotter::detector::{Detection, Detector, DetectorOptions};
use spotter::http::{self, HttpOptions, HttpServer, LiveState, Predictor};
use spotter::pipeline::Heartbeat;
use spotter::service;
use spotter::vision::image::RgbImage;

use super::detect::{resolve_labels, resolve_model};
use super::UsageError;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (.tflite). Default: the shipped Coral SSD MobileNet v2 COCO.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Label file (default: found next to the model).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Model name in the URLs (/v1/models/NAME). Default: the model file's stem.
    #[arg(long)]
    name: Option<String>,
    /// Listen address: PORT or :PORT (loopback only), or IP:PORT / HOST:PORT.
    #[arg(long, default_value_t = http::DEFAULT_PORT.to_string())]
    http: String,
    /// Default minimum score (a request's ?threshold= overrides it).
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Threads for inference.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// An inference taking longer than this counts as hung: the watchdog ticker stops beating.
const HUNG_INFERENCE: Duration = Duration::from_secs(60);

/// A detector behind a lock, as the HTTP endpoint's [`Predictor`].
pub(super) struct ServedDetector {
    name: String,
    detector: Mutex<Detector>,
    /// Milliseconds since `epoch` when the running inference started (0 = idle).
    busy_since_ms: AtomicU64,
    epoch: Instant,
}

impl Predictor for ServedDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, image: &RgbImage, threshold: f32) -> Result<Vec<Detection>, String> {
        let mut d = self.detector.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.epoch.elapsed().as_millis() as u64;
        self.busy_since_ms.store(now.max(1), Ordering::Relaxed);
        let r = d.detect(image, threshold).map_err(|e| e.to_string());
        self.busy_since_ms.store(0, Ordering::Relaxed);
        r
    }
}

impl ServedDetector {
    pub(super) fn new(name: String, detector: Detector) -> Self {
        ServedDetector {
            name,
            detector: Mutex::new(detector),
            busy_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn hung(&self) -> bool {
        match self.busy_since_ms.load(Ordering::Relaxed) {
            0 => false,
            since => {
                let now = self.epoch.elapsed().as_millis() as u64;
                Duration::from_millis(now.saturating_sub(since)) > HUNG_INFERENCE
            }
        }
    }
}

pub(super) fn listen_addr(s: &str) -> anyhow::Result<SocketAddr> {
    http::parse_listen(s).map_err(|e| UsageError(e).into())
}

pub(super) fn build_info(model: &str) -> http::BuildInfo {
    http::BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        board: spotter::board::built_for().unwrap_or("").to_string(),
        isa: spotter::kernels::isa::selected()
            .map(|i| i.name().to_string())
            .unwrap_or_default(),
        model: model.to_string(),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if !(0.0..=1.0).contains(&args.threshold) {
        return Err(UsageError(format!(
            "--threshold must be in [0, 1], got {}",
            args.threshold
        ))
        .into());
    }
    let addr = listen_addr(&args.http)?;
    let model = resolve_model(args.model)?;
    let labels = resolve_labels(args.labels, &model)?;
    let name = match args.name {
        Some(n) if !n.is_empty() && !n.contains(['/', ':', '?']) => n,
        Some(n) => {
            return Err(
                UsageError(format!("--name {n:?}: must not be empty or contain / : ?")).into(),
            )
        }
        None => model
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "default".into()),
    };
    let options = DetectorOptions {
        threads: args.threads.max(1),
        ..Default::default()
    };
    let detector = Detector::load(&model, labels, options)?;
    let served = Arc::new(ServedDetector::new(name.clone(), detector));

    let heartbeat = Heartbeat::new();
    heartbeat.beat();
    let mut opts = HttpOptions::new(addr);
    opts.threshold = args.threshold;
    opts.heartbeat = Some(heartbeat.clone());
    opts.max_silence = Duration::from_secs(10);
    opts.build = build_info(&name);
    let server = HttpServer::start(opts, LiveState::new(), Some(served.clone()))
        .map_err(|e| UsageError(e.to_string()))?;
    let bound = server.local_addr();
    // Tests and scripts read this line for the port (with --http 127.0.0.1:0). A closed
    // stdout must not stop the server: the line is informational.
    let _ = outln!("spotter serve: model \"{name}\" on http://{bound}/ (predict: POST /v1/models/{name}:predict)");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    // The request-independent ticker: beats every second unless an inference is hung.
    let ticker = {
        let (hb, served) = (heartbeat.clone(), served.clone());
        std::thread::Builder::new()
            .name("serve-heartbeat".into())
            .spawn(move || loop {
                if !served.hung() {
                    hb.beat();
                }
                std::thread::sleep(Duration::from_millis(500));
            })?
    };
    let _watchdog = service::start_watchdog(heartbeat);
    service::notify_ready();
    service::notify_status(&format!("serving model {name} on http://{bound}/"));
    // The server runs on its own threads until the process is stopped (SIGTERM from systemd
    // or Ctrl-C end it; there is no state to flush).
    let _ = ticker.join();
    server.shutdown();
    Ok(0)
}
