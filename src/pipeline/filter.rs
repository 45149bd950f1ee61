//! Which detections count, and which zones they are in (I/O-free).
//!
//! Order in the pipeline: the detector drops scores below `threshold`; [`Filters::keep`] then
//! applies the label allow-list, per-label minimum scores, box area bounds and masks (before
//! tracking, so ignored objects never get a track); [`Filters::zones_into`] names the zones of
//! each tracked box. Masks and zones test one point: the box's bottom-centre (where an object
//! touches the ground), which is stable as the box grows and shrinks.

use std::collections::BTreeMap;

use crate::config::DetectConfig;
use crate::detector::Detection;

/// A closed polygon in frame pixels, with its bounding box for a cheap first test.
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    points: Vec<[f64; 2]>,
    min: [f64; 2],
    max: [f64; 2],
}

impl Polygon {
    pub fn new(points: Vec<[f64; 2]>) -> Polygon {
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for p in &points {
            for a in 0..2 {
                min[a] = min[a].min(p[a]);
                max[a] = max[a].max(p[a]);
            }
        }
        Polygon { points, min, max }
    }

    pub fn points(&self) -> &[[f64; 2]] {
        &self.points
    }

    /// Even-odd rule (ray casting). Fewer than 3 points or non-finite input: outside.
    pub fn contains(&self, p: [f64; 2]) -> bool {
        if self.points.len() < 3 || !p[0].is_finite() || !p[1].is_finite() {
            return false;
        }
        if p[0] < self.min[0] || p[0] > self.max[0] || p[1] < self.min[1] || p[1] > self.max[1] {
            return false;
        }
        let mut inside = false;
        let n = self.points.len();
        let mut j = n - 1;
        for i in 0..n {
            let (a, b) = (self.points[i], self.points[j]);
            // Edge (a, b) crosses the horizontal line through p to the right of p.
            if (a[1] > p[1]) != (b[1] > p[1]) {
                let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
                if p[0] < x {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }
}

/// Bottom-centre of an `[xmin, ymin, xmax, ymax]` box.
pub fn anchor_point(bbox: &[f64; 4]) -> [f64; 2] {
    [(bbox[0] + bbox[2]) / 2.0, bbox[1].max(bbox[3])]
}

/// The run-time adjustable part of detection: everything in `[detect]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    /// Minimum score (applied by the detector).
    pub threshold: f32,
    labels: Vec<String>,
    min_score: BTreeMap<String, f32>,
    min_area: f64,
    max_area: Option<f64>,
    zones: Vec<(String, Polygon)>,
    masks: Vec<Polygon>,
}

impl Default for Filters {
    fn default() -> Self {
        Filters::from_config(&DetectConfig::default())
    }
}

impl Filters {
    /// Build from a validated `[detect]` section.
    pub fn from_config(c: &DetectConfig) -> Filters {
        Filters {
            threshold: c.threshold,
            labels: c.labels.clone(),
            min_score: c.min_score.clone(),
            min_area: c.min_area,
            max_area: c.max_area,
            zones: c
                .zones
                .iter()
                .map(|z| (z.name.clone(), Polygon::new(z.polygon.clone())))
                .collect(),
            masks: c
                .masks
                .iter()
                .map(|m| Polygon::new(m.polygon.clone()))
                .collect(),
        }
    }

    /// Whether a detection (already above `threshold`) is reported.
    pub fn keep(&self, d: &Detection) -> bool {
        if d.score < self.threshold {
            return false;
        }
        if !self.labels.is_empty() && !self.labels.contains(&d.label) {
            return false;
        }
        if self.min_score.get(&d.label).is_some_and(|&m| d.score < m) {
            return false;
        }
        let b = &d.bbox;
        let area = (b[2] - b[0]).abs() * (b[3] - b[1]).abs();
        if !area.is_finite() || area < self.min_area {
            return false;
        }
        if self.max_area.is_some_and(|m| area > m) {
            return false;
        }
        let p = anchor_point(b);
        !self.masks.iter().any(|m| m.contains(p))
    }

    /// Replace `zones` with the names of the zones containing the box's bottom-centre, in
    /// configuration order (reuses the vector's allocation).
    pub fn zones_into(&self, bbox: &[f64; 4], zones: &mut Vec<String>) {
        zones.clear();
        let p = anchor_point(bbox);
        for (name, poly) in &self.zones {
            if poly.contains(p) {
                zones.push(name.clone());
            }
        }
    }

    pub fn has_zones(&self) -> bool {
        !self.zones.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MaskConfig, ZoneConfig};

    fn det(label: &str, score: f32, bbox: [f64; 4]) -> Detection {
        Detection {
            label: label.into(),
            class_id: 0,
            score,
            bbox,
        }
    }

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
        vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    #[test]
    fn point_in_polygon_convex_concave_and_degenerate() {
        let sq = Polygon::new(square(0.0, 0.0, 10.0, 10.0));
        assert!(sq.contains([5.0, 5.0]));
        assert!(!sq.contains([15.0, 5.0]));
        assert!(!sq.contains([5.0, -1.0]));
        assert!(!sq.contains([f64::NAN, 5.0]));
        // A "U": the notch (4..6, 0..8) is outside.
        let u = Polygon::new(vec![
            [0.0, 0.0],
            [4.0, 0.0],
            [4.0, 8.0],
            [6.0, 8.0],
            [6.0, 0.0],
            [10.0, 0.0],
            [10.0, 10.0],
            [0.0, 10.0],
        ]);
        assert!(u.contains([2.0, 2.0]));
        assert!(!u.contains([5.0, 2.0]));
        assert!(u.contains([5.0, 9.0]));
        assert!(!Polygon::new(vec![[0.0, 0.0], [1.0, 1.0]]).contains([0.5, 0.5]));
    }

    #[test]
    fn keep_applies_labels_scores_areas_and_masks() {
        let mut c = DetectConfig {
            threshold: 0.4,
            min_area: 100.0,
            max_area: Some(10_000.0),
            ..Default::default()
        };
        c.min_score.insert("person".into(), 0.7);
        c.masks.push(MaskConfig {
            name: None,
            polygon: square(0.0, 0.0, 100.0, 50.0),
        });
        let f = Filters::from_config(&c);
        assert!(f.keep(&det("car", 0.5, [200.0, 200.0, 220.0, 220.0])));
        assert!(!f.keep(&det("car", 0.3, [200.0, 200.0, 220.0, 220.0])));
        assert!(!f.keep(&det("person", 0.6, [200.0, 200.0, 220.0, 220.0])));
        assert!(f.keep(&det("person", 0.8, [200.0, 200.0, 220.0, 220.0])));
        assert!(
            !f.keep(&det("car", 0.9, [200.0, 200.0, 205.0, 205.0])),
            "area 25"
        );
        assert!(
            !f.keep(&det("car", 0.9, [0.0, 0.0, 200.0, 200.0])),
            "area 40000"
        );
        // Bottom-centre (50, 40) is in the mask; (50, 60) is not.
        assert!(!f.keep(&det("car", 0.9, [40.0, 20.0, 60.0, 40.0])));
        assert!(f.keep(&det("car", 0.9, [40.0, 40.0, 60.0, 60.0])));

        c.labels = vec!["person".into()];
        let f = Filters::from_config(&c);
        assert!(!f.keep(&det("car", 0.9, [200.0, 200.0, 220.0, 220.0])));
    }

    #[test]
    fn zones_use_the_bottom_centre_in_config_order() {
        let c = DetectConfig {
            zones: vec![
                ZoneConfig {
                    name: "left".into(),
                    polygon: square(0.0, 0.0, 50.0, 100.0),
                },
                ZoneConfig {
                    name: "bottom".into(),
                    polygon: square(0.0, 50.0, 100.0, 100.0),
                },
            ],
            ..Default::default()
        };
        let f = Filters::from_config(&c);
        let mut z = vec!["stale".to_string()];
        f.zones_into(&[10.0, 10.0, 30.0, 80.0], &mut z);
        assert_eq!(z, ["left", "bottom"]);
        f.zones_into(&[10.0, 0.0, 30.0, 20.0], &mut z);
        assert_eq!(z, ["left"]);
        f.zones_into(&[60.0, 0.0, 90.0, 20.0], &mut z);
        assert!(z.is_empty());
    }
}
