//! `spotter.toml`: the configuration of `spotter run` (documented key by key in
//! `docs/config.md`).
//!
//! Every command-line flag of `spotter run` has a key here; flags override the file
//! ([`Overrides::apply`]). Contracts:
//! - Unknown keys are errors (`deny_unknown_fields`): a typo must not silently fall back to a
//!   default.
//! - Every error names the file, the dotted key (`detect.zones[1].polygon`) and what was
//!   expected, with the line and column when the key is in the file.
//! - [`Config::validate`] is the single place value ranges are checked; it runs on the file's
//!   values (errors point into the file) and again after the command-line overrides (errors
//!   then name the command line).
//! - [`runtime_changes`] says which differences between two configs a running pipeline can
//!   apply (SIGHUP) and which need a restart.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a configuration error was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The config file, or `command line`.
    pub file: String,
    /// 1-based line and column of the offending key's value, when it is in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax error (no key known yet).
    #[error("{at}: invalid TOML: {what}")]
    Syntax { at: Location, what: String },
    /// A key with a bad value, an unknown key, or a bad combination of values.
    #[error("{at}: {key}: {what}")]
    Invalid {
        at: Location,
        /// Dotted path, e.g. `detect.threshold` or `detect.zones[0].polygon`.
        key: String,
        /// What was expected (and what was found).
        what: String,
    },
}

impl ConfigError {
    /// The dotted key this error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The whole file. Every section and key is optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: ModelConfig,
    pub source: SourceConfig,
    pub detect: DetectConfig,
    pub tracker: TrackerSection,
    pub mqtt: MqttSection,
    pub serial: SerialSection,
    pub http: HttpSection,
    pub pipeline: PipelineSection,
}

/// `[model]`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `--model`: .tflite file (default: the shipped COCO SSD).
    pub path: Option<PathBuf>,
    /// `--labels`: label file (default: next to the model).
    pub labels: Option<PathBuf>,
}

/// `[source]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `--source`: `/dev/videoN`, `camera:N`, `http://…` MJPEG, `test-pattern`, image folder or
    /// file. Default: the first camera, else the sample images.
    pub uri: Option<String>,
    /// `--camera`: the camera name in results and MQTT topics.
    pub camera: String,
    /// Requested frame size and rate (cameras: nearest supported).
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    /// Image folders/files: start over after the last image.
    #[serde(rename = "loop")]
    pub loop_files: bool,
    /// Longest wait between attempts to reopen a disconnected source, in seconds.
    pub max_backoff: f64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            uri: None,
            camera: "camera".into(),
            width: None,
            height: None,
            fps: None,
            loop_files: true,
            max_backoff: 10.0,
        }
    }
}

/// `[detect]`: what counts as a detection. All of it can change at run time (SIGHUP).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// `--threshold`: minimum score of any detection.
    pub threshold: f32,
    /// Report only these labels (empty: all).
    pub labels: Vec<String>,
    /// Per-label minimum score (above `threshold` to matter), e.g. `{ person = 0.6 }`.
    pub min_score: BTreeMap<String, f32>,
    /// Box area bounds in pixels of the frame.
    pub min_area: f64,
    pub max_area: Option<f64>,
    /// Named polygons; a detection is in a zone when its box's bottom-centre is inside.
    pub zones: Vec<ZoneConfig>,
    /// Polygons whose detections (bottom-centre inside) are ignored.
    pub masks: Vec<MaskConfig>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            threshold: 0.5,
            labels: Vec::new(),
            min_score: BTreeMap::new(),
            min_area: 0.0,
            max_area: None,
            zones: Vec::new(),
            masks: Vec::new(),
        }
    }
}

/// `[[detect.zones]]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    /// `[[x, y], …]` in pixels of the frame, at least 3 points.
    pub polygon: Vec<[f64; 2]>,
}

/// `[[detect.masks]]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub polygon: Vec<[f64; 2]>,
}

/// `[tracker]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSection {
    pub iou_threshold: f32,
    pub max_missed_frames: u32,
}

