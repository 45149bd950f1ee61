//! Frame-level tests: round trips, corruption, truncation, resync, capacities.

use heapless::{String, Vec};

use super::*;
use crate::cobs::CobsError;

const D: usize = 8;
const N: usize = max_encoded_len(D);
const NMAX: usize = max_encoded_len(MAX_DETECTIONS);

fn header() -> FrameHeader {
    FrameHeader {
        frame: 0x0102_0304_0506_0708,
        frame_time: 1_700_000_000.25,
        width: 640,
        height: 480,
        camera: bounded_str("front-door"),
    }
}

fn det(i: u64) -> Detection {
    Detection {
        track_id: i,
        class_id: (i % 90) as u16,
        score: 0.5 + i as f32 / 1000.0,
        bbox: [1.5 + i as f32, 2.0, 300.25, 479.0],
        label: bounded_str(if i % 2 == 0 { "person" } else { "" }),
    }
}

fn encode<const M: usize>(h: &FrameHeader, d: &[Detection]) -> Vec<u8, M> {
    let mut v = Vec::new();
    encode_frame_vec(h, d, &mut v).unwrap();
    v
}

/// Feed all bytes; collect results.
fn feed_all<const M: usize, const K: usize>(
    dec: &mut Decoder<M, K>,
    mut data: &[u8],
) -> std::vec::Vec<Result<Frame<K>, DecodeError>> {
    let mut out = std::vec::Vec::new();
    while !data.is_empty() {
        let (n, r) = dec.feed(data);
        out.extend(r);
        data = &data[n..];
    }
    out
}

extern crate std;

#[test]
fn round_trip() {
    let dets: std::vec::Vec<Detection> = (0..5).map(det).collect();
    let wire: Vec<u8, N> = encode(&header(), &dets);
    assert_eq!(*wire.last().unwrap(), 0);
    assert!(!wire[..wire.len() - 1].contains(&0));
    let mut dec = Decoder::<N, D>::new();
    let got = feed_all(&mut dec, &wire);
    assert_eq!(got.len(), 1);
    let f = got[0].clone().unwrap();
    assert_eq!(f.header, header());
    assert_eq!(&f.detections[..], &dets[..]);
    assert_eq!(dec.stats().frames, 1);
    assert_eq!(dec.stats().errors(), 0);
}

#[test]
fn round_trip_empty_frame_and_extremes() {
    let h = FrameHeader {
        frame: u64::MAX,
        frame_time: -0.0,
        width: u16::MAX,
        height: 0,
        camera: String::new(),
    };
    let d = Detection {
        track_id: u64::MAX,
        class_id: u16::MAX,
        score: f32::MIN_POSITIVE,
        bbox: [-1.0, f32::MAX, 0.0, 1e-30],
        label: bounded_str("x".repeat(MAX_LABEL_LEN).as_str()),
    };
    for dets in [&[][..], core::slice::from_ref(&d)] {
        let wire: Vec<u8, N> = encode(&h, dets);
        let mut dec = Decoder::<N, D>::new();
        let f = feed_all(&mut dec, &wire).pop().unwrap().unwrap();
        assert_eq!(f.header.frame, u64::MAX);
        assert!(f.header.frame_time.is_sign_negative());
        assert_eq!(&f.detections[..], dets);
    }
}

#[test]
fn max_detections_fit_computed_bound() {
    let long = "l".repeat(MAX_LABEL_LEN + 10);
    let dets: std::vec::Vec<Detection> = (0..MAX_DETECTIONS as u64)
        .map(|i| Detection {
            label: bounded_str(&long),
            ..det(i)
        })
        .collect();
    let mut h = header();
    h.camera = bounded_str(&"c".repeat(100));
    assert_eq!(h.camera.len(), MAX_CAMERA_LEN);
    let mut buf = std::vec![0u8; NMAX];
    let n = encode_frame(&h, &dets, &mut buf).unwrap();
    // Every string at its maximum: the frame is as large as it gets, and the bound holds
    // (the bound also covers worst-case COBS overhead, which this data does not reach).
    assert!(n <= NMAX);
    let mut dec = std::boxed::Box::new(Decoder::<NMAX, MAX_DETECTIONS>::new());
    let f = feed_all(&mut dec, &buf[..n]).pop().unwrap().unwrap();
    assert_eq!(f.detections.len(), MAX_DETECTIONS);
    assert_eq!(&f.detections[..], &dets[..]);

    // One more is refused by the encoder.
    let mut more = dets.clone();
    more.push(det(0));
    assert_eq!(
        encode_frame(&h, &more, &mut buf),
        Err(EncodeError::TooManyDetections(256))
    );
}

#[test]
fn capacity_exceeded_is_an_error_not_a_panic() {
    let dets: std::vec::Vec<Detection> = (0..5).map(det).collect();
    let wire: Vec<u8, N> = encode(&header(), &dets);
    let mut dec = Decoder::<N, 4>::new();
    let r = feed_all(&mut dec, &wire);
    assert_eq!(
        r[0],
        Err(DecodeError::TooManyDetections {
            count: 5,
            capacity: 4
        })
    );
    assert_eq!(dec.stats().malformed, 1);
}

