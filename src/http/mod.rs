//! The HTTP endpoint: a TensorFlow-Serving-compatible REST API for one detector (`spotter
//! serve`), Prometheus metrics and a live preview page (`spotter serve` and `spotter run`).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | preview page: polls `/frame.jpg` and `/detections.json` every 500 ms |
//! | `GET /frame.jpg` | latest annotated frame (404 before the first) |
//! | `GET /detections.json` | `{"seq", "result", "stats", "mqtt_queue_depth"}` |
//! | `GET /metrics` | Prometheus text, `spotter_` prefix |
//! | `GET /healthz` | 200 `ok` while the heartbeat is recent, else 503 |
//! | `GET /v1/models/NAME` | TF-Serving model status |
//! | `POST /v1/models/NAME:predict` | JPEG/PNG body → `spotter detect --json` object; TF-Serving JSON `{"instances": [...]}` → `{"predictions": [...]}`; `?threshold=` overrides |
//!
//! Threading: a few worker threads share one listening socket (tiny_http); the detector sits
//! behind the [`Predictor`] (one inference at a time), so status, metrics and the preview stay
//! responsive while a prediction runs. Request bodies are capped at [`api::MAX_BODY`].

pub mod api;
pub mod live;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::detector::Detection;
use crate::pipeline::Heartbeat;
use crate::vision::image::RgbImage;

pub use api::{parse_listen, ApiError, Route, DEFAULT_PORT};
pub use live::{render_metrics, BuildInfo, LiveState, PipelineFeed};

/// The preview page (static; the JS polls the JSON and JPEG endpoints).
pub const PREVIEW_HTML: &str = include_str!("preview.html");

/// A served model.
pub trait Predictor: Send + Sync {
    /// The name clients use in `/v1/models/<name>`.
    fn name(&self) -> &str;
    /// Detections in `image` scoring at least `threshold`. Errors are server-side failures
    /// (the image itself was already decoded), reported as 500.
    fn detect(&self, image: &RgbImage, threshold: f32) -> Result<Vec<Detection>, String>;
}

#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Default score threshold of `:predict`.
    pub threshold: f32,
    /// Liveness for `spotter_up` and `/healthz`: alive if it beat within `max_silence`.
    pub heartbeat: Option<Heartbeat>,
    pub max_silence: Duration,
    pub build: BuildInfo,
    /// `:predict` results become the preview frame and feed the latency histogram (`serve`).
    /// Off when a pipeline owns the live state (`run`): requests must not mix into it.
    pub predict_updates_live: bool,
}

impl HttpOptions {
    pub fn new(addr: SocketAddr) -> Self {
        HttpOptions {
            addr,
            workers: 4,
            threshold: 0.5,
            heartbeat: None,
            max_silence: Duration::from_secs(30),
            build: BuildInfo::default(),
            predict_updates_live: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on http://{addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
    #[error("cannot start HTTP worker thread: {0}")]
    Thread(std::io::Error),
}

/// A running endpoint; stops (and joins its workers) on [`HttpServer::shutdown`] or drop.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

struct Shared {
    opts: HttpOptions,
    live: LiveState,
    predictor: Option<Arc<dyn Predictor>>,
}

impl HttpServer {
    /// Bind and start serving. `predictor: None` serves only the preview, metrics and health
    /// (the model routes answer 404).
    pub fn start(
        opts: HttpOptions,
        live: LiveState,
        predictor: Option<Arc<dyn Predictor>>,
    ) -> Result<HttpServer, HttpError> {
        let server = tiny_http::Server::http(opts.addr).map_err(|e| HttpError::Bind {
            addr: opts.addr,
            message: e.to_string(),
        })?;
        let addr = server.server_addr().to_ip().unwrap_or(opts.addr);
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            opts,
            live,
            predictor,
        });
        let mut workers = Vec::new();
        for i in 0..shared.opts.workers.max(1) {
            let (server, stop, shared) = (server.clone(), stop.clone(), shared.clone());
            let h = std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || worker(&server, &stop, &shared))
                .map_err(HttpError::Thread)?;
            workers.push(h);
        }
        Ok(HttpServer {
            addr,
            stop,
            workers,
        })
    }

    /// The bound address (with the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, finish in-flight requests, join the workers.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn worker(server: &tiny_http::Server, stop: &AtomicBool, shared: &Shared) {
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => handle(req, shared),
            Ok(None) => {}
            Err(e) => {
                log::warn!("http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A response before it is written.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    extra: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
            extra: Vec::new(),
        }
    }

    fn error(e: &ApiError) -> Reply {
        Reply::json(e.status, e.body())
    }
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn handle(mut req: tiny_http::Request, shared: &Shared) {
    let method = req.method().as_str().to_ascii_uppercase();
    let url = req.url().to_string();
    let started = Instant::now();
    let reply = match api::route(&method, &url) {
        Route::Preview => Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: PREVIEW_HTML.as_bytes().to_vec(),
            extra: Vec::new(),
        },
        Route::Frame => match shared.live.frame_jpeg() {
            Some((seq, jpeg)) => Reply {
                status: 200,
                content_type: "image/jpeg",
                body: jpeg.as_ref().clone(),
                extra: vec![("X-Frame-Seq", seq.to_string())],
            },
            None => Reply::error(&ApiError::not_found("no frame yet")),
        },
        Route::Detections => Reply::json(200, shared.live.detections_json()),
        Route::Metrics => Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: render_metrics(&shared.live.snapshot(), &shared.opts.build, alive(shared))
                .into_bytes(),
            extra: Vec::new(),
        },
        Route::Health => {
            if alive(shared) {
                Reply::json(200, "{\"status\":\"ok\"}".into())
            } else {
                Reply::json(
                    503,
                    serde_json::json!({
                        "status": "stalled",
                        "error": format!("no pipeline heartbeat within {:?}", shared.opts.max_silence)
                    })
                    .to_string(),
                )
            }
        }
        Route::ModelStatus { model } => match served(shared, &model) {
            Ok(_) => Reply::json(200, api::model_status_json()),
            Err(e) => Reply::error(&e),
        },
        Route::Predict { model } => match predict(&mut req, shared, &model, &url) {
            Ok(body) => Reply::json(200, body),
            Err(e) => Reply::error(&e),
        },
        Route::MethodNotAllowed { allow } => Reply {
            extra: vec![("Allow", allow.to_string())],
            ..Reply::error(&ApiError {
                status: 405,
                message: format!("{method} not allowed on {url}; use {allow}"),
            })
        },
        Route::NotFound => Reply::error(&ApiError::not_found(format!("no route {url}"))),
    };
    log::debug!(
        "http {method} {url} -> {} ({:?})",
        reply.status,
        started.elapsed()
    );
    let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    if let Some(h) = header("Content-Type", reply.content_type) {
        resp.add_header(h);
    }
    if let Some(h) = header("Cache-Control", "no-store") {
        resp.add_header(h);
    }
    for (k, v) in &reply.extra {
        if let Some(h) = header(k, v) {
            resp.add_header(h);
        }
    }
    if let Err(e) = req.respond(resp) {
        log::debug!("http: client went away before the response: {e}");
    }
}

