//! The HTTP API as pure functions: routing, the listen-address rule and predict-body parsing
//! (raw JPEG/PNG or TensorFlow Serving JSON). No sockets here, so every rule is unit-tested.

use std::net::{SocketAddr, ToSocketAddrs};

use base64::Engine;

/// Largest request body we read (bytes). A bigger one is refused with 413 before it is read.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Default port: TensorFlow Serving's REST port, so existing clients only change the host.
pub const DEFAULT_PORT: u16 = 8501;

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the live preview page.
    Preview,
    /// `GET /frame.jpg`: the latest annotated frame.
    Frame,
    /// `GET /detections.json`: the latest detections and stats.
    Detections,
    /// `GET /metrics`: Prometheus text.
    Metrics,
    /// `GET /healthz`: 200 while the pipeline heartbeat is recent.
    Health,
    /// `GET /v1/models/<name>` (also `/versions/<v>`).
    ModelStatus {
        model: String,
    },
    /// `POST /v1/models/<name>:predict` (also `/versions/<v>:predict`).
    Predict {
        model: String,
    },
    /// Known path, wrong method.
    MethodNotAllowed {
        allow: &'static str,
    },
    NotFound,
}

/// Map a method and request target (path plus optional query) to a route.
pub fn route(method: &str, url: &str) -> Route {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let get = |r: Route| {
        if method == "GET" || method == "HEAD" {
            r
        } else {
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        }
    };
    match path {
        "/" | "/index.html" => return get(Route::Preview),
        "/frame.jpg" => return get(Route::Frame),
        "/detections.json" => return get(Route::Detections),
        "/metrics" => return get(Route::Metrics),
        "/healthz" => return get(Route::Health),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v1/models/") else {
        return Route::NotFound;
    };
    if let Some(target) = rest.strip_suffix(":predict") {
        let Some(model) = model_name(target) else {
            return Route::NotFound;
        };
        return if method == "POST" {
            Route::Predict { model }
        } else {
            Route::MethodNotAllowed { allow: "POST" }
        };
    }
    match model_name(rest.trim_end_matches('/')) {
        Some(model) => get(Route::ModelStatus { model }),
        None => Route::NotFound,
    }
}

/// `NAME` or `NAME/versions/N` → NAME (we serve one version, "1", under any number).
fn model_name(target: &str) -> Option<String> {
    let (name, rest) = match target.split_once('/') {
        Some((n, r)) => (n, Some(r)),
        None => (target, None),
    };
    if let Some(r) = rest {
        let v = r.strip_prefix("versions/")?;
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if name.is_empty() || name.contains(':') {
        return None;
    }
    Some(name.to_string())
}

/// A query parameter's value (no percent-decoding: our parameters are numbers).
pub fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        _ => None,
    })
}

/// `--http` value → socket address. A bare port (`8080` or `:8080`) binds loopback only, so
/// exposing the endpoint on the network is always an explicit `0.0.0.0:PORT`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only
            .parse()
            .map_err(|_| format!("--http {s}: port must be 0..=65535"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("--http {s}: the host name has no address")),
        Err(e) => Err(format!(
            "--http {s}: expected PORT, :PORT, HOST:PORT or IP:PORT ({e})"
        )),
    }
}

/// A request body for `:predict`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PredictBody {
    /// A raw JPEG or PNG.
    Image(Vec<u8>),
    /// TF-Serving JSON: encoded images, in order.
    Instances(Vec<Vec<u8>>),
}

/// A client error: HTTP status and message (sent as `{"error": message}`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }

    /// The JSON body `{"error": "..."}` (TF-Serving's error shape).
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.message }).to_string()
    }
}

