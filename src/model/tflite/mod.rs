//! TFLite flatbuffer loader: file → [`Graph`].
//!
//! The file is read once into memory; every offset and length is bounds-checked by
//! [`flatbuf`]; nothing in the file is trusted. Unsupported operators are collected and reported
//! together, so a user sees every op the model needs at once.

pub mod flatbuf;
pub mod flexbuf;
pub mod schema;
pub mod writer;

use std::path::Path;

use crate::error::ModelError;
use crate::model::{
    Activation, Conv2DOptions, DType, DetectionPostProcessOptions, Graph, Op, OpKind, Padding,
    Pool2DOptions, Quant, RequantMode, Tensor,
};

use flatbuf::{Buf, FbResult, Table};
use schema::*;

/// Largest tensor we accept (elements); anything bigger is a corrupt or hostile file.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 30;

/// Load a `.tflite` file.
pub fn load(path: &Path) -> Result<Graph, ModelError> {
    parse(&super::read_file(path)?, path)
}

/// Parse TFLite flatbuffer bytes; `path` is only used in messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Graph, ModelError> {
    let malformed = |what: String| ModelError::Malformed {
        path: path.to_path_buf(),
        what,
    };
    if bytes.is_empty() {
        return Err(malformed("the file is empty".into()));
    }
    if bytes.len() < 8 {
        return Err(malformed(format!(
            "the file is only {} bytes long",
            bytes.len()
        )));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(malformed(format!(
            "missing the TFLite file identifier 'TFL3' (found {:?})",
            String::from_utf8_lossy(&bytes[4..8])
        )));
    }
    let mut unsupported = Vec::new();
    let mut external = false;
    let mut graph = read_model(bytes, &mut unsupported, &mut external).map_err(malformed)?;
    if !unsupported.is_empty() {
        unsupported.sort();
        unsupported.dedup();
        return Err(ModelError::Unsupported {
            path: path.to_path_buf(),
            names: unsupported,
        });
    }
    // FlatBuffers builders pad the finished buffer to its alignment (>= 4), so a length that is
    // not a multiple of 4 means the file was cut (unless data was appended after the buffer).
    if !bytes.len().is_multiple_of(4) && !external {
        return Err(malformed(format!(
            "the file is {} bytes, not a multiple of 4: it looks truncated",
            bytes.len()
        )));
    }
    graph.validate().map_err(malformed)?;
    Ok(graph)
}