impl Default for TrackerSection {
    fn default() -> Self {
        TrackerSection {
            iou_threshold: 0.3,
            max_missed_frames: 5,
        }
    }
}

/// `[mqtt]`: the MQTT sink is on when `url` is set.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSection {
    /// `--mqtt`: `mqtt://host:port` (or `mqtts://` with the `mqtt-tls` feature).
    pub url: Option<String>,
    /// `--mqtt-prefix`: topic prefix.
    pub prefix: String,
    pub qos: u8,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM CA certificate(s) for `mqtts://`.
    pub tls_ca: Option<PathBuf>,
    pub client_id: String,
    /// Messages held while the broker is away (oldest dropped beyond).
    pub queue: usize,
    /// Home Assistant MQTT discovery.
    pub discovery: bool,
    pub discovery_prefix: String,
    /// Publish `P/C/detections` every frame.
    pub publish_detections: bool,
    /// Seconds between keep-alive pings (0: off).
    pub keep_alive: u64,
}

impl Default for MqttSection {
    fn default() -> Self {
        MqttSection {
            url: None,
            prefix: "spotter".into(),
            qos: 1,
            username: None,
            password: None,
            tls_ca: None,
            client_id: "spotter".into(),
            queue: 1000,
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            publish_detections: true,
            keep_alive: 30,
        }
    }
}

/// Serial wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SerialFormatConfig {
    Jsonl,
    Cobs,
}

/// `[serial]`: the serial sink is on when `path` is set.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialSection {
    /// `--serial`
    pub path: Option<String>,
    /// `--serial-baud`
    pub baud: u32,
    /// `--serial-format`
    pub format: SerialFormatConfig,
    /// Messages held while the port is busy or away.
    pub queue: usize,
}

impl Default for SerialSection {
    fn default() -> Self {
        SerialSection {
            path: None,
            baud: 115_200,
            format: SerialFormatConfig::Jsonl,
            queue: 64,
        }
    }
}

/// `[http]`: the status/preview server is on when `listen` is set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `--http`: `ADDR:PORT` to listen on.
    pub listen: Option<String>,
}

/// `[pipeline]`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// `--threads`: inference threads (default: number of cores).
    pub threads: Option<usize>,
    /// `--fps`: at most this many frames per second are processed (default: as many as
    /// inference allows).
    pub fps: Option<f64>,
    /// `--max-frames`: stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// Also write stats lines to the stdout sink (`{"stats": …}`) once per second.
    pub stdout_stats: bool,
}

/// One problem found by [`Config::validate`]: dotted key and what was expected.
pub type Problem = (String, String);

fn check(problems: &mut Vec<Problem>, ok: bool, key: impl Into<String>, what: impl Into<String>) {
    if !ok {
        problems.push((key.into(), what.into()));
    }
}

fn check_polygon(problems: &mut Vec<Problem>, key: String, poly: &[[f64; 2]]) {
    if poly.len() < 3 {
        problems.push((
            key,
            format!(
                "expected a polygon of at least 3 [x, y] points, got {}",
                poly.len()
            ),
        ));
    } else if poly.iter().flatten().any(|v| !v.is_finite()) {
        problems.push((key, "expected finite coordinates".into()));
    }
}

fn score_ok(v: f32) -> bool {
    (0.0..=1.0).contains(&v)
}

