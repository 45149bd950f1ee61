//! ONNX loader for quantized (QDQ) models, as ONNX Runtime's `quantize_static` writes them:
//! file → [`Graph`] of int8 ops.
//!
//! A QDQ model is a float graph whose activations pass through QuantizeLinear →
//! DequantizeLinear pairs and whose weights are int8 initializers behind DequantizeLinear. ONNX
//! Runtime fuses `DQ → Conv → Q` into QLinearConv at load; we do the same translation into our
//! IR: a float op whose inputs are dequantized int8 tensors and whose only consumer is a
//! QuantizeLinear becomes one int8 op with the Q node's output quantization. Convs get
//! [`RequantMode::OnnxRuntime`] so they round like ONNX Runtime's CPU EP.
//!
//! Layout: ONNX is NCHW, our IR NHWC. Every rank-4 activation is stored NHWC and remembered as
//! "logically NCHW" (`nchw`); Transpose nodes between NCHW and NHWC become free relabelings,
//! conv weights are transposed OIHW → OHWI (depthwise → `[1, KH, KW, C]`) at load, and axes of
//! Concat follow the layout. uint8 activations are stored as int8 with the zero point moved by
//! −128 (the same real values; every kernel result is identical).
//!
//! Supported: Conv (group 1 or depthwise), Add, Concat, Reshape, Transpose (layout only),
//! Relu, Clip(0, 6), Sigmoid, MaxPool, QuantizeLinear, DequantizeLinear, Constant. Anything else
//! is reported by node name and op type.

pub mod proto;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::ModelError;
use crate::model::{
    Activation, Conv2DOptions, DType, Graph, Op, OpKind, Padding, Pool2DOptions, Quant,
    RequantMode, Tensor, TensorId,
};

use proto::dtype as dt;

/// Largest tensor we accept (elements).
const MAX_ELEMENTS: usize = 1 << 30;

/// True if `bytes` look like an ONNX ModelProto: field 1 (`ir_version`, varint) first, as
/// every writer we know emits it, and not a TFLite file.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x08 && !(bytes.len() >= 8 && &bytes[4..8] == b"TFL3")
}

/// Load a `.onnx` file.
pub fn load(path: &Path) -> Result<Graph, ModelError> {
    parse(&super::read_file(path)?, path)
}

/// Parse ONNX bytes; `path` is only used in messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Graph, ModelError> {
    let malformed = |what: String| ModelError::Malformed {
        path: path.to_path_buf(),
        what,
    };
    if bytes.is_empty() {
        return Err(malformed("the file is empty".into()));
    }
    let model = proto::parse_model(bytes).map_err(malformed)?;
    if let Some((_, v)) = model
        .opsets
        .iter()
        .find(|(d, _)| d.is_empty() || d == "ai.onnx")
    {
        if *v < 10 {
            return Err(malformed(format!(
                "opset {v} predates QuantizeLinear/DequantizeLinear (need 10 or later)"
            )));
        }
    }
    let unsupported: Vec<String> = model
        .graph
        .nodes
        .iter()
        .filter(|n| !SUPPORTED.contains(&n.op_type.as_str()) || !domain_ok(&n.domain))
        .map(node_label)
        .collect();
    if !unsupported.is_empty() {
        return Err(ModelError::Unsupported {
            path: path.to_path_buf(),
            names: unsupported,
        });
    }
    let mut graph = Translator::new(&model.graph).run().map_err(|e| match e {
        Fail::Malformed(what) => malformed(what),
        Fail::Unsupported(what) => ModelError::Unsupported {
            path: path.to_path_buf(),
            names: vec![what],
        },
    })?;
    graph.validate().map_err(malformed)?;
    Ok(graph)
}

const SUPPORTED: &[&str] = &[
    "Conv",
    "Add",
    "Concat",
    "Reshape",
    "Transpose",
    "Relu",
    "Clip",
    "Sigmoid",
    "MaxPool",
    "QuantizeLinear",
    "DequantizeLinear",
    "Constant",
    "Identity",
];