fn read_model(bytes: &[u8], unsupported: &mut Vec<String>, external: &mut bool) -> FbResult<Graph> {
    let buf = Buf::new(bytes);
    let model = buf.root()?;
    let version = model.u32_or(0, 0)?;
    if version != 3 {
        return Err(format!("schema version {version}, expected 3"));
    }

    // Operator codes: builtin code is max(deprecated_builtin_code, builtin_code).
    let codes = model.vector(1, 4)?.ok_or("no operator codes")?;
    let mut op_codes = Vec::with_capacity(codes.len());
    for i in 0..codes.len() {
        let c = codes.table(i)?;
        let deprecated = c.i8_or(0, 0)? as i32;
        let builtin = c.i32_or(3, 0)?;
        let custom = c.string(1)?;
        op_codes.push((deprecated.max(builtin), custom));
    }

    let buffers = model.vector(4, 4)?.ok_or("no buffers")?;
    let subgraphs = model.vector(2, 4)?.ok_or("no subgraphs")?;
    if subgraphs.is_empty() {
        return Err("the model has no subgraph".into());
    }
    if subgraphs.len() > 1 {
        log::warn!(
            "model has {} subgraphs; only the first one is run",
            subgraphs.len()
        );
    }
    let sg = subgraphs.table(0)?;

    let tensors_v = sg.vector(0, 4)?.ok_or("subgraph 0 has no tensors")?;
    let mut tensors = Vec::with_capacity(tensors_v.len());
    for i in 0..tensors_v.len() {
        let t = tensors_v.table(i)?;
        tensors.push(read_tensor(bytes, &t, &buffers, i, external)?);
    }
    let n = tensors.len();
    let tensor_list = |v: Option<flatbuf::Vector>, what: &str| -> FbResult<Vec<usize>> {
        let v = v.ok_or_else(|| format!("subgraph 0 has no {what}"))?;
        v.i32s()
            .into_iter()
            .map(|i| {
                usize::try_from(i)
                    .ok()
                    .filter(|&i| i < n)
                    .ok_or_else(|| format!("{what} refer to tensor {i}, but there are {n}"))
            })
            .collect()
    };
    let inputs = tensor_list(sg.vector(1, 4)?, "inputs")?;
    let outputs = tensor_list(sg.vector(2, 4)?, "outputs")?;

    let ops_v = sg.vector(3, 4)?.ok_or("subgraph 0 has no operators")?;
    let mut ops = Vec::with_capacity(ops_v.len());
    for i in 0..ops_v.len() {
        let o = ops_v.table(i)?;
        let code_index = o.u32_or(0, 0)? as usize;
        let (code, custom) = op_codes.get(code_index).ok_or_else(|| {
            format!(
                "operator {i} uses opcode {code_index}, but there are {}",
                op_codes.len()
            )
        })?;
        let op_inputs: Vec<Option<usize>> = o
            .vector(1, 4)?
            .map(|v| v.i32s())
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                if t < 0 {
                    Ok(None)
                } else if (t as usize) < n {
                    Ok(Some(t as usize))
                } else {
                    Err(format!(
                        "operator {i} input refers to tensor {t}, but there are {n}"
                    ))
                }
            })
            .collect::<FbResult<_>>()?;
        let op_outputs = tensor_list(o.vector(2, 4)?, "operator outputs")
            .map_err(|e| format!("operator {i}: {e}"))?;
        let name = if *code == OP_CUSTOM {
            custom.clone().unwrap_or_else(|| "CUSTOM".into())
        } else {
            builtin_name(*code)
        };
        match read_op_kind(*code, custom.as_deref(), &o)
            .map_err(|e| format!("operator {i} ({name}): {e}"))?
        {
            Some(kind) => ops.push(Op {
                kind,
                inputs: op_inputs,
                outputs: op_outputs,
            }),
            None => unsupported.push(name),
        }
    }

    let mut graph = Graph {
        tensors,
        ops,
        inputs,
        outputs,
    };
    infer_custom_output_shapes(&mut graph);
    Ok(graph)
}

fn read_tensor(
    bytes: &[u8],
    t: &Table,
    buffers: &flatbuf::Vector,
    index: usize,
    external: &mut bool,
) -> FbResult<Tensor> {
    let name = t.string(3)?.unwrap_or_default();
    let ctx = |e: String| format!("tensor {index} '{name}': {e}");
    let shape: Vec<usize> = t
        .vector(0, 4)
        .map_err(ctx)?
        .map(|v| v.i32s())
        .unwrap_or_default()
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| ctx(format!("negative dimension {d}"))))
        .collect::<FbResult<_>>()?;
    let ty = t.u8_or(1, 0).map_err(ctx)?;
    let dtype = match ty {
        tensor_type::FLOAT32 => DType::F32,
        tensor_type::FLOAT16 => DType::F16,
        tensor_type::INT32 => DType::I32,
        tensor_type::UINT8 => DType::U8,
        tensor_type::INT64 => DType::I64,
        tensor_type::BOOL => DType::Bool,
        tensor_type::INT16 => DType::I16,
        tensor_type::INT8 => DType::I8,
        other => return Err(ctx(format!("unsupported tensor type {other}"))),
    };
    let elements = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&e| e <= MAX_TENSOR_ELEMENTS)
        .ok_or_else(|| ctx(format!("shape {shape:?} is absurdly large")))?;

    // Constant data: buffer 0 is the empty sentinel; an empty data vector means "activation".
    let buffer_index = t.u32_or(2, 0).map_err(ctx)? as usize;
    let mut data = None;
    if buffer_index != 0 {
        if buffer_index >= buffers.len() {
            return Err(ctx(format!(
                "refers to buffer {buffer_index}, but there are {}",
                buffers.len()
            )));
        }
        let b = buffers.table(buffer_index).map_err(ctx)?;
        let bytes_of = match b.vector(0, 1).map_err(ctx)? {
            Some(v) if !v.is_empty() => Some(v.bytes()),
            _ => {
                // Large models keep data outside the flatbuffer: offset/size from file start.
                let off = b.u64_or(1, 0).map_err(ctx)?;
                let size = b.u64_or(2, 0).map_err(ctx)?;
                if off > 1 && size > 0 {
                    let (o, s) = (off as usize, size as usize);
                    *external = true;
                    Some(bytes.get(o..o.saturating_add(s)).ok_or_else(|| {
                        ctx(format!(
                            "external buffer {o}+{s} lies past the end of the file"
                        ))
                    })?)
                } else {
                    None
                }
            }
        };
        if let Some(d) = bytes_of {
            let expected = elements * dtype.size();
            if d.len() != expected {
                return Err(ctx(format!(
                    "constant data is {} bytes, but shape {shape:?} of {dtype} needs {expected}",
                    d.len()
                )));
            }
            data = Some(d.to_vec());
        }
    }

    let quant = match t.table(4).map_err(ctx)? {
        Some(q) => read_quant(&q, &shape).map_err(ctx)?,
        None => None,
    };
    Ok(Tensor {
        name,
        shape,
        dtype,
        quant,
        data,
    })
}

