use std::fmt;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    U8,
    I8,
    I16,
    I32,
    I64,
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::F16 | DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }

    /// True for the 8-bit quantized activation types.
    pub fn is_q8(self) -> bool {
        matches!(self, DType::U8 | DType::I8)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Affine quantization: `real = scale * (q - zero_point)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Quant {
    PerTensor {
        scale: f32,
        zero_point: i32,
    },
    /// One scale/zero point per index along `axis` (TFLite: weights per output channel).
    PerAxis {
        axis: usize,
        scales: Vec<f32>,
        zero_points: Vec<i32>,
    },
}

impl Quant {
    /// Per-tensor parameters, or `None` for per-axis quantization.
    pub fn per_tensor(&self) -> Option<(f32, i32)> {
        match self {
            Quant::PerTensor { scale, zero_point } => Some((*scale, *zero_point)),
            Quant::PerAxis { .. } => None,
        }
    }

    /// Scale of channel `c` (per-tensor quantization returns the single scale).
    pub fn scale(&self, c: usize) -> f32 {
        match self {
            Quant::PerTensor { scale, .. } => *scale,
            Quant::PerAxis { scales, .. } => scales[c],
        }
    }

    pub fn zero_point(&self, c: usize) -> i32 {
        match self {
            Quant::PerTensor { zero_point, .. } => *zero_point,
            Quant::PerAxis { zero_points, .. } => zero_points[c],
        }
    }
}

/// A value in the graph: an activation (no data) or a constant (weights, bias, anchors).
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: Option<Quant>,
    /// Little-endian element bytes for constants; `None` for activations.
    pub data: Option<Vec<u8>>,
}

impl Tensor {
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn byte_len(&self) -> usize {
        self.num_elements() * self.dtype.size()
    }

    pub fn is_const(&self) -> bool {
        self.data.is_some()
    }

    /// Per-tensor quantization parameters, if this tensor has them.
    pub fn per_tensor_quant(&self) -> Option<(f32, i32)> {
        self.quant.as_ref().and_then(Quant::per_tensor)
    }
}

/// Activation fused into an op's output (TFLite `ActivationFunctionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    ReluN1To1,
    Relu6,
}

/// TFLite padding scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

/// Whose rounding a quantized conv or QUANTIZE follows (the ONNX loader sets `OnnxRuntime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RequantMode {
    /// TFLite, bit-exact with LiteRT: convs rescale with a fixed-point multiplier and shift
    /// per channel (gemmlowp, rounding half away from zero); QUANTIZE rounds half away from
    /// zero (`TfLiteRound`) and requantizes int8 → int8 in fixed point.
    #[default]
    Tflite,
    /// ONNX Runtime's CPU EP. Convs (MLAS `MlasRequantizeOutput`, used by QLinearConv and
    /// fused QDQ convs): `float(acc) * scale[c]` with `scale[c] = in_scale * w_scale[c] /
    /// out_scale` computed in float, clamped, rounded half to even. QUANTIZE
    /// (`MlasQuantizeLinear`): `x / scale` rounded half to even; int8 → int8 goes through the
    /// float value (QLinearConcat's table: dequantize, then quantize).
    OnnxRuntime,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Conv2DOptions {
    pub padding: Padding,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub activation: Activation,
    /// Quantized kernels only; float kernels ignore it.
    pub requant: RequantMode,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pool2DOptions {
    pub padding: Padding,
    pub stride_h: usize,
    pub stride_w: usize,
    pub filter_h: usize,
    pub filter_w: usize,
    pub activation: Activation,
}

/// Options of the `TFLite_Detection_PostProcess` custom op (read from its flexbuffer).
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionPostProcessOptions {
    pub max_detections: usize,
    pub max_classes_per_detection: usize,
    pub detections_per_class: usize,
    pub use_regular_nms: bool,
    pub nms_score_threshold: f32,
    pub nms_iou_threshold: f32,
    pub num_classes: usize,
    pub y_scale: f32,
    pub x_scale: f32,
    pub h_scale: f32,
    pub w_scale: f32,
}

/// What an operator computes. Tensor layout is NHWC throughout; weight layouts are TFLite's:
/// conv `[O, KH, KW, I]`, depthwise `[1, KH, KW, I*M]`, fully connected `[O, I]`.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    Conv2D(Conv2DOptions),
    DepthwiseConv2D {
        conv: Conv2DOptions,
        depth_multiplier: usize,
    },
    FullyConnected {
        activation: Activation,
        keep_num_dims: bool,
    },
    Add {
        activation: Activation,
    },
    Mul {
        activation: Activation,
    },
    /// `axis` is already normalized to `0..rank`.
    Concatenation {
        axis: usize,
        activation: Activation,
    },
    /// The new shape is the output tensor's shape.
    Reshape,
    /// Paddings come from input 1 (`[rank, 2]` int32/int64 constant).
    Pad,
    MaxPool2D(Pool2DOptions),
    AveragePool2D(Pool2DOptions),
    /// Reduction axes come from input 1.
    Mean {
        keep_dims: bool,
    },
    Relu,
    Relu6,
    Prelu,
    Logistic,
    Softmax {
        beta: f32,
    },
    ResizeBilinear {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    ResizeNearestNeighbor {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    DepthToSpace {
        block_size: usize,
    },
    /// float → 8-bit, or 8-bit → 8-bit requantization.
    Quantize {
        mode: RequantMode,
    },
    Dequantize,
    DetectionPostProcess(DetectionPostProcessOptions),
}

impl OpKind {
    /// The TFLite name of the operator, used in messages and profiles.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Conv2D(_) => "CONV_2D",
            OpKind::DepthwiseConv2D { .. } => "DEPTHWISE_CONV_2D",
            OpKind::FullyConnected { .. } => "FULLY_CONNECTED",
            OpKind::Add { .. } => "ADD",
            OpKind::Mul { .. } => "MUL",
            OpKind::Concatenation { .. } => "CONCATENATION",
            OpKind::Reshape => "RESHAPE",
            OpKind::Pad => "PAD",
            OpKind::MaxPool2D(_) => "MAX_POOL_2D",
            OpKind::AveragePool2D(_) => "AVERAGE_POOL_2D",
            OpKind::Mean { .. } => "MEAN",
            OpKind::Relu => "RELU",
            OpKind::Relu6 => "RELU6",
            OpKind::Prelu => "PRELU",
            OpKind::Logistic => "LOGISTIC",
            OpKind::Softmax { .. } => "SOFTMAX",
            OpKind::ResizeBilinear { .. } => "RESIZE_BILINEAR",
            OpKind::ResizeNearestNeighbor { .. } => "RESIZE_NEAREST_NEIGHBOR",
            OpKind::DepthToSpace { .. } => "DEPTH_TO_SPACE",
            OpKind::Quantize { .. } => "QUANTIZE",
            OpKind::Dequantize => "DEQUANTIZE",
            OpKind::DetectionPostProcess(_) => "TFLite_Detection_PostProcess",
        }
    }
}

