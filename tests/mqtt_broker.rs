//! The MQTT sink against a real mosquitto (Debian package `mosquitto`), started here on a free
//! loopback port. Fails (does not skip) when mosquitto is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
use serde_json::Value;
use spotter::detector::Detection;
use spotter::pipeline::{FrameResult, TrackedDetection};
use spotter::sinks::mqtt::{DiscoveryConfig, EventsConfig, MqttConfig, MqttSink, Qos};
use spotter::sinks::Sink;

fn mosquitto_bin() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]);
    for dir in candidates {
        let bin = dir.join("mosquitto");
        if bin.is_file() {
            return bin;
        }
    }
    panic!(
        "mosquitto not found in PATH or /usr/sbin: these tests need a real broker \
         (apt-get install -y mosquitto)"
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Broker {
    child: Option<Child>,
    dir: PathBuf,
}

impl Broker {
    /// Starts mosquitto on `port` with its config, persistence and log in `dir`.
    fn start(dir: &Path, port: u16, persistence: bool) -> Broker {
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence {persistence}\npersistence_location {}/\n\
             autosave_interval 1\nuser root\nmax_queued_messages 10000\n\
             log_dest file {}\nlog_type all\n",
            dir.display(),
            dir.join("mosquitto.log").display(),
        );
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let mut b = Broker {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(status))) = b.child.as_mut().map(|c| c.try_wait()) {
                panic!("mosquitto exited with {status}; log:\n{}", b.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}:\n{}",
                b.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// SIGTERM (mosquitto saves its persistence database) and wait for the exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let ok = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Clone, Debug)]
struct Got {
    topic: String,
    payload: String,
    retain: bool,
}

/// A test subscriber on `spotter/#` and `homeassistant/#`, QoS 1.
struct Subscriber {
    client: Client,
    got: Arc<Mutex<Vec<Got>>>,
    subacks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Subscriber {
    fn connect(port: u16, id: &str, clean_session: bool) -> Subscriber {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_clean_session(clean_session);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = Client::new(opts, 100);
        let got = Arc::new(Mutex::new(Vec::new()));
        let subacks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (got, subacks, stop) = (got.clone(), subacks.clone(), stop.clone());
            std::thread::spawn(move || {
                for ev in conn.iter() {
                    match ev {
                        Ok(Event::Incoming(Packet::Publish(p))) => got.lock().unwrap().push(Got {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        }),
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            subacks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(_) => {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })
        };
        client
            .subscribe("spotter/#", QoS::AtLeastOnce)
            .expect("subscribe");
        client
            .subscribe("homeassistant/#", QoS::AtLeastOnce)
            .expect("subscribe");
        wait_for("SUBACKs", Duration::from_secs(10), || {
            subacks.load(Ordering::SeqCst) >= 2
        });
        Subscriber {
            client,
            got,
            subacks,
            stop,
            thread: Some(thread),
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn on(&self, topic: &str) -> Vec<String> {
        self.got()
            .into_iter()
            .filter(|g| g.topic == topic)
            .map(|g| g.payload)
            .collect()
    }

    fn wait_offline(&self) {
        wait_for(
            "spotter/available = offline",
            Duration::from_secs(20),
            || self.on("spotter/available").last().map(String::as_str) == Some("offline"),
        );
    }

    fn detection_frames(&self, topic: &str) -> Vec<u64> {
        self.on(topic)
            .iter()
            .map(|p| {
                let v: Value = serde_json::from_str(p).expect("detections JSON");
                v["frame"].as_u64().expect("frame number")
            })
            .collect()
    }

    /// Events as (type, id) in arrival order.
    fn events(&self) -> Vec<(String, String)> {
        self.on("spotter/events")
            .iter()
            .map(|p| {
                let v: Value = serde_json::from_str(p).expect("event JSON");
                (
                    v["type"].as_str().expect("type").to_string(),
                    v["after"]["id"].as_str().expect("id").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        let _ = self.subacks.load(Ordering::SeqCst);
    }
}

fn person(id: u64, x: f64) -> TrackedDetection {
    TrackedDetection {
        id,
        detection: Detection {
            label: "person".into(),
            class_id: 0,
            score: 0.8,
            bbox: [x, 20.0, x + 60.0, 200.0],
        },
        zones: Vec::new(),
    }
}

fn frame(n: u64, detections: Vec<TrackedDetection>) -> FrameResult {
    FrameResult {
        camera: "door".into(),
        frame: n,
        frame_time: 1_700_000_000.0 + n as f64 * 0.1,
        width: 640,
        height: 480,
        detections,
        inference_ms: 7.5,
    }
}

fn config(port: u16, client_id: &str) -> MqttConfig {
    MqttConfig {
        url: format!("mqtt://127.0.0.1:{port}"),
        client_id: client_id.into(),
        keep_alive: Duration::from_secs(5),
        close_timeout: Duration::from_secs(15),
        max_backoff: Duration::from_millis(200),
        events: EventsConfig {
            camera: "door".into(),
            qos: Qos::AtLeastOnce,
            end_after_missed_frames: 2,
            discovery: Some(DiscoveryConfig {
                labels: vec!["person".into()],
                ..DiscoveryConfig::default()
            }),
            ..EventsConfig::default()
        },
        ..MqttConfig::default()
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("spotter-mqtt-")
        .tempdir()
        .expect("temp dir")
}

#[test]
fn events_counts_availability_and_discovery() {
    let dir = tempdir();
    let port = free_port();
    let broker = Broker::start(dir.path(), port, false);
    let sub = Subscriber::connect(port, "spotter-test-sub-1", true);

    let mut sink = MqttSink::new(config(port, "spotter-test-pub-1")).expect("sink");
    wait_for("the sink to connect", Duration::from_secs(10), || {
        sink.is_connected()
    });
    let people: Vec<TrackedDetection> = (1..=4).map(|i| person(i, i as f64 * 120.0)).collect();
    for n in 0..12 {
        sink.publish(&frame(n, people.clone())).expect("publish");
    }
    sink.close().expect("clean close");
    assert_eq!(sink.dropped(), 0);
    sub.wait_offline();

    let events = sub.events();
    let new: Vec<&String> = events
        .iter()
        .filter(|e| e.0 == "new")
        .map(|e| &e.1)
        .collect();
    let end: BTreeSet<&String> = events
        .iter()
        .filter(|e| e.0 == "end")
        .map(|e| &e.1)
        .collect();
    assert_eq!(new.len(), 4, "{events:?}");
    let new_ids: BTreeSet<&String> = new.iter().copied().collect();
    assert_eq!(new_ids.len(), 4, "distinct ids: {events:?}");
    assert_eq!(end, new_ids, "an end for every object: {events:?}");
    assert_eq!(
        events.len(),
        8,
        "no updates for identical frames: {events:?}"
    );

    assert_eq!(sub.on("spotter/door/person"), vec!["0", "4", "0"]);
    assert_eq!(sub.on("spotter/door/all"), vec!["0", "4", "0"]);
    assert_eq!(sub.on("spotter/available"), vec!["online", "offline"]);
    assert_eq!(
        sub.detection_frames("spotter/door/detections"),
        (0..12).collect::<Vec<_>>()
    );
    drop(sub);

    // A late subscriber sees the retained state: discovery, availability, counts.
    let late = Subscriber::connect(port, "spotter-test-sub-late", true);
    let sensor = "homeassistant/sensor/spotter/door_person_count/config";
    let occupancy = "homeassistant/binary_sensor/spotter/door_occupancy/config";
    wait_for("retained messages", Duration::from_secs(10), || {
        let got = late.got();
        [
            sensor,
            occupancy,
            "spotter/available",
            "spotter/door/person",
        ]
        .iter()
        .all(|t| got.iter().any(|g| g.topic == *t))
    });
    let retained: BTreeMap<String, Got> = late
        .got()
        .into_iter()
        .map(|g| (g.topic.clone(), g))
        .collect();
    assert!(retained.values().all(|g| g.retain), "{retained:?}");
    assert_eq!(retained["spotter/available"].payload, "offline");
    assert_eq!(retained["spotter/door/person"].payload, "0");
    let cfg: Value = serde_json::from_str(&retained[sensor].payload).expect("discovery JSON");
    assert_eq!(cfg["state_topic"], "spotter/door/person");
    assert_eq!(cfg["availability_topic"], "spotter/available");
    let cfg: Value = serde_json::from_str(&retained[occupancy].payload).expect("discovery JSON");
    assert_eq!(cfg["state_topic"], "spotter/door/all");
    assert!(
        !retained.contains_key("spotter/door/detections"),
        "per-frame detections are not retained"
    );
    drop(late);
    drop(broker);
}

#[test]
fn broker_restart_loses_nothing() {
    let dir = tempdir();
    let port = free_port();
    let mut broker = Broker::start(dir.path(), port, true);
    let sub = Subscriber::connect(port, "spotter-test-sub-2", false);

    let mut cfg = config(port, "spotter-test-pub-2");
    cfg.clean_session = false;
    // A small rumqttc channel so the outage really goes through our own queue.
    cfg.channel_capacity = 4;
    cfg.queue_capacity = 500;
    let mut sink = MqttSink::new(cfg).expect("sink");
    wait_for("the sink to connect", Duration::from_secs(10), || {
        sink.is_connected()
    });

    // Persons 1 and 2 from the start; 2 leaves at frame 15 (ends at 17, with the broker down);
    // 3 arrives at frame 20 (broker down) and stays.
    let people = |n: u64| {
        let mut v = vec![person(1, 100.0)];
        if n < 15 {
            v.push(person(2, 300.0));
        }
        if n >= 20 {
            v.push(person(3, 500.0));
        }
        v
    };
    for n in 0..10 {
        sink.publish(&frame(n, people(n))).expect("publish");
    }
    wait_for("frames 0..9 delivered", Duration::from_secs(10), || {
        sub.detection_frames("spotter/door/detections").len() >= 10
    });

    broker.stop();
    wait_for(
        "the sink to notice the outage",
        Duration::from_secs(10),
        || !sink.is_connected(),
    );
    for n in 10..30 {
        sink.publish(&frame(n, people(n)))
            .expect("publish while down");
    }
    assert!(sink.queued() > 0, "the outage should fill our own queue");
    assert_eq!(
        sink.dropped(),
        0,
        "within the queue bound nothing is dropped"
    );

    let broker = Broker::start(dir.path(), port, true);
    wait_for("the sink to reconnect", Duration::from_secs(20), || {
        sink.connects() >= 2
    });
    for n in 30..40 {
        sink.publish(&frame(n, people(n))).expect("publish");
    }
    sink.close().expect("clean close");
    assert_eq!(sink.dropped(), 0);
    sub.wait_offline();

    // QoS 1 is at-least-once: duplicates are allowed, gaps are not.
    let frames: BTreeSet<u64> = sub
        .detection_frames("spotter/door/detections")
        .into_iter()
        .collect();
    assert_eq!(
        frames,
        (0..40).collect::<BTreeSet<_>>(),
        "contiguous frames; broker log:\n{}",
        broker.log()
    );
    let events: BTreeSet<(String, String)> = sub.events().into_iter().collect();
    let ids = |kind: &str| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| e.0 == kind)
            .map(|e| e.1.clone())
            .collect()
    };
    let expected: BTreeSet<String> = [(0u64, 1u64), (0, 2), (20, 3)]
        .iter()
        .map(|&(n, id)| format!("{:.6}-{id}", frame(n, vec![]).frame_time))
        .collect();
    assert_eq!(ids("new"), expected, "{events:?}");
    assert_eq!(ids("end"), expected, "{events:?}");
    assert_eq!(
        sub.on("spotter/door/person").last().map(String::as_str),
        Some("0")
    );
    drop(sub);
    drop(broker);
}

/// `spotter run` (files looped, lossless: frames 0..n-1 without gaps) publishing to `port` at
/// QoS 1 with the default clean session, offline queue bound `queue`.
fn spotter_run(dir: &Path, port: u16, client_id: &str, queue: usize, frames: u64) -> Child {
    let cfg = dir.join(format!("{client_id}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[source]\nuri = \"models/samples\"\nloop = true\ncamera = \"door\"\n\
             [pipeline]\nfps = 5\nthreads = 1\nmax_frames = {frames}\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nqos = 1\nclient_id = \"{client_id}\"\n\
             queue = {queue}\ndiscovery = false\n"
        ),
    )
    .expect("write config");
    let log = std::fs::File::create(dir.join(format!("{client_id}.log"))).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_spotter"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn spotter run")
}

fn wait_exit(child: &mut Child, within: Duration, log: &Path) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "spotter run: {status}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "spotter run did not finish within {within:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 7: the broker restarts (SIGTERM, persistence on) while `spotter run` publishes per-frame
/// detections at QoS 1 with its default clean session: every frame number and every event
/// arrives, nothing is counted as dropped. (The requeue of rumqttc's `pending` publishes on a
/// connection error, which rumqttc discards when the CONNACK has no session, only matters for
/// messages un-acked at the moment the connection dies; on loopback that window is rarely hit,
/// so this test passes without it too. `requeued_unacked_messages_go_first_and_respect_the_bound`
/// pins the queue side.)
#[test]
fn spotter_run_broker_restart_loses_no_frame() {
    let dir = tempdir();
    let port = free_port();
    let mut broker = Broker::start(dir.path(), port, true);
    let sub = Subscriber::connect(port, "spotter-test-sub-run", false);
    let frames = 50u64;
    let mut run = spotter_run(dir.path(), port, "spotter-run-1", 1000, frames);
    wait_for("10 frames delivered", Duration::from_secs(60), || {
        sub.detection_frames("spotter/door/detections").len() >= 10
    });
    broker.stop();
    // ~3 s at 5 fps published into the outage.
    std::thread::sleep(Duration::from_secs(3));
    let broker = Broker::start(dir.path(), port, true);
    wait_exit(
        &mut run,
        Duration::from_secs(60),
        &dir.path().join("spotter-run-1.log"),
    );
    sub.wait_offline();
    let got: BTreeSet<u64> = sub
        .detection_frames("spotter/door/detections")
        .into_iter()
        .collect();
    let missing: Vec<u64> = (0..frames).filter(|n| !got.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "frames lost across the broker restart: {missing:?}\nspotter log:\n{}\nbroker log:\n{}",
        std::fs::read_to_string(dir.path().join("spotter-run-1.log")).unwrap_or_default(),
        broker.log()
    );
    // Every object that got a `new` got an `end`.
    let events = sub.events();
    let ids = |kind: &str| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| e.0 == kind)
            .map(|e| e.1.clone())
            .collect()
    };
    assert!(!ids("new").is_empty(), "{events:?}");
    assert_eq!(ids("new"), ids("end"), "{events:?}");
    let log = std::fs::read_to_string(dir.path().join("spotter-run-1.log")).unwrap_or_default();
    assert!(
        log.contains("connection error"),
        "outage not logged:\n{log}"
    );
    let stats: Vec<Value> = sub
        .on("spotter/stats")
        .iter()
        .filter_map(|p| serde_json::from_str(p).ok())
        .collect();
    assert!(!stats.is_empty());
    assert!(
        stats.iter().all(|v| v["mqtt_dropped"] == 0),
        "within the bound nothing is dropped: {stats:?}"
    );
    drop(sub);
    drop(broker);
}

/// With a tiny offline queue, an outage overflows it: drops are counted in `<prefix>/stats`.
#[test]
fn spotter_run_counts_drops_beyond_the_queue_bound() {
    let dir = tempdir();
    let port = free_port();
    let mut broker = Broker::start(dir.path(), port, true);
    let sub = Subscriber::connect(port, "spotter-test-sub-tiny", false);
    let mut run = spotter_run(dir.path(), port, "spotter-run-tiny", 2, 40);
    wait_for("5 frames delivered", Duration::from_secs(60), || {
        sub.detection_frames("spotter/door/detections").len() >= 5
    });
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    let broker = Broker::start(dir.path(), port, true);
    wait_exit(
        &mut run,
        Duration::from_secs(60),
        &dir.path().join("spotter-run-tiny.log"),
    );
    sub.wait_offline();
    let dropped: Vec<u64> = sub
        .on("spotter/stats")
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|v| v["mqtt_dropped"].as_u64())
        .collect();
    assert!(
        dropped.iter().any(|&d| d > 0),
        "no stats message counted drops: {dropped:?}\nspotter log:\n{}",
        std::fs::read_to_string(dir.path().join("spotter-run-tiny.log")).unwrap_or_default()
    );
    drop(sub);
    drop(broker);
}
