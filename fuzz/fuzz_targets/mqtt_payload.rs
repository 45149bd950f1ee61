//! MQTT payload builder: events / detections / counts JSON from arbitrary detections (odd
//! labels, NaN and huge coordinates, repeated ids). Every payload must be valid JSON and every
//! topic a valid publish topic.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use spotter::detector::Detection;
use spotter::pipeline::{FrameResult, TrackedDetection};
use spotter::sinks::mqtt::events::{EventState, EventsConfig, Message};

fn f64_any(u: &mut Unstructured) -> Result<f64> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => -1e300,
        _ => f64::from(u.int_in_range(-100..=2000i32)?) / 2.0,
    })
}

fn frame(u: &mut Unstructured, n: u64, time: &mut f64) -> Result<FrameResult> {
    *time += f64::from(u.int_in_range(0..=3000u32)?) / 1000.0;
    let mut detections = Vec::new();
    for _ in 0..u.int_in_range(0..=6u8)? {
        let label: String = u.arbitrary()?;
        let score = if u.ratio(1, 16)? {
            f32::NAN
        } else {
            u.int_in_range(0..=100u8)? as f32 / 100.0
        };
        detections.push(TrackedDetection {
            id: u.int_in_range(0..=8u64)?,
            detection: Detection {
                label,
                class_id: u.int_in_range(0..=100usize)?,
                score,
                bbox: [f64_any(u)?, f64_any(u)?, f64_any(u)?, f64_any(u)?],
            },
            zones: if u.arbitrary()? {
                vec![u.arbitrary()?]
            } else {
                Vec::new()
            },
        });
    }
    Ok(FrameResult {
        camera: "cam".into(),
        frame: n,
        frame_time: *time,
        width: 640,
        height: 480,
        detections,
        inference_ms: 1.0,
    })
}

fn check(msgs: &[Message]) {
    for m in msgs {
        assert!(
            !m.topic.is_empty() && !m.topic.contains(['+', '#', '\0']),
            "{m:?}"
        );
        if m.payload.starts_with(['{', '[']) {
            serde_json::from_str::<serde_json::Value>(&m.payload)
                .unwrap_or_else(|e| panic!("{}: invalid JSON ({e}): {}", m.topic, m.payload));
        }
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let camera: String = u.arbitrary()?;
    let config = EventsConfig {
        camera,
        ..EventsConfig::default()
    };
    let Ok(mut state) = EventState::new(config) else {
        return Ok(());
    };
    check(&state.start());
    let mut time = 1_700_000_000.0;
    for n in 0..u.int_in_range(1..=12u64)? {
        let f = frame(u, n, &mut time)?;
        check(&state.frame(&f));
    }
    check(&state.close());
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
