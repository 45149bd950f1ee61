//! A bounds-checked protobuf wire-format reader for the parts of `onnx.proto` the loader needs.
//!
//! Hand-written instead of generated (`prost` + `protoc`) to keep the runtime lean: we decode
//! only ModelProto → GraphProto → NodeProto / TensorProto / AttributeProto / ValueInfoProto, and
//! skip every other field by its wire type. Nothing in the file is trusted: every length is
//! checked against the remaining bytes, varints are limited to 10 bytes, nesting to
//! [`MAX_DEPTH`] levels, and unknown wire types are errors, never panics.
//!
//! Field numbers are those of `onnx/onnx.proto` (IR version 3 to 10).

/// Deepest message nesting we follow (graph → node → attribute → tensor is 4; subgraphs in
/// If/Loop attributes are not decoded).
const MAX_DEPTH: usize = 8;

pub type PResult<T> = Result<T, String>;

/// One decoded field: its number and value.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> PResult<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("varint runs past the end at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "field of {n} bytes at byte {} runs past the end of its {}-byte message",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    fn field(&mut self) -> PResult<Option<(u32, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err(format!("field number 0 at byte {}", self.pos));
        }
        let v = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| "fixed64")?))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflows")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().map_err(|_| "fixed32")?))
            }
            w => return Err(format!("unsupported wire type {w} for field {number}")),
        };
        Ok(Some((number, v)))
    }
}

fn bytes<'a>(v: Value<'a>, what: &str) -> PResult<&'a [u8]> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(format!("{what}: expected a length-delimited field")),
    }
}

fn string(v: Value<'_>, what: &str) -> PResult<String> {
    let b = bytes(v, what)?;
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| format!("{what}: not valid UTF-8"))
}

fn varint(v: Value<'_>, what: &str) -> PResult<u64> {
    match v {
        Value::Varint(x) => Ok(x),
        _ => Err(format!("{what}: expected a varint field")),
    }
}

/// A repeated int64 field, packed (one length-delimited run) or not (one varint per field).
fn push_i64s(out: &mut Vec<i64>, v: Value<'_>, what: &str) -> PResult<()> {
    match v {
        Value::Varint(x) => out.push(x as i64),
        Value::Bytes(b) => {
            let mut r = Reader::new(b);
            while r.pos < b.len() {
                out.push(r.varint()? as i64);
            }
        }
        _ => return Err(format!("{what}: expected varints")),
    }
    Ok(())
}