fn is_image(b: &[u8]) -> bool {
    b.starts_with(&[0xFF, 0xD8, 0xFF]) || b.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// Classify and unpack a predict body. JSON is recognised by its first non-blank byte, images by
/// their magic bytes; the Content-Type header is not trusted (curl sends form types by default).
///
/// Accepted JSON (TF-Serving "row" format): `{"instances": [...]}` or a bare `[...]`, where each
/// instance is a base64 string, `{"b64": "..."}`, or `{"<input name>": {"b64": "..."}}`.
pub fn parse_predict_body(body: &[u8]) -> Result<PredictBody, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: POST a JPEG or PNG image, or TF-Serving JSON {\"instances\": [{\"b64\": ...}]}",
        ));
    }
    if is_image(body) {
        return Ok(PredictBody::Image(body.to_vec()));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if !matches!(first, Some(b'{') | Some(b'[')) {
        let head: Vec<String> = body.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(ApiError::bad_request(format!(
            "body is neither a JPEG/PNG image nor JSON (starts with {})",
            head.join(" ")
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
    let instances = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("instances") {
            Some(serde_json::Value::Array(a)) => a,
            Some(_) => return Err(ApiError::bad_request("\"instances\" must be an array")),
            None if o.contains_key("inputs") => {
                return Err(ApiError::bad_request(
                    "the columnar \"inputs\" format is not supported; use {\"instances\": [{\"b64\": \"...\"}]}",
                ))
            }
            None => {
                return Err(ApiError::bad_request(
                    "JSON body needs \"instances\": [{\"b64\": \"<base64 JPEG/PNG>\"}, ...]",
                ))
            }
        },
        _ => return Err(ApiError::bad_request("JSON body must be an object or array")),
    };
    if instances.is_empty() {
        return Err(ApiError::bad_request("\"instances\" is empty"));
    }
    let mut images = Vec::with_capacity(instances.len());
    for (i, inst) in instances.iter().enumerate() {
        let b64 = instance_b64(inst).ok_or_else(|| {
            ApiError::bad_request(format!(
                "instances[{i}]: expected a base64 string, {{\"b64\": \"...\"}} or {{\"<input>\": {{\"b64\": \"...\"}}}}"
            ))
        })?;
        let bytes = decode_b64(b64)
            .map_err(|e| ApiError::bad_request(format!("instances[{i}]: bad base64: {e}")))?;
        if !is_image(&bytes) {
            return Err(ApiError::bad_request(format!(
                "instances[{i}]: decoded data is not a JPEG or PNG image"
            )));
        }
        images.push(bytes);
    }
    Ok(PredictBody::Instances(images))
}

fn instance_b64(v: &serde_json::Value) -> Option<&str> {
    match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Object(o) => {
            if let Some(serde_json::Value::String(s)) = o.get("b64") {
                return Some(s);
            }
            // A named input: exactly one key whose value is {"b64": ...}.
            if o.len() == 1 {
                return o.values().next().and_then(|inner| match inner {
                    serde_json::Value::Object(i) => i.get("b64").and_then(|s| s.as_str()),
                    _ => None,
                });
            }
            None
        }
        _ => None,
    }
}

/// Standard or URL-safe alphabet, padding optional (TF-Serving clients send both).
fn decode_b64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let cfg = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let s = s.trim();
    let alphabet = if s.contains(['-', '_']) {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, cfg).decode(s)
}

/// TF-Serving's model status document for our single version.
pub fn model_status_json() -> String {
    serde_json::json!({
        "model_version_status": [{
            "version": "1",
            "state": "AVAILABLE",
            "status": { "error_code": "OK", "error_message": "" }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n....";
    const JPG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2];

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/"), Route::Preview);
        assert_eq!(route("GET", "/frame.jpg?t=123"), Route::Frame);
        assert_eq!(route("GET", "/metrics"), Route::Metrics);
        assert_eq!(
            route("GET", "/v1/models/ssd"),
            Route::ModelStatus {
                model: "ssd".into()
            }
        );
        assert_eq!(
            route("GET", "/v1/models/ssd/versions/1"),
            Route::ModelStatus {
                model: "ssd".into()
            }
        );
        assert_eq!(
            route("POST", "/v1/models/ssd:predict"),
            Route::Predict {
                model: "ssd".into()
            }
        );
        assert_eq!(
            route("POST", "/v1/models/ssd/versions/3:predict?threshold=0.3"),
            Route::Predict {
                model: "ssd".into()
            }
        );
        assert!(matches!(
            route("GET", "/v1/models/ssd:predict"),
            Route::MethodNotAllowed { .. }
        ));
        assert!(matches!(
            route("POST", "/metrics"),
            Route::MethodNotAllowed { .. }
        ));
        assert_eq!(route("GET", "/v1/models/"), Route::NotFound);
        assert_eq!(route("GET", "/v1/models/ssd/labels"), Route::NotFound);
        assert_eq!(route("GET", "/nope"), Route::NotFound);
        assert_eq!(
            query_param("/x?a=1&threshold=0.3", "threshold"),
            Some("0.3")
        );
        assert_eq!(query_param("/x", "threshold"), None);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(parse_listen(":9000").unwrap().to_string(), "127.0.0.1:9000");
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert_eq!(parse_listen("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(parse_listen("70000").is_err());
        assert!(parse_listen("nonsense").is_err());
    }

    #[test]
    fn predict_bodies() {
        assert_eq!(
            parse_predict_body(PNG).unwrap(),
            PredictBody::Image(PNG.to_vec())
        );
        assert_eq!(
            parse_predict_body(JPG).unwrap(),
            PredictBody::Image(JPG.to_vec())
        );
        let b = STANDARD.encode(PNG);
        let j = STANDARD.encode(JPG);
        let body =
            format!(r#"{{"instances": [{{"b64": "{b}"}}, "{j}", {{"image": {{"b64": "{b}"}}}}]}}"#);
        assert_eq!(
            parse_predict_body(body.as_bytes()).unwrap(),
            PredictBody::Instances(vec![PNG.to_vec(), JPG.to_vec(), PNG.to_vec()])
        );
        let bare = format!(r#" ["{j}"]"#);
        assert_eq!(
            parse_predict_body(bare.as_bytes()).unwrap(),
            PredictBody::Instances(vec![JPG.to_vec()])
        );
        // Unpadded and URL-safe base64.
        let unpadded = STANDARD.encode(PNG).trim_end_matches('=').to_string();
        assert!(parse_predict_body(format!(r#"["{unpadded}"]"#).as_bytes()).is_ok());
    }

    #[test]
    fn bad_bodies_are_400_with_a_reason() {
        for (body, needle) in [
            (&b""[..], "empty body"),
            (b"hello world", "neither a JPEG/PNG image nor JSON"),
            (b"{not json", "malformed JSON"),
            (b"{\"instances\": 3}", "must be an array"),
            (b"{\"inputs\": {}}", "columnar"),
            (b"{\"foo\": 1}", "needs \"instances\""),
            (b"{\"instances\": []}", "is empty"),
            (b"{\"instances\": [42]}", "instances[0]"),
            (b"{\"instances\": [\"!!!\"]}", "bad base64"),
            (b"{\"instances\": [\"aGVsbG8=\"]}", "not a JPEG or PNG"),
        ] {
            let e = parse_predict_body(body).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(needle), "{:?}: {}", body, e.message);
            let j: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
            assert!(j["error"].is_string());
        }
    }

    #[test]
    fn status_document() {
        let v: serde_json::Value = serde_json::from_str(&model_status_json()).unwrap();
        assert_eq!(v["model_version_status"][0]["state"], "AVAILABLE");
        assert_eq!(v["model_version_status"][0]["status"]["error_code"], "OK");
    }
}