fn read_quant(q: &Table, shape: &[usize]) -> FbResult<Option<Quant>> {
    let scales = q.vector(2, 4)?.map(|v| v.f32s()).unwrap_or_default();
    let zps = q.vector(3, 8)?.map(|v| v.i64s()).unwrap_or_default();
    if scales.is_empty() {
        return Ok(None);
    }
    for &s in &scales {
        if !s.is_finite() || s < 0.0 {
            return Err(format!("invalid quantization scale {s}"));
        }
    }
    let zps: Vec<i32> = if zps.is_empty() {
        vec![0; scales.len()]
    } else {
        zps.iter()
            .map(|&z| i32::try_from(z).map_err(|_| format!("zero point {z} out of range")))
            .collect::<FbResult<_>>()?
    };
    if zps.len() != scales.len() {
        return Err(format!(
            "{} scales but {} zero points",
            scales.len(),
            zps.len()
        ));
    }
    if scales.len() == 1 {
        return Ok(Some(Quant::PerTensor {
            scale: scales[0],
            zero_point: zps[0],
        }));
    }
    let axis = q.i32_or(6, 0)?;
    let axis = usize::try_from(axis)
        .ok()
        .filter(|&a| a < shape.len() && shape[a] == scales.len())
        .ok_or_else(|| {
            format!(
                "{} per-axis scales do not fit axis {axis} of shape {shape:?}",
                scales.len()
            )
        })?;
    Ok(Some(Quant::PerAxis {
        axis,
        scales,
        zero_points: zps,
    }))
}

fn activation(code: u8) -> FbResult<Activation> {
    Ok(match code {
        0 => Activation::None,
        1 => Activation::Relu,
        2 => Activation::ReluN1To1,
        3 => Activation::Relu6,
        4 => return Err("fused TANH activation is not supported".into()),
        5 => return Err("fused SIGN_BIT activation is not supported".into()),
        other => return Err(format!("unknown fused activation {other}")),
    })
}

fn padding(code: u8) -> FbResult<Padding> {
    match code {
        0 => Ok(Padding::Same),
        1 => Ok(Padding::Valid),
        other => Err(format!("unknown padding {other}")),
    }
}

fn positive(v: i32, what: &str) -> FbResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{what} must be > 0, got {v}"))
}

