//! `spotter-wire`: the binary frame spotter sends over serial links, one frame per processed
//! video frame. `no_std`, no allocation; capacities are const generics.
//!
//! A frame on the wire is `COBS(payload ‖ CRC-16/CCITT-FALSE(payload) as u16 LE) ‖ 0x00`.
//! The payload layout (all integers and floats little-endian) is documented byte by byte in
//! `docs/serial-protocol.md` of the spotter repository and mirrored by the constants here.
//!
//! - Encoding: [`encode_frame`] (into a `&mut [u8]`) or [`encode_frame_vec`] (into a
//!   `heapless::Vec`). The encoder streams payload bytes through the CRC and the COBS encoder,
//!   so it needs no scratch buffer.
//! - Decoding: [`Decoder`] takes bytes as they arrive from a UART and yields complete frames;
//!   anything between two `0x00` delimiters that is not a valid frame (garbage, a flipped bit,
//!   a truncated frame) is reported once, counted in [`DecoderStats`], and skipped.
#![no_std]

pub mod cobs;
pub mod crc;
mod decoder;
mod frame;

pub use decoder::{Decoder, DecoderStats};
pub use frame::{
    bounded_str, decode_frame, encode_frame, encode_frame_vec, parse_payload, DecodeError,
    Detection, EncodeError, Frame, FrameHeader,
};

/// High nibble of byte 0 of every payload.
pub const MAGIC: u8 = 0xA0;
/// Low nibble of byte 0: the layout version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Byte 0 of every version-1 payload.
pub const MAGIC_VERSION: u8 = MAGIC | VERSION;
/// Byte 1: message type "detections of one frame" (the only type in version 1).
pub const MSG_DETECTIONS: u8 = 0x01;

/// Longest label in bytes of UTF-8; longer labels are truncated at a char boundary.
pub const MAX_LABEL_LEN: usize = 32;
/// Longest camera name in bytes of UTF-8; longer names are truncated at a char boundary.
pub const MAX_CAMERA_LEN: usize = 32;
/// Most detections in one frame (the count is one byte).
pub const MAX_DETECTIONS: usize = 255;

/// Payload bytes before the camera name: magic/version 1, type 1, frame 8, frame_time 8,
/// width 2, height 2, camera length 1.
pub const HEADER_FIXED_LEN: usize = 23;
/// Payload bytes of one detection before its label: track id 8, class id 2, score 4,
/// box 4×4, label length 1.
pub const DETECTION_FIXED_LEN: usize = 31;
/// Bytes of the CRC trailer.
pub const CRC_LEN: usize = 2;

/// Largest payload including CRC (before COBS) of a frame with `detections` detections.
pub const fn max_payload_len(detections: usize) -> usize {
    HEADER_FIXED_LEN
        + MAX_CAMERA_LEN
        + 1 // detection count
        + detections * (DETECTION_FIXED_LEN + MAX_LABEL_LEN)
        + CRC_LEN
}

/// Largest encoded frame on the wire (COBS overhead and the `0x00` delimiter included) with
/// `detections` detections. Use it to size encoder buffers and the decoder's `N`.
pub const fn max_encoded_len(detections: usize) -> usize {
    cobs::max_encoded_len(max_payload_len(detections)) + 1
}

#[cfg(test)]
mod tests;
