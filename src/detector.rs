//! Model + labels + pre/post-processing = detections.
//!
//! Input contract (how pixels become the model input; documented in README):
//! - uint8 input: the resized RGB pixels as they are (TFLite's convention for quantized
//!   detectors, e.g. the Coral SSD whose input quantization maps 0..255 to [-1, 1]);
//! - int8 input: pixel - 128;
//! - float input: (pixel - mean) / std per channel, default mean = std = 127.5 ([-1, 1]).
//!
//! Resizing is "spotter bilinear v1" (integer, see `vision::image`): a plain stretch to the
//! model's input size, so boxes map back to the original image by scaling x and y.

use std::path::Path;

use serde::Serialize;

use crate::error::{InputError, ModelError};
use crate::model::{DType, Graph, OpKind, TensorId};
use crate::ops::util::f32s;
use crate::runtime::{Session, SessionOptions};
use crate::vision::image::{Resizer, RgbImage};
use crate::vision::labels::Labels;
use crate::vision::nms::NmsOutput;
use crate::vision::ssd::{AnchorConfig, RawSsdDecoder};

/// One detected object, in pixels of the original image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    pub label: String,
    pub class_id: usize,
    pub score: f32,
    /// `[xmin, ymin, xmax, ymax]` in pixels of the original image.
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
}

#[derive(Clone, Debug)]
pub struct DetectorOptions {
    pub threads: usize,
    /// Per-channel mean and std for float inputs.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            threads: 1,
            mean: [127.5; 3],
            std: [127.5; 3],
        }
    }
}

/// Graph outputs of a model that ends in `TFLite_Detection_PostProcess`.
#[derive(Clone, Copy, Debug)]
struct PostProcessedOutputs {
    boxes: usize,
    classes: usize,
    scores: usize,
    count: usize,
}

/// How detections come out of the model.
enum Head {
    /// The model runs `TFLite_Detection_PostProcess` itself.
    PostProcessed(PostProcessedOutputs),
    /// Raw SSD outputs: we decode with our anchors and NMS (`vision::ssd`).
    RawSsd(Box<RawHead>),
}

struct RawHead {
    boxes_output: usize,
    logits_output: usize,
    decoder: RawSsdDecoder,
    /// Dequantized copies of quantized outputs (empty for float outputs).
    enc: Vec<f32>,
    logits: Vec<f32>,
    /// Decoded results, in the post-process op's layout.
    out_boxes: Vec<f32>,
    out_classes: Vec<f32>,
    out_scores: Vec<f32>,
    count: usize,
    /// Score columns are offset by one (class 0 = background): labels are indexed with it.
    label_offset: usize,
}

/// Minimum score kept by raw SSD decoding (the caller's threshold filters further).
const RAW_MIN_SCORE: f32 = 0.05;
/// IoU threshold of raw SSD non-maximum suppression (that of the TF OD API SSD configs).
const RAW_IOU: f32 = 0.6;
const RAW_MAX_DETECTIONS: usize = 100;

pub struct Detector {
    session: Session,
    labels: Option<Labels>,
    input_w: usize,
    input_h: usize,
    input_dtype: DType,
    head: Head,
    options: DetectorOptions,
    resizer: Option<Resizer>,
    /// Resized RGB for non-uint8 inputs (reused across frames).
    scratch: Vec<u8>,
}

impl Detector {
    /// Load a TFLite detector.
    pub fn load(
        model: &Path,
        labels: Option<Labels>,
        options: DetectorOptions,
    ) -> Result<Detector, ModelError> {
        let graph = crate::model::load(model)?;
        Self::from_graph(graph, labels, options).map_err(|e| match e {
            ModelError::Invalid { what } | ModelError::InvalidOp { what, .. }
                if !what.contains(&model.display().to_string()) =>
            {
                ModelError::Malformed {
                    path: model.to_path_buf(),
                    what,
                }
            }
            other => other,
        })
    }