/// A repeated float field, packed or not.
fn push_f32s(out: &mut Vec<f32>, v: Value<'_>, what: &str) -> PResult<()> {
    match v {
        Value::Fixed32(x) => out.push(f32::from_bits(x)),
        Value::Bytes(b) => {
            if b.len() % 4 != 0 {
                return Err(format!(
                    "{what}: packed floats of {} bytes (not a multiple of 4)",
                    b.len()
                ));
            }
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        _ => return Err(format!("{what}: expected 32-bit floats")),
    }
    Ok(())
}

/// A repeated double field, packed or not.
fn push_f64s(out: &mut Vec<f64>, v: Value<'_>, what: &str) -> PResult<()> {
    match v {
        Value::Fixed64(x) => out.push(f64::from_bits(x)),
        Value::Bytes(b) => {
            if b.len() % 8 != 0 {
                return Err(format!("{what}: packed doubles of {} bytes", b.len()));
            }
            out.extend(
                b.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
        _ => return Err(format!("{what}: expected 64-bit floats")),
    }
    Ok(())
}

/// `ModelProto`: only what the loader uses.
#[derive(Debug, Default)]
pub struct Model {
    pub ir_version: i64,
    /// `(domain, version)`; the default domain is `""`.
    pub opsets: Vec<(String, i64)>,
    pub producer: String,
    pub graph: Graph,
}

#[derive(Debug, Default)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub initializers: Vec<TensorProto>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

#[derive(Debug, Default)]
pub struct Node {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub attributes: Vec<Attribute>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

#[derive(Debug, Default)]
pub struct Attribute {
    pub name: String,
    pub f: Option<f32>,
    pub i: Option<i64>,
    pub s: Option<Vec<u8>>,
    pub t: Option<TensorProto>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
}

/// `TensorProto.DataType` values we name in messages and may decode.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;

    pub fn name(t: i32) -> String {
        match t {
            FLOAT => "float".into(),
            UINT8 => "uint8".into(),
            INT8 => "int8".into(),
            INT16 => "int16".into(),
            INT32 => "int32".into(),
            INT64 => "int64".into(),
            BOOL => "bool".into(),
            FLOAT16 => "float16".into(),
            DOUBLE => "double".into(),
            other => format!("data type {other}"),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct TensorProto {
    pub name: String,
    pub dims: Vec<i64>,
    pub data_type: i32,
    pub raw_data: Option<Vec<u8>>,
    pub float_data: Vec<f32>,
    /// Also holds int8/uint8/int16/bool/float16 values (one per element), as onnx.proto says.
    pub int32_data: Vec<i64>,
    pub int64_data: Vec<i64>,
    pub double_data: Vec<f64>,
    /// `data_location == EXTERNAL`: the data lives in another file (not supported).
    pub external: bool,
}

#[derive(Debug, Default, Clone)]
pub struct ValueInfo {
    pub name: String,
    pub elem_type: i32,
    /// `None` for a symbolic (`dim_param`) or missing dimension.
    pub shape: Option<Vec<Option<i64>>>,
}

pub fn parse_model(buf: &[u8]) -> PResult<Model> {
    let mut m = Model::default();
    let mut have_graph = false;
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => m.ir_version = varint(v, "ModelProto.ir_version")? as i64,
            2 => m.producer = string(v, "ModelProto.producer_name")?,
            7 => {
                m.graph = parse_graph(bytes(v, "ModelProto.graph")?, 1)?;
                have_graph = true;
            }
            8 => {
                let mut domain = String::new();
                let mut version = 0;
                let mut o = Reader::new(bytes(v, "ModelProto.opset_import")?);
                while let Some((n, v)) = o.field()? {
                    match n {
                        1 => domain = string(v, "OperatorSetIdProto.domain")?,
                        2 => version = varint(v, "OperatorSetIdProto.version")? as i64,
                        _ => {}
                    }
                }
                m.opsets.push((domain, version));
            }
            _ => {}
        }
    }
    if !have_graph {
        return Err("the ModelProto has no graph (is this an ONNX model?)".into());
    }
    Ok(m)
}

fn parse_graph(buf: &[u8], depth: usize) -> PResult<Graph> {
    if depth > MAX_DEPTH {
        return Err("messages nested too deeply".into());
    }
    let mut g = Graph::default();
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => g
                .nodes
                .push(parse_node(bytes(v, "GraphProto.node")?, depth + 1)?),
            2 => g.name = string(v, "GraphProto.name")?,
            5 => g
                .initializers
                .push(parse_tensor(bytes(v, "GraphProto.initializer")?)?),
            11 => g
                .inputs
                .push(parse_value_info(bytes(v, "GraphProto.input")?)?),
            12 => g
                .outputs
                .push(parse_value_info(bytes(v, "GraphProto.output")?)?),
            _ => {}
        }
    }
    Ok(g)
}

fn parse_node(buf: &[u8], depth: usize) -> PResult<Node> {
    if depth > MAX_DEPTH {
        return Err("messages nested too deeply".into());
    }
    let mut node = Node::default();
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => node.inputs.push(string(v, "NodeProto.input")?),
            2 => node.outputs.push(string(v, "NodeProto.output")?),
            3 => node.name = string(v, "NodeProto.name")?,
            4 => node.op_type = string(v, "NodeProto.op_type")?,
            5 => node
                .attributes
                .push(parse_attribute(bytes(v, "NodeProto.attribute")?)?),
            7 => node.domain = string(v, "NodeProto.domain")?,
            _ => {}
        }
    }
    Ok(node)
}

fn parse_attribute(buf: &[u8]) -> PResult<Attribute> {
    let mut a = Attribute::default();
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => a.name = string(v, "AttributeProto.name")?,
            2 => match v {
                Value::Fixed32(x) => a.f = Some(f32::from_bits(x)),
                _ => return Err("AttributeProto.f: expected a 32-bit float".into()),
            },
            3 => a.i = Some(varint(v, "AttributeProto.i")? as i64),
            4 => a.s = Some(bytes(v, "AttributeProto.s")?.to_vec()),
            5 => a.t = Some(parse_tensor(bytes(v, "AttributeProto.t")?)?),
            7 => push_f32s(&mut a.floats, v, "AttributeProto.floats")?,
            8 => push_i64s(&mut a.ints, v, "AttributeProto.ints")?,
            _ => {}
        }
    }
    Ok(a)
}

