//! `spotter run`: the streaming pipeline from a camera/stream/folder to stdout, MQTT and serial.
//!
//! With no arguments: the default model, the first camera (or the sample images, looped),
//! JSON lines on stdout. A `--config` file sets everything; flags override it (see
//! docs/config.md). SIGINT/SIGTERM end the run cleanly (a second one exits at once); SIGHUP
//! reloads the config file and applies the `[detect]` section.
//!
//! `--http ADDR` serves the live state (preview page, `/metrics`, `/healthz`) and the model
//! (`/v1/models/<model file stem>`, `:predict` on a separate one-thread copy of the detector, so
//! a request never waits for, or stalls, the pipeline). With the HTTP address bound at port 0
//! the real address is printed on stderr: `spotter run: http://ADDR/`.
//!
//! Under systemd (`Type=notify`): `READY=1` once the model is loaded, the source opened, the
//! sinks and the HTTP endpoint up; `WATCHDOG=1` every `WatchdogSec/2` only while the pipeline's
//! heartbeat is recent (a frame processed, or the capture retry loop waiting for a camera), so a
//! pipeline stuck in a source read or an inference stops pinging and systemd restarts it;
//! `STOPPING=1` on the way out.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use spotter::capture::{self, SourceOptions};
use spotter::config::{self, Config, Overrides, SerialFormatConfig};
use spotter::detector::{Detector, DetectorOptions};
use spotter::http::{HttpOptions, HttpServer, LiveState, PipelineFeed};
use spotter::pipeline::{Filters, Pipeline, PipelineOptions, StopReason, TrackerConfig};
use spotter::service;
use spotter::sinks::mqtt::{DiscoveryConfig, EventsConfig, MqttConfig, MqttSink, Qos};
use spotter::sinks::serial::{SerialFormat, SerialOptions, SerialSink};
use spotter::sinks::stdout::StdoutSink;
use spotter::sinks::Sink;

use super::UsageError;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file (TOML, see docs/config.md); flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Model file (.tflite) [model.path].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Label file [model.labels].
    #[arg(long)]
    labels: Option<PathBuf>,
    /// /dev/videoN, camera:N, http://…/stream.mjpg, test-pattern, an image folder or file
    /// [source.uri]. Default: the first camera, else the sample images (looped).
    #[arg(long)]
    source: Option<String>,
    /// Camera name in results and MQTT topics [source.camera].
    #[arg(long)]
    camera: Option<String>,
    /// Minimum detection score [detect.threshold].
    #[arg(long)]
    threshold: Option<f32>,
    /// MQTT broker, mqtt://HOST:PORT [mqtt.url].
    #[arg(long, value_name = "URL")]
    mqtt: Option<String>,
    /// MQTT topic prefix [mqtt.prefix].
    #[arg(long, value_name = "PREFIX")]
    mqtt_prefix: Option<String>,
    /// Serial device for results [serial.path].
    #[arg(long, value_name = "PATH")]
    serial: Option<String>,
    /// Serial baud rate [serial.baud].
    #[arg(long, value_name = "N")]
    serial_baud: Option<u32>,
    /// Serial format: jsonl or cobs [serial.format].
    #[arg(long, value_name = "FORMAT", value_parser = parse_serial_format_arg)]
    serial_format: Option<SerialFormatConfig>,
    /// Stop after N processed frames [pipeline.max_frames].
    #[arg(long, value_name = "N")]
    max_frames: Option<u64>,
    /// Process at most F frames per second [pipeline.fps].
    #[arg(long, value_name = "F")]
    fps: Option<f64>,
    /// Inference threads [pipeline.threads] (default: number of cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Serve status and a live preview on ADDR:PORT [http.listen].
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
}

/// `jsonl` | `cobs` for clap.
pub fn parse_serial_format_arg(s: &str) -> Result<SerialFormatConfig, String> {
    match s {
        "jsonl" => Ok(SerialFormatConfig::Jsonl),
        "cobs" => Ok(SerialFormatConfig::Cobs),
        other => Err(format!("expected jsonl or cobs, got {other:?}")),
    }
}

impl Args {
    fn overrides(&self) -> Overrides {
        Overrides {
            model: self.model.clone(),
            labels: self.labels.clone(),
            source: self.source.clone(),
            camera: self.camera.clone(),
            threshold: self.threshold,
            mqtt: self.mqtt.clone(),
            mqtt_prefix: self.mqtt_prefix.clone(),
            serial: self.serial.clone(),
            serial_baud: self.serial_baud,
            serial_format: self.serial_format,
            max_frames: self.max_frames,
            fps: self.fps,
            threads: self.threads,
            http: self.http.clone(),
        }
    }
}

