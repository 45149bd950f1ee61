//! CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740): width 16, poly 0x1021, init 0xFFFF,
//! no input/output reflection, xorout 0x0000, check value 0x29B1 for ASCII "123456789".
//!
//! Bitwise rather than table-driven: at serial line rates the cost is irrelevant and a
//! microcontroller keeps 512 bytes of flash.

/// CRC-16/CCITT-FALSE check value: the CRC of the ASCII bytes `123456789`.
pub const CHECK_VALUE: u16 = 0x29B1;

const POLY: u16 = 0x1021;
const INIT: u16 = 0xFFFF;

/// Incremental CRC-16/CCITT-FALSE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc16 {
    state: u16,
}

impl Default for Crc16 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc16 {
    pub const fn new() -> Self {
        Crc16 { state: INIT }
    }

    pub fn update_byte(&mut self, byte: u8) {
        self.state ^= (byte as u16) << 8;
        for _ in 0..8 {
            self.state = if self.state & 0x8000 != 0 {
                (self.state << 1) ^ POLY
            } else {
                self.state << 1
            };
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.update_byte(b);
        }
    }

    /// The CRC of everything fed so far (xorout is 0, so this is the raw state).
    pub const fn value(&self) -> u16 {
        self.state
    }
}

/// CRC-16/CCITT-FALSE of `data` in one call.
pub fn crc16(data: &[u8]) -> u16 {
    let mut c = Crc16::new();
    c.update(data);
    c.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), CHECK_VALUE);
        assert_eq!(CHECK_VALUE, 0x29B1);
    }

    #[test]
    fn empty_is_init() {
        assert_eq!(crc16(&[]), 0xFFFF);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut c = Crc16::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.value(), CHECK_VALUE);
    }
}