#[test]
fn encoder_buffer_too_small() {
    let dets: std::vec::Vec<Detection> = (0..3).map(det).collect();
    let mut small = [0u8; 40];
    assert_eq!(
        encode_frame(&header(), &dets, &mut small),
        Err(EncodeError::BufferTooSmall)
    );
    let mut v: Vec<u8, 40> = Vec::new();
    assert_eq!(
        encode_frame_vec(&header(), &dets, &mut v),
        Err(EncodeError::BufferTooSmall)
    );
    assert!(v.is_empty());
}

#[test]
fn label_truncation_respects_char_boundaries() {
    // 31 ASCII bytes + a 2-byte char straddling the 32-byte bound.
    let s = std::format!("{}é", "a".repeat(31));
    let b: String<MAX_LABEL_LEN> = bounded_str(&s);
    assert_eq!(b.len(), 31);
    let s = std::format!("{}é", "a".repeat(30));
    assert_eq!(bounded_str::<MAX_LABEL_LEN>(&s).as_str(), s.as_str());
}

#[test]
fn every_single_bit_flip_is_detected() {
    let dets: std::vec::Vec<Detection> = (0..3).map(det).collect();
    let wire: Vec<u8, N> = encode(&header(), &dets);
    let body = wire.len() - 1; // keep the delimiter
    for i in 0..body {
        for bit in 0..8 {
            let mut bad = wire.clone();
            bad[i] ^= 1 << bit;
            let mut dec = Decoder::<N, D>::new();
            let results = feed_all(&mut dec, &bad);
            // A flip can create a 0x00 and split the frame in two; no part may decode.
            assert!(!results.is_empty(), "byte {i} bit {bit}: nothing reported");
            assert!(
                results.iter().all(|r| r.is_err()),
                "byte {i} bit {bit}: {results:?}"
            );
            assert_eq!(dec.stats().frames, 0);
            assert_eq!(dec.stats().errors() as usize, results.len());
        }
    }
}

#[test]
fn payload_corruption_reports_crc() {
    let wire: Vec<u8, N> = encode(&header(), &[det(1)]);
    let mut bad = wire.clone();
    // Byte 5 is inside the first COBS block's data (frame number), so COBS stays valid.
    bad[5] ^= 0x40;
    let mut dec = Decoder::<N, D>::new();
    let r = feed_all(&mut dec, &bad);
    assert!(matches!(r[..], [Err(DecodeError::Crc { .. })]), "{r:?}");
    assert_eq!(dec.stats().crc_errors, 1);
}

#[test]
fn truncated_frames_are_rejected() {
    let dets: std::vec::Vec<Detection> = (0..2).map(det).collect();
    let wire: Vec<u8, N> = encode(&header(), &dets);
    for cut in 1..wire.len() - 1 {
        let mut t: Vec<u8, N> = Vec::from_slice(&wire[..cut]).unwrap();
        t.push(0).unwrap();
        let mut dec = Decoder::<N, D>::new();
        let r = feed_all(&mut dec, &t);
        assert_eq!(r.len(), 1, "cut {cut}");
        assert!(r[0].is_err(), "cut {cut}");
    }
    // A payload cut after a valid CRC is recomputed: still rejected as truncated.
    assert_eq!(parse_payload::<D>(&[0xA1]), Err(DecodeError::Truncated));
}

#[test]
fn truncated_payload_with_valid_crc() {
    // Header announces one detection but carries none.
    let mut p: Vec<u8, 64> = Vec::new();
    p.extend_from_slice(&[MAGIC_VERSION, MSG_DETECTIONS])
        .unwrap();
    p.extend_from_slice(&[0; 8 + 8 + 2 + 2]).unwrap();
    p.extend_from_slice(&[0, 1]).unwrap(); // camera "", 1 detection
    let crc = crc::crc16(&p);
    p.extend_from_slice(&crc.to_le_bytes()).unwrap();
    assert_eq!(parse_payload::<D>(&p), Err(DecodeError::Truncated));
}