fn parse_tensor(buf: &[u8]) -> PResult<TensorProto> {
    let mut t = TensorProto::default();
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => push_i64s(&mut t.dims, v, "TensorProto.dims")?,
            2 => t.data_type = varint(v, "TensorProto.data_type")? as i32,
            4 => push_f32s(&mut t.float_data, v, "TensorProto.float_data")?,
            5 => push_i64s(&mut t.int32_data, v, "TensorProto.int32_data")?,
            7 => push_i64s(&mut t.int64_data, v, "TensorProto.int64_data")?,
            8 => t.name = string(v, "TensorProto.name")?,
            9 => t.raw_data = Some(bytes(v, "TensorProto.raw_data")?.to_vec()),
            10 => push_f64s(&mut t.double_data, v, "TensorProto.double_data")?,
            14 => t.external = varint(v, "TensorProto.data_location")? == 1,
            _ => {}
        }
    }
    Ok(t)
}

fn parse_value_info(buf: &[u8]) -> PResult<ValueInfo> {
    let mut vi = ValueInfo::default();
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => vi.name = string(v, "ValueInfoProto.name")?,
            2 => {
                // TypeProto.tensor_type (1) → elem_type (1), shape (2) → dim (1) →
                // dim_value (1) | dim_param (2).
                let mut tr = Reader::new(bytes(v, "ValueInfoProto.type")?);
                while let Some((n, v)) = tr.field()? {
                    if n != 1 {
                        continue;
                    }
                    let mut tt = Reader::new(bytes(v, "TypeProto.tensor_type")?);
                    while let Some((n, v)) = tt.field()? {
                        match n {
                            1 => vi.elem_type = varint(v, "TypeProto.Tensor.elem_type")? as i32,
                            2 => {
                                let mut dims = Vec::new();
                                let mut sr = Reader::new(bytes(v, "TensorShapeProto")?);
                                while let Some((n, v)) = sr.field()? {
                                    if n != 1 {
                                        continue;
                                    }
                                    let mut dim = None;
                                    let mut dr = Reader::new(bytes(v, "Dimension")?);
                                    while let Some((n, v)) = dr.field()? {
                                        if n == 1 {
                                            dim = Some(varint(v, "Dimension.dim_value")? as i64);
                                        }
                                    }
                                    dims.push(dim);
                                }
                                vi.shape = Some(dims);
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(vi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32, wire: u8) -> u8 {
        ((n << 3) as u8) | wire
    }

    #[test]
    fn reads_packed_and_unpacked_dims() {
        // dims: 2 unpacked varints, then a packed run [3, 300]; data_type 1; name "w".
        let mut t = vec![key(1, 0), 2, key(1, 0), 5, key(1, 2), 3, 3, 0xac, 0x02];
        t.extend([key(2, 0), 1, key(8, 2), 1, b'w']);
        let tp = parse_tensor(&t).unwrap();
        assert_eq!(tp.dims, vec![2, 5, 3, 300]);
        assert_eq!(tp.data_type, dtype::FLOAT);
        assert_eq!(tp.name, "w");
    }

    #[test]
    fn truncated_length_is_an_error_not_a_panic() {
        // A length-delimited name claiming 50 bytes with 2 present.
        let t = [key(8, 2), 50, b'a', b'b'];
        let e = parse_tensor(&t).unwrap_err();
        assert!(e.contains("runs past the end"), "{e}");
        // A varint that never ends.
        let e = parse_tensor(&[key(2, 0), 0xff, 0xff]).unwrap_err();
        assert!(e.contains("varint"), "{e}");
        // Wire type 3 (groups) is not accepted.
        let e = parse_tensor(&[key(2, 3)]).unwrap_err();
        assert!(e.contains("wire type 3"), "{e}");
    }

    #[test]
    fn model_without_graph_is_rejected() {
        let e = parse_model(&[key(1, 0), 7]).unwrap_err();
        assert!(e.contains("no graph"), "{e}");
    }
}