impl Config {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and check TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unzip();
            ConfigError::Syntax {
                at: Location {
                    file: file.to_string(),
                    line,
                    column,
                },
                what: e.message().trim().to_string(),
            }
        })?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = path_string(e.path());
            let inner = e.into_inner();
            // Prefer the position of the key we name; fall back to the parser's span.
            let span = locate(text, &key).or_else(|| inner.span());
            let (line, column) = span.map(|s| line_col(text, s.start)).unzip();
            ConfigError::Invalid {
                at: Location {
                    file: file.to_string(),
                    line,
                    column,
                },
                key: if key.is_empty() || key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                what: inner.message().trim().to_string(),
            }
        })?;
        if let Some((key, what)) = config.validate().into_iter().next() {
            let (line, column) = locate(text, &key).map(|s| line_col(text, s.start)).unzip();
            return Err(ConfigError::Invalid {
                at: Location {
                    file: file.to_string(),
                    line,
                    column,
                },
                key,
                what,
            });
        }
        Ok(config)
    }

    /// Check values (ranges, polygons, combinations). Returns every problem, in key order.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let d = &self.detect;
        check(
            &mut p,
            score_ok(d.threshold),
            "detect.threshold",
            format!("expected a number in [0, 1], got {}", d.threshold),
        );
        for (label, v) in &d.min_score {
            check(
                &mut p,
                score_ok(*v),
                format!("detect.min_score.{label}"),
                format!("expected a number in [0, 1], got {v}"),
            );
        }
        check(
            &mut p,
            d.min_area.is_finite() && d.min_area >= 0.0,
            "detect.min_area",
            format!("expected a non-negative area in pixels, got {}", d.min_area),
        );
        if let Some(max) = d.max_area {
            check(
                &mut p,
                max.is_finite() && max > 0.0 && max >= d.min_area,
                "detect.max_area",
                format!(
                    "expected a positive area in pixels not below detect.min_area ({}), got {max}",
                    d.min_area
                ),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, z) in d.zones.iter().enumerate() {
            check(
                &mut p,
                !z.name.trim().is_empty(),
                format!("detect.zones[{i}].name"),
                "expected a non-empty zone name",
            );
            check(
                &mut p,
                names.insert(z.name.as_str()),
                format!("detect.zones[{i}].name"),
                format!("expected a unique zone name, {:?} is used twice", z.name),
            );
            check_polygon(&mut p, format!("detect.zones[{i}].polygon"), &z.polygon);
        }
        for (i, m) in d.masks.iter().enumerate() {
            check_polygon(&mut p, format!("detect.masks[{i}].polygon"), &m.polygon);
        }
        let t = &self.tracker;
        check(
            &mut p,
            t.iou_threshold > 0.0 && t.iou_threshold <= 1.0,
            "tracker.iou_threshold",
            format!("expected a number in (0, 1], got {}", t.iou_threshold),
        );
        let s = &self.source;
        check(
            &mut p,
            !s.camera.trim().is_empty(),
            "source.camera",
            "expected a non-empty camera name",
        );
        if let Some(uri) = &s.uri {
            check(
                &mut p,
                !uri.is_empty(),
                "source.uri",
                "expected a source (device, URL, folder or file), got an empty string",
            );
        }
        check(
            &mut p,
            s.width.is_none_or(|w| w > 0),
            "source.width",
            "expected a positive width",
        );
        check(
            &mut p,
            s.height.is_none_or(|h| h > 0),
            "source.height",
            "expected a positive height",
        );
        check(
            &mut p,
            s.max_backoff.is_finite() && s.max_backoff >= 0.1,
            "source.max_backoff",
            format!("expected seconds >= 0.1, got {}", s.max_backoff),
        );
        let m = &self.mqtt;
        if let Some(url) = &m.url {
            check(
                &mut p,
                url.starts_with("mqtt://") || url.starts_with("mqtts://"),
                "mqtt.url",
                format!("expected mqtt://HOST:PORT or mqtts://HOST:PORT, got {url:?}"),
            );
        }
        check(
            &mut p,
            m.qos <= 2,
            "mqtt.qos",
            format!("expected 0, 1 or 2, got {}", m.qos),
        );
        check(
            &mut p,
            !m.prefix.is_empty() && !m.prefix.contains(['+', '#']),
            "mqtt.prefix",
            format!(
                "expected a non-empty topic prefix without + or #, got {:?}",
                m.prefix
            ),
        );
        check(
            &mut p,
            m.queue > 0,
            "mqtt.queue",
            "expected at least 1 message",
        );
        check(
            &mut p,
            m.password.is_none() || m.username.is_some(),
            "mqtt.password",
            "expected mqtt.username as well when a password is set",
        );
        let se = &self.serial;
        check(
            &mut p,
            se.baud > 0,
            "serial.baud",
            "expected a positive baud rate",
        );
        check(
            &mut p,
            se.queue > 0,
            "serial.queue",
            "expected at least 1 message",
        );
        if let Some(path) = &se.path {
            check(
                &mut p,
                !path.is_empty(),
                "serial.path",
                "expected a device path",
            );
        }
        if let Some(addr) = &self.http.listen {
            check(
                &mut p,
                addr.parse::<std::net::SocketAddr>().is_ok()
                    // PORT or :PORT: loopback (as `spotter serve --http`).
                    || addr.trim_start_matches(':').parse::<u16>().is_ok()
                    || addr
                        .rsplit_once(':')
                        .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok()),
                "http.listen",
                format!("expected ADDRESS:PORT, PORT or :PORT (loopback), e.g. 0.0.0.0:8080, got {addr:?}"),
            );
        }
        let pl = &self.pipeline;
        check(
            &mut p,
            pl.threads.is_none_or(|t| (1..=256).contains(&t)),
            "pipeline.threads",
            format!(
                "expected 1..=256 threads, got {:?}",
                pl.threads.unwrap_or(0)
            ),
        );
        if let Some(fps) = pl.fps {
            check(
                &mut p,
                fps.is_finite() && fps > 0.0,
                "pipeline.fps",
                format!("expected a positive frame rate, got {fps}"),
            );
        }
        check(
            &mut p,
            pl.max_frames.is_none_or(|n| n > 0),
            "pipeline.max_frames",
            "expected at least 1 frame",
        );
        p
    }
}

