//! A minimal, bounds-checked FlatBuffers reader.
//!
//! Contract: no read trusts the file. Every offset, length and vtable entry is checked against
//! the buffer before use, and failures come back as `Err(String)` describing what was wrong
//! (the loader adds the file name). Nothing here panics on any input.

pub type FbResult<T> = Result<T, String>;

#[derive(Clone, Copy)]
pub struct Buf<'a> {
    pub data: &'a [u8],
}

impl<'a> Buf<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Buf { data }
    }

    fn bytes(&self, pos: usize, len: usize, what: &str) -> FbResult<&'a [u8]> {
        pos.checked_add(len)
            .filter(|&end| end <= self.data.len())
            .map(|end| &self.data[pos..end])
            .ok_or_else(|| {
                format!(
                    "{what} at byte {pos} (+{len}) is past the end of the file ({} bytes)",
                    self.data.len()
                )
            })
    }

    pub fn u8(&self, pos: usize) -> FbResult<u8> {
        Ok(self.bytes(pos, 1, "u8")?[0])
    }

    pub fn u16(&self, pos: usize) -> FbResult<u16> {
        let b = self.bytes(pos, 2, "u16")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&self, pos: usize) -> FbResult<u32> {
        let b = self.bytes(pos, 4, "u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&self, pos: usize) -> FbResult<i32> {
        Ok(self.u32(pos)? as i32)
    }

    pub fn u64(&self, pos: usize) -> FbResult<u64> {
        let b = self.bytes(pos, 8, "u64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// The root table of the buffer.
    pub fn root(&self) -> FbResult<Table<'a>> {
        let off = self.u32(0)? as usize;
        Table::at(*self, off)
    }

    /// Follow a `uoffset_t` stored at `pos` (relative to `pos`).
    fn follow(&self, pos: usize) -> FbResult<usize> {
        let off = self.u32(pos)? as usize;
        let target = pos
            .checked_add(off)
            .filter(|&t| t < self.data.len())
            .ok_or_else(|| format!("offset at byte {pos} points past the end of the file"))?;
        Ok(target)
    }
}

/// A table: a position plus its vtable.
#[derive(Clone, Copy)]
pub struct Table<'a> {
    buf: Buf<'a>,
    pos: usize,
    vtable: usize,
    vtable_len: usize,
    table_len: usize,
}

impl<'a> Table<'a> {
    pub fn at(buf: Buf<'a>, pos: usize) -> FbResult<Self> {
        let soff = buf.i32(pos)? as i64;
        let vtable = pos as i64 - soff;
        if vtable < 0 || vtable as usize + 4 > buf.data.len() {
            return Err(format!(
                "table at byte {pos} has an invalid vtable offset {soff}"
            ));
        }
        let vtable = vtable as usize;
        let vtable_len = buf.u16(vtable)? as usize;
        let table_len = buf.u16(vtable + 2)? as usize;
        if vtable_len < 4 || vtable + vtable_len > buf.data.len() {
            return Err(format!(
                "table at byte {pos} has a vtable of invalid size {vtable_len}"
            ));
        }
        if pos + table_len.max(4) > buf.data.len() {
            return Err(format!(
                "table at byte {pos} (size {table_len}) runs past the end"
            ));
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vtable_len,
            table_len,
        })
    }

    /// Absolute position of field `slot`, if present.
    fn field(&self, slot: usize, size: usize) -> FbResult<Option<usize>> {
        let entry = 4 + 2 * slot;
        if entry + 2 > self.vtable_len {
            return Ok(None);
        }
        let off = self.buf.u16(self.vtable + entry)? as usize;
        if off == 0 {
            return Ok(None);
        }
        if off + size > self.table_len {
            return Err(format!(
                "field {slot} of table at byte {} lies outside the table",
                self.pos
            ));
        }
        Ok(Some(self.pos + off))
    }

    pub fn u8_or(&self, slot: usize, default: u8) -> FbResult<u8> {
        match self.field(slot, 1)? {
            Some(p) => self.buf.u8(p),
            None => Ok(default),
        }
    }

    pub fn bool_or(&self, slot: usize, default: bool) -> FbResult<bool> {
        Ok(self.u8_or(slot, default as u8)? != 0)
    }

    pub fn i8_or(&self, slot: usize, default: i8) -> FbResult<i8> {
        Ok(self.u8_or(slot, default as u8)? as i8)
    }

    pub fn i32_or(&self, slot: usize, default: i32) -> FbResult<i32> {
        match self.field(slot, 4)? {
            Some(p) => self.buf.i32(p),
            None => Ok(default),
        }
    }

    pub fn u32_or(&self, slot: usize, default: u32) -> FbResult<u32> {
        match self.field(slot, 4)? {
            Some(p) => self.buf.u32(p),
            None => Ok(default),
        }
    }

    pub fn u64_or(&self, slot: usize, default: u64) -> FbResult<u64> {
        match self.field(slot, 8)? {
            Some(p) => self.buf.u64(p),
            None => Ok(default),
        }
    }

    pub fn f32_or(&self, slot: usize, default: f32) -> FbResult<f32> {
        Ok(f32::from_bits(self.u32_or(slot, default.to_bits())?))
    }

    pub fn table(&self, slot: usize) -> FbResult<Option<Table<'a>>> {
        match self.field(slot, 4)? {
            Some(p) => Ok(Some(Table::at(self.buf, self.buf.follow(p)?)?)),
            None => Ok(None),
        }
    }

    pub fn vector(&self, slot: usize, elem_size: usize) -> FbResult<Option<Vector<'a>>> {
        match self.field(slot, 4)? {
            Some(p) => Ok(Some(Vector::at(self.buf, self.buf.follow(p)?, elem_size)?)),
            None => Ok(None),
        }
    }

    pub fn string(&self, slot: usize) -> FbResult<Option<String>> {
        match self.vector(slot, 1)? {
            Some(v) => Ok(Some(String::from_utf8_lossy(v.bytes()).into_owned())),
            None => Ok(None),
        }
    }
}

/// A vector of fixed-size elements (scalars or offsets).
#[derive(Clone, Copy)]
pub struct Vector<'a> {
    buf: Buf<'a>,
    start: usize,
    len: usize,
    elem_size: usize,
}

impl<'a> Vector<'a> {
    fn at(buf: Buf<'a>, pos: usize, elem_size: usize) -> FbResult<Self> {
        let len = buf.u32(pos)? as usize;
        let start = pos + 4;
        let total = len
            .checked_mul(elem_size)
            .ok_or_else(|| format!("vector at byte {pos} has an absurd length {len}"))?;
        buf.bytes(start, total, "vector")?;
        Ok(Vector {
            buf,
            start,
            len,
            elem_size,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw element bytes (checked in `at`).
    pub fn bytes(&self) -> &'a [u8] {
        &self.buf.data[self.start..self.start + self.len * self.elem_size]
    }

    pub fn table(&self, i: usize) -> FbResult<Table<'a>> {
        debug_assert_eq!(self.elem_size, 4);
        let p = self.start + 4 * i;
        Table::at(self.buf, self.buf.follow(p)?)
    }

    pub fn i32s(&self) -> Vec<i32> {
        self.bytes()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    pub fn f32s(&self) -> Vec<f32> {
        self.bytes()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    pub fn i64s(&self) -> Vec<i64> {
        self.bytes()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    }
}