/// The file's config with the flags applied, validated.
fn effective_config(path: Option<&PathBuf>, overrides: &Overrides) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    overrides.apply(&mut config);
    config::validate_overridden(&config)?;
    Ok(config)
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let overrides = args.overrides();
    let config = effective_config(args.config.as_ref(), &overrides)?;

    let model = super::detect::resolve_model(config.model.path.clone())?;
    let labels = super::detect::resolve_labels(config.model.labels.clone(), &model)?;
    // Parse the address before anything slow happens: a typo is a usage error, at once.
    let http_addr = match &config.http.listen {
        Some(a) => Some(super::serve::listen_addr(a)?),
        None => None,
    };
    let threads = config
        .pipeline
        .threads
        .unwrap_or_else(super::bench::default_threads);
    let detector = Detector::load(
        &model,
        labels.clone(),
        DetectorOptions {
            threads,
            ..Default::default()
        },
    )?;
    log::info!("model {} loaded ({threads} threads)", model.display());

    let (source, lossless) = open_source(&config)?;
    log::info!("source {}", source.name());
    let sinks = build_sinks(&config)?;
    log::info!(
        "sinks: {}",
        sinks
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let options = PipelineOptions {
        camera: config.source.camera.clone(),
        max_frames: config.pipeline.max_frames,
        fps: config.pipeline.fps,
        max_backoff: Duration::from_secs_f64(config.source.max_backoff),
        tracker: TrackerConfig {
            iou_threshold: config.tracker.iou_threshold,
            max_missed_frames: config.tracker.max_missed_frames,
        },
        lossless,
        ..Default::default()
    };
    let mut pipeline = Pipeline::new(
        detector,
        sinks,
        Filters::from_config(&config.detect),
        options,
    );
    install_signals(&pipeline.stop_flag(), &pipeline.reload_flag())?;
    if let Some(path) = args.config.clone() {
        pipeline.set_reloader(reloader(path, overrides, config.clone()));
    }
    let heartbeat = pipeline.heartbeat();
    let server = match http_addr {
        None => None,
        Some(addr) => {
            let name = model
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "default".into());
            // predict gets its own detector: the pipeline's is busy on the inference thread.
            let predictor = Detector::load(
                &model,
                labels,
                DetectorOptions {
                    threads: 1,
                    ..Default::default()
                },
            )?;
            let live = LiveState::new();
            pipeline.add_observer(Box::new(PipelineFeed::new(live.clone())));
            let mut opts = HttpOptions::new(addr);
            opts.threshold = config.detect.threshold;
            opts.heartbeat = Some(heartbeat.clone());
            opts.build = super::serve::build_info(&name);
            opts.predict_updates_live = false;
            let predictor =
                std::sync::Arc::new(super::serve::ServedDetector::new(name.clone(), predictor));
            let server = HttpServer::start(opts, live, Some(predictor))
                .map_err(|e| UsageError(format!("http.listen: {e}")))?;
            // Scripts and tests read this line for the port (with --http 127.0.0.1:0).
            eprintln!(
                "spotter run: http://{}/ (model \"{name}\")",
                server.local_addr()
            );
            Some(server)
        }
    };

    // Start-up counts as a beat; from here on only frames (or the capture retry loop) do.
    heartbeat.beat();
    let _watchdog = service::start_watchdog(heartbeat);
    service::notify_ready();
    service::notify_status(&format!(
        "running: {} on {}",
        model.display(),
        config.source.camera
    ));

    let summary = pipeline.run(source);
    service::notify_stopping();
    if let Some(server) = server {
        server.shutdown();
    }
    let summary = summary?;
    let s = &summary.stats;
    log::info!(
        "{} after {} frames in {:.2} s ({:.1} fps overall; capture drops {}, corrupt {}, sink \
         drops {})",
        match summary.reason {
            StopReason::MaxFrames => "done",
            StopReason::SourceEnded => "source ended",
            StopReason::Stopped => "stopped",
        },
        summary.frames,
        summary.elapsed.as_secs_f64(),
        summary.frames as f64 / summary.elapsed.as_secs_f64().max(1e-9),
        s.capture_drops,
        s.corrupt_frames,
        s.sink_drops
    );
    Ok(0)
}