/// Command-line values that override the file (`None`: keep the file's value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub model: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    pub source: Option<String>,
    pub camera: Option<String>,
    pub threshold: Option<f32>,
    pub mqtt: Option<String>,
    pub mqtt_prefix: Option<String>,
    pub serial: Option<String>,
    pub serial_baud: Option<u32>,
    pub serial_format: Option<SerialFormatConfig>,
    pub max_frames: Option<u64>,
    pub fps: Option<f64>,
    pub threads: Option<usize>,
    pub http: Option<String>,
}

impl Overrides {
    /// Write the given flags into `config`.
    pub fn apply(&self, c: &mut Config) {
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        fn set_some<T: Clone>(dst: &mut Option<T>, v: &Option<T>) {
            if v.is_some() {
                dst.clone_from(v);
            }
        }
        set_some(&mut c.model.path, &self.model);
        set_some(&mut c.model.labels, &self.labels);
        set_some(&mut c.source.uri, &self.source);
        set(&mut c.source.camera, &self.camera);
        set(&mut c.detect.threshold, &self.threshold);
        set_some(&mut c.mqtt.url, &self.mqtt);
        set(&mut c.mqtt.prefix, &self.mqtt_prefix);
        set_some(&mut c.serial.path, &self.serial);
        set(&mut c.serial.baud, &self.serial_baud);
        set(&mut c.serial.format, &self.serial_format);
        set_some(&mut c.pipeline.max_frames, &self.max_frames);
        set_some(&mut c.pipeline.fps, &self.fps);
        set_some(&mut c.pipeline.threads, &self.threads);
        set_some(&mut c.http.listen, &self.http);
    }

    /// The dotted keys these flags set (for messages about what a reload cannot change).
    pub fn keys(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        let mut add = |set: bool, key| {
            if set {
                k.push(key)
            }
        };
        add(self.model.is_some(), "model.path");
        add(self.labels.is_some(), "model.labels");
        add(self.source.is_some(), "source.uri");
        add(self.camera.is_some(), "source.camera");
        add(self.threshold.is_some(), "detect.threshold");
        add(self.mqtt.is_some(), "mqtt.url");
        add(self.mqtt_prefix.is_some(), "mqtt.prefix");
        add(self.serial.is_some(), "serial.path");
        add(self.serial_baud.is_some(), "serial.baud");
        add(self.serial_format.is_some(), "serial.format");
        add(self.max_frames.is_some(), "pipeline.max_frames");
        add(self.fps.is_some(), "pipeline.fps");
        add(self.threads.is_some(), "pipeline.threads");
        add(self.http.is_some(), "http.listen");
        k
    }
}