    pub fn from_graph(
        graph: Graph,
        labels: Option<Labels>,
        options: DetectorOptions,
    ) -> Result<Detector, ModelError> {
        let invalid = |what: String| ModelError::Invalid { what };
        if graph.inputs.len() != 1 {
            return Err(invalid(format!(
                "a detector needs exactly one input, the model has {}",
                graph.inputs.len()
            )));
        }
        let input = graph.tensor(graph.inputs[0]);
        let (input_h, input_w) = match input.shape.as_slice() {
            [1, h, w, 3] => (*h, *w),
            s => {
                return Err(invalid(format!(
                    "input '{}' has shape {s:?}, expected [1, height, width, 3]",
                    input.name
                )))
            }
        };
        if !matches!(input.dtype, DType::U8 | DType::I8 | DType::F32) {
            return Err(invalid(format!(
                "input '{}' is {}, expected uint8, int8 or float32",
                input.name, input.dtype
            )));
        }
        let input_dtype = input.dtype;
        let head = match find_postprocess_outputs(&graph) {
            Some(o) => Head::PostProcessed(o),
            None => Head::RawSsd(Box::new(
                raw_head(&graph, input_w, input_h).map_err(invalid)?,
            )),
        };
        let session = Session::new(
            graph,
            SessionOptions {
                threads: options.threads,
                ..Default::default()
            },
        )?;
        Ok(Detector {
            session,
            labels,
            input_w,
            input_h,
            input_dtype,
            head,
            options,
            resizer: None,
            scratch: Vec::new(),
        })
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Model input size `(width, height)`.
    pub fn input_size(&self) -> (usize, usize) {
        (self.input_w, self.input_h)
    }

    pub fn label(&self, class_id: usize) -> String {
        label_for(self.labels.as_ref(), class_id)
    }

    /// Resize `image` into the model input (no allocation once the sizes were seen).
    pub fn set_input(&mut self, image: &RgbImage) -> Result<(), InputError> {
        let (w, h) = (self.input_w, self.input_h);
        let fits = self
            .resizer
            .as_ref()
            .is_some_and(|r| r.src_size() == (image.width, image.height));
        if !fits {
            self.resizer = Some(Resizer::new(image.width, image.height, w, h)?);
        }
        let resizer = self.resizer.as_ref().expect("set above");
        match self.input_dtype {
            DType::U8 => resizer.resize(&image.data, self.session.input_mut(0)),
            DType::I8 => {
                self.scratch.resize(w * h * 3, 0);
                resizer.resize(&image.data, &mut self.scratch);
                for (d, s) in self.session.input_mut(0).iter_mut().zip(&self.scratch) {
                    *d = s ^ 0x80; // pixel - 128 as two's complement int8
                }
            }
            _ => {
                self.scratch.resize(w * h * 3, 0);
                resizer.resize(&image.data, &mut self.scratch);
                let (mean, std) = (self.options.mean, self.options.std);
                let input = crate::ops::util::f32s_mut(self.session.input_mut(0));
                for (i, (d, s)) in input.iter_mut().zip(&self.scratch).enumerate() {
                    let c = i % 3;
                    *d = (*s as f32 - mean[c]) / std[c];
                }
            }
        }
        Ok(())
    }

    /// Write pixels already resized to the model input size (`input_size()`, RGB8, e.g. by a
    /// capture thread with its own [`Resizer`]) into the model input, converting them as
    /// `set_input` does. No allocation once the scratch buffer exists.
    pub fn set_resized_input(&mut self, rgb: &[u8]) -> Result<(), InputError> {
        let expected = self.input_w * self.input_h * 3;
        if rgb.len() != expected {
            return Err(InputError::Invalid {
                what: format!(
                    "resized input holds {} bytes, expected {}x{}x3 = {expected}",
                    rgb.len(),
                    self.input_w,
                    self.input_h
                ),
            });
        }
        match self.input_dtype {
            DType::U8 => self.session.input_mut(0).copy_from_slice(rgb),
            DType::I8 => {
                for (d, s) in self.session.input_mut(0).iter_mut().zip(rgb) {
                    *d = s ^ 0x80; // pixel - 128 as two's complement int8
                }
            }
            _ => {
                let (mean, std) = (self.options.mean, self.options.std);
                let input = crate::ops::util::f32s_mut(self.session.input_mut(0));
                for (i, (d, s)) in input.iter_mut().zip(rgb).enumerate() {
                    let c = i % 3;
                    *d = (*s as f32 - mean[c]) / std[c];
                }
            }
        }
        Ok(())
    }

    /// Run inference on what `set_input` wrote.
    pub fn infer(&mut self) {
        self.session.run();
    }

    /// Detections with score >= `threshold`, boxes scaled to an image of `width` x `height`.
    pub fn detections(&mut self, width: usize, height: usize, threshold: f32) -> Vec<Detection> {
        let (boxes, classes, scores, n, offset): (&[f32], &[f32], &[f32], usize, usize) =
            match &mut self.head {
                Head::PostProcessed(o) => {
                    let scores = f32s(self.session.output(o.scores));
                    let count = f32s(self.session.output(o.count))[0];
                    let n = if count.is_finite() {
                        (count.max(0.0) as usize).min(scores.len())
                    } else {
                        0
                    };
                    (
                        f32s(self.session.output(o.boxes)),
                        f32s(self.session.output(o.classes)),
                        scores,
                        n,
                        0,
                    )
                }
                Head::RawSsd(r) => {
                    decode_raw(&self.session, r);
                    (
                        &r.out_boxes,
                        &r.out_classes,
                        &r.out_scores,
                        r.count,
                        r.label_offset,
                    )
                }
            };
        let (w, h) = (width as f64, height as f64);
        let mut out = Vec::new();
        for i in 0..n {
            let score = scores[i];
            if score < threshold || !score.is_finite() {
                continue;
            }
            let class_id = classes[i].max(0.0) as usize + offset;
            let b = &boxes[4 * i..4 * i + 4];
            // Boxes are [ymin, xmin, ymax, xmax], normalized.
            let bbox = [
                b[1] as f64 * w,
                b[0] as f64 * h,
                b[3] as f64 * w,
                b[2] as f64 * h,
            ];
            out.push(Detection {
                label: label_for(self.labels.as_ref(), class_id),
                class_id,
                score,
                bbox,
            });
        }
        out
    }

    /// Preprocess, infer and post-process one image.
    pub fn detect(
        &mut self,
        image: &RgbImage,
        threshold: f32,
    ) -> Result<Vec<Detection>, InputError> {
        self.set_input(image)?;
        self.infer();
        Ok(self.detections(image.width, image.height, threshold))
    }
}

/// Map the graph outputs produced by a `TFLite_Detection_PostProcess` op.
fn find_postprocess_outputs(graph: &Graph) -> Option<PostProcessedOutputs> {
    let op = graph
        .ops
        .iter()
        .rev()
        .find(|op| matches!(op.kind, OpKind::DetectionPostProcess(_)))?;
    let pos = |id: TensorId| graph.outputs.iter().position(|&o| o == id);
    Some(PostProcessedOutputs {
        boxes: pos(*op.outputs.first()?)?,
        classes: pos(*op.outputs.get(1)?)?,
        scores: pos(*op.outputs.get(2)?)?,
        count: pos(*op.outputs.get(3)?)?,
    })
}

/// Recognize raw SSD outputs (`[1, A, 4]` box encodings and `[1, A, C]` logits) whose anchor
/// count matches the standard MobileNet SSD layout for this input size.
fn raw_head(graph: &Graph, input_w: usize, input_h: usize) -> Result<RawHead, String> {
    let shape = |i: usize| graph.tensor(graph.outputs[i]).shape.clone();
    let found = (0..graph.outputs.len())
        .find(|&i| matches!(shape(i).as_slice(), [1, _, 4]))
        .and_then(|b| {
            let a = shape(b)[1];
            (0..graph.outputs.len())
                .find(|&i| i != b && matches!(shape(i).as_slice(), [1, x, c] if *x == a && *c >= 2))
                .map(|l| (b, l, a))
        });
    let Some((boxes_output, logits_output, anchors_n)) = found else {
        return Err("the model neither ends in TFLite_Detection_PostProcess (boxes, classes, scores, \
             count) nor has raw SSD outputs ([1, anchors, 4] box encodings and [1, anchors, classes] \
             scores)"
            .to_string());
    };
    let config = AnchorConfig::mobilenet_ssd_300();
    let anchors = config.generate();
    if anchors.len() != anchors_n || (input_w, input_h) != (300, 300) {
        return Err(format!(
            "raw SSD outputs with {anchors_n} anchors at input {input_w}x{input_h}: only the \
             standard MobileNet SSD 300x300 anchor layout ({} anchors) is built in",
            anchors.len()
        ));
    }
    for o in [boxes_output, logits_output] {
        let t = graph.tensor(graph.outputs[o]);
        if !matches!(t.dtype, DType::F32 | DType::U8 | DType::I8) {
            return Err(format!(
                "output '{}' is {}, expected float32, uint8 or int8",
                t.name, t.dtype
            ));
        }
    }
    let classes = shape(logits_output)[2];
    let decoder = RawSsdDecoder::new(anchors, classes, RAW_IOU, RAW_MAX_DETECTIONS);
    let m = decoder.max_detections();
    Ok(RawHead {
        boxes_output,
        logits_output,
        decoder,
        enc: Vec::new(),
        logits: Vec::new(),
        out_boxes: vec![0.0; 4 * m],
        out_classes: vec![0.0; m],
        out_scores: vec![0.0; m],
        count: 0,
        label_offset: 1,
    })
}

/// Dequantize `bytes` of output tensor `t` into `buf` (reused) unless it is already float.
fn as_f32<'a>(t: &crate::model::Tensor, bytes: &'a [u8], buf: &'a mut Vec<f32>) -> &'a [f32] {
    let (scale, zp) = t.per_tensor_quant().unwrap_or((1.0, 0));
    match t.dtype {
        DType::U8 => {
            buf.clear();
            buf.extend(bytes.iter().map(|&q| scale * (q as i32 - zp) as f32));
            buf
        }
        DType::I8 => {
            buf.clear();
            buf.extend(bytes.iter().map(|&q| scale * (q as i8 as i32 - zp) as f32));
            buf
        }
        _ => f32s(bytes),
    }
}

fn decode_raw(session: &Session, r: &mut RawHead) {
    let g = session.graph();
    let bt = g.tensor(g.outputs[r.boxes_output]);
    let lt = g.tensor(g.outputs[r.logits_output]);
    let enc = as_f32(bt, session.output(r.boxes_output), &mut r.enc);
    let logits = as_f32(lt, session.output(r.logits_output), &mut r.logits);
    let mut out = NmsOutput {
        boxes: &mut r.out_boxes,
        classes: &mut r.out_classes,
        scores: &mut r.out_scores,
    };
    r.count = r.decoder.decode(enc, logits, RAW_MIN_SCORE, &mut out);
}

/// The label of `class_id`, or `class_<id>` when there is no label file or no entry.
fn label_for(labels: Option<&Labels>, class_id: usize) -> String {
    labels
        .and_then(|l| l.get(class_id))
        .map(str::to_string)
        .unwrap_or_else(|| format!("class_{class_id}"))
}