/// `source.uri`, else the first camera, else the sample images (looped). Also says whether the
/// source is image files (processed without drops) rather than a live source.
fn open_source(config: &Config) -> anyhow::Result<(Box<dyn capture::Source>, bool)> {
    let s = &config.source;
    let spec = match &s.uri {
        Some(u) => u.clone(),
        None => match capture::first_camera() {
            Some(cam) => cam.display().to_string(),
            None => match spotter::defaults::samples_dir() {
                Some(dir) => {
                    log::info!(
                        "no --source and no camera: using the sample images in {}",
                        dir.display()
                    );
                    dir.display().to_string()
                }
                None => {
                    return Err(UsageError(
                        "no --source given, no camera found and no sample images \
                         (models/samples) to fall back to"
                            .into(),
                    )
                    .into())
                }
            },
        },
    };
    let opts = SourceOptions {
        width: s.width,
        height: s.height,
        fps: s
            .fps
            .or_else(|| config.pipeline.fps.map(|f| f.ceil().max(1.0) as u32)),
        loop_files: s.loop_files,
    };
    let files = !spec.starts_with("/dev/") && std::path::Path::new(&spec).exists();
    let source =
        capture::open_source(&spec, &opts).map_err(|e| UsageError(format!("source: {e}")))?;
    Ok((source, files))
}

fn build_sinks(config: &Config) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(path) = &config.serial.path {
        let format = match config.serial.format {
            SerialFormatConfig::Jsonl => SerialFormat::Jsonl,
            SerialFormatConfig::Cobs => SerialFormat::Cobs,
        };
        let mut o = SerialOptions::new(path.clone(), config.serial.baud, format);
        o.queue_capacity = config.serial.queue;
        let sink = SerialSink::open(o).map_err(|e| UsageError(e.to_string()))?;
        sinks.push(Box::new(sink));
    }
    if let Some(url) = &config.mqtt.url {
        let m = &config.mqtt;
        let qos = Qos::try_from(m.qos).map_err(|e| UsageError(format!("mqtt.qos: {e}")))?;
        let mqtt = MqttConfig {
            url: url.clone(),
            username: m.username.clone(),
            password: m.password.clone(),
            client_id: m.client_id.clone(),
            keep_alive: Duration::from_secs(m.keep_alive),
            ca_file: m.tls_ca.clone(),
            queue_capacity: m.queue,
            // rumqttc's request channel holds messages too while the broker is away (it is
            // only drained into our queue on connection errors, not while connecting fails),
            // so the offline backlog is channel + queue: keep the channel within the queue
            // bound, so `mqtt.queue` bounds what an outage can hold (at most twice it).
            channel_capacity: m.queue.clamp(1, 64),
            events: EventsConfig {
                prefix: m.prefix.clone(),
                camera: config.source.camera.clone(),
                qos,
                end_after_missed_frames: config.tracker.max_missed_frames,
                publish_detections: m.publish_detections,
                discovery: m.discovery.then(|| DiscoveryConfig {
                    prefix: m.discovery_prefix.clone(),
                    node_id: m.client_id.clone(),
                    labels: config.detect.labels.clone(),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let sink = MqttSink::new(mqtt).map_err(|e| UsageError(format!("mqtt: {e}")))?;
        sinks.push(Box::new(sink));
    }
    if sinks.is_empty() {
        sinks.push(Box::new(StdoutSink::new(config.pipeline.stdout_stats)));
    }
    Ok(sinks)
}

/// SIGINT/SIGTERM set `stop` (a second one exits at once with status 1); SIGHUP sets `reload`.
fn install_signals(stop: &Arc<AtomicBool>, reload: &Arc<AtomicBool>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the conditional exit checks the flag before the second handler sets it.
        flag::register_conditional_shutdown(sig, 1, Arc::clone(stop))?;
        flag::register(sig, Arc::clone(stop))?;
    }
    flag::register(SIGHUP, Arc::clone(reload))?;
    Ok(())
}

/// SIGHUP handler body: re-read `path`, re-apply the flags, apply `[detect]`, say what needs a
/// restart. A bad file keeps the running configuration.
fn reloader(
    path: PathBuf,
    overrides: Overrides,
    mut running: Config,
) -> spotter::pipeline::Reloader {
    Box::new(move || {
        let new = match effective_config(Some(&path), &overrides) {
            Ok(c) => c,
            Err(e) => {
                log::error!(
                    "reload of {} failed, configuration unchanged: {}",
                    path.display(),
                    super::render_error(&e)
                );
                return None;
            }
        };
        let changes = config::runtime_changes(&running, &new);
        if !changes.need_restart.is_empty() {
            log::warn!(
                "reload of {}: changed but needs a restart: {}",
                path.display(),
                changes.need_restart.join(", ")
            );
        }
        let pinned: Vec<&str> = overrides
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("detect."))
            .collect();
        if !pinned.is_empty() {
            log::info!(
                "reload: command-line flags still override {}",
                pinned.join(", ")
            );
        }
        if changes.applied.is_empty() {
            log::info!("reload of {}: nothing to apply", path.display());
            return None;
        }
        log::info!(
            "reload of {}: applied {}",
            path.display(),
            changes.applied.join(", ")
        );
        running.detect = new.detect.clone();
        Some(Filters::from_config(&new.detect))
    })
}
