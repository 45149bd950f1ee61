//! Frigate-compatible MQTT messages, as an I/O-free state machine.
//!
//! Input: one [`FrameResult`] (tracked detections) per frame, [`PipelineStats`] now and then,
//! and [`EventState::close`] at shutdown. Output: [`Message`]s to publish, in order. No clock:
//! every time is a frame time, so the output is a pure function of the input.
//!
//! Topics, with prefix `P` (default `spotter`) and camera `C` (both from [`EventsConfig`];
//! camera and label topic levels are sanitized by [`topic_level`]):
//! - `P/available`: `online` (retained) in [`EventState::birth_messages`], which the sink
//!   publishes on every (re)connect; `offline` (retained) from [`EventState::close`] and as the
//!   client's last will ([`EventState::last_will`]).
//! - `P/events`: `{"type": "new"|"update"|"end", "before": {..}, "after": {..}}`, the object as
//!   in [`EventObject`]. One `new` per tracked object (track id), when first seen, with
//!   `before == after`.
//!   * `update` rule, compared with the last *published* state of the object: its
//!     `current_zones` changed → published at once; `top_score` rose by at least
//!     `min_top_score_change`, or an edge of the box moved by more than `min_box_move` × the
//!     larger side of the last published box → published when at least `update_interval`
//!     seconds (frame time) passed since the object's last message, otherwise it stays pending
//!     and goes out with the first frame after the interval (the comparison is against the
//!     published state, so nothing needs remembering). The current `score` alone never
//!     triggers an update (it jitters every frame).
//!   * `end` when the object has been absent from more than `end_after_missed_frames`
//!     consecutive frames (set it to the tracker's `max_missed_frames`: the tracker ends the
//!     track in that same frame and never reuses the id), and for every live object at close.
//!     `before` is the last published state; `after` is the final state with `end_time` set to
//!     the frame time the object was last seen.
//! - `P/C/<label>`: number of live objects with that label (objects in their grace period of
//!   missed frames still count, so the count does not flicker with detector misses); retained,
//!   published when it changes; `0` when the last one ends. `P/C/all`: the same over all labels
//!   (state of the Home Assistant occupancy sensor).
//! - `P/C/detections`: every frame: the [`FrameResult`] as JSON (camera, frame number,
//!   frame_time, width, height, detections with id/label/class_id/score/box/zones,
//!   inference_ms). Not retained.
//! - `P/stats`: [`PipelineStats`] plus the sink's own drop count, QoS 0, not retained.
//! - Home Assistant discovery (retained, when [`EventsConfig::discovery`] is set):
//!   `<D>/sensor/<node>/<C>_<label>_count/config` for each configured label at start and each
//!   other label when first seen; `<D>/binary_sensor/<node>/<C>_occupancy/config` always.
//!   All use `availability_topic = P/available`.
//!
//! Messages use the configured QoS except stats (QoS 0).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use crate::pipeline::{FrameResult, PipelineStats};

/// MQTT quality of service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    #[default]
    AtLeastOnce,
    ExactlyOnce,
}

