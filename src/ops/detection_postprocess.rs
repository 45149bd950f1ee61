//! `TFLite_Detection_PostProcess` custom op (TFLite `kernels/detection_postprocess.cc`):
//! decode center-size box encodings against constant anchors, then fast or regular multi-class
//! NMS. The arithmetic lives in [`crate::vision::boxes`] and [`crate::vision::nms`].
//!
//! Inputs: 0 box encodings `[1, num_anchors, >=4]` (y, x, h, w), 1 class predictions
//! `[1, num_anchors, num_classes (+1 background)]`, 2 anchors `[num_anchors, 4]` (constant).
//! Each is float32, uint8 or int8 (per-tensor quantization, dequantized as TFLite does).
//! TFLite itself only accepts float32 or uint8 inputs, and with uint8 box encodings it reads
//! the anchors as uint8; we dequantize the anchors once here, whatever their type.
//! Outputs (float32): boxes `[1, R, 4]` (ymin, xmin, ymax, xmax), classes `[1, R]`, scores
//! `[1, R]`, num_detections `[1]`, with `R = max_detections * max_classes_per_detection`.
//! Rows TFLite leaves unwritten are zero here.

use crate::error::ModelError;
use crate::model::{DType, DetectionPostProcessOptions, Graph, OpKind, Tensor};
use crate::vision::boxes::{
    decode_center_size, dequantize, dequantize_scores, BoxCorner, CenterSize,
};
use crate::vision::nms::{
    fast_nms, fast_nms_quantized, regular_nms, strictly_increasing, NmsOutput, NmsParams,
    NmsScratch,
};

use super::conv::SyncPtr;
use super::util::{f32s, f32s_mut, OpRef};
use super::{Kernel, RunCtx};

/// How an input tensor's bytes become float.
#[derive(Clone, Copy, Debug)]
enum Source {
    F32,
    U8 { scale: f32, zero_point: i32 },
    I8 { scale: f32, zero_point: i32 },
}

fn source(op: &OpRef<'_>, t: &Tensor) -> Result<Source, ModelError> {
    op.expect_dtype(t, &[DType::F32, DType::U8, DType::I8])?;
    Ok(match t.dtype {
        DType::U8 => {
            let (scale, zero_point) = op.per_tensor_quant(t)?;
            Source::U8 { scale, zero_point }
        }
        DType::I8 => {
            let (scale, zero_point) = op.per_tensor_quant(t)?;
            Source::I8 { scale, zero_point }
        }
        _ => Source::F32,
    })
}

pub fn prepare(graph: &Graph, index: usize) -> Result<Box<dyn Kernel>, ModelError> {
    Ok(Box::new(prepare_kernel(graph, index)?))
}

