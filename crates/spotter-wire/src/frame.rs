//! Payload layout, encoder and parser (see the crate docs and `docs/serial-protocol.md`).

use core::fmt;

use heapless::{String, Vec};

use crate::cobs::{self, CobsError};
use crate::crc::Crc16;
use crate::{
    CRC_LEN, DETECTION_FIXED_LEN, HEADER_FIXED_LEN, MAGIC, MAGIC_VERSION, MAX_CAMERA_LEN,
    MAX_DETECTIONS, MAX_LABEL_LEN, MSG_DETECTIONS, VERSION,
};

/// Per-frame fields.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FrameHeader {
    /// Frame number (the source's sequence number).
    pub frame: u64,
    /// Capture time, seconds since the Unix epoch.
    pub frame_time: f64,
    /// Image size in pixels; boxes are in this coordinate system.
    pub width: u16,
    pub height: u16,
    /// Camera name, UTF-8, at most [`MAX_CAMERA_LEN`] bytes.
    pub camera: String<MAX_CAMERA_LEN>,
}

/// One detection.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Detection {
    /// Stable id of the tracked object.
    pub track_id: u64,
    pub class_id: u16,
    /// Confidence in `[0, 1]`.
    pub score: f32,
    /// `[x1, y1, x2, y2]` (left, top, right, bottom) in pixels of the image, as f32.
    pub bbox: [f32; 4],
    /// Class name, UTF-8, at most [`MAX_LABEL_LEN`] bytes.
    pub label: String<MAX_LABEL_LEN>,
}

/// A decoded frame holding at most `D` detections.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Frame<const D: usize> {
    pub header: FrameHeader,
    pub detections: Vec<Detection, D>,
}

/// `s` cut to at most `N` bytes at a UTF-8 char boundary (the wire's rule for labels and
/// camera names that are too long).
pub fn bounded_str<const N: usize>(s: &str) -> String<N> {
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::new();
    // Cannot fail: `end <= N`.
    let _ = out.push_str(&s[..end]);
    out
}

/// Errors of encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer cannot hold the encoded frame; size it with
    /// [`max_encoded_len`](crate::max_encoded_len).
    BufferTooSmall,
    /// More than [`MAX_DETECTIONS`] detections.
    TooManyDetections(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall => write!(f, "output buffer too small for the frame"),
            EncodeError::TooManyDetections(n) => {
                write!(f, "{n} detections, a frame holds at most {MAX_DETECTIONS}")
            }
        }
    }
}

/// Errors of decoding one frame. `Copy` and small so a microcontroller can keep the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Invalid COBS block (bad code byte or truncated block).
    Cobs(CobsError),
    /// CRC mismatch: the frame was corrupted (or is garbage between delimiters).
    Crc { computed: u16, received: u16 },
    /// Fewer bytes than the fields announce (a truncated frame).
    Truncated,
    /// Bytes left after the last detection.
    TrailingBytes(usize),
    /// Byte 0 does not carry the magic nibble `0xA`.
    BadMagic(u8),
    /// Magic is right but the version nibble is not [`VERSION`].
    UnsupportedVersion(u8),
    /// Message type other than [`MSG_DETECTIONS`].
    UnknownMessageType(u8),
    /// A camera name or label length beyond its bound.
    StringTooLong(u8),
    /// A camera name or label that is not UTF-8.
    InvalidUtf8,
    /// More detections than the decoder's capacity `D`.
    TooManyDetections { count: u8, capacity: usize },
    /// More bytes before a delimiter than the decoder's buffer `N` holds.
    Overflow,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Cobs(CobsError::ZeroInBlock) => write!(f, "COBS: zero byte in block"),
            DecodeError::Cobs(CobsError::Truncated) => write!(f, "COBS: truncated block"),
            DecodeError::Crc { computed, received } => {
                write!(
                    f,
                    "CRC mismatch: computed {computed:#06x}, frame says {received:#06x}"
                )
            }
            DecodeError::Truncated => write!(f, "frame truncated"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes after the last detection"),
            DecodeError::BadMagic(b) => write!(f, "bad magic byte {b:#04x}, expected 0xA_"),
            DecodeError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported version {v}, this decoder reads version {VERSION}"
                )
            }
            DecodeError::UnknownMessageType(t) => write!(f, "unknown message type {t:#04x}"),
            DecodeError::StringTooLong(n) => write!(f, "string of {n} bytes exceeds its bound"),
            DecodeError::InvalidUtf8 => write!(f, "string is not UTF-8"),
            DecodeError::TooManyDetections { count, capacity } => {
                write!(f, "{count} detections, decoder holds at most {capacity}")
            }
            DecodeError::Overflow => write!(f, "frame longer than the decoder buffer"),
        }
    }
}

/// Feeds payload bytes through the CRC and the COBS encoder.
struct PayloadWriter<'a> {
    crc: Crc16,
    cobs: cobs::Encoder<'a>,
}

impl PayloadWriter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.cobs.push_slice(bytes);
    }

    fn put_str(&mut self, s: &str, max: usize) {
        // Callers hold `heapless::String<max>`, so `len <= max <= 255`.
        let len = s.len().min(max);
        self.put(&[len as u8]);
        self.put(&s.as_bytes()[..len]);
    }
}