/// Translate one operator. `Ok(None)` = not supported (collected by the caller).
fn read_op_kind(code: i32, custom: Option<&str>, o: &Table) -> FbResult<Option<OpKind>> {
    // Missing options tables mean "all defaults" (as TFLite's flatbuffer accessors do).
    let opts = o.table(4)?;
    let get_i32 = |slot: usize, d: i32| -> FbResult<i32> {
        opts.as_ref().map_or(Ok(d), |t| t.i32_or(slot, d))
    };
    let get_u8 =
        |slot: usize, d: u8| -> FbResult<u8> { opts.as_ref().map_or(Ok(d), |t| t.u8_or(slot, d)) };
    let get_f32 = |slot: usize, d: f32| -> FbResult<f32> {
        opts.as_ref().map_or(Ok(d), |t| t.f32_or(slot, d))
    };
    Ok(Some(match code {
        OP_CONV_2D => OpKind::Conv2D(Conv2DOptions {
            padding: padding(get_u8(0, 0)?)?,
            stride_w: positive(get_i32(1, 0)?, "stride_w")?,
            stride_h: positive(get_i32(2, 0)?, "stride_h")?,
            activation: activation(get_u8(3, 0)?)?,
            dilation_w: positive(get_i32(4, 1)?, "dilation_w_factor")?,
            dilation_h: positive(get_i32(5, 1)?, "dilation_h_factor")?,
            requant: Default::default(),
        }),
        OP_DEPTHWISE_CONV_2D => OpKind::DepthwiseConv2D {
            conv: Conv2DOptions {
                padding: padding(get_u8(0, 0)?)?,
                stride_w: positive(get_i32(1, 0)?, "stride_w")?,
                stride_h: positive(get_i32(2, 0)?, "stride_h")?,
                activation: activation(get_u8(4, 0)?)?,
                dilation_w: positive(get_i32(5, 1)?, "dilation_w_factor")?,
                dilation_h: positive(get_i32(6, 1)?, "dilation_h_factor")?,
                requant: Default::default(),
            },
            // TFLite derives the multiplier from shapes when the option is 0 or missing.
            depth_multiplier: usize::try_from(get_i32(3, 0)?)
                .map_err(|_| "negative depth_multiplier".to_string())?,
        },
        OP_FULLY_CONNECTED => {
            if get_u8(1, 0)? != 0 {
                return Err("shuffled FULLY_CONNECTED weights are not supported".into());
            }
            OpKind::FullyConnected {
                activation: activation(get_u8(0, 0)?)?,
                keep_num_dims: get_u8(2, 0)? != 0,
            }
        }
        OP_ADD => OpKind::Add {
            activation: activation(get_u8(0, 0)?)?,
        },
        OP_MUL => OpKind::Mul {
            activation: activation(get_u8(0, 0)?)?,
        },
        OP_CONCATENATION => {
            // Normalized against the output rank in `Graph::validate`; store raw for now.
            let axis = get_i32(0, 0)?;
            OpKind::Concatenation {
                axis: axis as isize as usize,
                activation: activation(get_u8(1, 0)?)?,
            }
        }
        OP_RESHAPE => OpKind::Reshape,
        OP_PAD => OpKind::Pad,
        OP_MAX_POOL_2D | OP_AVERAGE_POOL_2D => {
            let p = Pool2DOptions {
                padding: padding(get_u8(0, 0)?)?,
                stride_w: positive(get_i32(1, 0)?, "stride_w")?,
                stride_h: positive(get_i32(2, 0)?, "stride_h")?,
                filter_w: positive(get_i32(3, 0)?, "filter_width")?,
                filter_h: positive(get_i32(4, 0)?, "filter_height")?,
                activation: activation(get_u8(5, 0)?)?,
            };
            if code == OP_MAX_POOL_2D {
                OpKind::MaxPool2D(p)
            } else {
                OpKind::AveragePool2D(p)
            }
        }
        OP_MEAN => OpKind::Mean {
            keep_dims: get_u8(0, 0)? != 0,
        },
        OP_RELU => OpKind::Relu,
        OP_RELU6 => OpKind::Relu6,
        OP_PRELU => OpKind::Prelu,
        OP_LOGISTIC => OpKind::Logistic,
        OP_SOFTMAX => OpKind::Softmax {
            beta: get_f32(0, 0.0)?,
        },
        OP_RESIZE_BILINEAR => OpKind::ResizeBilinear {
            align_corners: get_u8(2, 0)? != 0,
            half_pixel_centers: get_u8(3, 0)? != 0,
        },
        OP_RESIZE_NEAREST_NEIGHBOR => OpKind::ResizeNearestNeighbor {
            align_corners: get_u8(0, 0)? != 0,
            half_pixel_centers: get_u8(1, 0)? != 0,
        },
        OP_DEPTH_TO_SPACE => OpKind::DepthToSpace {
            block_size: positive(get_i32(0, 0)?, "block_size")?,
        },
        OP_QUANTIZE => OpKind::Quantize {
            mode: RequantMode::Tflite,
        },
        OP_DEQUANTIZE => OpKind::Dequantize,
        OP_CUSTOM if custom == Some("TFLite_Detection_PostProcess") => {
            let raw = o.vector(5, 1)?.ok_or("missing custom options")?;
            OpKind::DetectionPostProcess(detection_options(raw.bytes())?)
        }
        _ => return Ok(None),
    }))
}

