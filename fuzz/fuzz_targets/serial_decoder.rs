//! Serial wire format: COBS decoding, the streaming frame decoder (no_std) and
//! `decode_stream` (what `spotter decode-serial --format cobs` runs) on arbitrary bytes.
//!
//! Raw bytes rarely get past the CRC, so half of the inputs are structure-aware: the input
//! describes a valid frame, which is encoded, checked to round-trip, then damaged at positions
//! the input picks and decoded again.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use spotter_wire as wire;

fn decode_all(data: &[u8]) {
    let mut out = vec![0u8; data.len() + 1];
    let _ = wire::cobs::decode(data, &mut out);
    let mut buf = data.to_vec();
    let _ = wire::cobs::decode_in_place(&mut buf);
    let _ = wire::parse_payload::<{ wire::MAX_DETECTIONS }>(data);

    let mut decoder = Box::new(wire::Decoder::<1024, 16>::new());
    let mut rest = data;
    while !rest.is_empty() {
        let (used, _) = decoder.feed(rest);
        assert!(used >= 1 && used <= rest.len());
        rest = &rest[used..];
    }

    let mut lines = Vec::new();
    let stats = spotter::sinks::serial::decode_stream(data, &mut lines).expect("in-memory I/O");
    assert_eq!(
        stats.frames as usize,
        lines.iter().filter(|&&b| b == b'\n').count()
    );
}

fn bounded<const N: usize>(u: &mut Unstructured) -> Result<heapless::String<N>> {
    let s: &str = u.arbitrary()?;
    Ok(wire::bounded_str(s))
}

fn structured(u: &mut Unstructured) -> Result<()> {
    let header = wire::FrameHeader {
        frame: u.arbitrary()?,
        frame_time: u.arbitrary()?,
        width: u.arbitrary()?,
        height: u.arbitrary()?,
        camera: bounded(u)?,
    };
    let mut dets = Vec::new();
    for _ in 0..u.int_in_range(0..=8u8)? {
        dets.push(wire::Detection {
            track_id: u.arbitrary()?,
            class_id: u.arbitrary()?,
            score: u.arbitrary()?,
            bbox: u.arbitrary()?,
            label: bounded(u)?,
        });
    }
    let mut buf = vec![0u8; wire::max_encoded_len(dets.len())];
    let n = wire::encode_frame(&header, &dets, &mut buf).expect("buffer of max_encoded_len");
    buf.truncate(n);
    let mut decoder = Box::new(wire::Decoder::<{ wire::max_encoded_len(8) }, 8>::new());
    let (used, got) = decoder.feed(&buf);
    assert_eq!(used, buf.len());
    let got = got
        .expect("a delimited frame")
        .expect("a valid frame decodes");
    assert_eq!(got.detections.len(), dets.len());
    assert_eq!(got.header.frame, header.frame);
    // Damage: flips at input-chosen positions, then decode the whole stream twice over.
    for _ in 0..u.int_in_range(0..=4u8)? {
        let at = u.choose_index(buf.len())?;
        buf[at] ^= u.int_in_range(1..=255u8)?;
    }
    let cut = u.int_in_range(0..=buf.len())?;
    let mut stream = buf.clone();
    stream.extend_from_slice(&buf[..cut]);
    decode_all(&stream);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&mode, rest)) if mode & 1 == 1 => {
            let _ = structured(&mut Unstructured::new(rest));
        }
        _ => decode_all(data),
    }
});