impl TryFrom<u8> for Qos {
    type Error = EventsError;
    fn try_from(v: u8) -> Result<Self, EventsError> {
        match v {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            2 => Ok(Qos::ExactlyOnce),
            other => Err(EventsError::BadQos(other)),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventsError {
    #[error("mqtt qos {0}: expected 0, 1 or 2")]
    BadQos(u8),
    #[error("mqtt topic prefix {prefix:?}: {why}")]
    BadPrefix { prefix: String, why: &'static str },
}

/// One message to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    pub qos: Qos,
}

/// Home Assistant MQTT discovery.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveryConfig {
    /// Discovery prefix (Home Assistant's default is `homeassistant`).
    pub prefix: String,
    /// Node id in discovery topics and unique ids.
    pub node_id: String,
    /// Labels whose count sensors are announced at start (others when first seen).
    pub labels: Vec<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            prefix: "homeassistant".into(),
            node_id: "spotter".into(),
            labels: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventsConfig {
    /// Topic prefix `P`; may contain `/` but no wildcards.
    pub prefix: String,
    /// Camera name `C` (sanitized into one topic level).
    pub camera: String,
    pub qos: Qos,
    /// An object absent for more than this many consecutive frames has ended.
    pub end_after_missed_frames: u32,
    /// Minimum frame-time seconds between two messages about one object, except zone changes.
    pub update_interval: f64,
    pub min_top_score_change: f32,
    /// Fraction of the larger box side an edge must move to count as moved.
    pub min_box_move: f64,
    /// Publish `P/C/detections` every frame.
    pub publish_detections: bool,
    pub discovery: Option<DiscoveryConfig>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            prefix: "spotter".into(),
            camera: "camera".into(),
            qos: Qos::AtLeastOnce,
            end_after_missed_frames: 5,
            update_interval: 1.0,
            min_top_score_change: 0.05,
            min_box_move: 0.1,
            publish_detections: true,
            discovery: Some(DiscoveryConfig::default()),
        }
    }
}

impl EventsConfig {
    /// Checks the prefix can start valid publish topics.
    pub fn validate(&self) -> Result<(), EventsError> {
        let bad = |why| {
            Err(EventsError::BadPrefix {
                prefix: self.prefix.clone(),
                why,
            })
        };
        if self.prefix.is_empty() {
            return bad("expected a non-empty topic prefix");
        }
        if self.prefix.contains(['+', '#', '\0']) {
            return bad("wildcards (+, #) and NUL are not allowed in publish topics");
        }
        if self.prefix.starts_with('/') || self.prefix.ends_with('/') {
            return bad("expected no leading or trailing '/'");
        }
        if let Some(d) = &self.discovery {
            if d.prefix.is_empty() || d.prefix.contains(['+', '#', '\0']) {
                return Err(EventsError::BadPrefix {
                    prefix: d.prefix.clone(),
                    why: "discovery prefix: expected non-empty, without wildcards",
                });
            }
        }
        Ok(())
    }
}

/// Makes `s` one safe topic level / Home Assistant id: characters other than ASCII letters,
/// digits, `_` and `-` become `_` ("traffic light" → "traffic_light"); empty becomes `_`.
pub fn topic_level(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// The object in `before`/`after` of an event (Frigate's field names).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventObject {
    /// `"<start frame_time>-<track id>"`, unique per object.
    pub id: String,
    pub camera: String,
    pub frame_time: f64,
    pub label: String,
    pub score: f32,
    pub top_score: f32,
    /// `[x1, y1, x2, y2]` pixels.
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    /// Box area in pixels.
    pub area: f64,
    pub start_time: f64,
    pub end_time: Option<f64>,
    pub current_zones: Vec<String>,
    pub entered_zones: Vec<String>,
    pub false_positive: bool,
    pub has_snapshot: bool,
    pub has_clip: bool,
}

#[derive(Debug)]
struct Tracked {
    current: EventObject,
    /// State in the last message about this object.
    published: EventObject,
    last_message_time: f64,
    missed: u32,
}

#[derive(Serialize)]
struct EventPayload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    before: &'a EventObject,
    after: &'a EventObject,
}

/// See the module documentation.
#[derive(Debug)]
pub struct EventState {
    config: EventsConfig,
    camera: String,
    objects: BTreeMap<u64, Tracked>,
    /// Last published count per label (sanitized label → count).
    counts: BTreeMap<String, usize>,
    all_count: Option<usize>,
    /// Labels with a published discovery config.
    discovered: BTreeSet<String>,
    births_changed: bool,
    closed: bool,
}

impl EventState {
    pub fn new(config: EventsConfig) -> Result<Self, EventsError> {
        config.validate()?;
        let camera = topic_level(&config.camera);
        let discovered = config
            .discovery
            .as_ref()
            .map(|d| d.labels.iter().map(|l| topic_level(l)).collect())
            .unwrap_or_default();
        Ok(EventState {
            config,
            camera,
            objects: BTreeMap::new(),
            counts: BTreeMap::new(),
            all_count: None,
            discovered,
            births_changed: true,
            closed: false,
        })
    }

    pub fn config(&self) -> &EventsConfig {
        &self.config
    }

