//! Incremental decoder: bytes in as they arrive, frames out.

use heapless::Vec;

use crate::frame::{decode_frame, DecodeError, Frame};

/// Counters of a [`Decoder`]. Wrapping `u32`s: a microcontroller can report them as is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames decoded successfully.
    pub frames: u32,
    /// Frames rejected for a CRC mismatch.
    pub crc_errors: u32,
    /// Frames rejected for invalid COBS.
    pub cobs_errors: u32,
    /// Frames longer than the decoder buffer (discarded up to the next delimiter).
    pub overflows: u32,
    /// Frames with a good CRC that could not be parsed (wrong version or type, bad lengths,
    /// more detections than the capacity).
    pub malformed: u32,
}

impl DecoderStats {
    /// All rejected frames.
    pub fn errors(&self) -> u32 {
        self.crc_errors
            .wrapping_add(self.cobs_errors)
            .wrapping_add(self.overflows)
            .wrapping_add(self.malformed)
    }
}

/// Incremental frame decoder with an `N`-byte receive buffer (size it with
/// [`max_encoded_len`](crate::max_encoded_len)) yielding frames of at most `D` detections.
///
/// Resynchronization: every `0x00` ends a frame. Whatever came before it, a valid frame or
/// garbage, is decoded or rejected as a unit, so after any corruption the decoder is in sync
/// again at the next delimiter. Empty frames (consecutive `0x00`s) are ignored, which lets a
/// sender emit a lone `0x00` after (re)connecting to flush a receiver's partial frame.
pub struct Decoder<const N: usize, const D: usize> {
    buf: Vec<u8, N>,
    overflowed: bool,
    stats: DecoderStats,
}

impl<const N: usize, const D: usize> Default for Decoder<N, D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const D: usize> Decoder<N, D> {
    pub const fn new() -> Self {
        Decoder {
            buf: Vec::new(),
            overflowed: false,
            stats: DecoderStats {
                frames: 0,
                crc_errors: 0,
                cobs_errors: 0,
                overflows: 0,
                malformed: 0,
            },
        }
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Bytes of the current partial frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Drop the current partial frame (e.g. after the UART reported a framing error).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overflowed = false;
    }

    /// Take one byte. Returns `Some` when it completed a frame: the frame, or why the bytes
    /// since the previous delimiter were rejected (already counted in [`stats`](Self::stats)).
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame<D>, DecodeError>> {
        if byte != 0 {
            if !self.overflowed && self.buf.push(byte).is_err() {
                self.overflowed = true;
            }
            return None;
        }
        if self.overflowed {
            self.reset();
            self.stats.overflows = self.stats.overflows.wrapping_add(1);
            return Some(Err(DecodeError::Overflow));
        }
        if self.buf.is_empty() {
            return None;
        }
        let result = decode_frame::<D>(&mut self.buf);
        self.buf.clear();
        let counter = match &result {
            Ok(_) => &mut self.stats.frames,
            Err(DecodeError::Crc { .. }) => &mut self.stats.crc_errors,
            Err(DecodeError::Cobs(_)) => &mut self.stats.cobs_errors,
            Err(DecodeError::Overflow) => &mut self.stats.overflows,
            Err(_) => &mut self.stats.malformed,
        };
        *counter = counter.wrapping_add(1);
        Some(result)
    }

    /// Take bytes until one completes a frame. Returns how many bytes of `data` were consumed
    /// and, if a frame completed, the result; call again with `&data[consumed..]`.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Result<Frame<D>, DecodeError>>) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(r) = self.push(b) {
                return (i + 1, Some(r));
            }
        }
        (data.len(), None)
    }
}
