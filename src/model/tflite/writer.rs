//! TFLite flatbuffer writer: [`Graph`] → `.tflite` bytes (schema v3, identifier `TFL3`).
//!
//! The output is a minimal model that LiteRT and our loader both accept: operator codes (with
//! `deprecated_builtin_code` filled for codes < 127), one subgraph, tensors with shape, type,
//! buffer and quantization (per-tensor or per-axis with `quantized_dimension`), buffers with the
//! empty sentinel buffer 0 and 16-byte aligned data, builtin options for every op of our IR, and
//! FlexBuffers custom options for `TFLite_Detection_PostProcess`. No metadata, no signature defs,
//! no `min_runtime_version`.
//!
//! The FlatBuffer is laid out front to back: a table is written before the objects it refers to,
//! so every `uoffset_t` points forward as the format requires; vtables sit right before their
//! table (positive `soffset_t`, as standard builders place them).

use std::collections::HashMap;
use std::path::Path;

use crate::error::ModelError;
use crate::model::{Activation, DType, Graph, OpKind, Padding, Quant};

use super::schema::*;

/// FlatBuffers may not exceed 2 GiB (offsets are 32-bit, verifiers refuse larger buffers).
const MAX_FLATBUFFER: usize = (1 << 31) - 1;

/// `BuiltinOptions` union tags used by our ops.
mod options_type {
    pub const CONV_2D: u8 = 1;
    pub const DEPTHWISE_CONV_2D: u8 = 2;
    pub const POOL_2D: u8 = 5;
    pub const FULLY_CONNECTED: u8 = 8;
    pub const SOFTMAX: u8 = 9;
    pub const CONCATENATION: u8 = 10;
    pub const ADD: u8 = 11;
    pub const RESIZE_BILINEAR: u8 = 15;
    pub const RESHAPE: u8 = 17;
    pub const MUL: u8 = 21;
    pub const PAD: u8 = 22;
    pub const REDUCER: u8 = 27;
    pub const DEQUANTIZE: u8 = 38;
    pub const RESIZE_NEAREST_NEIGHBOR: u8 = 74;
    pub const QUANTIZE: u8 = 89;
    pub const DEPTH_TO_SPACE: u8 = 94;
}

const DETECTION_POSTPROCESS: &str = "TFLite_Detection_PostProcess";

/// Serialize `graph` to TFLite flatbuffer bytes.
pub fn write(graph: &Graph) -> Result<Vec<u8>, ModelError> {
    let model = model_node(graph)?;
    let mut out = Out { buf: vec![0; 8] };
    out.buf[4..8].copy_from_slice(b"TFL3");
    let root = out.node(&model);
    out.patch_offset(0, root);
    out.pad_to(16, 0);
    if out.buf.len() > MAX_FLATBUFFER {
        return Err(ModelError::Invalid {
            what: format!(
                "the model would be {} MiB; a TFLite flatbuffer is limited to 2 GiB",
                out.buf.len() >> 20
            ),
        });
    }
    Ok(out.buf)
}

