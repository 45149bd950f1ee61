//! Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999), standard variant: a block of up
//! to 254 non-zero bytes is preceded by a code byte `n+1`; code `0xFF` means "254 bytes and no
//! implied zero"; every other block is followed by an implied zero except the last. An encoded
//! block never contains `0x00`, so `0x00` delimits frames on the wire.
//!
//! Overhead: at most one byte per 254 bytes of input, plus one; see [`max_encoded_len`].

/// Errors of COBS decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CobsError {
    /// A `0x00` byte inside an encoded block (a delimiter is never part of a block).
    ZeroInBlock,
    /// A code byte announces more bytes than the block has left.
    Truncated,
}

/// Largest encoded size (without delimiter) of `n` input bytes.
pub const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// The output buffer of an encoder was too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall;

/// Streaming COBS encoder writing into a caller buffer. Feed bytes with [`push`](Self::push)
/// and end with [`finish`](Self::finish); no temporary copy of the input is needed.
///
/// Contract: if the buffer overflows, later pushes are ignored and `finish` reports
/// [`BufferTooSmall`]; the buffer contents are then unspecified.
pub struct Encoder<'a> {
    out: &'a mut [u8],
    /// Next free output index.
    pos: usize,
    /// Index of the pending code byte of the current block.
    code_pos: usize,
    /// Code of the current block: 1 + number of data bytes in it so far.
    code: u8,
    overflow: bool,
}

impl<'a> Encoder<'a> {
    pub fn new(out: &'a mut [u8]) -> Self {
        // Index 0 is reserved for the first code byte.
        let overflow = out.is_empty();
        Encoder {
            out,
            pos: 1,
            code_pos: 0,
            code: 1,
            overflow,
        }
    }

    fn put(&mut self, idx: usize, byte: u8) {
        match self.out.get_mut(idx) {
            Some(slot) => *slot = byte,
            None => self.overflow = true,
        }
    }

    /// Close the current block with its code and reserve a code byte for the next one.
    fn close_block(&mut self) {
        self.put(self.code_pos, self.code);
        self.code_pos = self.pos;
        self.pos += 1;
        self.code = 1;
    }

    pub fn push(&mut self, byte: u8) {
        if self.overflow {
            return;
        }
        // A full block (254 data bytes) is closed lazily, only when another byte follows: the
        // standard encoding of exactly 254 trailing non-zero bytes ends without an empty block.
        if self.code == 0xFF {
            self.close_block();
        }
        if byte == 0 {
            self.close_block();
        } else {
            self.put(self.pos, byte);
            self.pos += 1;
            self.code += 1;
        }
    }

    pub fn push_slice(&mut self, data: &[u8]) {
        for &b in data {
            self.push(b);
        }
    }

    /// Write the final code byte; with `delimit`, also a trailing `0x00`.
    /// Returns the number of bytes written.
    pub fn finish(mut self, delimit: bool) -> Result<usize, BufferTooSmall> {
        if self.overflow {
            return Err(BufferTooSmall);
        }
        self.put(self.code_pos, self.code);
        if delimit {
            self.put(self.pos, 0);
            self.pos += 1;
        }
        if self.overflow {
            Err(BufferTooSmall)
        } else {
            Ok(self.pos)
        }
    }
}

/// COBS-encode `src` into `dst` (no delimiter). Returns the encoded length.
pub fn encode(src: &[u8], dst: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut e = Encoder::new(dst);
    e.push_slice(src);
    e.finish(false)
}

/// Decode one COBS block (without its delimiter) in place; returns the decoded length, the
/// decoded bytes are `buf[..len]`. In-place works because output never overtakes input: each
/// block's code byte is consumed before its data is moved one or more places to the left.
pub fn decode_in_place(buf: &mut [u8]) -> Result<usize, CobsError> {
    let len = buf.len();
    let mut i = 0;
    let mut o = 0;
    while i < len {
        let code = buf[i];
        if code == 0 {
            return Err(CobsError::ZeroInBlock);
        }
        i += 1;
        let n = code as usize - 1;
        if i + n > len {
            return Err(CobsError::Truncated);
        }
        if buf[i..i + n].contains(&0) {
            return Err(CobsError::ZeroInBlock);
        }
        buf.copy_within(i..i + n, o);
        o += n;
        i += n;
        if code != 0xFF && i < len {
            buf[o] = 0;
            o += 1;
        }
    }
    Ok(o)
}

/// Decode `src` (one block, no delimiter) into `dst`. Returns the decoded length.
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, DecodeIntoError> {
    let dst = dst
        .get_mut(..src.len())
        .ok_or(DecodeIntoError::BufferTooSmall)?;
    dst.copy_from_slice(src);
    decode_in_place(dst).map_err(DecodeIntoError::Cobs)
}