/// Validate a config after command-line overrides; problems name the command line.
pub fn validate_overridden(config: &Config) -> Result<(), ConfigError> {
    match config.validate().into_iter().next() {
        None => Ok(()),
        Some((key, what)) => Err(ConfigError::Invalid {
            at: Location {
                file: "command line".into(),
                line: None,
                column: None,
            },
            key,
            what,
        }),
    }
}

/// Differences between two configs, as dotted keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Keys a running pipeline applies (the `[detect]` section).
    pub applied: Vec<String>,
    /// Keys that only take effect after a restart.
    pub need_restart: Vec<String>,
}

/// Compare `old` and `new` key by key.
pub fn runtime_changes(old: &Config, new: &Config) -> Changes {
    let mut changed = Vec::new();
    match (toml::Value::try_from(old), toml::Value::try_from(new)) {
        (Ok(a), Ok(b)) => diff_values("", &a, &b, &mut changed),
        // Serializing plain data cannot fail; if it ever did, claim everything changed.
        _ => changed.push("(all)".into()),
    }
    let mut c = Changes::default();
    for key in changed {
        if key.starts_with("detect.") || key == "detect" {
            c.applied.push(key);
        } else {
            c.need_restart.push(key);
        }
    }
    c
}

fn diff_values(prefix: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let keys: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => diff_values(&path, x, y, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// `serde_path_to_error` path → `a.b[0].c`.
fn path_string(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    s
}

/// Split `a.b[0].c` into steps.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(key: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
    }
    Some(out)
}