fn domain_ok(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

fn node_label(n: &proto::Node) -> String {
    if n.name.is_empty() {
        format!(
            "node producing '{}' ({})",
            n.outputs.first().map_or("", String::as_str),
            n.op_type
        )
    } else {
        format!("node '{}' ({})", n.name, n.op_type)
    }
}

enum Fail {
    Malformed(String),
    /// A supported op type used in a way we cannot run (named by node).
    Unsupported(String),
}

type TResult<T> = Result<T, Fail>;

/// A constant (initializer or Constant node) in ONNX layout.
#[derive(Clone, Debug)]
struct Const {
    dims: Vec<usize>,
    dtype: DType,
    /// Little-endian element bytes.
    bytes: Vec<u8>,
}

impl Const {
    fn len(&self) -> usize {
        self.dims.iter().product()
    }

    fn f32s(&self) -> Option<Vec<f32>> {
        (self.dtype == DType::F32).then(|| {
            self.bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
    }

    /// Integer values of an int8/uint8/int32/int64 constant.
    fn ints(&self) -> Option<Vec<i64>> {
        Some(match self.dtype {
            DType::I8 => self.bytes.iter().map(|&b| b as i8 as i64).collect(),
            DType::U8 => self.bytes.iter().map(|&b| b as i64).collect(),
            DType::I32 => self
                .bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            DType::I64 => self
                .bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            _ => return None,
        })
    }
}

/// Dequantization parameters of a DequantizeLinear / QuantizeLinear node.
#[derive(Clone, Debug, PartialEq)]
struct QParams {
    scales: Vec<f32>,
    /// In the int8 domain (uint8 zero points already moved by −128).
    zero_points: Vec<i32>,
    /// Channel axis (ONNX layout) when `scales.len() > 1`.
    axis: usize,
    /// The ONNX tensor was uint8 (values are stored shifted by −128).
    from_u8: bool,
}

impl QParams {
    fn per_tensor(&self) -> Option<(f32, i32)> {
        (self.scales.len() == 1).then(|| (self.scales[0], self.zero_points[0]))
    }
}

/// What an ONNX value name stands for in our graph.
#[derive(Clone, Debug)]
enum Sym {
    /// A tensor of our graph. `nchw`: the ONNX value is NCHW, we store it NHWC.
    Act {
        tid: TensorId,
        nchw: bool,
    },
    /// DequantizeLinear of the int8 tensor `tid` (which carries the quantization): float in
    /// ONNX, int8 in our graph until something needs the float values.
    Dq {
        tid: TensorId,
        nchw: bool,
    },
    Const(Const),
    /// DequantizeLinear of a constant.
    ConstDq(Const, QParams),
}

struct Translator<'m> {
    src: &'m proto::Graph,
    g: Graph,
    syms: HashMap<String, Sym>,
    /// Value name → indices of the nodes reading it.
    consumers: HashMap<String, Vec<usize>>,
    graph_outputs: HashSet<String>,
    /// QuantizeLinear nodes already folded into their producer.
    folded: HashSet<usize>,
    /// Cache of DEQUANTIZE ops materializing the float value of an int8 tensor.
    float_of: HashMap<TensorId, TensorId>,
}

/// NCHW axis → NHWC axis of the same dimension.
const NCHW_TO_NHWC: [usize; 4] = [0, 3, 1, 2];

fn nhwc(shape: &[usize]) -> Vec<usize> {
    vec![shape[0], shape[2], shape[3], shape[1]]
}

impl<'m> Translator<'m> {
    fn new(src: &'m proto::Graph) -> Self {
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in src.nodes.iter().enumerate() {
            for x in n.inputs.iter().filter(|x| !x.is_empty()) {
                consumers.entry(x.clone()).or_default().push(i);
            }
        }
        Translator {
            src,
            g: Graph::default(),
            syms: HashMap::new(),
            consumers,
            graph_outputs: src.outputs.iter().map(|o| o.name.clone()).collect(),
            folded: HashSet::new(),
            float_of: HashMap::new(),
        }
    }

    fn run(mut self) -> TResult<Graph> {
        for t in &self.src.initializers {
            let c = const_from_proto(t)?;
            self.syms.insert(t.name.clone(), Sym::Const(c));
        }
        self.add_inputs()?;
        for i in 0..self.src.nodes.len() {
            if self.folded.contains(&i) {
                continue;
            }
            let node = &self.src.nodes[i];
            self.node(node)?;
        }
        self.add_outputs()?;
        Ok(self.g)
    }

    fn add_tensor(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        dtype: DType,
        quant: Option<Quant>,
    ) -> TensorId {
        self.g.tensors.push(Tensor {
            name: name.to_string(),
            shape,
            dtype,
            quant,
            data: None,
        });
        self.g.tensors.len() - 1
    }

    fn add_const(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        dtype: DType,
        quant: Option<Quant>,
        data: Vec<u8>,
    ) -> TensorId {
        self.g.tensors.push(Tensor {
            name: name.to_string(),
            shape,
            dtype,
            quant,
            data: Some(data),
        });
        self.g.tensors.len() - 1
    }

    fn add_inputs(&mut self) -> TResult<()> {
        let init: HashSet<&str> = self
            .src
            .initializers
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        for vi in &self.src.inputs {
            if init.contains(vi.name.as_str()) {
                continue; // old exporters list initializers as inputs too
            }
            let dtype = match vi.elem_type {
                dt::FLOAT => DType::F32,
                dt::INT8 => DType::I8,
                other => {
                    return Err(Fail::Unsupported(format!(
                        "graph input '{}' of type {} (expected float or int8)",
                        vi.name,
                        dt::name(other)
                    )))
                }
            };
            let shape = match &vi.shape {
                Some(dims) if dims.iter().all(|d| matches!(d, Some(v) if *v > 0)) => dims
                    .iter()
                    .map(|d| d.unwrap_or(1) as usize)
                    .collect::<Vec<_>>(),
                Some(dims)
                    if dims.first() == Some(&None)
                        && dims[1..].iter().all(|d| matches!(d, Some(v) if *v > 0)) =>
                {
                    // A symbolic batch dimension: run batch 1.
                    std::iter::once(1)
                        .chain(dims[1..].iter().map(|d| d.unwrap_or(1) as usize))
                        .collect()
                }
                _ => {
                    return Err(Fail::Unsupported(format!(
                        "graph input '{}' has no fixed shape",
                        vi.name
                    )))
                }
            };
            // Rank-4 inputs are NCHW (what Conv reads) unless every reader first transposes
            // them NHWC → NCHW (tf2onnx-style graphs): then they already are NHWC.
            let nchw = shape.len() == 4 && !self.read_through_to_nchw_transpose(&vi.name);
            let stored = if nchw { nhwc(&shape) } else { shape };
            let tid = self.add_tensor(&vi.name, stored, dtype, None);
            self.g.inputs.push(tid);
            self.syms.insert(vi.name.clone(), Sym::Act { tid, nchw });
        }
        Ok(())
    }

    /// True if all readers of `name` (looking through one QuantizeLinear → DequantizeLinear
    /// pair) are Transpose nodes with perm `[0, 3, 1, 2]`.
    fn read_through_to_nchw_transpose(&self, name: &str) -> bool {
        let Some(readers) = self.consumers.get(name) else {
            return false;
        };
        readers.iter().all(|&r| {
            let n = &self.src.nodes[r];
            match n.op_type.as_str() {
                "Transpose" => n.attr("perm").map(|a| a.ints.as_slice()) == Some(&[0, 3, 1, 2]),
                "QuantizeLinear" | "DequantizeLinear" => n
                    .outputs
                    .first()
                    .is_some_and(|o| self.read_through_to_nchw_transpose(o)),
                _ => false,
            }
        })
    }

    fn add_outputs(&mut self) -> TResult<()> {
        for vi in &self.src.outputs {
            let sym = self.syms.get(&vi.name).cloned().ok_or_else(|| {
                Fail::Malformed(format!("graph output '{}' is never produced", vi.name))
            })?;
            let (tid, nchw) = match sym {
                Sym::Act { tid, nchw } => (tid, nchw),
                Sym::Dq { tid, nchw } => (self.float_tensor(tid, Some(&vi.name)), nchw),
                Sym::Const(_) | Sym::ConstDq(..) => {
                    return Err(Fail::Unsupported(format!(
                        "graph output '{}' is a constant",
                        vi.name
                    )))
                }
            };
            if nchw && self.g.tensors[tid].shape.len() == 4 {
                return Err(Fail::Unsupported(format!(
                    "graph output '{}' is NCHW (spotter stores images NHWC; add a Transpose \
                     to NHWC before the output)",
                    vi.name
                )));
            }
            self.g.outputs.push(tid);
        }
        Ok(())
    }

    /// The float value of int8 tensor `tid`: a DEQUANTIZE op, made once.
    fn float_tensor(&mut self, tid: TensorId, name: Option<&str>) -> TensorId {
        if let Some(&f) = self.float_of.get(&tid) {
            return f;
        }
        let t = &self.g.tensors[tid];
        let name = name.map_or_else(|| format!("{}_dequantized", t.name), str::to_string);
        let shape = t.shape.clone();
        let f = self.add_tensor(&name, shape, DType::F32, None);
        self.g.ops.push(Op {
            kind: OpKind::Dequantize,
            inputs: vec![Some(tid)],
            outputs: vec![f],
        });
        self.float_of.insert(tid, f);
        f
    }

    fn sym(&self, node: &proto::Node, i: usize) -> TResult<Sym> {
        let name = node
            .inputs
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Fail::Malformed(format!("{}: missing input {i}", node_label(node))))?;
        self.syms.get(name).cloned().ok_or_else(|| {
            Fail::Malformed(format!(
                "{}: input '{name}' is not produced before this node (nodes must be in \
                 topological order)",
                node_label(node)
            ))
        })
    }

    fn opt_sym(&self, node: &proto::Node, i: usize) -> TResult<Option<Sym>> {
        match node.inputs.get(i) {
            Some(s) if !s.is_empty() => self.sym(node, i).map(Some),
            _ => Ok(None),
        }
    }

    fn konst(&self, node: &proto::Node, i: usize, what: &str) -> TResult<Const> {
        match self.sym(node, i)? {
            Sym::Const(c) => Ok(c),
            _ => Err(Fail::Unsupported(format!(
                "{}: {what} (input {i}) must be a constant",
                node_label(node)
            ))),
        }
    }

    fn out_name<'a>(&self, node: &'a proto::Node) -> TResult<&'a str> {
        node.outputs
            .first()
            .map(String::as_str)
            .ok_or_else(|| Fail::Malformed(format!("{}: no outputs", node_label(node))))
    }

    /// If the only reader of `node`'s output is a QuantizeLinear (and the output is not a
    /// graph output), that node's index and parameters.
    fn sole_quantize(&self, node: &proto::Node) -> TResult<Option<(usize, QParams)>> {
        let out = self.out_name(node)?;
        if self.graph_outputs.contains(out) {
            return Ok(None);
        }
        let Some(readers) = self.consumers.get(out) else {
            return Ok(None);
        };
        if readers.len() != 1 {
            return Ok(None);
        }
        let q = &self.src.nodes[readers[0]];
        if q.op_type != "QuantizeLinear" || q.inputs.first().map(String::as_str) != Some(out) {
            return Ok(None);
        }
        let p = self.qparams(q)?;
        Ok(Some((readers[0], p)))
    }

    /// Scale / zero point / axis of a QuantizeLinear or DequantizeLinear node.
    fn qparams(&self, node: &proto::Node) -> TResult<QParams> {
        let scale = self.konst(node, 1, "the scale")?;
        let scales = scale.f32s().ok_or_else(|| {
            Fail::Unsupported(format!("{}: the scale must be float", node_label(node)))
        })?;
        let (zps, from_u8) = match self.opt_sym(node, 2)? {
            None => (vec![0; scales.len()], true),
            Some(Sym::Const(z)) => {
                let from_u8 = match z.dtype {
                    DType::U8 => true,
                    DType::I8 => false,
                    DType::I32 => false,
                    d => {
                        return Err(Fail::Unsupported(format!(
                            "{}: zero point of type {d} (int8, uint8 or int32 expected)",
                            node_label(node)
                        )))
                    }
                };
                let v: Vec<i32> = z
                    .ints()
                    .unwrap_or_default()
                    .iter()
                    .map(|&x| x as i32)
                    .collect();
                (v, from_u8)
            }
            Some(_) => {
                return Err(Fail::Unsupported(format!(
                    "{}: the zero point must be a constant",
                    node_label(node)
                )))
            }
        };
        if scales.is_empty() || zps.len() != scales.len() {
            return Err(Fail::Malformed(format!(
                "{}: {} scales but {} zero points",
                node_label(node),
                scales.len(),
                zps.len()
            )));
        }
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Fail::Malformed(format!(
                "{}: scale {bad} is not a positive finite number",
                node_label(node)
            )));
        }
        let axis = node.attr("axis").and_then(|a| a.i).unwrap_or(1);
        let zero_points = if from_u8 {
            zps.iter().map(|z| z - 128).collect()
        } else {
            zps
        };
        Ok(QParams {
            scales,
            zero_points,
            axis: axis.max(0) as usize,
            from_u8,
        })
    }

    fn node(&mut self, node: &'m proto::Node) -> TResult<()> {
        let out = self.out_name(node)?.to_string();
        let sym = match node.op_type.as_str() {
            "Constant" => {
                let t = node
                    .attr("value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| {
                        Fail::Unsupported(format!(
                            "{}: only the 'value' form of Constant is supported",
                            node_label(node)
                        ))
                    })?;
                Sym::Const(const_from_proto(t)?)
            }
            "Identity" => self.sym(node, 0)?,
            "DequantizeLinear" => self.dequantize(node)?,
            "QuantizeLinear" => self.quantize(node, &out)?,
            "Transpose" => self.transpose(node)?,
            "Conv" => self.conv(node, &out)?,
            "Add" | "Concat" | "Relu" | "Clip" | "Sigmoid" | "MaxPool" => {
                self.elementwise_like(node, &out)?
            }
            "Reshape" => self.reshape(node, &out)?,
            other => return Err(Fail::Unsupported(format!("{} ({other})", node_label(node)))),
        };
        self.syms.insert(out, sym);
        Ok(())
    }

    fn dequantize(&mut self, node: &proto::Node) -> TResult<Sym> {
        let p = self.qparams(node)?;
        match self.sym(node, 0)? {
            Sym::Const(c) => {
                let c = if p.from_u8 && c.dtype == DType::U8 {
                    Const {
                        dtype: DType::I8,
                        bytes: c.bytes.iter().map(|&b| b ^ 0x80).collect(),
                        dims: c.dims,
                    }
                } else {
                    c
                };
                Ok(Sym::ConstDq(c, p))
            }
            Sym::Act { tid, nchw } => {
                let t = &self.g.tensors[tid];
                if t.dtype != DType::I8 {
                    return Err(Fail::Unsupported(format!(
                        "{}: dequantizes '{}' of type {}",
                        node_label(node),
                        t.name,
                        t.dtype
                    )));
                }
                match (&t.quant, p.per_tensor()) {
                    (Some(q), Some((s, z))) if q.per_tensor() == Some((s, z)) => {
                        Ok(Sym::Dq { tid, nchw })
                    }
                    (None, Some((s, z))) => {
                        // An int8 graph input: it takes this node's parameters.
                        self.g.tensors[tid].quant = Some(Quant::PerTensor {
                            scale: s,
                            zero_point: z,
                        });
                        Ok(Sym::Dq { tid, nchw })
                    }
                    _ => Err(Fail::Unsupported(format!(
                        "{}: parameters differ from the QuantizeLinear that made '{}' (or are \
                         per-axis)",
                        node_label(node),
                        t.name
                    ))),
                }
            }
            Sym::Dq { .. } | Sym::ConstDq(..) => Err(Fail::Unsupported(format!(
                "{}: dequantizes a float value",
                node_label(node)
            ))),
        }
    }

    fn quantize(&mut self, node: &proto::Node, out: &str) -> TResult<Sym> {
        let p = self.qparams(node)?;
        let Some((scale, zero_point)) = p.per_tensor() else {
            return Err(Fail::Unsupported(format!(
                "{}: per-axis quantization of activations",
                node_label(node)
            )));
        };
        let quant = Quant::PerTensor { scale, zero_point };
        let (src, nchw) = match self.sym(node, 0)? {
            Sym::Dq { tid, nchw } => {
                if self.g.tensors[tid].quant.as_ref() == Some(&quant) {
                    // DQ → Q with the same parameters: the same int8 values.
                    return Ok(Sym::Act { tid, nchw });
                }
                (tid, nchw) // requantize int8 → int8
            }
            Sym::Act { tid, nchw } => (tid, nchw),
            Sym::Const(_) | Sym::ConstDq(..) => {
                return Err(Fail::Unsupported(format!(
                    "{}: quantizes a constant",
                    node_label(node)
                )))
            }
        };
        let shape = self.g.tensors[src].shape.clone();
        let tid = self.add_tensor(out, shape, DType::I8, Some(quant));
        self.g.ops.push(Op {
            kind: OpKind::Quantize {
                mode: RequantMode::OnnxRuntime,
            },
            inputs: vec![Some(src)],
            outputs: vec![tid],
        });
        Ok(Sym::Act { tid, nchw })
    }

    fn transpose(&mut self, node: &proto::Node) -> TResult<Sym> {
        let perm: Vec<i64> = node
            .attr("perm")
            .map(|a| a.ints.clone())
            .unwrap_or_default();
        let relabel = |tid: TensorId, nchw: bool, g: &Graph| -> Option<bool> {
            let rank = g.tensors[tid].shape.len();
            if perm.len() != rank {
                return None;
            }
            if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
                return Some(nchw);
            }
            match (rank, nchw, perm.as_slice()) {
                (4, true, [0, 2, 3, 1]) => Some(false),
                (4, false, [0, 3, 1, 2]) => Some(true),
                _ => None,
            }
        };
        let fail = || {
            Fail::Unsupported(format!(
                "{}: perm {perm:?} (only NCHW <-> NHWC layout changes are supported)",
                node_label(node)
            ))
        };
        match self.sym(node, 0)? {
            Sym::Act { tid, nchw } => Ok(Sym::Act {
                tid,
                nchw: relabel(tid, nchw, &self.g).ok_or_else(fail)?,
            }),
            Sym::Dq { tid, nchw } => Ok(Sym::Dq {
                tid,
                nchw: relabel(tid, nchw, &self.g).ok_or_else(fail)?,
            }),
            _ => Err(fail()),
        }
    }

    fn reshape(&mut self, node: &proto::Node, out: &str) -> TResult<Sym> {
        let shape_c = self.konst(node, 1, "the shape")?;
        let target = shape_c.ints().ok_or_else(|| {
            Fail::Malformed(format!("{}: the shape must be int64", node_label(node)))
        })?;
        let (tid, is_dq) = match self.sym(node, 0)? {
            Sym::Act { tid, nchw } | Sym::Dq { tid, nchw } if nchw => {
                let s = &self.g.tensors[tid].shape;
                // NHWC and NCHW orders agree when H = W = 1 or C = 1.
                if !(s[1] == 1 && s[2] == 1 || s[3] == 1) {
                    return Err(Fail::Unsupported(format!(
                        "{}: reshapes an NCHW tensor (transpose it to NHWC first)",
                        node_label(node)
                    )));
                }
                let is_dq = matches!(self.sym(node, 0)?, Sym::Dq { .. });
                (tid, is_dq)
            }
            Sym::Act { tid, .. } => (tid, false),
            Sym::Dq { tid, .. } => (tid, true),
            _ => {
                return Err(Fail::Unsupported(format!(
                    "{}: reshapes a constant",
                    node_label(node)
                )))
            }
        };
        let input = self.g.tensors[tid].clone();
        // The logical (ONNX) input shape decides what `0` copies.
        let logical: Vec<usize> = if input.shape.len() == 4 && self.is_nchw(node)? {
            vec![
                input.shape[0],
                input.shape[3],
                input.shape[1],
                input.shape[2],
            ]
        } else {
            input.shape.clone()
        };
        let n = input.num_elements();
        let mut dims = Vec::with_capacity(target.len());
        let mut infer = None;
        for (i, &d) in target.iter().enumerate() {
            match d {
                0 => dims.push(*logical.get(i).ok_or_else(|| {
                    Fail::Malformed(format!(
                        "{}: shape copies a missing dimension",
                        node_label(node)
                    ))
                })?),
                -1 if infer.is_none() => {
                    infer = Some(i);
                    dims.push(1);
                }
                d if d > 0 => dims.push(d as usize),
                _ => {
                    return Err(Fail::Malformed(format!(
                        "{}: invalid target shape {target:?}",
                        node_label(node)
                    )))
                }
            }
        }
        if let Some(i) = infer {
            let known: usize = dims.iter().product();
            if known == 0 || !n.is_multiple_of(known) {
                return Err(Fail::Malformed(format!(
                    "{}: cannot reshape {:?} to {target:?}",
                    node_label(node),
                    logical
                )));
            }
            dims[i] = n / known;
        }
        if dims.iter().product::<usize>() != n {
            return Err(Fail::Malformed(format!(
                "{}: cannot reshape {:?} to {target:?}",
                node_label(node),
                logical
            )));
        }
        let new = self.add_tensor(out, dims, input.dtype, input.quant.clone());
        self.g.ops.push(Op {
            kind: OpKind::Reshape,
            inputs: vec![Some(tid)],
            outputs: vec![new],
        });
        Ok(if is_dq {
            Sym::Dq {
                tid: new,
                nchw: false,
            }
        } else {
            Sym::Act {
                tid: new,
                nchw: false,
            }
        })
    }

    fn is_nchw(&self, node: &proto::Node) -> TResult<bool> {
        Ok(match self.sym(node, 0)? {
            Sym::Act { nchw, .. } | Sym::Dq { nchw, .. } => nchw,
            _ => false,
        })
    }

    /// Input `i` as a tensor of our graph: `(id, nchw, int8?)`.
    fn act_input(&mut self, node: &proto::Node, i: usize) -> TResult<(TensorId, bool, bool)> {
        match self.sym(node, i)? {
            Sym::Act { tid, nchw } => Ok((tid, nchw, false)),
            Sym::Dq { tid, nchw } => Ok((tid, nchw, true)),
            Sym::Const(_) | Sym::ConstDq(..) => Err(Fail::Unsupported(format!(
                "{}: constant input {i} (only activations are supported here)",
                node_label(node)
            ))),
        }
    }

    /// Add, Concat, Relu, Clip, Sigmoid, MaxPool: int8 when all inputs are dequantized int8
    /// and the output is quantized, float otherwise.
    fn elementwise_like(&mut self, node: &proto::Node, out: &str) -> TResult<Sym> {
        let n_inputs = match node.op_type.as_str() {
            "Add" => 2,
            "Concat" => node.inputs.len(),
            _ => 1,
        };
        let mut ins = Vec::new();
        for i in 0..n_inputs {
            ins.push(self.act_input(node, i)?);
        }
        let nchw = ins[0].1;
        if ins.iter().any(|x| x.1 != nchw) {
            return Err(Fail::Unsupported(format!(
                "{}: inputs in different layouts",
                node_label(node)
            )));
        }
        let quantized = self.sole_quantize(node)?;
        let int8 = quantized.is_some() && ins.iter().all(|x| x.2);
        let mut inputs: Vec<Option<TensorId>> = Vec::new();
        for &(tid, _, is_dq) in &ins {
            inputs.push(Some(if is_dq && !int8 {
                self.float_tensor(tid, None)
            } else {
                tid
            }));
        }
        let in0 = self.g.tensors[ins[0].0].clone();
        let rank = in0.shape.len();
        let (kind, shape) = match node.op_type.as_str() {
            "Add" => {
                let s1 = &self.g.tensors[ins[1].0].shape;
                if *s1 != in0.shape {
                    return Err(Fail::Unsupported(format!(
                        "{}: broadcasting Add ({:?} + {:?})",
                        node_label(node),
                        in0.shape,
                        s1
                    )));
                }
                (
                    OpKind::Add {
                        activation: Activation::None,
                    },
                    in0.shape.clone(),
                )
            }
            "Concat" => {
                let a = node.attr("axis").and_then(|a| a.i).unwrap_or(0);
                let a = if a < 0 { a + rank as i64 } else { a };
                if a < 0 || a as usize >= rank {
                    return Err(Fail::Malformed(format!(
                        "{}: axis {a} out of range",
                        node_label(node)
                    )));
                }
                let axis = if nchw && rank == 4 {
                    NCHW_TO_NHWC[a as usize]
                } else {
                    a as usize
                };
                let mut shape = in0.shape.clone();
                shape[axis] = 0;
                for &(tid, ..) in &ins {
                    let s = &self.g.tensors[tid].shape;
                    if s.len() != rank || (0..rank).any(|d| d != axis && s[d] != in0.shape[d]) {
                        return Err(Fail::Malformed(format!(
                            "{}: input shapes do not agree off axis {a}",
                            node_label(node)
                        )));
                    }
                    shape[axis] += s[axis];
                }
                (
                    OpKind::Concatenation {
                        axis,
                        activation: Activation::None,
                    },
                    shape,
                )
            }
            "Relu" => (OpKind::Relu, in0.shape.clone()),
            "Clip" => {
                let lo = self.clip_bound(node, 1, "min")?;
                let hi = self.clip_bound(node, 2, "max")?;
                match (lo, hi) {
                    (Some(l), Some(h)) if l == 0.0 && h == 6.0 => {
                        (OpKind::Relu6, in0.shape.clone())
                    }
                    (Some(0.0), None) => (OpKind::Relu, in0.shape.clone()),
                    _ => {
                        return Err(Fail::Unsupported(format!(
                            "{}: Clip({lo:?}, {hi:?}) (only Clip(0, 6) and Clip(0, inf))",
                            node_label(node)
                        )))
                    }
                }
            }
            "Sigmoid" => (OpKind::Logistic, in0.shape.clone()),
            "MaxPool" => {
                if rank != 4 || !nchw {
                    return Err(Fail::Unsupported(format!(
                        "{}: MaxPool needs a 4-D NCHW input",
                        node_label(node)
                    )));
                }
                let w = Window::from_node(node, &in0.shape, None)?;
                if w.explicit_pad.is_some() {
                    return Err(Fail::Unsupported(format!(
                        "{}: pads that are neither SAME nor VALID",
                        node_label(node)
                    )));
                }
                (
                    OpKind::MaxPool2D(Pool2DOptions {
                        padding: w.padding,
                        stride_h: w.stride[0],
                        stride_w: w.stride[1],
                        filter_h: w.kernel[0],
                        filter_w: w.kernel[1],
                        activation: Activation::None,
                    }),
                    vec![in0.shape[0], w.out[0], w.out[1], in0.shape[3]],
                )
            }
            _ => unreachable_op(node)?,
        };
        let (dtype, quant) = match (&quantized, int8) {
            (Some((q_index, p)), true) => {
                self.folded.insert(*q_index);
                let (scale, zero_point) = p.per_tensor().ok_or_else(|| {
                    Fail::Unsupported(format!(
                        "{}: per-axis output quantization",
                        node_label(node)
                    ))
                })?;
                (DType::I8, Some(Quant::PerTensor { scale, zero_point }))
            }
            _ => (DType::F32, None),
        };
        if matches!(kind, OpKind::Concatenation { .. }) && int8 {
            // Our int8 CONCATENATION (TFLite's) needs one quantization for all; ONNX
            // Runtime's QLinearConcat rescales each input: requantize the ones that differ.
            for slot in inputs.iter_mut() {
                let Some(src) = *slot else { continue };
                if self.g.tensors[src].quant != quant {
                    let t = self.g.tensors[src].clone();
                    let r = self.add_tensor(
                        &format!("{}_requantized", t.name),
                        t.shape,
                        DType::I8,
                        quant.clone(),
                    );
                    self.g.ops.push(Op {
                        kind: OpKind::Quantize {
                            mode: RequantMode::OnnxRuntime,
                        },
                        inputs: vec![Some(src)],
                        outputs: vec![r],
                    });
                    *slot = Some(r);
                }
            }
        }
        let name = match (&quantized, int8) {
            (Some((q_index, _)), true) => self.src.nodes[*q_index].outputs[0].clone(),
            _ => out.to_string(),
        };
        let tid = self.add_tensor(&name, shape, dtype, quant);
        self.g.ops.push(Op {
            kind,
            inputs,
            outputs: vec![tid],
        });
        self.register_folded(&quantized, int8, tid, nchw);
        Ok(Sym::Act { tid, nchw })
    }

    /// After folding a QuantizeLinear into its producer, its output names the new tensor.
    fn register_folded(
        &mut self,
        q: &Option<(usize, QParams)>,
        folded: bool,
        tid: TensorId,
        nchw: bool,
    ) {
        if let (Some((qi, _)), true) = (q, folded) {
            if let Some(o) = self.src.nodes[*qi].outputs.first() {
                self.syms.insert(o.clone(), Sym::Act { tid, nchw });
            }
        }
    }

    fn clip_bound(&self, node: &proto::Node, i: usize, attr: &str) -> TResult<Option<f32>> {
        if let Some(v) = node.attr(attr).and_then(|a| a.f) {
            return Ok(Some(v));
        }
        match self.opt_sym(node, i)? {
            None => Ok(None),
            Some(Sym::Const(c)) => Ok(c.f32s().and_then(|v| v.first().copied())),
            Some(_) => Err(Fail::Unsupported(format!(
                "{}: {attr} must be a constant",
                node_label(node)
            ))),
        }
    }

    fn conv(&mut self, node: &proto::Node, out: &str) -> TResult<Sym> {
        let (x, nchw, x_q) = self.act_input(node, 0)?;
        let xin = self.g.tensors[x].clone();
        if xin.shape.len() != 4 || !nchw {
            return Err(Fail::Unsupported(format!(
                "{}: Conv needs a 4-D NCHW input, '{}' is {:?}",
                node_label(node),
                xin.name,
                xin.shape
            )));
        }
        let (w, wq) = match self.sym(node, 1)? {
            Sym::ConstDq(c, p) => (c, Some(p)),
            Sym::Const(c) => (c, None),
            _ => {
                return Err(Fail::Unsupported(format!(
                    "{}: weights must be constant",
                    node_label(node)
                )))
            }
        };
        if w.dims.len() != 4 {
            return Err(Fail::Unsupported(format!(
                "{}: {}-D weights (only 2-D convolution is supported)",
                node_label(node),
                w.dims.len()
            )));
        }
        let [oc, wc, kh, kw] = [w.dims[0], w.dims[1], w.dims[2], w.dims[3]];
        let ic = xin.shape[3];
        let group = node.attr("group").and_then(|a| a.i).unwrap_or(1).max(1) as usize;
        let depthwise = group > 1 && group == ic && wc == 1 && oc % ic == 0;
        if !depthwise && (group != 1 || wc != ic) {
            return Err(Fail::Unsupported(format!(
                "{}: grouped convolution (group {group}, weights {:?}, {ic} input channels)",
                node_label(node),
                w.dims
            )));
        }
        let win = Window::from_node(node, &xin.shape, Some([kh, kw]))?;
        let quantized = self.sole_quantize(node)?;
        let int8 = x_q && wq.is_some() && quantized.is_some();
        // Explicit padding that SAME/VALID cannot express: a PAD op first.
        let (x, xin) = match &win.explicit_pad {
            Some(p) => {
                let pad_in = if x_q && !int8 {
                    self.float_tensor(x, None)
                } else {
                    x
                };
                let t = self.g.tensors[pad_in].clone();
                let shape = vec![
                    t.shape[0],
                    t.shape[1] + p[0] + p[2],
                    t.shape[2] + p[1] + p[3],
                    t.shape[3],
                ];
                let pads: Vec<i32> = [0, 0, p[0], p[2], p[1], p[3], 0, 0]
                    .iter()
                    .map(|&v| v as i32)
                    .collect();
                let pads_t = self.add_const(
                    &format!("{out}_pads"),
                    vec![4, 2],
                    DType::I32,
                    None,
                    pads.iter().flat_map(|v| v.to_le_bytes()).collect(),
                );
                let padded =
                    self.add_tensor(&format!("{out}_padded"), shape, t.dtype, t.quant.clone());
                self.g.ops.push(Op {
                    kind: OpKind::Pad,
                    inputs: vec![Some(pad_in), Some(pads_t)],
                    outputs: vec![padded],
                });
                (padded, self.g.tensors[padded].clone())
            }
            None => (x, xin),
        };
        let x = if x_q && !int8 && win.explicit_pad.is_none() {
            self.float_tensor(x, None)
        } else {
            x
        };
        // Weights: OIHW → OHWI (conv) or [1, KH, KW, O] (depthwise).
        let elem = w.dtype.size();
        let mut wb = vec![0u8; w.bytes.len()];
        for o in 0..oc {
            for c in 0..wc {
                for y in 0..kh {
                    for xx in 0..kw {
                        let src = ((o * wc + c) * kh + y) * kw + xx;
                        let dst = if depthwise {
                            (y * kw + xx) * oc + o
                        } else {
                            ((o * kh + y) * kw + xx) * wc + c
                        };
                        wb[dst * elem..(dst + 1) * elem]
                            .copy_from_slice(&w.bytes[src * elem..(src + 1) * elem]);
                    }
                }
            }
        }
        let w_shape = if depthwise {
            vec![1, kh, kw, oc]
        } else {
            vec![oc, kh, kw, wc]
        };
        let w_axis = if depthwise { 3 } else { 0 };
        let bias = self.opt_sym(node, 2)?;
        let wname = node.inputs[1].clone();
        let (w_t, b_t, out_dtype, out_quant) = if int8 {
            let wq = wq.ok_or_else(|| Fail::Malformed("weights lost".into()))?;
            if w.dtype != DType::I8 {
                return Err(Fail::Unsupported(format!(
                    "{}: weights of type {} (int8 expected)",
                    node_label(node),
                    w.dtype
                )));
            }
            if wq.scales.len() > 1 && (wq.axis != 0 || wq.scales.len() != oc) {
                return Err(Fail::Unsupported(format!(
                    "{}: weight quantization on axis {} with {} scales",
                    node_label(node),
                    wq.axis,
                    wq.scales.len()
                )));
            }
            let w_quant = if wq.scales.len() == 1 {
                Quant::PerTensor {
                    scale: wq.scales[0],
                    zero_point: wq.zero_points[0],
                }
            } else {
                Quant::PerAxis {
                    axis: w_axis,
                    scales: wq.scales.clone(),
                    zero_points: wq.zero_points.clone(),
                }
            };
            let w_t = self.add_const(&wname, w_shape, DType::I8, Some(w_quant), wb);
            let (in_scale, _) = xin.per_tensor_quant().unwrap_or((1.0, 0));
            let b_t = match bias {
                None => None,
                Some(b) => Some(self.int_bias(node, b, in_scale, &wq, oc)?),
            };
            let (q_index, p) = quantized
                .clone()
                .ok_or_else(|| Fail::Malformed("lost Q".into()))?;
            self.folded.insert(q_index);
            let (scale, zero_point) = p.per_tensor().ok_or_else(|| {
                Fail::Unsupported(format!(
                    "{}: per-axis output quantization",
                    node_label(node)
                ))
            })?;
            (
                w_t,
                b_t,
                DType::I8,
                Some(Quant::PerTensor { scale, zero_point }),
            )
        } else {
            // Float conv: dequantize constant weights and bias.
            let wf = dequantize_const(
                &Const {
                    dims: w.dims.clone(),
                    dtype: w.dtype,
                    bytes: wb,
                },
                wq.as_ref(),
                0,
            )
            .ok_or_else(|| {
                Fail::Unsupported(format!("{}: weights of type {}", node_label(node), w.dtype))
            })?;
            let w_t = self.add_const(&wname, w_shape, DType::F32, None, wf);
            let b_t = match bias {
                None => None,
                Some(Sym::Const(c)) => {
                    let bytes = dequantize_const(&c, None, 0).ok_or_else(|| {
                        Fail::Unsupported(format!("{}: bias type", node_label(node)))
                    })?;
                    Some(self.add_const(&node.inputs[2], vec![oc], DType::F32, None, bytes))
                }
                Some(Sym::ConstDq(c, p)) => {
                    let bytes = dequantize_const(&c, Some(&p), 0).ok_or_else(|| {
                        Fail::Unsupported(format!("{}: bias type", node_label(node)))
                    })?;
                    Some(self.add_const(&node.inputs[2], vec![oc], DType::F32, None, bytes))
                }
                Some(_) => {
                    return Err(Fail::Unsupported(format!(
                        "{}: the bias must be constant",
                        node_label(node)
                    )))
                }
            };
            (w_t, b_t, DType::F32, None)
        };
        let opts = Conv2DOptions {
            padding: win.padding,
            stride_h: win.stride[0],
            stride_w: win.stride[1],
            dilation_h: win.dilation[0],
            dilation_w: win.dilation[1],
            activation: Activation::None,
            requant: RequantMode::OnnxRuntime,
        };
        let kind = if depthwise {
            OpKind::DepthwiseConv2D {
                conv: opts,
                depth_multiplier: oc / ic,
            }
        } else {
            OpKind::Conv2D(opts)
        };
        let name = match (&quantized, int8) {
            (Some((qi, _)), true) => self.src.nodes[*qi].outputs[0].clone(),
            _ => out.to_string(),
        };
        let shape = vec![self.g.tensors[x].shape[0], win.out[0], win.out[1], oc];
        let tid = self.add_tensor(&name, shape, out_dtype, out_quant);
        self.g.ops.push(Op {
            kind,
            inputs: vec![Some(x), Some(w_t), b_t],
            outputs: vec![tid],
        });
        self.register_folded(&quantized, int8, tid, true);
        Ok(Sym::Act { tid, nchw: true })
    }

    /// An int32 bias for an int8 conv: ONNX Runtime's quantizer stores it with scale
    /// `in_scale * w_scale[c]`, which is what our kernels add to the accumulator; other
    /// scales are requantized (round half to even).
    fn int_bias(
        &mut self,
        node: &proto::Node,
        b: Sym,
        in_scale: f32,
        wq: &QParams,
        oc: usize,
    ) -> TResult<TensorId> {
        let name = node.inputs[2].clone();
        let real: Vec<f64> = match &b {
            Sym::ConstDq(c, p) if c.dtype == DType::I32 && c.len() == oc => {
                let v = c.ints().unwrap_or_default();
                let exact = (0..oc).all(|i| {
                    let want = in_scale as f64
                        * wq.scales[if wq.scales.len() == 1 { 0 } else { i }] as f64;
                    let s = p.scales[if p.scales.len() == 1 { 0 } else { i }] as f64;
                    (s - want).abs() <= want * 1e-6
                        && p.zero_points[if p.zero_points.len() == 1 { 0 } else { i }] == 0
                });
                if exact {
                    let bytes = v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect();
                    return Ok(self.add_const(&name, vec![oc], DType::I32, None, bytes));
                }
                (0..oc)
                    .map(|i| {
                        let s = p.scales[if p.scales.len() == 1 { 0 } else { i }] as f64;
                        let z = p.zero_points[if p.zero_points.len() == 1 { 0 } else { i }] as f64;
                        (v[i] as f64 - z) * s
                    })
                    .collect()
            }
            Sym::Const(c) if c.dtype == DType::F32 && c.len() == oc => c
                .f32s()
                .unwrap_or_default()
                .iter()
                .map(|&x| x as f64)
                .collect(),
            _ => {
                return Err(Fail::Unsupported(format!(
                    "{}: bias must be a constant float or int32 tensor of {oc} values",
                    node_label(node)
                )))
            }
        };
        let bytes = real
            .iter()
            .enumerate()
            .flat_map(|(i, &r)| {
                let s =
                    in_scale as f64 * wq.scales[if wq.scales.len() == 1 { 0 } else { i }] as f64;
                let q = (r / s)
                    .round_ties_even()
                    .clamp(i32::MIN as f64, i32::MAX as f64) as i32;
                q.to_le_bytes()
            })
            .collect();
        Ok(self.add_const(&name, vec![oc], DType::I32, None, bytes))
    }
}

