//! `spotter serve` end to end over real sockets: TF-Serving status and predict (raw image and
//! JSON instances), errors (400 on garbage, 404 on unknown models), Prometheus metrics, the
//! preview data endpoints, and (headless Chromium) the preview page itself.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::repo;

/// A `spotter serve` child on a free loopback port; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spotter"))
            .args(["serve", "--http", "127.0.0.1:0", "--name", "ssd"])
            .args(extra)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start spotter serve");
        // The first stdout line names the bound address: "... on http://127.0.0.1:PORT/ ...".
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("read serve banner");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("no address in serve banner {line:?}")
            });
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Resp {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Minimal HTTP/1.1 client (Connection: close; body read to EOF).
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8], ctype: &str) -> Resp {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, b"", "text/plain")
}

fn sample(name: &str) -> PathBuf {
    repo().join("models/samples").join(name)
}

fn detect_json(image: &PathBuf) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["detect", "--json"])
        .arg(image)
        .current_dir(repo())
        .output()
        .expect("run spotter detect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("detect --json output")
}

#[test]
fn status_predict_errors_and_metrics() {
    let server = Server::start(&[]);
    let a = server.addr;

    // Model status, TF-Serving shape.
    let r = get(a, "/v1/models/ssd");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"model_version_status":[{"version":"1","state":"AVAILABLE",
            "status":{"error_code":"OK","error_message":""}}]})
    );
    assert_eq!(get(a, "/v1/models/ssd/versions/1").status, 200);

    // Unknown model: 404 with a JSON error, for status and predict.
    let r = get(a, "/v1/models/resnet");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("resnet"));
    let png = std::fs::read(sample("chelsea.png")).unwrap();
    let r = request(a, "POST", "/v1/models/resnet:predict", &png, "image/png");
    assert_eq!(r.status, 404);

    // Raw image body: the same object as `spotter detect --json`, image = "request".
    let r = request(a, "POST", "/v1/models/ssd:predict", &png, "image/png");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut want = detect_json(&sample("chelsea.png"));
    want["image"] = "request".into();
    let got = r.json();
    assert_eq!(got, want);
    assert!(!got["detections"].as_array().unwrap().is_empty());

    // A JPEG body too.
    let jpg = std::fs::read(sample("rocket.jpg")).unwrap();
    let r = request(
        a,
        "POST",
        "/v1/models/ssd:predict",
        &jpg,
        "application/octet-stream",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut want_rocket = detect_json(&sample("rocket.jpg"));
    want_rocket["image"] = "request".into();
    assert_eq!(r.json(), want_rocket);

    // TF-Serving JSON: {"instances": [{"b64": ...}, "base64..."]} → {"predictions": [...]}.
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = serde_json::json!({"instances": [{"b64": b64.encode(&png)}, b64.encode(&jpg)]});
    let r = request(
        a,
        "POST",
        "/v1/models/ssd:predict",
        body.to_string().as_bytes(),
        "application/json",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let preds = r.json()["predictions"].as_array().unwrap().clone();
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["detections"], want["detections"]);
    assert_eq!(preds[0]["image"], "instances[0]");
    assert_eq!(preds[1]["detections"], want_rocket["detections"]);

    // ?threshold= overrides; out of range is a 400.
    let r = request(
        a,
        "POST",
        "/v1/models/ssd:predict?threshold=0.99",
        &png,
        "image/png",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.json()["detections"].as_array().unwrap().len()
            <= got["detections"].as_array().unwrap().len()
    );
    let r = request(
        a,
        "POST",
        "/v1/models/ssd:predict?threshold=7",
        &png,
        "image/png",
    );
    assert_eq!(r.status, 400);

    // Garbage: 400 with a JSON error message, and the server keeps serving.
    for (body, needle) in [
        (
            &b"this is not an image"[..],
            "neither a JPEG/PNG image nor JSON",
        ),
        (
            b"{\"instances\": [\"bm90IGFuIGltYWdl\"]}",
            "not a JPEG or PNG",
        ),
        (b"{\"instances\": ", "malformed JSON"),
        (b"", "empty body"),
    ] {
        let r = request(
            a,
            "POST",
            "/v1/models/ssd:predict",
            body,
            "application/json",
        );
        assert_eq!(r.status, 400, "{}", r.text());
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{msg}");
    }
    // A JPEG header with nothing behind it: decodes as garbage → 400, not a crash.
    let r = request(
        a,
        "POST",
        "/v1/models/ssd:predict",
        &jpg[..300],
        "image/jpeg",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("cannot decode image"));
    assert_eq!(get(a, "/nope").status, 404);
    assert_eq!(get(a, "/v1/models/ssd:predict").status, 405);

    // Metrics: Prometheus text with the spotter_ prefix; 5 successful inferences so far.
    let r = get(a, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.headers.contains("text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    let m = r.text();
    for needle in [
        "# TYPE spotter_inference_latency_seconds histogram",
        "spotter_inference_latency_seconds_count 5\n",
        "spotter_inference_latency_seconds_bucket{le=\"+Inf\"} 5\n",
        "spotter_up 1\n",
        "# TYPE spotter_fps gauge",
        "spotter_dropped_frames_total{reason=\"capture\"} 0\n",
        "spotter_mqtt_queue_depth 0\n",
        "spotter_build_info{",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
    for line in m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(line.starts_with("spotter_"), "{line}");
    }

    // Preview data: the last predicted image (the 0.99-threshold chelsea was the last success).
    let r = get(a, "/detections.json");
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(d["result"]["image"], "request");
    assert_eq!(d["result"]["width"], want["width"]);
    let r = get(a, "/frame.jpg");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(&[0xFF, 0xD8]));
    let r = get(a, "/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("/detections.json") && r.text().contains("/frame.jpg"));
    assert_eq!(get(a, "/healthz").status, 200);
}

#[test]
fn bare_port_binds_loopback_and_bad_listen_is_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["serve", "--http", "not-an-address"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http"));
}

/// The preview page in a real browser: after a prediction, headless Chromium renders the
/// annotated frame and the detection list.
#[test]
fn preview_page_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "this test needs headless Chromium: apt-get install -y chromium \
                 (Debian package; /usr/bin/chromium)"
            )
        });
    let server = Server::start(&[]);
    let png = std::fs::read(sample("chelsea.png")).unwrap();
    let r = request(
        server.addr,
        "POST",
        "/v1/models/ssd:predict",
        &png,
        "image/png",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let labels: Vec<String> = r.json()["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap().to_string())
        .collect();
    assert!(!labels.is_empty());

    let dir = std::env::temp_dir().join(format!("spotter-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("http://{}/", server.addr);
    let run = |extra: &[&str], profile: &str| {
        let t = Instant::now();
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=800,600",
                // Let the page's polling JS run (fetch JSON, then the frame) before capture.
                "--virtual-time-budget=4000",
            ])
            .arg(format!("--user-data-dir={}", dir.join(profile).display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        eprintln!("chromium {extra:?} took {:?}", t.elapsed());
        out
    };

    // The DOM after the scripts ran: the detection list shows the labels.
    let dom = run(&["--dump-dom"], "p1");
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("class=\"detection\""),
        "no detection list items in the DOM; stderr: {}\n{html}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for l in &labels {
        assert!(
            html.contains(l.as_str()),
            "label {l} not on the page:\n{html}"
        );
    }
    assert!(html.contains("blob:"), "frame image not loaded:\n{html}");

    // The screenshot: a real picture (the cat photo plus boxes), not a blank page.
    let shot = dir.join("preview.png");
    let out = run(&[&format!("--screenshot={}", shot.display())], "p2");
    assert!(
        shot.is_file(),
        "no screenshot; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot).expect("decode screenshot").to_rgb8();
    assert_eq!((img.width(), img.height()), (800, 600));
    let mut colours = std::collections::HashSet::new();
    for p in img.pixels().step_by(7) {
        colours.insert(p.0);
    }
    assert!(
        colours.len() > 1000,
        "screenshot looks blank: {} distinct colours",
        colours.len()
    );
    // Keep it for humans to look at when asked.
    if let Ok(keep) = std::env::var("SPOTTER_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `spotter run --http`: the endpoint shows the live pipeline. A folder source looped at 10 fps,
/// an MQTT sink pointed at a port where nothing listens (so its offline queue fills up and the
/// queue depth is visible), and the model routes on the side.
#[test]
fn run_serves_live_pipeline_metrics_preview_and_predict() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args([
            "run",
            "--source",
            "models/samples",
            "--fps",
            "10",
            "--threads",
            "1",
            "--camera",
            "yard",
            "--mqtt",
            // Port 1 (tcpmux): nothing listens there on a test machine; connects are refused.
            "mqtt://127.0.0.1:1",
            "--http",
            "127.0.0.1:0",
        ])
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start spotter run");
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let mut addr: Option<SocketAddr> = None;
    let mut seen = String::new();
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(rest) = line.strip_prefix("spotter run: http://") {
            addr = rest.split('/').next().and_then(|s| s.parse().ok());
            break;
        }
    }
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    let server = Server {
        child,
        addr: addr.unwrap_or_else(|| panic!("no address line on stderr:\n{seen}")),
    };
    let a = server.addr;
    let model = "mobilenet_ssd_v2_coco_quant_postprocess";

    // Wait until the pipeline has published a stats snapshot with a few frames.
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let m = loop {
        let m = get(a, "/metrics").text();
        if metric(&m, "spotter_frames_total") >= 5.0 && metric(&m, "spotter_mqtt_queue_depth") > 0.0
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline did not get going:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(m.contains("spotter_up 1\n"), "{m}");
    let fps = metric(&m, "spotter_fps");
    assert!(fps > 0.0 && fps <= 12.0, "fps {fps} (limited to 10)\n{m}");
    let count = metric(&m, "spotter_inference_latency_seconds_count");
    assert!(count >= 5.0, "every frame is in the histogram\n{m}");
    let inf = metric(&m, "spotter_inference_latency_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(inf, count);
    // Folder sources are lossless: nothing dropped at capture.
    assert_eq!(
        metric(&m, "spotter_dropped_frames_total{reason=\"capture\"}"),
        0.0
    );
    assert!(m.contains(&format!("model=\"{model}\"")), "{m}");

    // The preview data: the latest annotated pipeline frame and its tracked detections.
    let d = get(a, "/detections.json").json();
    assert_eq!(d["result"]["camera"], "yard", "{d}");
    assert!(d["result"]["frame"].as_u64().is_some(), "{d}");
    let dets = d["result"]["detections"].as_array().expect("detections");
    for det in dets {
        assert!(
            det["id"].as_u64().is_some() && det["label"].is_string(),
            "{d}"
        );
    }
    assert!(d["stats"]["frames"].as_u64().unwrap_or(0) >= 5, "{d}");
    let r = get(a, "/frame.jpg");
    assert_eq!(r.status, 200);
    let frame = image::load_from_memory(&r.body).expect("frame.jpg decodes");
    assert_eq!(
        (frame.width() as u64, frame.height() as u64),
        (
            d["result"]["width"].as_u64().unwrap_or(0),
            d["result"]["height"].as_u64().unwrap_or(0)
        )
    );
    assert_eq!(get(a, "/healthz").status, 200);
    assert!(get(a, "/").text().contains("/frame.jpg"));

    // The model routes, named after the model file, answer like `spotter serve`.
    let r = get(a, &format!("/v1/models/{model}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model_version_status"][0]["state"], "AVAILABLE");
    let png = std::fs::read(sample("chelsea.png")).unwrap();
    let r = request(
        a,
        "POST",
        &format!("/v1/models/{model}:predict"),
        &png,
        "image/png",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut want = detect_json(&sample("chelsea.png"));
    want["image"] = "request".into();
    assert_eq!(r.json(), want);
    let r = request(
        a,
        "POST",
        &format!("/v1/models/{model}:predict"),
        b"garbage",
        "application/octet-stream",
    );
    assert_eq!(r.status, 400, "{}", r.text());
}