#[test]
fn resync_after_garbage() {
    let a: Vec<u8, N> = encode(&header(), &[det(1)]);
    let mut h2 = header();
    h2.frame += 1;
    let b: Vec<u8, N> = encode(&h2, &[det(2), det(3)]);
    let mut stream: std::vec::Vec<u8> = std::vec::Vec::new();
    // Garbage before the first delimiter, a partial frame, a lone delimiter, garbage between
    // frames, and a frame without leading delimiter after garbage ended by one.
    stream.extend_from_slice(&[0x13, 0x37, 0xFF, 0x42]);
    stream.extend_from_slice(&a[..a.len() / 2]);
    stream.push(0);
    stream.extend_from_slice(&a);
    stream.extend_from_slice(&[0x55; 10]);
    stream.push(0);
    stream.push(0);
    stream.extend_from_slice(&b);
    let mut dec = Decoder::<N, D>::new();
    let r = feed_all(&mut dec, &stream);
    let ok: std::vec::Vec<_> = r.iter().filter_map(|x| x.as_ref().ok()).collect();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].header.frame, header().frame);
    assert_eq!(ok[1].header.frame, h2.frame);
    assert_eq!(&ok[1].detections[..], &[det(2), det(3)]);
    assert_eq!(dec.stats().frames, 2);
    assert_eq!(dec.stats().errors(), 2);
}

#[test]
fn overflow_discards_until_delimiter() {
    let a: Vec<u8, N> = encode(&header(), &[det(1)]);
    let mut dec = Decoder::<100, D>::new();
    let mut stream: std::vec::Vec<u8> = std::vec![0x11; 200];
    stream.push(0);
    stream.extend_from_slice(&a[..]);
    let r = feed_all(&mut dec, &stream);
    assert_eq!(r[0], Err(DecodeError::Overflow));
    assert!(r[1].is_ok(), "{:?}", r[1]);
    assert_eq!(dec.stats().overflows, 1);
    assert_eq!(dec.pending(), 0);
}

#[test]
fn version_and_type_checks() {
    let wire: Vec<u8, N> = encode(&header(), &[]);
    let mut buf = [0u8; N];
    let n = cobs::decode(&wire[..wire.len() - 1], &mut buf).unwrap();
    let payload = &mut buf[..n];
    let fix_crc = |p: &mut [u8]| {
        let k = p.len() - 2;
        let c = crc::crc16(&p[..k]);
        p[k..].copy_from_slice(&c.to_le_bytes());
    };
    payload[0] = 0xA2;
    fix_crc(payload);
    assert_eq!(
        parse_payload::<D>(payload),
        Err(DecodeError::UnsupportedVersion(2))
    );
    payload[0] = 0x51;
    fix_crc(payload);
    assert_eq!(
        parse_payload::<D>(payload),
        Err(DecodeError::BadMagic(0x51))
    );
    payload[0] = MAGIC_VERSION;
    payload[1] = 0x7F;
    fix_crc(payload);
    assert_eq!(
        parse_payload::<D>(payload),
        Err(DecodeError::UnknownMessageType(0x7F))
    );
}

#[test]
fn trailing_bytes_and_bad_strings() {
    let build = |extra: &[u8], cam: &[u8]| {
        let mut p: std::vec::Vec<u8> = std::vec![MAGIC_VERSION, MSG_DETECTIONS];
        p.extend_from_slice(&[0; 20]);
        p.push(cam.len() as u8);
        p.extend_from_slice(cam);
        p.push(0);
        p.extend_from_slice(extra);
        let c = crc::crc16(&p);
        p.extend_from_slice(&c.to_le_bytes());
        p
    };
    assert!(parse_payload::<D>(&build(&[], b"cam")).is_ok());
    assert_eq!(
        parse_payload::<D>(&build(&[9, 9], b"cam")),
        Err(DecodeError::TrailingBytes(2))
    );
    assert_eq!(
        parse_payload::<D>(&build(&[], &[0xFF, 0xFE])),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(
        parse_payload::<D>(&build(&[], &[b'c'; 40])),
        Err(DecodeError::StringTooLong(40))
    );
}

#[test]
fn cobs_error_counted() {
    let mut dec = Decoder::<N, D>::new();
    // Code byte 0x09 announces 8 bytes, only 2 follow.
    let r = feed_all(&mut dec, &[0x09, 1, 2, 0]);
    assert_eq!(r, std::vec![Err(DecodeError::Cobs(CobsError::Truncated))]);
    assert_eq!(dec.stats().cobs_errors, 1);
}

#[test]
fn example_frame_of_the_protocol_doc() {
    // The worked example of docs/serial-protocol.md; keep both in sync.
    let h = FrameHeader {
        frame: 42,
        frame_time: 1_700_000_000.5,
        width: 640,
        height: 480,
        camera: bounded_str("cam0"),
    };
    let d = Detection {
        track_id: 7,
        class_id: 0,
        score: 0.875,
        bbox: [10.0, 20.5, 110.0, 220.0],
        label: bounded_str("person"),
    };
    let wire: Vec<u8, N> = encode(&h, core::slice::from_ref(&d));
    let mut hex = std::string::String::new();
    for b in wire.iter() {
        hex.push_str(&std::format!("{b:02x}"));
    }
    assert_eq!(hex, EXAMPLE_HEX, "update docs/serial-protocol.md");
}

const EXAMPLE_HEX: &str = "04a1012a0101010101010101122040fc54d9418002e0010463616d3001070101010101010101010103603f010320410103a4410103dc42010c5c4306706572736f6ec3ab00";