fn unreachable_op<T>(node: &proto::Node) -> TResult<T> {
    Err(Fail::Unsupported(node_label(node)))
}

/// Float bytes of a constant, dequantized with `p` along ONNX axis `axis` of its dims.
fn dequantize_const(c: &Const, p: Option<&QParams>, axis: usize) -> Option<Vec<u8>> {
    let vals: Vec<f32> = match p {
        None => c.f32s()?,
        Some(p) => {
            let ints = c.ints()?;
            let inner: usize = c.dims.iter().skip(axis + 1).product();
            let n_axis = c.dims.get(axis).copied().unwrap_or(1);
            ints.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ch = if p.scales.len() == 1 {
                        0
                    } else {
                        (i / inner.max(1)) % n_axis.max(1)
                    };
                    let ch = ch.min(p.scales.len() - 1);
                    (v as i32 - p.zero_points[ch]) as f32 * p.scales[ch]
                })
                .collect()
        }
    };
    Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Spatial window of a Conv / MaxPool node in our terms.
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    /// `[top, left, bottom, right]` when neither SAME nor VALID matches.
    explicit_pad: Option<[usize; 4]>,
    out: [usize; 2],
}

impl Window {
    /// `in_nhwc`: the stored input shape. `kernel`: from the weights (conv) or the attribute.
    fn from_node(
        node: &proto::Node,
        in_nhwc: &[usize],
        kernel: Option<[usize; 2]>,
    ) -> TResult<Window> {
        let bad = |what: String| Fail::Malformed(format!("{}: {what}", node_label(node)));
        let pair = |name: &str, default: usize| -> TResult<[usize; 2]> {
            match node.attr(name) {
                None => Ok([default; 2]),
                Some(a)
                    if a.ints.len() == 2 && a.ints.iter().all(|&v| (1..1 << 16).contains(&v)) =>
                {
                    Ok([a.ints[0] as usize, a.ints[1] as usize])
                }
                Some(a) => Err(bad(format!(
                    "attribute {name} {:?} (two positive values expected)",
                    a.ints
                ))),
            }
        };
        let kernel = match kernel {
            Some(k) => {
                if let Some(a) = node.attr("kernel_shape") {
                    if a.ints != [k[0] as i64, k[1] as i64] {
                        return Err(bad(format!(
                            "kernel_shape {:?} differs from the weights {k:?}",
                            a.ints
                        )));
                    }
                }
                k
            }
            None => match node.attr("kernel_shape") {
                Some(a)
                    if a.ints.len() == 2 && a.ints.iter().all(|&v| (1..1 << 16).contains(&v)) =>
                {
                    [a.ints[0] as usize, a.ints[1] as usize]
                }
                _ => return Err(bad("needs a 2-D kernel_shape".into())),
            },
        };
        let stride = pair("strides", 1)?;
        let dilation = pair("dilations", 1)?;
        if node.attr("ceil_mode").and_then(|a| a.i).unwrap_or(0) != 0 {
            return Err(Fail::Unsupported(format!(
                "{}: ceil_mode",
                node_label(node)
            )));
        }
        let in_hw = [in_nhwc[1], in_nhwc[2]];
        let eff = [
            (kernel[0] - 1) * dilation[0] + 1,
            (kernel[1] - 1) * dilation[1] + 1,
        ];
        let auto_pad = node
            .attr("auto_pad")
            .and_then(|a| a.s.as_deref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_else(|| "NOTSET".into());
        // [top, left, bottom, right]
        let pads: [usize; 4] = match auto_pad.as_str() {
            "NOTSET" => match node.attr("pads") {
                None => [0; 4],
                Some(a)
                    if a.ints.len() == 4 && a.ints.iter().all(|&v| (0..1 << 16).contains(&v)) =>
                {
                    [
                        a.ints[0] as usize,
                        a.ints[1] as usize,
                        a.ints[2] as usize,
                        a.ints[3] as usize,
                    ]
                }
                Some(a) => return Err(bad(format!("pads {:?}", a.ints))),
            },
            "VALID" => [0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut p = [0; 4];
                for d in 0..2 {
                    let out = in_hw[d].div_ceil(stride[d]);
                    let total = ((out - 1) * stride[d] + eff[d]).saturating_sub(in_hw[d]);
                    let small = total / 2;
                    let (before, after) = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    p[d] = before;
                    p[d + 2] = after;
                }
                p
            }
            other => return Err(bad(format!("auto_pad {other}"))),
        };
        let mut out = [0usize; 2];
        for d in 0..2 {
            let padded = in_hw[d] + pads[d] + pads[d + 2];
            if padded < eff[d] {
                return Err(bad(format!("window {eff:?} larger than the padded input")));
            }
            out[d] = (padded - eff[d]) / stride[d] + 1;
        }
        // Which TFLite padding reproduces this window placement?
        let matches = |same: bool| {
            (0..2).all(|d| {
                let (o, p) = crate::kernels::reference::conv::window_out_and_pad(
                    same,
                    in_hw[d],
                    kernel[d],
                    stride[d],
                    dilation[d],
                );
                o == out[d] as i64 && p == pads[d]
            })
        };
        let (padding, explicit_pad) = if pads == [0; 4] && matches(false) {
            (Padding::Valid, None)
        } else if matches(true) {
            (Padding::Same, None)
        } else {
            (Padding::Valid, Some(pads))
        };
        Ok(Window {
            kernel,
            stride,
            dilation,
            padding,
            explicit_pad,
            out,
        })
    }
}

/// Decode an initializer / Constant tensor.
fn const_from_proto(t: &proto::TensorProto) -> TResult<Const> {
    let bad = |what: String| Fail::Malformed(format!("tensor '{}': {what}", t.name));
    if t.external {
        return Err(Fail::Unsupported(format!(
            "tensor '{}' stores its data in an external file",
            t.name
        )));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        if d < 0 {
            return Err(bad(format!("negative dimension in {:?}", t.dims)));
        }
        n = n
            .checked_mul(d as usize)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| bad(format!("too many elements: {:?}", t.dims)))?;
        dims.push(d as usize);
    }
    let dtype = match t.data_type {
        dt::FLOAT => DType::F32,
        dt::UINT8 => DType::U8,
        dt::INT8 => DType::I8,
        dt::INT32 => DType::I32,
        dt::INT64 => DType::I64,
        other => {
            return Err(Fail::Unsupported(format!(
                "tensor '{}' of type {}",
                t.name,
                dt::name(other)
            )))
        }
    };
    let bytes = if let Some(raw) = &t.raw_data {
        if raw.len() != n * dtype.size() {
            return Err(bad(format!(
                "raw_data has {} bytes, dims {:?} of {} need {}",
                raw.len(),
                t.dims,
                dtype,
                n * dtype.size()
            )));
        }
        raw.clone()
    } else {
        let (have, bytes): (usize, Vec<u8>) = match dtype {
            DType::F32 => (
                t.float_data.len(),
                t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            DType::I64 => (
                t.int64_data.len(),
                t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            DType::I32 => (
                t.int32_data.len(),
                t.int32_data
                    .iter()
                    .flat_map(|&v| (v as i32).to_le_bytes())
                    .collect(),
            ),
            _ => (
                t.int32_data.len(),
                t.int32_data.iter().map(|&v| v as u8).collect(),
            ),
        };
        if have != n {
            return Err(bad(format!("{have} values for dims {:?}", t.dims)));
        }
        bytes
    };
    Ok(Const { dims, dtype, bytes })
}

#[cfg(test)]
mod tests;