fn alive(shared: &Shared) -> bool {
    shared
        .opts
        .heartbeat
        .as_ref()
        .is_none_or(|h| h.alive(shared.opts.max_silence))
}

fn served<'a>(shared: &'a Shared, model: &str) -> Result<&'a Arc<dyn Predictor>, ApiError> {
    match &shared.predictor {
        Some(p) if p.name() == model => Ok(p),
        Some(p) => Err(ApiError::not_found(format!(
            "Servable not found for request: Latest({model}); this server has model \"{}\"",
            p.name()
        ))),
        None => Err(ApiError::not_found(format!(
            "Servable not found for request: Latest({model}); no model is served on this endpoint"
        ))),
    }
}

fn predict(
    req: &mut tiny_http::Request,
    shared: &Shared,
    model: &str,
    url: &str,
) -> Result<String, ApiError> {
    let predictor = served(shared, model)?;
    let threshold = match api::query_param(url, "threshold") {
        None => shared.opts.threshold,
        Some(t) => match t.parse::<f32>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "threshold must be a number in [0, 1], got {t:?}"
                )))
            }
        },
    };
    let body = read_body(req)?;
    let run = |bytes: &[u8], name: &str| -> Result<serde_json::Value, ApiError> {
        let img = crate::capture::decode::decode_bytes(bytes, name)
            .map_err(|e| ApiError::bad_request(format!("cannot decode image: {e}")))?;
        let t = Instant::now();
        let detections = predictor.detect(&img, threshold).map_err(|e| ApiError {
            status: 500,
            message: format!("inference failed: {e}"),
        })?;
        let seconds = t.elapsed().as_secs_f64();
        let doc = serde_json::json!({
            "image": name,
            "width": img.width,
            "height": img.height,
            "detections": detections,
        });
        if shared.opts.predict_updates_live {
            let mut canvas = img;
            annotate(&mut canvas, &detections);
            shared
                .live
                .publish_value(doc.clone(), canvas, Some(seconds));
        }
        Ok(doc)
    };
    match api::parse_predict_body(&body)? {
        api::PredictBody::Image(bytes) => Ok(run(&bytes, "request")?.to_string()),
        api::PredictBody::Instances(images) => {
            let mut predictions = Vec::with_capacity(images.len());
            for (i, bytes) in images.iter().enumerate() {
                predictions.push(run(bytes, &format!("instances[{i}]"))?);
            }
            Ok(serde_json::json!({ "predictions": predictions }).to_string())
        }
    }
}

fn read_body(req: &mut tiny_http::Request) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError {
        status: 413,
        message: format!("request body larger than {} bytes", api::MAX_BODY),
    };
    if req.body_length().is_some_and(|n| n > api::MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(api::MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
    if body.len() > api::MAX_BODY {
        return Err(too_large());
    }
    Ok(body)
}

/// Draw every detection's box, label and score (the preview's annotated frame).
pub fn annotate(canvas: &mut RgbImage, detections: &[Detection]) {
    for d in detections {
        let b = d.bbox.map(|v| v as f32);
        crate::vision::draw::draw_detection(canvas, b, d.class_id, &d.label, d.score);
    }
}
