//! Post-processing for SSD models that stop at raw outputs (box encodings `[1, A, 4]` and class
//! logits `[1, A, C]`, class 0 = background), such as MediaPipe's SSD MobileNet v2 or a float
//! model before TFLite's post-process op was attached: anchors, box decoding, sigmoid scores
//! and non-maximum suppression, into the same `boxes/classes/scores/count` layout as
//! `TFLite_Detection_PostProcess`.
//!
//! Anchors follow the TF Object Detection API's `ssd_anchor_generator` (as MediaPipe's
//! `SsdAnchorsCalculator` does): per layer `scale_i = min + (max - min) * i / (n - 1)`, box
//! specs `(0.1, 1), (s, 2), (s, 0.5)` on the lowest layer, `(s, ar)` for each aspect ratio plus
//! `(sqrt(s_i * s_{i+1}), 1)` on the others; `h = s / sqrt(ar)`, `w = s * sqrt(ar)`; centres at
//! `(i + 0.5) / feature_map_size`; order `[y][x][spec]`.

use super::boxes::{decode_center_size, BoxCorner, CenterSize};
use super::nms::{fast_nms, NmsOutput, NmsParams, NmsScratch};

#[derive(Clone, Debug, PartialEq)]
pub struct AnchorConfig {
    pub feature_maps: Vec<usize>,
    pub min_scale: f32,
    pub max_scale: f32,
    pub aspect_ratios: Vec<f32>,
    pub reduce_boxes_in_lowest_layer: bool,
    pub interpolated_scale_aspect_ratio: f32,
}

impl AnchorConfig {
    /// SSD MobileNet v1/v2 at 300×300 (TF OD API defaults): 1917 anchors.
    pub fn mobilenet_ssd_300() -> Self {
        AnchorConfig {
            feature_maps: vec![19, 10, 5, 3, 2, 1],
            min_scale: 0.2,
            max_scale: 0.95,
            aspect_ratios: vec![1.0, 2.0, 0.5, 3.0, 0.3333],
            reduce_boxes_in_lowest_layer: true,
            interpolated_scale_aspect_ratio: 1.0,
        }
    }

    /// Anchors as `(ycenter, xcenter, h, w)`.
    pub fn generate(&self) -> Vec<CenterSize> {
        let n = self.feature_maps.len();
        let scale = |i: usize| -> f32 {
            if i >= n {
                1.0
            } else if n == 1 {
                self.min_scale
            } else {
                self.min_scale + (self.max_scale - self.min_scale) * i as f32 / (n - 1) as f32
            }
        };
        let mut anchors = Vec::new();
        for (layer, &fm) in self.feature_maps.iter().enumerate() {
            let s = scale(layer);
            let mut specs: Vec<(f32, f32)> = Vec::new();
            if layer == 0 && self.reduce_boxes_in_lowest_layer {
                specs.extend([(0.1, 1.0), (s, 2.0), (s, 0.5)]);
            } else {
                specs.extend(self.aspect_ratios.iter().map(|&ar| (s, ar)));
                if self.interpolated_scale_aspect_ratio > 0.0 {
                    specs.push((
                        (s * scale(layer + 1)).sqrt(),
                        self.interpolated_scale_aspect_ratio,
                    ));
                }
            }
            for y in 0..fm {
                for x in 0..fm {
                    for &(s, ar) in &specs {
                        let r = ar.sqrt();
                        anchors.push(CenterSize {
                            y: (y as f32 + 0.5) / fm as f32,
                            x: (x as f32 + 0.5) / fm as f32,
                            h: s / r,
                            w: s * r,
                        });
                    }
                }
            }
        }
        anchors
    }
}

/// Decoder for raw SSD outputs; all buffers sized once, no allocation per frame.
pub struct RawSsdDecoder {
    anchors: Vec<CenterSize>,
    scale: CenterSize,
    params: NmsParams,
    scratch: NmsScratch,
    boxes: Vec<BoxCorner>,
    scores: Vec<f32>,
}

impl RawSsdDecoder {
    /// For `anchors.len()` boxes and `classes_with_background` score columns.
    pub fn new(
        anchors: Vec<CenterSize>,
        classes_with_background: usize,
        iou: f32,
        max_detections: usize,
    ) -> Self {
        let num_boxes = anchors.len();
        let params = NmsParams {
            max_detections,
            max_classes_per_detection: 1,
            detections_per_class: max_detections,
            score_threshold: 0.0,
            iou_threshold: iou,
            num_classes: classes_with_background.saturating_sub(1).max(1),
            num_classes_with_background: classes_with_background,
        };
        let scratch = NmsScratch::new(num_boxes, &params, false);
        RawSsdDecoder {
            anchors,
            // TF OD API box coder scales for SSD MobileNet.
            scale: CenterSize {
                y: 10.0,
                x: 10.0,
                h: 5.0,
                w: 5.0,
            },
            params,
            scratch,
            boxes: vec![BoxCorner::default(); num_boxes],
            scores: vec![0.0; num_boxes * classes_with_background],
        }
    }

    pub fn num_anchors(&self) -> usize {
        self.anchors.len()
    }

    pub fn max_detections(&self) -> usize {
        self.params.max_detections
    }

    /// Decode `encodings` (`[A, 4]`) and `logits` (`[A, C]`) into `out` (rows of
    /// ymin, xmin, ymax, xmax / class without background / score); returns the count. Only
    /// detections with score above `min_score` are kept.
    pub fn decode(
        &mut self,
        encodings: &[f32],
        logits: &[f32],
        min_score: f32,
        out: &mut NmsOutput<'_>,
    ) -> usize {
        for (i, a) in self.anchors.iter().enumerate() {
            let e = CenterSize::from_slice(&encodings[4 * i..4 * i + 4]);
            self.boxes[i] = decode_center_size(e, *a, self.scale);
        }
        for (s, &l) in self.scores.iter_mut().zip(logits) {
            *s = 1.0 / (1.0 + (-l).exp());
        }
        self.params.score_threshold = min_score;
        fast_nms(
            &self.params,
            &self.boxes,
            &self.scores,
            &mut self.scratch,
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobilenet_ssd_has_1917_anchors() {
        assert_eq!(AnchorConfig::mobilenet_ssd_300().generate().len(), 1917);
    }

    /// The Coral model carries its anchors as a uint8 constant; ours must equal them within the
    /// quantization step.
    #[test]
    fn anchors_match_the_coral_models_constant() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/coral_anchors_t256.u8"
        ))
        .unwrap();
        let graph = crate::model::tflite::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
        )))
        .unwrap();
        let t = graph
            .tensors
            .iter()
            .find(|t| t.data.as_deref() == Some(&bytes[..]))
            .unwrap();
        let (scale, zp) = t.per_tensor_quant().unwrap();
        let ours = AnchorConfig::mobilenet_ssd_300().generate();
        for (i, a) in ours.iter().enumerate() {
            let q = &bytes[4 * i..4 * i + 4];
            let deq = |k: usize| scale * (q[k] as i32 - zp) as f32;
            for (k, v) in [a.y, a.x, a.h, a.w].iter().enumerate() {
                assert!(
                    (deq(k) - v).abs() <= scale,
                    "anchor {i} coord {k}: {} vs {v}",
                    deq(k)
                );
            }
        }
    }
}