/// One operator application. `inputs` entries are `None` for TFLite's optional inputs
/// (index -1, e.g. a conv without bias).
#[derive(Clone, Debug)]
pub struct Op {
    pub kind: OpKind,
    pub inputs: Vec<Option<TensorId>>,
    pub outputs: Vec<TensorId>,
}

/// A whole model: tensors, operators in a valid execution order, graph inputs and outputs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub ops: Vec<Op>,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

impl Graph {
    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id]
    }

    /// Human-readable op reference for error messages: `op #12 CONV_2D`.
    pub fn op_label(&self, index: usize) -> String {
        format!("op #{index} {}", self.ops[index].kind.name())
    }
}

impl Graph {
    /// Structural checks after loading (loaders call this): tensor references, execution order
    /// (every activation is produced before it is read), single producers, shapes that fit
    /// constant data. Also normalizes negative concatenation axes.
    pub fn validate(&mut self) -> Result<(), String> {
        let n = self.tensors.len();
        let mut produced = vec![false; n];
        for &i in &self.inputs {
            if self.tensors[i].is_const() {
                return Err(format!(
                    "graph input '{}' is a constant",
                    self.tensors[i].name
                ));
            }
            produced[i] = true;
        }
        for (index, op) in self.ops.iter_mut().enumerate() {
            let label = format!("op #{index} {}", op.kind.name());
            for id in op.inputs.iter().flatten() {
                let t = &self.tensors[*id];
                if !t.is_const() && !produced[*id] {
                    return Err(format!(
                        "{label}: input '{}' is read before any op produces it",
                        t.name
                    ));
                }
            }
            if op.outputs.is_empty() {
                return Err(format!("{label}: has no outputs"));
            }
            for &o in &op.outputs {
                if self.tensors[o].is_const() {
                    return Err(format!(
                        "{label}: output '{}' is a constant",
                        self.tensors[o].name
                    ));
                }
                if produced[o] {
                    return Err(format!(
                        "{label}: output '{}' is produced twice",
                        self.tensors[o].name
                    ));
                }
                produced[o] = true;
            }
            if let OpKind::Concatenation { axis, .. } = &mut op.kind {
                let rank = self.tensors[op.outputs[0]].shape.len() as isize;
                let a = *axis as isize;
                let norm = if a < 0 { a + rank } else { a };
                if norm < 0 || norm >= rank.max(1) {
                    return Err(format!("{label}: axis {a} out of range for rank {rank}"));
                }
                *axis = norm as usize;
            }
        }
        for &o in &self.outputs {
            if !produced[o] && !self.tensors[o].is_const() {
                return Err(format!(
                    "graph output '{}' is not produced by any op",
                    self.tensors[o].name
                ));
            }
        }
        Ok(())
    }
}