fn detection_options(raw: &[u8]) -> FbResult<DetectionPostProcessOptions> {
    let m = flexbuf::parse_root_map(raw)?;
    let int = |k: &str| -> FbResult<usize> {
        let v = m
            .get(k)
            .ok_or_else(|| format!("custom option '{k}' is missing"))?;
        v.as_i64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| format!("custom option '{k}' must be a non-negative integer, got {v:?}"))
    };
    let float = |k: &str| -> FbResult<f32> {
        let v = m
            .get(k)
            .ok_or_else(|| format!("custom option '{k}' is missing"))?;
        v.as_f32()
            .ok_or_else(|| format!("custom option '{k}' must be a number, got {v:?}"))
    };
    let detections_per_class = match m.get("detections_per_class") {
        None | Some(flexbuf::FlexValue::Null) => 100,
        Some(_) => int("detections_per_class")?,
    };
    let use_regular_nms = match m.get("use_regular_nms") {
        None | Some(flexbuf::FlexValue::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or("custom option 'use_regular_nms' must be a bool")?,
    };
    let o = DetectionPostProcessOptions {
        max_detections: int("max_detections")?,
        max_classes_per_detection: int("max_classes_per_detection")?,
        detections_per_class,
        use_regular_nms,
        nms_score_threshold: float("nms_score_threshold")?,
        nms_iou_threshold: float("nms_iou_threshold")?,
        num_classes: int("num_classes")?,
        y_scale: float("y_scale")?,
        x_scale: float("x_scale")?,
        h_scale: float("h_scale")?,
        w_scale: float("w_scale")?,
    };
    if o.max_detections == 0 || o.max_detections > 100_000 {
        return Err(format!("max_detections {} out of range", o.max_detections));
    }
    if o.num_classes == 0 || o.num_classes > 100_000 {
        return Err(format!("num_classes {} out of range", o.num_classes));
    }
    if o.max_classes_per_detection == 0 || o.max_classes_per_detection > o.num_classes {
        return Err(format!(
            "max_classes_per_detection {} must be in 1..={}",
            o.max_classes_per_detection, o.num_classes
        ));
    }
    Ok(o)
}

/// TFLite leaves the output shapes of the post-process op to be computed at prepare time; we
/// fill them in here so planning sees static shapes.
fn infer_custom_output_shapes(graph: &mut Graph) {
    for op in &graph.ops {
        if let OpKind::DetectionPostProcess(o) = &op.kind {
            let per_det = o.max_detections * o.max_classes_per_detection;
            let shapes = [
                vec![1, per_det, 4],
                vec![1, per_det],
                vec![1, per_det],
                vec![1],
            ];
            for (out, shape) in op.outputs.iter().zip(shapes) {
                let t = &mut graph.tensors[*out];
                t.shape = shape;
                t.dtype = DType::F32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn coral() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models/mobilenet_ssd_v2_coco_quant_postprocess.tflite")
    }

    #[test]
    fn loads_coral_ssd() {
        let g = load(&coral()).unwrap();
        assert_eq!(g.ops.len(), 99);
        assert_eq!(g.inputs.len(), 1);
        assert_eq!(g.tensor(g.inputs[0]).shape, vec![1, 300, 300, 3]);
        let post = g.ops.last().unwrap();
        match &post.kind {
            OpKind::DetectionPostProcess(o) => {
                assert_eq!(o.max_detections, 20);
                assert_eq!(o.num_classes, 90);
                assert_eq!(o.max_classes_per_detection, 1);
                assert!(!o.use_regular_nms);
                assert_eq!(o.y_scale, 10.0);
                assert_eq!(o.w_scale, 5.0);
                assert!((o.nms_iou_threshold - 0.6).abs() < 1e-6);
            }
            other => panic!("last op is {other:?}"),
        }
    }

    #[test]
    fn empty_and_truncated_files_are_errors_naming_the_file() {
        let bytes = std::fs::read(coral()).unwrap();
        let p = Path::new("m.tflite");
        let e = parse(&[], p).unwrap_err().to_string();
        assert!(e.contains("m.tflite") && e.contains("empty"), "{e}");
        for cut in [7usize, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
            match parse(&bytes[..cut], p) {
                Ok(_) => panic!("truncated to {cut} bytes but loaded"),
                Err(e) => assert!(e.to_string().contains("m.tflite"), "{e}"),
            }
        }
    }
}