fn prepare_kernel(graph: &Graph, index: usize) -> Result<DetectionPostProcess, ModelError> {
    let op = OpRef::new(graph, index);
    let OpKind::DetectionPostProcess(opts) = &op.op.kind else {
        return Err(op.err("not a TFLite_Detection_PostProcess op"));
    };
    let opts: &DetectionPostProcessOptions = opts;
    if op.op.inputs.len() != 3 {
        return Err(op.err(format!("expected 3 inputs, got {}", op.op.inputs.len())));
    }
    if op.op.outputs.len() != 4 {
        return Err(op.err(format!("expected 4 outputs, got {}", op.op.outputs.len())));
    }
    let enc = op.input(0)?;
    let cls = op.input(1)?;
    let anc = op.input(2)?;
    op.expect_rank(enc, 3)?;
    op.expect_rank(cls, 3)?;
    op.expect_rank(anc, 2)?;
    let enc_src = source(&op, enc)?;
    let cls_src = source(&op, cls)?;
    let anc_src = source(&op, anc)?;
    let num_boxes = enc.shape[1];
    let enc_stride = enc.shape[2];
    if enc.shape[0] != 1 || enc_stride < 4 {
        return Err(op.err(format!(
            "box encodings '{}' have shape {:?}, expected [1, num_anchors, >=4]",
            enc.name, enc.shape
        )));
    }
    if cls.shape[0] != 1 || cls.shape[1] != num_boxes {
        return Err(op.err(format!(
            "class predictions '{}' have shape {:?}, expected [1, {num_boxes}, classes]",
            cls.name, cls.shape
        )));
    }
    if anc.shape != [num_boxes, 4] {
        return Err(op.err(format!(
            "anchors '{}' have shape {:?}, expected [{num_boxes}, 4]",
            anc.name, anc.shape
        )));
    }
    let ncwb = cls.shape[2];
    let num_classes = opts.num_classes;
    if num_classes == 0 || ncwb < num_classes || ncwb - num_classes > 1 {
        return Err(op.err(format!(
            "class predictions '{}' have {ncwb} classes per anchor, expected num_classes \
             ({num_classes}) or num_classes + 1, num_classes >= 1",
            cls.name
        )));
    }
    let iou_t = opts.nms_iou_threshold;
    if !(iou_t > 0.0 && iou_t <= 1.0) {
        return Err(op.err(format!("nms_iou_threshold {iou_t} must be in (0, 1]")));
    }
    if opts.use_regular_nms && opts.detections_per_class == 0 {
        return Err(op.err("detections_per_class must be > 0 with use_regular_nms"));
    }
    if opts.max_classes_per_detection == 0 {
        return Err(op.err("max_classes_per_detection must be > 0"));
    }

    // Anchors: dequantized once (TFLite dequantizes them on every run with the same formula).
    let anc_bytes = op.const_input(2)?;
    let anchors: Vec<CenterSize> = match anc_src {
        Source::F32 => super::util::const_f32(anc_bytes)
            .chunks_exact(4)
            .map(CenterSize::from_slice)
            .collect(),
        Source::U8 { scale, zero_point } => anc_bytes
            .chunks_exact(4)
            .map(|c| CenterSize {
                y: dequantize(c[0] as i32, scale, zero_point),
                x: dequantize(c[1] as i32, scale, zero_point),
                h: dequantize(c[2] as i32, scale, zero_point),
                w: dequantize(c[3] as i32, scale, zero_point),
            })
            .collect(),
        Source::I8 { scale, zero_point } => anc_bytes
            .chunks_exact(4)
            .map(|c| CenterSize {
                y: dequantize(c[0] as i8 as i32, scale, zero_point),
                x: dequantize(c[1] as i8 as i32, scale, zero_point),
                h: dequantize(c[2] as i8 as i32, scale, zero_point),
                w: dequantize(c[3] as i8 as i32, scale, zero_point),
            })
            .collect(),
    };
    if anchors.len() != num_boxes {
        return Err(op.err(format!(
            "anchors '{}' hold {} bytes, expected {num_boxes} anchors",
            anc.name,
            anc_bytes.len()
        )));
    }
    // TFLite's ValidateBoxes fails the run when a decoded box has ymin > ymax or xmin > xmax;
    // with the half sizes 0.5 * exp(..) * anchor size that only happens for a negative anchor
    // size, so rejecting those here keeps `run` infallible.
    if let Some(i) = anchors.iter().position(|a| a.h < 0.0 || a.w < 0.0) {
        return Err(op.err(format!(
            "anchor {i} of '{}' has a negative height or width",
            anc.name
        )));
    }

    let params = NmsParams {
        max_detections: opts.max_detections,
        max_classes_per_detection: opts.max_classes_per_detection,
        detections_per_class: opts.detections_per_class,
        score_threshold: opts.nms_score_threshold,
        iou_threshold: iou_t,
        num_classes,
        num_classes_with_background: ncwb,
    };
    let rows = params.output_rows();
    let expected = [rows * 4, rows, rows, 1];
    for (j, &n) in expected.iter().enumerate() {
        let t = op.output(j)?;
        op.expect_dtype(t, &[DType::F32])?;
        if t.num_elements() != n {
            return Err(op.err(format!(
                "output {j} ('{}') has shape {:?}, expected {n} elements \
                 (max_detections {} x max_classes_per_detection {})",
                t.name, t.shape, opts.max_detections, opts.max_classes_per_detection
            )));
        }
    }

    let name = match enc_src {
        Source::F32 => "detection_postprocess_f32__scalar",
        Source::U8 { .. } => "detection_postprocess_qu8__scalar",
        Source::I8 { .. } => "detection_postprocess_qi8__scalar",
    };
    let scratch = NmsScratch::new(num_boxes, &params, opts.use_regular_nms);
    let score_lut: [f32; 256] = match cls_src {
        Source::U8 { scale, zero_point } => {
            std::array::from_fn(|b| dequantize_scores(b as i32, scale, zero_point))
        }
        Source::I8 { scale, zero_point } => {
            std::array::from_fn(|b| dequantize_scores(b as u8 as i8 as i32, scale, zero_point))
        }
        Source::F32 => [0.0; 256],
    };
    // Fast NMS can rank the raw bytes when dequantization preserves their order strictly
    // (always, unless the scale is zero/negative/denormal-tiny); then the dequantized
    // `scores` temporary is never needed.
    let quantized_nms = !opts.use_regular_nms
        && match cls_src {
            Source::U8 { .. } => strictly_increasing(0..=255u8, |b| score_lut[usize::from(b)]),
            Source::I8 { .. } => {
                strictly_increasing(-128..=127i8, |b| score_lut[usize::from(b as u8)])
            }
            Source::F32 => false,
        };
    Ok(DetectionPostProcess {
        name,
        enc_src,
        enc_stride,
        cls_src,
        scale: CenterSize {
            y: opts.y_scale,
            x: opts.x_scale,
            h: opts.h_scale,
            w: opts.w_scale,
        },
        regular: opts.use_regular_nms,
        anchors,
        decoded: vec![BoxCorner::default(); num_boxes],
        score_lut,
        scores: if quantized_nms || matches!(cls_src, Source::F32) {
            Vec::new()
        } else {
            vec![0.0; num_boxes * ncwb]
        },
        quantized_nms,
        params,
        scratch,
    })
}