/// Encode one frame as `COBS(payload ‖ CRC) ‖ 0x00` into `out`; returns the bytes written.
pub fn encode_frame(
    header: &FrameHeader,
    detections: &[Detection],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    if detections.len() > MAX_DETECTIONS {
        return Err(EncodeError::TooManyDetections(detections.len()));
    }
    let mut w = PayloadWriter {
        crc: Crc16::new(),
        cobs: cobs::Encoder::new(out),
    };
    w.put(&[MAGIC_VERSION, MSG_DETECTIONS]);
    w.put(&header.frame.to_le_bytes());
    w.put(&header.frame_time.to_le_bytes());
    w.put(&header.width.to_le_bytes());
    w.put(&header.height.to_le_bytes());
    w.put_str(&header.camera, MAX_CAMERA_LEN);
    w.put(&[detections.len() as u8]);
    for d in detections {
        w.put(&d.track_id.to_le_bytes());
        w.put(&d.class_id.to_le_bytes());
        w.put(&d.score.to_le_bytes());
        for c in d.bbox {
            w.put(&c.to_le_bytes());
        }
        w.put_str(&d.label, MAX_LABEL_LEN);
    }
    let crc = w.crc.value();
    w.cobs.push_slice(&crc.to_le_bytes());
    w.cobs.finish(true).map_err(|_| EncodeError::BufferTooSmall)
}

/// [`encode_frame`] into a `heapless::Vec` (cleared first).
pub fn encode_frame_vec<const N: usize>(
    header: &FrameHeader,
    detections: &[Detection],
    out: &mut Vec<u8, N>,
) -> Result<(), EncodeError> {
    out.clear();
    // Cannot fail: the length equals the capacity.
    let _ = out.resize_default(N);
    match encode_frame(header, detections, out) {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

/// Little-endian cursor over a payload; every read is bounds-checked.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn array<const K: usize>(&mut self) -> Result<[u8; K], DecodeError> {
        let mut a = [0u8; K];
        a.copy_from_slice(self.take(K)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn string<const M: usize>(&mut self) -> Result<String<M>, DecodeError> {
        let len = self.u8()?;
        if len as usize > M {
            return Err(DecodeError::StringTooLong(len));
        }
        let s =
            core::str::from_utf8(self.take(len as usize)?).map_err(|_| DecodeError::InvalidUtf8)?;
        let mut out = String::new();
        out.push_str(s)
            .map_err(|_| DecodeError::StringTooLong(len))?;
        Ok(out)
    }
}

/// Parse a COBS-decoded payload including its 2-byte CRC trailer.
pub fn parse_payload<const D: usize>(payload: &[u8]) -> Result<Frame<D>, DecodeError> {
    if payload.len() < CRC_LEN {
        return Err(DecodeError::Truncated);
    }
    let (body, trailer) = payload.split_at(payload.len() - CRC_LEN);
    let received = u16::from_le_bytes([trailer[0], trailer[1]]);
    let mut crc = Crc16::new();
    crc.update(body);
    if crc.value() != received {
        return Err(DecodeError::Crc {
            computed: crc.value(),
            received,
        });
    }
    if body.len() < HEADER_FIXED_LEN {
        // Check the leading bytes first so a short frame of a future version says so.
        if let Some(&b) = body.first() {
            check_magic(b)?;
        }
        return Err(DecodeError::Truncated);
    }
    let mut r = Reader { data: body };
    check_magic(r.u8()?)?;
    let ty = r.u8()?;
    if ty != MSG_DETECTIONS {
        return Err(DecodeError::UnknownMessageType(ty));
    }
    let frame = u64::from_le_bytes(r.array()?);
    let frame_time = f64::from_le_bytes(r.array()?);
    let width = u16::from_le_bytes(r.array()?);
    let height = u16::from_le_bytes(r.array()?);
    let camera = r.string::<MAX_CAMERA_LEN>()?;
    let count = r.u8()?;
    if count as usize > D {
        return Err(DecodeError::TooManyDetections { count, capacity: D });
    }
    let mut detections = Vec::new();
    for _ in 0..count {
        if r.data.len() < DETECTION_FIXED_LEN {
            return Err(DecodeError::Truncated);
        }
        let track_id = u64::from_le_bytes(r.array()?);
        let class_id = u16::from_le_bytes(r.array()?);
        let score = f32::from_le_bytes(r.array()?);
        let mut bbox = [0f32; 4];
        for c in &mut bbox {
            *c = f32::from_le_bytes(r.array()?);
        }
        let label = r.string::<MAX_LABEL_LEN>()?;
        // Cannot fail: `count <= D` was checked above.
        let _ = detections.push(Detection {
            track_id,
            class_id,
            score,
            bbox,
            label,
        });
    }
    if !r.data.is_empty() {
        return Err(DecodeError::TrailingBytes(r.data.len()));
    }
    Ok(Frame {
        header: FrameHeader {
            frame,
            frame_time,
            width,
            height,
            camera,
        },
        detections,
    })
}

fn check_magic(b: u8) -> Result<(), DecodeError> {
    if b & 0xF0 != MAGIC {
        return Err(DecodeError::BadMagic(b));
    }
    if b & 0x0F != VERSION {
        return Err(DecodeError::UnsupportedVersion(b & 0x0F));
    }
    Ok(())
}

/// Decode one encoded frame (the bytes between two delimiters, delimiter excluded). The buffer
/// is COBS-decoded in place and its contents are unspecified afterwards.
pub fn decode_frame<const D: usize>(encoded: &mut [u8]) -> Result<Frame<D>, DecodeError> {
    let n = cobs::decode_in_place(encoded).map_err(DecodeError::Cobs)?;
    parse_payload(&encoded[..n])
}