/// Errors of [`decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeIntoError {
    /// `dst` is shorter than the encoded input (decoded output is always shorter, but the
    /// in-place algorithm needs the room).
    BufferTooSmall,
    Cobs(CobsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(src: &[u8]) -> heapless::Vec<u8, 600> {
        let mut v = heapless::Vec::new();
        v.resize_default(600).unwrap();
        let n = encode(src, &mut v).unwrap();
        v.truncate(n);
        v
    }

    fn dec(src: &[u8]) -> Result<heapless::Vec<u8, 600>, CobsError> {
        let mut v: heapless::Vec<u8, 600> = heapless::Vec::from_slice(src).unwrap();
        let n = decode_in_place(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    fn round_trip(src: &[u8]) {
        let e = enc(src);
        assert!(!e.contains(&0), "encoded data must not contain 0x00");
        assert!(e.len() <= max_encoded_len(src.len()));
        assert_eq!(&dec(&e).unwrap()[..], src);
    }

    // Vectors from the COBS paper / common reference set.
    #[test]
    fn reference_vectors() {
        assert_eq!(&enc(&[])[..], &[0x01]);
        assert_eq!(&enc(&[0x00])[..], &[0x01, 0x01]);
        assert_eq!(&enc(&[0x00, 0x00])[..], &[0x01, 0x01, 0x01]);
        assert_eq!(&enc(&[0x00, 0x11, 0x00])[..], &[0x01, 0x02, 0x11, 0x01]);
        assert_eq!(
            &enc(&[0x11, 0x22, 0x00, 0x33])[..],
            &[0x03, 0x11, 0x22, 0x02, 0x33]
        );
        assert_eq!(
            &enc(&[0x11, 0x22, 0x33, 0x44])[..],
            &[0x05, 0x11, 0x22, 0x33, 0x44]
        );
        assert_eq!(
            &enc(&[0x11, 0x00, 0x00, 0x00])[..],
            &[0x02, 0x11, 0x01, 0x01, 0x01]
        );
    }

    #[test]
    fn run_of_254_nonzero() {
        let src: heapless::Vec<u8, 254> = (1..=254u8).collect();
        let e = enc(&src);
        assert_eq!(e.len(), 255);
        assert_eq!(e[0], 0xFF);
        assert_eq!(&e[1..], &src[..]);
        round_trip(&src);
    }

    #[test]
    fn run_of_255_nonzero() {
        let src: heapless::Vec<u8, 255> = (1..=255u8).collect();
        let e = enc(&src);
        // FF 01..FE 02 FF
        assert_eq!(e.len(), 257);
        assert_eq!(e[0], 0xFF);
        assert_eq!(&e[1..255], &src[..254]);
        assert_eq!(&e[255..], &[0x02, 0xFF]);
        round_trip(&src);
    }

    #[test]
    fn zero_then_254_then_zero() {
        let mut src: heapless::Vec<u8, 256> = heapless::Vec::new();
        src.push(0).unwrap();
        for b in 1..=254u8 {
            src.push(b).unwrap();
        }
        src.push(0).unwrap();
        round_trip(&src);
        let e = enc(&src);
        assert_eq!(e[0], 0x01);
        assert_eq!(e[1], 0xFF);
        assert_eq!(&e[256..], &[0x01, 0x01]);
    }

    #[test]
    fn many_lengths_round_trip() {
        let mut buf = [0u8; 520];
        for len in 0..buf.len() {
            for (i, b) in buf.iter_mut().enumerate() {
                // Mix of zero and non-zero bytes with long non-zero runs.
                *b = if i % 300 == 7 { 0 } else { (i % 255 + 1) as u8 };
            }
            round_trip(&buf[..len]);
            round_trip(&[0u8; 520][..len]);
        }
    }

    #[test]
    fn decode_errors() {
        assert_eq!(dec(&[0x05, 0x11, 0x22]), Err(CobsError::Truncated));
        assert_eq!(dec(&[0x03, 0x11, 0x00]), Err(CobsError::ZeroInBlock));
        assert_eq!(dec(&[0x00]), Err(CobsError::ZeroInBlock));
    }

    #[test]
    fn encoder_buffer_too_small() {
        let mut small = [0u8; 3];
        assert_eq!(encode(&[1, 2, 3], &mut small), Err(BufferTooSmall));
        let mut exact = [0u8; 4];
        assert_eq!(encode(&[1, 2, 3], &mut exact), Ok(4));
        let mut none: [u8; 0] = [];
        assert_eq!(encode(&[], &mut none), Err(BufferTooSmall));
    }

    #[test]
    fn decode_into() {
        let mut out = [0u8; 8];
        assert_eq!(decode(&[0x03, 0x11, 0x22, 0x02, 0x33], &mut out), Ok(4));
        assert_eq!(&out[..4], &[0x11, 0x22, 0x00, 0x33]);
        let mut tiny = [0u8; 2];
        assert_eq!(
            decode(&[0x03, 0x11, 0x22], &mut tiny),
            Err(DecodeIntoError::BufferTooSmall)
        );
    }
}