struct DetectionPostProcess {
    name: &'static str,
    enc_src: Source,
    enc_stride: usize,
    cls_src: Source,
    scale: CenterSize,
    regular: bool,
    anchors: Vec<CenterSize>,
    /// Decoded boxes (TFLite's `decoded_boxes` temporary).
    decoded: Vec<BoxCorner>,
    /// Dequantized class predictions (TFLite's `scores` temporary); empty for float input.
    scores: Vec<f32>,
    /// `dequantize_scores` of every input byte (a pure function of the byte, so the table is
    /// bit-exact and saves a float multiply per class prediction).
    score_lut: [f32; 256],
    /// Fast NMS ranks the raw score bytes ([`fast_nms_quantized`]): `score_lut` is strictly
    /// increasing in the byte order of the source type, and `scores` stays unused.
    quantized_nms: bool,
    params: NmsParams,
    scratch: NmsScratch,
}

/// Anchors per box-decoding task: the SSD's 1917 anchors make 8 tasks.
const DECODE_ROWS_PER_TASK: usize = 240;

impl DetectionPostProcess {
    /// Decode anchor `i` of the box encodings `enc`.
    fn decode_one(&self, enc: &[u8], i: usize) -> BoxCorner {
        let stride = self.enc_stride;
        let anchor = self.anchors[i];
        let e = match self.enc_src {
            Source::F32 => CenterSize::from_slice(&f32s(enc)[i * stride..]),
            Source::U8 { scale, zero_point } => {
                let q = &enc[i * stride..];
                CenterSize {
                    y: dequantize(q[0] as i32, scale, zero_point),
                    x: dequantize(q[1] as i32, scale, zero_point),
                    h: dequantize(q[2] as i32, scale, zero_point),
                    w: dequantize(q[3] as i32, scale, zero_point),
                }
            }
            Source::I8 { scale, zero_point } => {
                let q = &enc[i * stride..];
                CenterSize {
                    y: dequantize(q[0] as i8 as i32, scale, zero_point),
                    x: dequantize(q[1] as i8 as i32, scale, zero_point),
                    h: dequantize(q[2] as i8 as i32, scale, zero_point),
                    w: dequantize(q[3] as i8 as i32, scale, zero_point),
                }
            }
        };
        decode_center_size(e, anchor, self.scale)
    }