    fn topic(&self, rest: &str) -> String {
        format!("{}/{}", self.config.prefix, rest)
    }

    fn msg(&self, topic: String, payload: String, retain: bool) -> Message {
        Message {
            topic,
            payload,
            retain,
            qos: self.config.qos,
        }
    }

    pub fn available_topic(&self) -> String {
        self.topic("available")
    }

    /// The last will: `P/available` = `offline`, retained.
    pub fn last_will(&self) -> Message {
        self.msg(self.available_topic(), "offline".into(), true)
    }

    /// What to publish on every (re)connect: discovery configs for all labels known so far and
    /// the occupancy sensor, then `online`. All retained and idempotent.
    pub fn birth_messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        if self.config.discovery.is_some() {
            out.push(self.occupancy_discovery());
            for label in &self.discovered {
                out.push(self.count_discovery(label));
            }
        }
        out.push(self.msg(self.available_topic(), "online".into(), true));
        out
    }

    /// True when [`EventState::birth_messages`] changed since the last call (a new label).
    pub fn take_births_changed(&mut self) -> bool {
        std::mem::take(&mut self.births_changed)
    }

    /// Once at start: reset the retained counts of the configured labels and `all` to 0, so
    /// stale values from an earlier run (e.g. one that crashed) do not linger.
    pub fn start(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let labels: Vec<String> = self.discovered.iter().cloned().collect();
        for label in labels {
            self.counts.insert(label.clone(), 0);
            out.push(self.count_message(&label, 0));
        }
        self.all_count = Some(0);
        out.push(self.count_message("all", 0));
        out
    }

    fn device(&self, node: &str) -> serde_json::Value {
        json!({
            "identifiers": [format!("{}_{}", node, self.camera)],
            "name": format!("{} {}", node, self.camera),
            "manufacturer": "spotter",
            "model": "spotter",
            "sw_version": env!("CARGO_PKG_VERSION"),
        })
    }

    fn occupancy_discovery(&self) -> Message {
        let Some(d) = &self.config.discovery else {
            unreachable!("only called with discovery configured")
        };
        let node = topic_level(&d.node_id);
        let object_id = format!("{}_occupancy", self.camera);
        let payload = json!({
            "name": format!("{} occupancy", self.config.camera),
            "object_id": object_id,
            "unique_id": format!("{node}_{object_id}"),
            "state_topic": self.topic(&format!("{}/all", self.camera)),
            "value_template": "{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}",
            "device_class": "occupancy",
            "availability_topic": self.available_topic(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": self.device(&node),
        });
        self.msg(
            format!("{}/binary_sensor/{node}/{object_id}/config", d.prefix),
            payload.to_string(),
            true,
        )
    }

    fn count_discovery(&self, label: &str) -> Message {
        let Some(d) = &self.config.discovery else {
            unreachable!("only called with discovery configured")
        };
        let node = topic_level(&d.node_id);
        let object_id = format!("{}_{label}_count", self.camera);
        let payload = json!({
            "name": format!("{} {label} count", self.config.camera),
            "object_id": object_id,
            "unique_id": format!("{node}_{object_id}"),
            "state_topic": self.topic(&format!("{}/{label}", self.camera)),
            "state_class": "measurement",
            "icon": "mdi:counter",
            "availability_topic": self.available_topic(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": self.device(&node),
        });
        self.msg(
            format!("{}/sensor/{node}/{object_id}/config", d.prefix),
            payload.to_string(),
            true,
        )
    }

    fn count_message(&self, label: &str, n: usize) -> Message {
        self.msg(
            self.topic(&format!("{}/{label}", self.camera)),
            n.to_string(),
            true,
        )
    }

    fn event_message(&self, kind: &str, before: &EventObject, after: &EventObject) -> Message {
        let payload = EventPayload {
            kind,
            before,
            after,
        };
        // Serializing plain structs of strings and numbers cannot fail except for non-finite
        // floats, which serde_json writes as null.
        let payload = serde_json::to_string(&payload).unwrap_or_else(|_| "{}".into());
        self.msg(self.topic("events"), payload, false)
    }

    /// True when the change from `published` to `current` deserves an `update` now.
    fn wants_update(&self, t: &Tracked, now: f64) -> bool {
        let (p, c) = (&t.published, &t.current);
        if p.current_zones != c.current_zones {
            return true;
        }
        if now - t.last_message_time < self.config.update_interval {
            return false;
        }
        if c.top_score >= p.top_score + self.config.min_top_score_change {
            return true;
        }
        let side = (p.bbox[2] - p.bbox[0]).max(p.bbox[3] - p.bbox[1]).max(1.0);
        let limit = self.config.min_box_move * side;
        p.bbox
            .iter()
            .zip(c.bbox.iter())
            .any(|(a, b)| (a - b).abs() > limit)
    }

    /// Messages for one frame, in order: new discovery configs, events, changed counts,
    /// detections. Nothing after [`EventState::close`].
    pub fn frame(&mut self, frame: &FrameResult) -> Vec<Message> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        let now = frame.frame_time;

        if self.config.discovery.is_some() {
            for d in &frame.detections {
                let label = topic_level(&d.detection.label);
                if self.discovered.insert(label.clone()) {
                    self.births_changed = true;
                    out.push(self.count_discovery(&label));
                }
            }
        }

        let mut seen = BTreeSet::new();
        for d in &frame.detections {
            // A repeated id within one frame is a tracker bug; the first box wins.
            if !seen.insert(d.id) {
                continue;
            }
            let det = &d.detection;
            let b = det.bbox;
            let area = ((b[2] - b[0]).max(0.0)) * ((b[3] - b[1]).max(0.0));
            match self.objects.get_mut(&d.id) {
                None => {
                    let obj = EventObject {
                        id: format!("{:.6}-{}", now, d.id),
                        camera: self.config.camera.clone(),
                        frame_time: now,
                        label: det.label.clone(),
                        score: det.score,
                        top_score: det.score,
                        bbox: b,
                        area,
                        start_time: now,
                        end_time: None,
                        current_zones: d.zones.clone(),
                        entered_zones: d.zones.clone(),
                        false_positive: false,
                        has_snapshot: false,
                        has_clip: false,
                    };
                    out.push(self.event_message("new", &obj, &obj));
                    self.objects.insert(
                        d.id,
                        Tracked {
                            current: obj.clone(),
                            published: obj,
                            last_message_time: now,
                            missed: 0,
                        },
                    );
                }
                Some(t) => {
                    let c = &mut t.current;
                    c.frame_time = now;
                    c.score = det.score;
                    if det.score > c.top_score {
                        c.top_score = det.score;
                    }
                    c.bbox = b;
                    c.area = area;
                    c.current_zones = d.zones.clone();
                    for z in &d.zones {
                        if !c.entered_zones.contains(z) {
                            c.entered_zones.push(z.clone());
                        }
                    }
                    t.missed = 0;
                }
            }
        }

        // Updates for objects seen in this frame; ends for those gone too long.
        let ids: Vec<u64> = self.objects.keys().copied().collect();
        for id in ids {
            let Some(t) = self.objects.get(&id) else {
                continue;
            };
            if seen.contains(&id) {
                if self.wants_update(t, now) {
                    let m = self.event_message("update", &t.published, &t.current);
                    out.push(m);
                    if let Some(t) = self.objects.get_mut(&id) {
                        t.published = t.current.clone();
                        t.last_message_time = now;
                    }
                }
            } else if t.missed + 1 > self.config.end_after_missed_frames {
                if let Some(t) = self.objects.remove(&id) {
                    out.push(self.end_message(t));
                }
            } else if let Some(t) = self.objects.get_mut(&id) {
                t.missed += 1;
            }
        }

        self.push_counts(&mut out);

        if self.config.publish_detections {
            let payload = serde_json::to_string(frame).unwrap_or_else(|_| "{}".into());
            out.push(self.msg(
                self.topic(&format!("{}/detections", self.camera)),
                payload,
                false,
            ));
        }
        out
    }

    fn end_message(&self, t: Tracked) -> Message {
        let mut after = t.current;
        after.end_time = Some(after.frame_time);
        self.event_message("end", &t.published, &after)
    }

    fn push_counts(&mut self, out: &mut Vec<Message>) {
        let mut now: BTreeMap<String, usize> = BTreeMap::new();
        for t in self.objects.values() {
            *now.entry(topic_level(&t.current.label)).or_default() += 1;
        }
        // Labels that disappeared go to 0.
        let gone: Vec<String> = self
            .counts
            .iter()
            .filter(|(label, n)| **n != 0 && !now.contains_key(*label))
            .map(|(label, _)| label.clone())
            .collect();
        for label in gone {
            self.counts.insert(label.clone(), 0);
            out.push(self.count_message(&label, 0));
        }
        for (label, n) in &now {
            if self.counts.get(label) != Some(n) {
                self.counts.insert(label.clone(), *n);
                out.push(self.count_message(label, *n));
            }
        }
        let all = self.objects.len();
        if self.all_count != Some(all) {
            self.all_count = Some(all);
            out.push(self.count_message("all", all));
        }
    }

    /// The stats message (QoS 0, not retained).
    pub fn stats(&self, stats: &PipelineStats, sink_dropped: u64) -> Message {
        let payload = json!({
            "camera": self.config.camera,
            "fps": stats.fps,
            "inference_ms": stats.inference_ms,
            "frames": stats.frames,
            "capture_drops": stats.capture_drops,
            "corrupt_frames": stats.corrupt_frames,
            "sink_drops": stats.sink_drops,
            "source_outages": stats.source_outages,
            "mqtt_dropped": sink_dropped,
        });
        Message {
            topic: self.topic("stats"),
            payload: payload.to_string(),
            retain: false,
            qos: Qos::AtMostOnce,
        }
    }

    /// Shutdown: `end` for every live object, counts to 0, `offline`. Idempotent.
    pub fn close(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        self.closed = true;
        for (_, t) in std::mem::take(&mut self.objects) {
            out.push(self.end_message(t));
        }
        self.push_counts(&mut out);
        out.push(self.last_will());
        out
    }

    /// Number of live objects.
    pub fn live(&self) -> usize {
        self.objects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::Detection;
    use crate::pipeline::TrackedDetection;
    use serde_json::Value;

    fn td(id: u64, label: &str, x: f64, score: f32) -> TrackedDetection {
        TrackedDetection {
            id,
            detection: Detection {
                label: label.into(),
                class_id: 0,
                score,
                bbox: [x, 10.0, x + 50.0, 160.0],
            },
            zones: Vec::new(),
        }
    }

    fn frame(n: u64, dets: Vec<TrackedDetection>) -> FrameResult {
        FrameResult {
            camera: "door".into(),
            frame: n,
            frame_time: 1000.0 + n as f64 * 0.1,
            width: 640,
            height: 480,
            detections: dets,
            inference_ms: 5.0,
        }
    }

    fn four() -> Vec<TrackedDetection> {
        (1..=4)
            .map(|i| td(i, "person", i as f64 * 100.0, 0.8))
            .collect()
    }

    fn state() -> EventState {
        EventState::new(EventsConfig {
            camera: "door".into(),
            ..EventsConfig::default()
        })
        .unwrap()
    }

    fn events(msgs: &[Message]) -> Vec<Value> {
        msgs.iter()
            .filter(|m| m.topic == "spotter/events")
            .map(|m| serde_json::from_str(&m.payload).unwrap())
            .collect()
    }

    fn on<'a>(msgs: &'a [Message], topic: &str) -> Vec<&'a str> {
        msgs.iter()
            .filter(|m| m.topic == topic)
            .map(|m| m.payload.as_str())
            .collect()
    }

    #[test]
    fn twelve_identical_frames_four_new_then_four_end() {
        let mut s = state();
        let mut all = s.start();
        for n in 0..12 {
            all.extend(s.frame(&frame(n, four())));
        }
        let ev = events(&all);
        assert_eq!(ev.len(), 4);
        assert!(ev
            .iter()
            .all(|e| e["type"] == "new" && e["before"] == e["after"]));
        let ids: BTreeSet<&str> = ev
            .iter()
            .map(|e| e["after"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 4);
        assert!(ids.contains("1000.000000-1"));
        let obj = &ev[0]["after"];
        assert_eq!(obj["camera"], "door");
        assert_eq!(obj["label"], "person");
        assert_eq!(obj["box"], json!([100.0, 10.0, 150.0, 160.0]));
        assert_eq!(obj["area"], json!(7500.0));
        assert_eq!(obj["end_time"], Value::Null);
        assert_eq!(on(&all, "spotter/door/person"), vec!["4"]);
        assert_eq!(on(&all, "spotter/door/all"), vec!["0", "4"]);
        let frames: Vec<u64> = on(&all, "spotter/door/detections")
            .iter()
            .map(|p| {
                serde_json::from_str::<Value>(p).unwrap()["frame"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(frames, (0..12).collect::<Vec<_>>());

        let closing = s.close();
        let ev = events(&closing);
        assert_eq!(ev.len(), 4);
        for e in &ev {
            assert_eq!(e["type"], "end");
            assert_eq!(e["after"]["end_time"], e["after"]["frame_time"]);
            assert!((e["after"]["end_time"].as_f64().unwrap() - 1001.1).abs() < 1e-9);
        }
        assert_eq!(on(&closing, "spotter/door/person"), vec!["0"]);
        assert_eq!(on(&closing, "spotter/door/all"), vec!["0"]);
        let last = closing.last().unwrap();
        assert_eq!(
            (last.topic.as_str(), last.payload.as_str(), last.retain),
            ("spotter/available", "offline", true)
        );
        assert!(s.close().is_empty());
        assert!(s.frame(&frame(12, four())).is_empty());
    }

    #[test]
    fn leaving_object_ends_after_grace_frames() {
        let mut s = EventState::new(EventsConfig {
            end_after_missed_frames: 2,
            ..EventsConfig::default()
        })
        .unwrap();
        s.frame(&frame(0, four()));
        let three: Vec<_> = four().into_iter().take(3).collect();
        for n in 1..=2 {
            let m = s.frame(&frame(n, three.clone()));
            assert!(events(&m).is_empty(), "frame {n}");
            assert!(on(&m, "spotter/camera/person").is_empty());
        }
        let m = s.frame(&frame(3, three.clone()));
        let ev = events(&m);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["type"], "end");
        assert_eq!(ev[0]["after"]["id"], "1000.000000-4");
        // Last seen in frame 0.
        assert_eq!(ev[0]["after"]["end_time"], json!(1000.0));
        assert_eq!(on(&m, "spotter/camera/person"), vec!["3"]);
        // Everybody leaves: count 0 once.
        let mut m = Vec::new();
        for n in 4..10 {
            m.extend(s.frame(&frame(n, vec![])));
        }
        assert_eq!(events(&m).len(), 3);
        assert_eq!(on(&m, "spotter/camera/person"), vec!["0"]);
        assert_eq!(on(&m, "spotter/camera/all"), vec!["0"]);
    }

    #[test]
    fn updates_follow_the_rule_and_are_rate_limited() {
        let mut s = state();
        s.frame(&frame(0, vec![td(7, "car", 0.0, 0.5)]));
        // Small jitter and lower score: nothing.
        let m = s.frame(&frame(1, vec![td(7, "car", 2.0, 0.45)]));
        assert!(events(&m).is_empty());
        // Big move 0.2 s after the `new`: pending (interval 1 s).
        let m = s.frame(&frame(2, vec![td(7, "car", 30.0, 0.5)]));
        assert!(events(&m).is_empty());
        let mut got = Vec::new();
        for n in 3..=10 {
            got.extend(events(&s.frame(&frame(n, vec![td(7, "car", 30.0, 0.5)]))));
        }
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["type"], "update");
        assert_eq!(got[0]["before"]["box"][0], json!(0.0));
        assert_eq!(got[0]["after"]["box"][0], json!(30.0));
        assert_eq!(got[0]["after"]["frame_time"], json!(1001.0));
        // top_score rise triggers (after the interval).
        let mut got = Vec::new();
        for n in 11..=25 {
            got.extend(events(&s.frame(&frame(n, vec![td(7, "car", 30.0, 0.9)]))));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["after"]["top_score"].as_f64().unwrap() as f32, 0.9);
    }

    #[test]
    fn zone_changes_publish_at_once() {
        let mut s = state();
        s.frame(&frame(0, vec![td(1, "person", 0.0, 0.8)]));
        let mut d = td(1, "person", 0.0, 0.8);
        d.zones = vec!["porch".into()];
        let ev = events(&s.frame(&frame(1, vec![d])));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["after"]["current_zones"], json!(["porch"]));
        assert_eq!(ev[0]["after"]["entered_zones"], json!(["porch"]));
        let ev = events(&s.frame(&frame(2, vec![td(1, "person", 0.0, 0.8)])));
        assert_eq!(ev[0]["after"]["current_zones"], json!([]));
        assert_eq!(ev[0]["after"]["entered_zones"], json!(["porch"]));
    }

    #[test]
    fn discovery_and_births() {
        let mut s = EventState::new(EventsConfig {
            camera: "front door".into(),
            discovery: Some(DiscoveryConfig {
                labels: vec!["person".into()],
                ..DiscoveryConfig::default()
            }),
            ..EventsConfig::default()
        })
        .unwrap();
        assert!(s.take_births_changed());
        let births = s.birth_messages();
        let topics: Vec<&str> = births.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            vec![
                "homeassistant/binary_sensor/spotter/front_door_occupancy/config",
                "homeassistant/sensor/spotter/front_door_person_count/config",
                "spotter/available",
            ]
        );
        assert!(births.iter().all(|m| m.retain));
        let cfg: Value = serde_json::from_str(&births[1].payload).unwrap();
        assert_eq!(cfg["state_topic"], "spotter/front_door/person");
        assert_eq!(cfg["availability_topic"], "spotter/available");
        assert_eq!(cfg["unique_id"], "spotter_front_door_person_count");
        let occ: Value = serde_json::from_str(&births[0].payload).unwrap();
        assert_eq!(occ["state_topic"], "spotter/front_door/all");
        assert_eq!(occ["device_class"], "occupancy");

        let start = s.start();
        assert_eq!(on(&start, "spotter/front_door/person"), vec!["0"]);
        // A new label: its discovery config first, births updated.
        let m = s.frame(&frame(0, vec![td(3, "traffic light", 0.0, 0.8)]));
        assert_eq!(
            m[0].topic,
            "homeassistant/sensor/spotter/front_door_traffic_light_count/config"
        );
        assert!(s.take_births_changed());
        assert!(!s.take_births_changed());
        assert_eq!(s.birth_messages().len(), 4);
        assert_eq!(on(&m, "spotter/front_door/traffic_light"), vec!["1"]);
        // Known label: no new discovery.
        s.frame(&frame(1, vec![td(3, "traffic light", 0.0, 0.8)]));
        assert!(!s.take_births_changed());
    }

    #[test]
    fn stats_and_config_validation() {
        let s = state();
        let m = s.stats(
            &PipelineStats {
                fps: 9.5,
                inference_ms: 12.0,
                frames: 100,
                capture_drops: 3,
                ..PipelineStats::default()
            },
            2,
        );
        assert_eq!(m.topic, "spotter/stats");
        assert_eq!(m.qos, Qos::AtMostOnce);
        let v: Value = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(v["fps"], json!(9.5));
        assert_eq!(v["capture_drops"], json!(3));
        assert_eq!(v["mqtt_dropped"], json!(2));

        for bad in ["", "a/+", "#", "/x", "x/"] {
            assert!(
                EventState::new(EventsConfig {
                    prefix: bad.into(),
                    ..EventsConfig::default()
                })
                .is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(Qos::try_from(3), Err(EventsError::BadQos(3)));
        assert_eq!(Qos::try_from(2), Ok(Qos::ExactlyOnce));
        assert_eq!(topic_level("a/b+c#"), "a_b_c_");
        assert_eq!(topic_level(""), "_");
    }
}
