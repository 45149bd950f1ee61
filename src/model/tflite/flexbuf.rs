//! A minimal, bounds-checked FlexBuffers reader: enough to read a root map of scalars, which is
//! what TFLite custom ops (e.g. `TFLite_Detection_PostProcess`) store in `custom_options`.

use std::collections::BTreeMap;

use super::flatbuf::FbResult;

/// A scalar value from a FlexBuffers map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlexValue {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// Strings, vectors, nested maps: present but not a scalar.
    Other(u8),
}

impl FlexValue {
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FlexValue::Int(v) => Some(v),
            FlexValue::UInt(v) => i64::try_from(v).ok(),
            FlexValue::Float(v) => Some(v as i64),
            FlexValue::Bool(b) => Some(b as i64),
            _ => None,
        }
    }

    /// Like flexbuffers' `AsFloat`: the value as `f32`.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            FlexValue::Int(v) => Some(v as f32),
            FlexValue::UInt(v) => Some(v as f32),
            FlexValue::Float(v) => Some(v as f32),
            FlexValue::Bool(b) => Some(b as u8 as f32),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            FlexValue::Bool(b) => Some(b),
            FlexValue::Int(v) => Some(v != 0),
            FlexValue::UInt(v) => Some(v != 0),
            _ => None,
        }
    }
}

const FBT_NULL: u8 = 0;
const FBT_INT: u8 = 1;
const FBT_UINT: u8 = 2;
const FBT_FLOAT: u8 = 3;
const FBT_INDIRECT_INT: u8 = 6;
const FBT_INDIRECT_UINT: u8 = 7;
const FBT_INDIRECT_FLOAT: u8 = 8;
const FBT_MAP: u8 = 9;
const FBT_BOOL: u8 = 26;

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn slice(&self, pos: usize, len: usize) -> FbResult<&'a [u8]> {
        pos.checked_add(len)
            .filter(|&e| e <= self.data.len())
            .map(|e| &self.data[pos..e])
            .ok_or_else(|| format!("flexbuffer read at {pos}+{len} is out of bounds"))
    }

    fn uint(&self, pos: usize, width: usize) -> FbResult<u64> {
        let b = self.slice(pos, width)?;
        Ok(match width {
            1 => b[0] as u64,
            2 => u16::from_le_bytes([b[0], b[1]]) as u64,
            4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
            8 => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            _ => return Err(format!("flexbuffer has invalid byte width {width}")),
        })
    }

    fn int(&self, pos: usize, width: usize) -> FbResult<i64> {
        let u = self.uint(pos, width)?;
        Ok(match width {
            1 => u as u8 as i8 as i64,
            2 => u as u16 as i16 as i64,
            4 => u as u32 as i32 as i64,
            _ => u as i64,
        })
    }

    fn float(&self, pos: usize, width: usize) -> FbResult<f64> {
        let u = self.uint(pos, width)?;
        match width {
            4 => Ok(f32::from_bits(u as u32) as f64),
            8 => Ok(f64::from_bits(u)),
            _ => Err(format!("flexbuffer float of width {width}")),
        }
    }

    /// Follow a relative offset stored at `pos` (offsets point backwards).
    fn indirect(&self, pos: usize, width: usize) -> FbResult<usize> {
        let off = self.uint(pos, width)?;
        usize::try_from(off)
            .ok()
            .and_then(|o| pos.checked_sub(o))
            .ok_or_else(|| format!("flexbuffer offset {off} at {pos} points before the start"))
    }

    fn cstr(&self, pos: usize) -> FbResult<&'a str> {
        let rest = self.slice(pos, self.data.len().saturating_sub(pos))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| "flexbuffer key is not NUL-terminated".to_string())?;
        std::str::from_utf8(&rest[..end]).map_err(|_| "flexbuffer key is not UTF-8".to_string())
    }

    /// Decode the value stored at `pos` with parent width `parent_width` and packed type byte.
    fn value(&self, pos: usize, parent_width: usize, packed: u8) -> FbResult<FlexValue> {
        let ty = packed >> 2;
        let child_width = 1usize << (packed & 3);
        Ok(match ty {
            FBT_NULL => FlexValue::Null,
            FBT_INT => FlexValue::Int(self.int(pos, parent_width)?),
            FBT_UINT => FlexValue::UInt(self.uint(pos, parent_width)?),
            FBT_FLOAT => FlexValue::Float(self.float(pos, parent_width)?),
            FBT_BOOL => FlexValue::Bool(self.uint(pos, parent_width)? != 0),
            FBT_INDIRECT_INT => {
                FlexValue::Int(self.int(self.indirect(pos, parent_width)?, child_width)?)
            }
            FBT_INDIRECT_UINT => {
                FlexValue::UInt(self.uint(self.indirect(pos, parent_width)?, child_width)?)
            }
            FBT_INDIRECT_FLOAT => {
                FlexValue::Float(self.float(self.indirect(pos, parent_width)?, child_width)?)
            }
            other => FlexValue::Other(other),
        })
    }
}

/// Parse a FlexBuffers buffer whose root is a map; returns its keys and scalar values.
pub fn parse_root_map(data: &[u8]) -> FbResult<BTreeMap<String, FlexValue>> {
    let r = Reader { data };
    if data.len() < 3 {
        return Err(format!("flexbuffer too short ({} bytes)", data.len()));
    }
    let root_width = data[data.len() - 1] as usize;
    let root_packed = data[data.len() - 2];
    if !matches!(root_width, 1 | 2 | 4 | 8) {
        return Err(format!(
            "flexbuffer root has invalid byte width {root_width}"
        ));
    }
    let root_pos = (data.len() - 2)
        .checked_sub(root_width)
        .ok_or_else(|| "flexbuffer too short for its root".to_string())?;
    if root_packed >> 2 != FBT_MAP {
        return Err(format!(
            "flexbuffer root is type {}, expected a map",
            root_packed >> 2
        ));
    }
    // Map: values vector; before it: length, keys byte width, keys vector offset.
    let width = 1usize << (root_packed & 3);
    let values = r.indirect(root_pos, root_width)?;
    let len_pos = values
        .checked_sub(width)
        .ok_or("flexbuffer map header out of bounds")?;
    let len = r.uint(len_pos, width)? as usize;
    let keys_width_pos = len_pos
        .checked_sub(width)
        .ok_or("flexbuffer map header out of bounds")?;
    let keys_width = r.uint(keys_width_pos, width)? as usize;
    let keys_off_pos = keys_width_pos
        .checked_sub(width)
        .ok_or("flexbuffer map header out of bounds")?;
    let keys = r.indirect(keys_off_pos, width)?;
    if !matches!(keys_width, 1 | 2 | 4 | 8) {
        return Err(format!(
            "flexbuffer keys have invalid byte width {keys_width}"
        ));
    }
    if len > data.len() {
        return Err(format!("flexbuffer map claims {len} entries"));
    }
    let types_pos = values + len * width;
    r.slice(types_pos, len)?;
    let mut out = BTreeMap::new();
    for i in 0..len {
        let key_pos = r.indirect(keys + i * keys_width, keys_width)?;
        let key = r.cstr(key_pos)?.to_string();
        let packed = data[types_pos + i];
        let v = r.value(values + i * width, width, packed)?;
        out.insert(key, v);
    }
    Ok(out)
}