    /// All boxes into `self.decoded`, split over the pool in anchor ranges (each box is a pure
    /// function of its anchor and encoding, so the split does not change a bit).
    fn decode(&mut self, ctx: &RunCtx, enc: &[u8]) {
        let mut decoded = std::mem::take(&mut self.decoded);
        let rows = decoded.len().min(self.anchors.len());
        let tasks = if ctx.threads() > 1 {
            rows.div_ceil(DECODE_ROWS_PER_TASK).max(1)
        } else {
            1
        };
        let out = SyncPtr(decoded.as_mut_ptr());
        let this = &*self;
        ctx.parallel_for(tasks, &|t| {
            let (r0, r1) = (t * rows / tasks, (t + 1) * rows / tasks);
            // SAFETY: `r1 <= rows <= decoded.len()`; tasks own disjoint anchor ranges, and
            // `decoded` outlives the `parallel_for`.
            let part = unsafe { std::slice::from_raw_parts_mut(out.get().add(r0), r1 - r0) };
            for (o, i) in part.iter_mut().zip(r0..r1) {
                *o = this.decode_one(enc, i);
            }
        });
        self.decoded = decoded;
    }
}

impl Kernel for DetectionPostProcess {
    fn name(&self) -> &str {
        self.name
    }

    fn run(&mut self, ctx: &RunCtx, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        self.decode(ctx, inputs[0]);
        let par = |tasks: usize, f: &(dyn Fn(usize) + Sync)| ctx.parallel_for(tasks, f);
        let [boxes, classes, out_scores, num] = outputs else {
            return;
        };
        let mut out = NmsOutput {
            boxes: f32s_mut(boxes),
            classes: f32s_mut(classes),
            scores: f32s_mut(out_scores),
        };
        let (p, decoded, scratch, lut) = (
            &self.params,
            &self.decoded,
            &mut self.scratch,
            &self.score_lut,
        );
        let n = match (self.quantized_nms, self.cls_src) {
            (true, Source::I8 { .. }) => {
                let bytes = bytemuck::cast_slice::<u8, i8>(inputs[1]);
                let deq = |b: i8| lut[usize::from(b as u8)];
                fast_nms_quantized(p, decoded, bytes, deq, scratch, &mut out, &par)
            }
            (true, _) => {
                let deq = |b: u8| lut[usize::from(b)];
                fast_nms_quantized(p, decoded, inputs[1], deq, scratch, &mut out, &par)
            }
            (false, src) => {
                let scores: &[f32] = if let Source::F32 = src {
                    f32s(inputs[1])
                } else {
                    for (o, &q) in self.scores.iter_mut().zip(inputs[1]) {
                        *o = lut[usize::from(q)];
                    }
                    &self.scores
                };
                if self.regular {
                    regular_nms(p, decoded, scores, scratch, &mut out)
                } else {
                    fast_nms(p, decoded, scores, scratch, &mut out)
                }
            }
        };
        f32s_mut(num)[0] = n as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Op, Quant};
    use sha2::{Digest, Sha256};