/// Serialize `graph` and write it to `path`.
pub fn save(graph: &Graph, path: &Path) -> Result<(), ModelError> {
    let bytes = write(graph)?;
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// A tiny front-to-back FlatBuffers serializer.

/// A table field value.
enum Field {
    U8(u8),
    I8(i8),
    I32(i32),
    U32(u32),
    F32(f32),
    /// An offset to another object.
    Off(Node),
}

impl Field {
    fn size(&self) -> usize {
        match self {
            Field::U8(_) | Field::I8(_) => 1,
            Field::I32(_) | Field::U32(_) | Field::F32(_) | Field::Off(_) => 4,
        }
    }
}

/// An object in the buffer.
enum Node {
    /// Fields by slot (vtable index).
    Table(Vec<(usize, Field)>),
    String(String),
    /// A vector of scalars: raw little-endian element bytes, element count, data alignment.
    Scalars {
        bytes: Vec<u8>,
        len: usize,
        align: usize,
    },
    /// A vector of offsets to tables.
    Tables(Vec<Node>),
}

fn i32s(v: impl IntoIterator<Item = i32>) -> Node {
    let vals: Vec<i32> = v.into_iter().collect();
    Node::Scalars {
        len: vals.len(),
        bytes: vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
        align: 4,
    }
}

fn f32s(vals: &[f32]) -> Node {
    Node::Scalars {
        len: vals.len(),
        bytes: vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
        align: 4,
    }
}

fn i64s(vals: &[i64]) -> Node {
    Node::Scalars {
        len: vals.len(),
        bytes: vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
        align: 8,
    }
}

fn bytes(data: &[u8], align: usize) -> Node {
    Node::Scalars {
        len: data.len(),
        bytes: data.to_vec(),
        align,
    }
}

struct Out {
    buf: Vec<u8>,
}

impl Out {
    /// Pad with zeros until `(len + extra) % align == 0`.
    fn pad_to(&mut self, align: usize, extra: usize) {
        while !(self.buf.len() + extra).is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    /// Store at `at` the forward offset to `target`.
    fn patch_offset(&mut self, at: usize, target: usize) {
        debug_assert!(target > at);
        let off = (target - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&off.to_le_bytes());
    }

    /// Write `node` and everything it refers to; returns the position offsets must point at.
    fn node(&mut self, node: &Node) -> usize {
        match node {
            Node::String(s) => {
                self.pad_to(4, 0);
                let pos = self.buf.len();
                self.buf.extend((s.len() as u32).to_le_bytes());
                self.buf.extend(s.as_bytes());
                self.buf.push(0);
                pos
            }
            Node::Scalars { bytes, len, align } => {
                self.pad_to((*align).max(4), 4);
                let pos = self.buf.len();
                self.buf.extend((*len as u32).to_le_bytes());
                self.buf.extend(bytes);
                pos
            }
            Node::Tables(items) => {
                self.pad_to(4, 0);
                let pos = self.buf.len();
                self.buf.extend((items.len() as u32).to_le_bytes());
                let slots = self.buf.len();
                self.buf.resize(slots + 4 * items.len(), 0);
                for (i, item) in items.iter().enumerate() {
                    let target = self.node(item);
                    self.patch_offset(slots + 4 * i, target);
                }
                pos
            }
            Node::Table(fields) => self.table(fields),
        }
    }

    fn table(&mut self, fields: &[(usize, Field)]) -> usize {
        let num_slots = fields.iter().map(|(s, _)| s + 1).max().unwrap_or(0);
        let vtable_len = 4 + 2 * num_slots;
        self.pad_to(2, 0);
        let vtable_pos = self.buf.len();
        // The table starts 4-aligned after the vtable; fields are aligned to their size.
        let mut table_pos = vtable_pos + vtable_len;
        table_pos += (4 - table_pos % 4) % 4;
        let mut cursor = table_pos + 4;
        let mut field_pos = Vec::with_capacity(fields.len());
        for (_, f) in fields {
            let size = f.size();
            cursor += (size - cursor % size) % size;
            field_pos.push(cursor);
            cursor += size;
        }
        let table_len = cursor - table_pos;
        let mut vtable = vec![0u16; num_slots + 2];
        vtable[0] = vtable_len as u16;
        vtable[1] = table_len as u16;
        for ((slot, _), &p) in fields.iter().zip(&field_pos) {
            vtable[2 + slot] = (p - table_pos) as u16;
        }
        for v in vtable {
            self.buf.extend(v.to_le_bytes());
        }
        self.buf.resize(cursor, 0);
        let soffset = (table_pos - vtable_pos) as i32;
        self.buf[table_pos..table_pos + 4].copy_from_slice(&soffset.to_le_bytes());
        for ((_, f), &p) in fields.iter().zip(&field_pos) {
            let b = &mut self.buf;
            match f {
                Field::U8(v) => b[p] = *v,
                Field::I8(v) => b[p] = *v as u8,
                Field::I32(v) => b[p..p + 4].copy_from_slice(&v.to_le_bytes()),
                Field::U32(v) => b[p..p + 4].copy_from_slice(&v.to_le_bytes()),
                Field::F32(v) => b[p..p + 4].copy_from_slice(&v.to_le_bytes()),
                Field::Off(_) => {}
            }
        }
        for ((_, f), &p) in fields.iter().zip(&field_pos) {
            if let Field::Off(child) = f {
                let target = self.node(child);
                self.patch_offset(p, target);
            }
        }
        table_pos
    }
}

// ---------------------------------------------------------------------------------------------
// Graph → nodes.

fn tensor_type(d: DType) -> u8 {
    match d {
        DType::F32 => tensor_type::FLOAT32,
        DType::F16 => tensor_type::FLOAT16,
        DType::I32 => tensor_type::INT32,
        DType::U8 => tensor_type::UINT8,
        DType::I64 => tensor_type::INT64,
        DType::Bool => tensor_type::BOOL,
        DType::I16 => tensor_type::INT16,
        DType::I8 => tensor_type::INT8,
    }
}

fn act(a: Activation) -> u8 {
    match a {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::ReluN1To1 => 2,
        Activation::Relu6 => 3,
    }
}

fn pad(p: Padding) -> u8 {
    match p {
        Padding::Same => 0,
        Padding::Valid => 1,
    }
}

fn dim(v: usize, what: &str) -> Result<i32, ModelError> {
    i32::try_from(v).map_err(|_| ModelError::Invalid {
        what: format!("{what} {v} does not fit a TFLite int32"),
    })
}

/// Builtin code, custom code, options type and options table for one op.
type OpEncoding = (i32, Option<&'static str>, u8, Option<Node>, Option<Vec<u8>>);

fn encode_op(graph: &Graph, index: usize) -> Result<OpEncoding, ModelError> {
    use Field::*;
    let op = &graph.ops[index];
    let table = |f: Vec<(usize, Field)>| Some(Node::Table(f));
    // TFLite has no field for ONNX Runtime's rounding: writing such an op would silently
    // change its results in LiteRT and on reload.
    let onnx_rounding = match &op.kind {
        OpKind::Conv2D(c) | OpKind::DepthwiseConv2D { conv: c, .. } => {
            c.requant == crate::model::RequantMode::OnnxRuntime
        }
        OpKind::Quantize { mode } => *mode == crate::model::RequantMode::OnnxRuntime,
        _ => false,
    };
    if onnx_rounding {
        return Err(ModelError::invalid_op(
            graph.op_label(index),
            "uses ONNX Runtime rounding (a model loaded from ONNX), which TFLite cannot express",
        ));
    }
    Ok(match &op.kind {
        OpKind::Conv2D(c) => (
            OP_CONV_2D,
            None,
            options_type::CONV_2D,
            table(vec![
                (0, U8(pad(c.padding))),
                (1, I32(dim(c.stride_w, "stride")?)),
                (2, I32(dim(c.stride_h, "stride")?)),
                (3, U8(act(c.activation))),
                (4, I32(dim(c.dilation_w, "dilation")?)),
                (5, I32(dim(c.dilation_h, "dilation")?)),
            ]),
            None,
        ),
        OpKind::DepthwiseConv2D {
            conv: c,
            depth_multiplier,
        } => (
            OP_DEPTHWISE_CONV_2D,
            None,
            options_type::DEPTHWISE_CONV_2D,
            table(vec![
                (0, U8(pad(c.padding))),
                (1, I32(dim(c.stride_w, "stride")?)),
                (2, I32(dim(c.stride_h, "stride")?)),
                (3, I32(dim(*depth_multiplier, "depth_multiplier")?)),
                (4, U8(act(c.activation))),
                (5, I32(dim(c.dilation_w, "dilation")?)),
                (6, I32(dim(c.dilation_h, "dilation")?)),
            ]),
            None,
        ),
        OpKind::FullyConnected {
            activation,
            keep_num_dims,
        } => (
            OP_FULLY_CONNECTED,
            None,
            options_type::FULLY_CONNECTED,
            table(vec![
                (0, U8(act(*activation))),
                (2, U8(*keep_num_dims as u8)),
            ]),
            None,
        ),
        OpKind::Add { activation } => (
            OP_ADD,
            None,
            options_type::ADD,
            table(vec![(0, U8(act(*activation)))]),
            None,
        ),
        OpKind::Mul { activation } => (
            OP_MUL,
            None,
            options_type::MUL,
            table(vec![(0, U8(act(*activation)))]),
            None,
        ),
        OpKind::Concatenation { axis, activation } => (
            OP_CONCATENATION,
            None,
            options_type::CONCATENATION,
            table(vec![
                (0, I32(dim(*axis, "axis")?)),
                (1, U8(act(*activation))),
            ]),
            None,
        ),
        OpKind::Reshape => {
            let out = &graph.tensors[op.outputs[0]];
            let shape = out
                .shape
                .iter()
                .map(|&d| dim(d, "dimension"))
                .collect::<Result<Vec<_>, _>>()?;
            (
                OP_RESHAPE,
                None,
                options_type::RESHAPE,
                table(vec![(0, Off(i32s(shape)))]),
                None,
            )
        }
        OpKind::Pad => (OP_PAD, None, options_type::PAD, table(vec![]), None),
        OpKind::MaxPool2D(p) | OpKind::AveragePool2D(p) => (
            if matches!(op.kind, OpKind::MaxPool2D(_)) {
                OP_MAX_POOL_2D
            } else {
                OP_AVERAGE_POOL_2D
            },
            None,
            options_type::POOL_2D,
            table(vec![
                (0, U8(pad(p.padding))),
                (1, I32(dim(p.stride_w, "stride")?)),
                (2, I32(dim(p.stride_h, "stride")?)),
                (3, I32(dim(p.filter_w, "filter size")?)),
                (4, I32(dim(p.filter_h, "filter size")?)),
                (5, U8(act(p.activation))),
            ]),
            None,
        ),
        OpKind::Mean { keep_dims } => (
            OP_MEAN,
            None,
            options_type::REDUCER,
            table(vec![(0, U8(*keep_dims as u8))]),
            None,
        ),
        OpKind::Relu => (OP_RELU, None, 0, None, None),
        OpKind::Relu6 => (OP_RELU6, None, 0, None, None),
        OpKind::Prelu => (OP_PRELU, None, 0, None, None),
        OpKind::Logistic => (OP_LOGISTIC, None, 0, None, None),
        OpKind::Softmax { beta } => (
            OP_SOFTMAX,
            None,
            options_type::SOFTMAX,
            table(vec![(0, F32(*beta))]),
            None,
        ),
        OpKind::ResizeBilinear {
            align_corners,
            half_pixel_centers,
        } => (
            OP_RESIZE_BILINEAR,
            None,
            options_type::RESIZE_BILINEAR,
            table(vec![
                (2, U8(*align_corners as u8)),
                (3, U8(*half_pixel_centers as u8)),
            ]),
            None,
        ),
        OpKind::ResizeNearestNeighbor {
            align_corners,
            half_pixel_centers,
        } => (
            OP_RESIZE_NEAREST_NEIGHBOR,
            None,
            options_type::RESIZE_NEAREST_NEIGHBOR,
            table(vec![
                (0, U8(*align_corners as u8)),
                (1, U8(*half_pixel_centers as u8)),
            ]),
            None,
        ),
        OpKind::DepthToSpace { block_size } => (
            OP_DEPTH_TO_SPACE,
            None,
            options_type::DEPTH_TO_SPACE,
            table(vec![(0, I32(dim(*block_size, "block_size")?))]),
            None,
        ),
        OpKind::Quantize { .. } => (
            OP_QUANTIZE,
            None,
            options_type::QUANTIZE,
            table(vec![]),
            None,
        ),
        OpKind::Dequantize => (
            OP_DEQUANTIZE,
            None,
            options_type::DEQUANTIZE,
            table(vec![]),
            None,
        ),
        OpKind::DetectionPostProcess(o) => {
            use super::flexbuf::FlexScalar::*;
            let n = |v: usize, what: &str| -> Result<i64, ModelError> { Ok(dim(v, what)? as i64) };
            let raw = super::flexbuf::encode_root_map(&[
                (
                    "max_detections",
                    Int(n(o.max_detections, "max_detections")?),
                ),
                (
                    "max_classes_per_detection",
                    Int(n(o.max_classes_per_detection, "max_classes_per_detection")?),
                ),
                (
                    "detections_per_class",
                    Int(n(o.detections_per_class, "detections_per_class")?),
                ),
                ("use_regular_nms", Bool(o.use_regular_nms)),
                ("nms_score_threshold", Float(o.nms_score_threshold)),
                ("nms_iou_threshold", Float(o.nms_iou_threshold)),
                ("num_classes", Int(n(o.num_classes, "num_classes")?)),
                ("y_scale", Float(o.y_scale)),
                ("x_scale", Float(o.x_scale)),
                ("h_scale", Float(o.h_scale)),
                ("w_scale", Float(o.w_scale)),
            ]);
            (OP_CUSTOM, Some(DETECTION_POSTPROCESS), 0, None, Some(raw))
        }
    })
}

fn quant_node(q: &Quant) -> Result<Node, ModelError> {
    use Field::*;
    Ok(match q {
        Quant::PerTensor { scale, zero_point } => Node::Table(vec![
            (2, Off(f32s(&[*scale]))),
            (3, Off(i64s(&[*zero_point as i64]))),
        ]),
        Quant::PerAxis {
            axis,
            scales,
            zero_points,
        } => {
            let zps: Vec<i64> = zero_points.iter().map(|&z| z as i64).collect();
            Node::Table(vec![
                (2, Off(f32s(scales))),
                (3, Off(i64s(&zps))),
                (6, I32(dim(*axis, "quantized_dimension")?)),
            ])
        }
    })
}

fn model_node(graph: &Graph) -> Result<Node, ModelError> {
    use Field::*;
    // Buffer 0 is the empty sentinel; every constant gets its own buffer.
    let mut buffers = vec![Node::Table(vec![])];
    let mut tensors = Vec::with_capacity(graph.tensors.len());
    for t in &graph.tensors {
        let shape = t
            .shape
            .iter()
            .map(|&d| dim(d, "dimension"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fields = vec![
            (0, Off(i32s(shape))),
            (1, U8(tensor_type(t.dtype))),
            (3, Off(Node::String(t.name.clone()))),
        ];
        if let Some(d) = &t.data {
            if d.len() != t.byte_len() {
                return Err(ModelError::Invalid {
                    what: format!(
                        "tensor '{}': {} bytes of data for shape {:?} of {}",
                        t.name,
                        d.len(),
                        t.shape,
                        t.dtype
                    ),
                });
            }
            fields.push((2, U32(buffers.len() as u32)));
            buffers.push(Node::Table(vec![(0, Off(bytes(d, 16)))]));
        }
        if let Some(q) = &t.quant {
            fields.push((4, Off(quant_node(q)?)));
        }
        fields.sort_by_key(|(s, _)| *s);
        tensors.push(Node::Table(fields));
    }

    let mut codes: Vec<(i32, Option<&'static str>)> = Vec::new();
    let mut code_index: HashMap<(i32, Option<&'static str>), usize> = HashMap::new();
    let mut operators = Vec::with_capacity(graph.ops.len());
    for (index, op) in graph.ops.iter().enumerate() {
        let (code, custom, opt_type, options, custom_options) = encode_op(graph, index)?;
        let ci = *code_index.entry((code, custom)).or_insert_with(|| {
            codes.push((code, custom));
            codes.len() - 1
        });
        let inputs = op
            .inputs
            .iter()
            .map(|i| i.map_or(Ok(-1), |i| dim(i, "tensor index")))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = op
            .outputs
            .iter()
            .map(|&o| dim(o, "tensor index"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fields = vec![
            (0, U32(ci as u32)),
            (1, Off(i32s(inputs))),
            (2, Off(i32s(outputs))),
        ];
        if let Some(o) = options {
            fields.push((3, U8(opt_type)));
            fields.push((4, Off(o)));
        }
        if let Some(raw) = custom_options {
            fields.push((5, Off(bytes(&raw, 1))));
            // custom_options_format (slot 6) defaults to FLEXBUFFERS.
        }
        operators.push(Node::Table(fields));
    }
    let op_codes = codes
        .into_iter()
        .map(|(code, custom)| {
            let mut f = vec![(0, I8(code.min(127) as i8)), (2, I32(1)), (3, I32(code))];
            if let Some(c) = custom {
                f.insert(1, (1, Off(Node::String(c.to_string()))));
            }
            Node::Table(f)
        })
        .collect();

    let tensor_ids = |ids: &[usize]| -> Result<Node, ModelError> {
        Ok(i32s(
            ids.iter()
                .map(|&i| dim(i, "tensor index"))
                .collect::<Result<Vec<_>, _>>()?,
        ))
    };
    let subgraph = Node::Table(vec![
        (0, Off(Node::Tables(tensors))),
        (1, Off(tensor_ids(&graph.inputs)?)),
        (2, Off(tensor_ids(&graph.outputs)?)),
        (3, Off(Node::Tables(operators))),
        (4, Off(Node::String("main".into()))),
    ]);
    Ok(Node::Table(vec![
        (0, U32(3)),
        (1, Off(Node::Tables(op_codes))),
        (2, Off(Node::Tables(vec![subgraph]))),
        (3, Off(Node::String("spotter".into()))),
        (4, Off(Node::Tables(buffers))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conv2DOptions, Op, Tensor};
    use std::path::PathBuf;

    fn coral() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models/mobilenet_ssd_v2_coco_quant_postprocess.tflite")
    }

    /// Field-by-field equality with a message naming the first difference.
    pub(crate) fn assert_same_graph(a: &Graph, b: &Graph) {
        assert_eq!(a.tensors.len(), b.tensors.len(), "tensor count");
        for (i, (x, y)) in a.tensors.iter().zip(&b.tensors).enumerate() {
            assert_eq!(x.name, y.name, "tensor {i} name");
            assert_eq!(x.shape, y.shape, "tensor {i} '{}' shape", x.name);
            assert_eq!(x.dtype, y.dtype, "tensor {i} '{}' dtype", x.name);
            assert_eq!(x.quant, y.quant, "tensor {i} '{}' quant", x.name);
            assert!(x.data == y.data, "tensor {i} '{}' data differs", x.name);
        }
        assert_eq!(a.ops.len(), b.ops.len(), "op count");
        for (i, (x, y)) in a.ops.iter().zip(&b.ops).enumerate() {
            assert_eq!(x.kind, y.kind, "op {i} kind");
            assert_eq!(x.inputs, y.inputs, "op {i} inputs");
            assert_eq!(x.outputs, y.outputs, "op {i} outputs");
        }
        assert_eq!(a.inputs, b.inputs, "graph inputs");
        assert_eq!(a.outputs, b.outputs, "graph outputs");
    }

    #[test]
    fn coral_round_trips_to_an_identical_graph() {
        let g = super::super::load(&coral()).unwrap();
        let bytes = write(&g).unwrap();
        assert_eq!(&bytes[4..8], b"TFL3");
        assert_eq!(bytes.len() % 16, 0);
        let g2 = super::super::parse(&bytes, Path::new("written.tflite")).unwrap();
        assert_same_graph(&g, &g2);
        // Writing is deterministic and a fixed point.
        assert_eq!(write(&g2).unwrap(), bytes);
        // For `scripts/calib/check_litert.py OUT --like models/mobilenet_ssd_v2_coco_...`.
        if let Some(out) = std::env::var_os("SPOTTER_WRITE_CORAL_ROUNDTRIP") {
            std::fs::write(out, &bytes).unwrap();
        }
    }

    #[test]
    fn buffers_are_16_byte_aligned_and_buffer_0_is_empty() {
        let g = super::super::load(&coral()).unwrap();
        let bytes = write(&g).unwrap();
        let buf = super::super::flatbuf::Buf::new(&bytes);
        let model = buf.root().unwrap();
        let buffers = model.vector(4, 4).unwrap().unwrap();
        let b0 = buffers.table(0).unwrap();
        assert!(b0.vector(0, 1).unwrap().is_none());
        let mut n = 0;
        for i in 1..buffers.len() {
            let v = buffers.table(i).unwrap().vector(0, 1).unwrap().unwrap();
            let data = v.bytes();
            let pos = data.as_ptr() as usize - bytes.as_ptr() as usize;
            assert_eq!(pos % 16, 0, "buffer {i} at byte {pos}");
            n += 1;
        }
        assert!(n > 100);
    }

    #[test]
    fn per_axis_quantization_and_optional_inputs_survive() {
        let t = |name: &str, shape: Vec<usize>, dtype, quant, data| Tensor {
            name: name.into(),
            shape,
            dtype,
            quant,
            data,
        };
        let mut g = Graph {
            tensors: vec![
                t(
                    "x",
                    vec![1, 4, 4, 2],
                    DType::I8,
                    Some(Quant::PerTensor {
                        scale: 0.5,
                        zero_point: -3,
                    }),
                    None,
                ),
                t(
                    "w",
                    vec![3, 1, 1, 2],
                    DType::I8,
                    Some(Quant::PerAxis {
                        axis: 0,
                        scales: vec![0.1, 0.2, 0.3],
                        zero_points: vec![0, 0, 0],
                    }),
                    Some(vec![1, 2, 3, 4, 5, 6]),
                ),
                t(
                    "y",
                    vec![1, 4, 4, 3],
                    DType::I8,
                    Some(Quant::PerTensor {
                        scale: 0.25,
                        zero_point: 7,
                    }),
                    None,
                ),
            ],
            ops: vec![Op {
                kind: OpKind::Conv2D(Conv2DOptions {
                    padding: Padding::Valid,
                    stride_h: 1,
                    stride_w: 1,
                    dilation_h: 1,
                    dilation_w: 1,
                    activation: Activation::Relu6,
                    requant: Default::default(),
                }),
                inputs: vec![Some(0), Some(1), None],
                outputs: vec![2],
            }],
            inputs: vec![0],
            outputs: vec![2],
        };
        g.validate().unwrap();
        let bytes = write(&g).unwrap();
        let g2 = super::super::parse(&bytes, Path::new("t.tflite")).unwrap();
        assert_same_graph(&g, &g2);
    }
}