/// Byte span of the value at dotted `key` in `text`, if present (the deepest existing prefix
/// otherwise, so an error about a missing sub-key still points at its table).
fn locate(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let steps = steps(key)?;
    let mut span: Option<std::ops::Range<usize>> = None;
    let mut table = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for step in steps {
        let value = match step {
            Step::Key(k) => table?
                .iter()
                .find(|(name, _)| name.get_ref().as_ref() == k)
                .map(|(name, v)| (name.span(), v)),
            Step::Index(i) => array?.get(i).map(|v| (v.span(), v)),
        };
        let Some((key_span, v)) = value else { break };
        // Point at the key for tables (their value span may be a whole section), at the value
        // otherwise.
        span = Some(match v.get_ref() {
            toml::de::DeValue::Table(_) => key_span,
            _ => v.span(),
        });
        table = v.get_ref().as_table();
        array = v.get_ref().as_array();
    }
    span
}

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        Config::parse(text, "t.toml").expect_err("config must be rejected")
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("", "t.toml").expect("ok"), Config::default());
    }

    #[test]
    fn full_example_parses() {
        let text = include_str!("../boards/spotter.example.toml");
        let c = Config::parse(text, "example").expect("example config");
        assert_eq!(c.detect.zones.len(), 2);
        assert_eq!(c.detect.min_score.get("person"), Some(&0.6));
        assert_eq!(c.serial.format, SerialFormatConfig::Cobs);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn bad_value_names_file_key_line_and_expectation() {
        let e = err("[detect]\n\nthreshold = 1.5\n");
        assert_eq!(e.key(), Some("detect.threshold"));
        let s = e.to_string();
        assert!(s.starts_with("t.toml:3:13: detect.threshold: "), "{s}");
        assert!(s.contains("[0, 1]") && s.contains("1.5"), "{s}");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let e = err("[detect]\nthreshold = 0.4\nthresold = 0.5\n");
        let s = e.to_string();
        assert!(s.contains("thresold"), "{s}");
        assert!(s.contains("t.toml:3"), "{s}");
        let e = err("[detekt]\nthreshold = 0.4\n");
        assert!(e.to_string().contains("detekt"), "{e}");
        assert!(e.to_string().contains("t.toml:1"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = err("[serial]\nbaud = \"fast\"\n");
        assert_eq!(e.key(), Some("serial.baud"));
        assert!(e.to_string().starts_with("t.toml:2:"), "{e}");
        let e = err("[serial]\nformat = \"xml\"\n");
        assert_eq!(e.key(), Some("serial.format"));
        assert!(e.to_string().contains("jsonl"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = err("[detect\nthreshold = 0.4\n");
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
        assert!(e.to_string().starts_with("t.toml:1:"), "{e}");
    }

    #[test]
    fn polygons_and_zone_names_are_checked_with_array_paths() {
        let e = err(concat!(
            "[[detect.zones]]\nname = \"a\"\npolygon = [[0, 0], [10, 0], [10, 10]]\n",
            "[[detect.zones]]\nname = \"b\"\npolygon = [[0, 0], [10, 0]]\n",
        ));
        assert_eq!(e.key(), Some("detect.zones[1].polygon"));
        assert!(e.to_string().starts_with("t.toml:6:"), "{e}");
        let e = err(concat!(
            "[[detect.zones]]\nname = \"a\"\npolygon = [[0, 0], [10, 0], [10, 10]]\n",
            "[[detect.zones]]\nname = \"a\"\npolygon = [[0, 0], [10, 0], [10, 10]]\n",
        ));
        assert_eq!(e.key(), Some("detect.zones[1].name"));
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn cross_field_and_section_checks() {
        assert_eq!(
            err("[detect]\nmin_area = 100\nmax_area = 50\n").key(),
            Some("detect.max_area")
        );
        assert_eq!(
            err("[detect.min_score]\nperson = 2\n").key(),
            Some("detect.min_score.person")
        );
        assert_eq!(err("[mqtt]\nurl = \"http://x\"\n").key(), Some("mqtt.url"));
        assert_eq!(err("[mqtt]\nqos = 3\n").key(), Some("mqtt.qos"));
        assert_eq!(
            err("[pipeline]\nthreads = 0\n").key(),
            Some("pipeline.threads")
        );
        assert_eq!(
            err("[http]\nlisten = \"nope\"\n").key(),
            Some("http.listen")
        );
        Config::parse("[http]\nlisten = \"localhost:8080\"\n", "t").expect("host:port");
        Config::parse("[http]\nlisten = \"8501\"\n", "t").expect("bare port");
        Config::parse("[http]\nlisten = \":8501\"\n", "t").expect(":port");
    }

    #[test]
    fn overrides_win_and_are_validated_as_command_line() {
        let mut c = Config::parse("[detect]\nthreshold = 0.3\n", "t").expect("ok");
        let o = Overrides {
            threshold: Some(0.7),
            serial: Some("/dev/ttyUSB0".into()),
            serial_format: Some(SerialFormatConfig::Cobs),
            ..Default::default()
        };
        o.apply(&mut c);
        assert_eq!(c.detect.threshold, 0.7);
        assert_eq!(c.serial.path.as_deref(), Some("/dev/ttyUSB0"));
        assert_eq!(c.serial.format, SerialFormatConfig::Cobs);
        assert!(o.keys().contains(&"detect.threshold"));
        validate_overridden(&c).expect("valid");
        Overrides {
            threshold: Some(3.0),
            ..Default::default()
        }
        .apply(&mut c);
        let e = validate_overridden(&c).expect_err("bad threshold");
        assert!(
            e.to_string().starts_with("command line: detect.threshold"),
            "{e}"
        );
    }

    #[test]
    fn runtime_changes_split_detect_from_the_rest() {
        let a = Config::default();
        let mut b = a.clone();
        b.detect.threshold = 0.8;
        b.detect.min_score.insert("car".into(), 0.9);
        b.mqtt.prefix = "x".into();
        let c = runtime_changes(&a, &b);
        assert_eq!(c.applied, vec!["detect.min_score.car", "detect.threshold"]);
        assert_eq!(c.need_restart, vec!["mqtt.prefix"]);
        assert_eq!(runtime_changes(&a, &a), Changes::default());
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