    fn tensor(name: &str, shape: &[usize], dtype: DType, quant: Option<(f32, i32)>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
            quant: quant.map(|(scale, zero_point)| Quant::PerTensor { scale, zero_point }),
            data: None,
        }
    }

    /// Graph with the Coral SSD postprocess: uint8 inputs, uint8 anchors, fast NMS.
    fn coral_graph(anchors: Vec<u8>, regular: bool) -> Graph {
        let mut anc = tensor("anchors", &[1917, 4], DType::U8, Some((0.006_453_060_5, 0)));
        anc.data = Some(anchors);
        let opts = DetectionPostProcessOptions {
            max_detections: 20,
            max_classes_per_detection: 1,
            detections_per_class: if regular { 100 } else { 0 },
            use_regular_nms: regular,
            nms_score_threshold: 1e-8,
            nms_iou_threshold: 0.6,
            num_classes: 90,
            y_scale: 10.0,
            x_scale: 10.0,
            h_scale: 5.0,
            w_scale: 5.0,
        };
        Graph {
            tensors: vec![
                tensor(
                    "Squeeze",
                    &[1, 1917, 4],
                    DType::U8,
                    Some((0.091_339_67, 179)),
                ),
                tensor(
                    "convert_scores",
                    &[1, 1917, 91],
                    DType::U8,
                    Some((0.003_906_25, 0)),
                ),
                anc,
                tensor("boxes", &[1, 20, 4], DType::F32, None),
                tensor("classes", &[1, 20], DType::F32, None),
                tensor("scores", &[1, 20], DType::F32, None),
                tensor("num", &[1], DType::F32, None),
            ],
            ops: vec![Op {
                kind: OpKind::DetectionPostProcess(opts),
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3, 4, 5, 6],
            }],
            inputs: vec![0, 1],
            outputs: vec![3, 4, 5, 6],
        }
    }

    fn root() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn bits(v: &serde_json::Value) -> u32 {
        let s = v.as_str().expect("bits string");
        u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex")
    }

    fn sha_of_tensor(name: &str, index: u64) -> String {
        let j: serde_json::Value =
            serde_json::from_slice(&read(&format!("tests/goldens/coral/{name}.tensors.json")))
                .expect("json");
        let list = j
            .get("tensors")
            .unwrap_or(&j)
            .as_array()
            .expect("tensor list");
        let t = list
            .iter()
            .find(|t| t["index"].as_u64() == Some(index))
            .expect("tensor index");
        t["sha256"].as_str().expect("sha").to_string()
    }

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// End-to-end against LiteRT BUILTIN_REF on the Coral goldens: decoded boxes temporary
    /// (t261), dequantized scores temporary (t262) and all four outputs, bit for bit.
    #[test]
    fn coral_goldens_bit_exact() {
        let anchors = read("tests/data/coral_anchors_t256.u8");
        let graph = coral_graph(anchors, false);
        let mut k = prepare(&graph, 0).expect("prepare");
        assert_eq!(k.name(), "detection_postprocess_qu8__scalar");
        for name in [
            "astronaut",
            "chelsea",
            "coffee",
            "horse",
            "rocket",
            "astronaut_crop",
            "chelsea_crop",
            "coffee_crop",
            "horse_crop",
        ] {
            let enc = read(&format!("tests/goldens/coral/{name}.t250.bin"));
            let cls = read(&format!("tests/goldens/coral/{name}.t259.bin"));
            let anc = graph.tensors[2].data.clone().expect("anchors");
            let (mut b, mut c, mut s, mut n) = (
                vec![0f32; 80],
                vec![0f32; 20],
                vec![0f32; 20],
                vec![0f32; 1],
            );
            {
                let mut outs: Vec<&mut [u8]> = vec![
                    bytemuck::cast_slice_mut(&mut b),
                    bytemuck::cast_slice_mut(&mut c),
                    bytemuck::cast_slice_mut(&mut s),
                    bytemuck::cast_slice_mut(&mut n),
                ];
                k.run(&RunCtx::default(), &[&enc, &cls, &anc], &mut outs);
            }
            let j: serde_json::Value = serde_json::from_slice(&read(&format!(
                "tests/goldens/coral/{name}.detections.json"
            )))
            .expect("json");
            let raw = &j["raw"];
            assert_eq!(n[0].to_bits(), bits(&raw["count_bits"]), "{name} count");
            for r in 0..20 {
                assert_eq!(
                    c[r].to_bits(),
                    bits(&raw["classes_bits"][r]),
                    "{name} class {r}"
                );
                assert_eq!(
                    s[r].to_bits(),
                    bits(&raw["scores_bits"][r]),
                    "{name} score {r}"
                );
                for q in 0..4 {
                    assert_eq!(
                        b[r * 4 + q].to_bits(),
                        bits(&raw["boxes_bits"][r][q]),
                        "{name} box {r}.{q}"
                    );
                }
            }
        }
    }

    /// The temporaries of the kernel equal LiteRT's (t261 decoded boxes, t262 scores).
    #[test]
    fn coral_temporaries_bit_exact() {
        let anchors = read("tests/data/coral_anchors_t256.u8");
        let graph = coral_graph(anchors, false);
        let mut k = prepare_kernel(&graph, 0).expect("prepare");
        let enc = read("tests/goldens/coral/astronaut.t250.bin");
        let cls = read("tests/goldens/coral/astronaut.t259.bin");
        let anc = graph.tensors[2].data.clone().expect("anchors");
        let (mut b, mut c, mut s, mut n) = (
            vec![0f32; 80],
            vec![0f32; 20],
            vec![0f32; 20],
            vec![0f32; 1],
        );
        let mut outs: Vec<&mut [u8]> = vec![
            bytemuck::cast_slice_mut(&mut b),
            bytemuck::cast_slice_mut(&mut c),
            bytemuck::cast_slice_mut(&mut s),
            bytemuck::cast_slice_mut(&mut n),
        ];
        k.run(&RunCtx::default(), &[&enc, &cls, &anc], &mut outs);
        let mut flat = Vec::with_capacity(k.decoded.len() * 16);
        for d in &k.decoded {
            for v in [d.ymin, d.xmin, d.ymax, d.xmax] {
                flat.extend_from_slice(&v.to_le_bytes());
            }
        }
        assert_eq!(hex(&Sha256::digest(&flat)), sha_of_tensor("astronaut", 261));
        // The fast path ranks raw bytes and never fills the `scores` temporary; its values
        // are the LUT entries, which must equal LiteRT's dequantized scores.
        assert!(
            k.quantized_nms,
            "Coral scores take the quantized fast-NMS path"
        );
        let scores: Vec<u8> = cls
            .iter()
            .flat_map(|&q| k.score_lut[usize::from(q)].to_le_bytes())
            .collect();
        assert_eq!(
            hex(&Sha256::digest(&scores)),
            sha_of_tensor("astronaut", 262)
        );
    }

    #[test]
    fn regular_nms_runs_on_coral_inputs() {
        // No LiteRT golden for regular NMS on this model; check invariants: sorted scores,
        // count <= 20, zero rows after the count.
        let anchors = read("tests/data/coral_anchors_t256.u8");
        let graph = coral_graph(anchors, true);
        let mut k = prepare(&graph, 0).expect("prepare");
        let enc = read("tests/goldens/coral/astronaut.t250.bin");
        let cls = read("tests/goldens/coral/astronaut.t259.bin");
        let anc = graph.tensors[2].data.clone().expect("anchors");
        let (mut b, mut c, mut s, mut n) = (
            vec![0f32; 80],
            vec![0f32; 20],
            vec![0f32; 20],
            vec![0f32; 1],
        );
        {
            let mut outs: Vec<&mut [u8]> = vec![
                bytemuck::cast_slice_mut(&mut b),
                bytemuck::cast_slice_mut(&mut c),
                bytemuck::cast_slice_mut(&mut s),
                bytemuck::cast_slice_mut(&mut n),
            ];
            k.run(&RunCtx::default(), &[&enc, &cls, &anc], &mut outs);
        }
        let count = n[0] as usize;
        assert!(count <= 20 && count > 0);
        assert!(s[..count].windows(2).all(|w| w[0] >= w[1]));
        assert!(s[count..].iter().all(|&v| v == 0.0));
        assert!(c[..count].iter().all(|&v| (0.0..90.0).contains(&v)));
        let _ = b;
    }

    #[test]
    fn prepare_errors_name_op_and_tensor() {
        let anchors = read("tests/data/coral_anchors_t256.u8");
        let mut graph = coral_graph(anchors.clone(), false);
        graph.tensors[3].shape = vec![];
        let e = prepare(&graph, 0).err().expect("error").to_string();
        assert!(
            e.contains("op #0 TFLite_Detection_PostProcess") && e.contains("'boxes'"),
            "{e}"
        );

        let mut graph = coral_graph(anchors.clone(), false);
        graph.tensors[1].dtype = DType::I32;
        let e = prepare(&graph, 0).err().expect("error").to_string();
        assert!(e.contains("convert_scores") && e.contains("int32"), "{e}");

        let mut graph = coral_graph(anchors, false);
        graph.tensors[2].data = None;
        let e = prepare(&graph, 0).err().expect("error").to_string();
        assert!(e.contains("constant"), "{e}");
    }

    #[test]
    fn float_inputs_small_case() {
        // Two anchors, one class + background, float everything; box 1 scores higher.
        let mut anc = tensor("anchors", &[2, 4], DType::F32, None);
        let anchors: [f32; 8] = [0.5, 0.5, 0.2, 0.2, 0.25, 0.25, 0.1, 0.1];
        anc.data = Some(bytemuck::cast_slice(&anchors).to_vec());
        let opts = DetectionPostProcessOptions {
            max_detections: 2,
            max_classes_per_detection: 1,
            detections_per_class: 100,
            use_regular_nms: false,
            nms_score_threshold: 0.1,
            nms_iou_threshold: 0.5,
            num_classes: 1,
            y_scale: 10.0,
            x_scale: 10.0,
            h_scale: 5.0,
            w_scale: 5.0,
        };
        let graph = Graph {
            tensors: vec![
                tensor("enc", &[1, 2, 4], DType::F32, None),
                tensor("cls", &[1, 2, 2], DType::F32, None),
                anc,
                tensor("boxes", &[1, 2, 4], DType::F32, None),
                tensor("classes", &[1, 2], DType::F32, None),
                tensor("scores", &[1, 2], DType::F32, None),
                tensor("num", &[1], DType::F32, None),
            ],
            ops: vec![Op {
                kind: OpKind::DetectionPostProcess(opts),
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3, 4, 5, 6],
            }],
            inputs: vec![0, 1],
            outputs: vec![3, 4, 5, 6],
        };
        let mut k = prepare(&graph, 0).expect("prepare");
        assert_eq!(k.name(), "detection_postprocess_f32__scalar");
        let enc = [0f32; 8];
        let cls = [0.0f32, 0.4, 0.0, 0.8];
        let (mut b, mut c, mut s, mut n) =
            (vec![0f32; 8], vec![0f32; 2], vec![0f32; 2], vec![0f32; 1]);
        {
            let mut outs: Vec<&mut [u8]> = vec![
                bytemuck::cast_slice_mut(&mut b),
                bytemuck::cast_slice_mut(&mut c),
                bytemuck::cast_slice_mut(&mut s),
                bytemuck::cast_slice_mut(&mut n),
            ];
            k.run(
                &RunCtx::default(),
                &[bytemuck::cast_slice(&enc), bytemuck::cast_slice(&cls), &[]],
                &mut outs,
            );
        }
        assert_eq!(n, vec![2.0]);
        assert_eq!(s, vec![0.8, 0.4]);
        assert_eq!(c, vec![0.0, 0.0]);
        assert_eq!(b, vec![0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.6, 0.6]);
    }
}
