//! IoU tracker: gives detections stable ids across frames.
//!
//! Pure (no I/O, no clock: time comes in with each frame). Matching is greedy by IoU, per label:
//! every (live track, detection) pair with the same label and IoU ≥ `iou_threshold` is a
//! candidate; candidates are taken in descending IoU (ties: lower track index, then lower
//! detection index) and each track and detection is used at most once. A track is compared
//! with the box it had when last matched (no motion model: at camera frame rates objects move
//! little between frames, and a missed frame keeps the old box).
//!
//! Unmatched detections start new tracks (ids 1, 2, ... never reused within a tracker).
//! A track unmatched for more than `max_missed_frames` consecutive frames ends; it is then
//! reported by [`Tracker::ended`] for that one frame and its id never comes back.

use crate::detector::Detection;

use super::TrackedDetection;

/// Tracker tuning.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    /// Minimum IoU between a track's last box and a detection to continue the track.
    pub iou_threshold: f32,
    /// A track survives this many consecutive frames without a match; one more ends it.
    /// 0 ends a track on its first miss.
    pub max_missed_frames: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            iou_threshold: 0.3,
            max_missed_frames: 5,
        }
    }
}

/// A tracked object's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub id: u64,
    pub label: String,
    pub class_id: usize,
    /// Box of the last matched detection, `[xmin, ymin, xmax, ymax]` pixels.
    pub bbox: [f64; 4],
    /// Score of the last matched detection.
    pub score: f32,
    /// Best score seen.
    pub top_score: f32,
    /// Frame time when the track started / was last matched (seconds since the Unix epoch).
    pub start_time: f64,
    pub last_seen: f64,
    /// Number of frames the track was matched in.
    pub hits: u64,
    /// Consecutive frames without a match (0 if matched in the last frame).
    pub missed: u32,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    ended: Vec<Track>,
    next_id: u64,
}

/// Intersection over union of two `[xmin, ymin, xmax, ymax]` boxes; 0 for empty, inverted or
/// non-finite boxes (so bad detector output never matches anything).
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let area = |r: &[f64; 4]| {
        let (w, h) = (r[2] - r[0], r[3] - r[1]);
        if w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0 {
            w * h
        } else {
            0.0
        }
    };
    let (aa, ab) = (area(a), area(b));
    if aa == 0.0 || ab == 0.0 {
        return 0.0;
    }
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = aa + ab - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::new(),
            ended: Vec::new(),
            next_id: 1,
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Match one frame's detections to tracks. Returns the detections in input order with
    /// their track ids (zones empty: zone assignment is a later stage). Tracks that ended in
    /// this frame are available from [`Tracker::ended`] until the next call.
    pub fn update(&mut self, detections: &[Detection], frame_time: f64) -> Vec<TrackedDetection> {
        self.ended.clear();

        let threshold = f64::from(self.config.iou_threshold);
        let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                if d.label != t.label {
                    continue;
                }
                let v = iou(&t.bbox, &d.bbox);
                if v >= threshold && v > 0.0 {
                    candidates.push((v, ti, di));
                }
            }
        }
        // Descending IoU; ties broken by indices so the result is deterministic.
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

        let mut track_of_det: Vec<Option<usize>> = vec![None; detections.len()];
        let mut track_used = vec![false; self.tracks.len()];
        for &(_, ti, di) in &candidates {
            if track_used[ti] || track_of_det[di].is_some() {
                continue;
            }
            track_used[ti] = true;
            track_of_det[di] = Some(ti);
        }

        let mut out = Vec::with_capacity(detections.len());
        for (di, d) in detections.iter().enumerate() {
            let id = match track_of_det[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    t.bbox = d.bbox;
                    t.score = d.score;
                    if d.score > t.top_score {
                        t.top_score = d.score;
                    }
                    t.last_seen = frame_time;
                    t.hits += 1;
                    t.missed = 0;
                    t.id
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        label: d.label.clone(),
                        class_id: d.class_id,
                        bbox: d.bbox,
                        score: d.score,
                        top_score: d.score,
                        start_time: frame_time,
                        last_seen: frame_time,
                        hits: 1,
                        missed: 0,
                    });
                    id
                }
            };
            out.push(TrackedDetection {
                id,
                detection: d.clone(),
                zones: Vec::new(),
            });
        }

        // Tracks that existed before this frame and were not matched miss one more frame.
        let max_missed = self.config.max_missed_frames;
        let mut kept = Vec::with_capacity(self.tracks.len());
        for (ti, mut t) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if ti < track_used.len() && !track_used[ti] {
                t.missed += 1;
                if t.missed > max_missed {
                    self.ended.push(t);
                    continue;
                }
            }
            kept.push(t);
        }
        self.tracks = kept;
        out
    }

    /// Tracks that ended during the last [`Tracker::update`] (or [`Tracker::finish`]).
    pub fn ended(&self) -> &[Track] {
        &self.ended
    }

    /// Live tracks (matched recently enough not to have ended), oldest first.
    pub fn live(&self) -> &[Track] {
        &self.tracks
    }

    /// End every live track (shutdown). Returns them; [`Tracker::ended`] reports them too.
    pub fn finish(&mut self) -> Vec<Track> {
        self.ended = std::mem::take(&mut self.tracks);
        self.ended.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(label: &str, bbox: [f64; 4]) -> Detection {
        Detection {
            label: label.to_string(),
            class_id: 0,
            score: 0.8,
            bbox,
        }
    }

    fn people() -> Vec<Detection> {
        vec![
            det("person", [10.0, 10.0, 60.0, 160.0]),
            det("person", [100.0, 10.0, 150.0, 160.0]),
            det("person", [200.0, 20.0, 250.0, 170.0]),
            det("person", [300.0, 30.0, 350.0, 180.0]),
        ]
    }

    fn ids(t: &[TrackedDetection]) -> Vec<u64> {
        t.iter().map(|d| d.id).collect()
    }

    #[test]
    fn iou_basics() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(iou(&a, &[f64::NAN, 0.0, 10.0, 10.0]), 0.0);
        assert_eq!(iou(&a, &[10.0, 10.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn identical_frames_keep_four_stable_ids() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let first = ids(&tr.update(&people(), 0.0));
        assert_eq!(first, vec![1, 2, 3, 4]);
        for i in 1..12 {
            let out = tr.update(&people(), f64::from(i) * 0.1);
            assert_eq!(ids(&out), first, "frame {i}");
            assert!(tr.ended().is_empty());
        }
        assert_eq!(tr.live().len(), 4);
        assert!(tr.live().iter().all(|t| t.hits == 12 && t.missed == 0));
    }

    #[test]
    fn person_leaving_ends_track_after_max_missed() {
        let cfg = TrackerConfig {
            iou_threshold: 0.3,
            max_missed_frames: 2,
        };
        let mut tr = Tracker::new(cfg);
        tr.update(&people(), 0.0);
        let three = &people()[..3];
        // Missed frames 1 and 2: still live; frame 3: ended.
        for f in 1..=2 {
            assert_eq!(ids(&tr.update(three, f64::from(f))), vec![1, 2, 3]);
            assert!(tr.ended().is_empty(), "frame {f}");
            assert_eq!(tr.live().len(), 4);
        }
        tr.update(three, 3.0);
        assert_eq!(tr.ended().len(), 1);
        assert_eq!(tr.ended()[0].id, 4);
        assert_eq!(tr.ended()[0].last_seen, 0.0);
        assert_eq!(tr.live().len(), 3);
        // Reported once only.
        tr.update(three, 4.0);
        assert!(tr.ended().is_empty());
        // Coming back after the end is a new object.
        assert_eq!(ids(&tr.update(&people(), 5.0)), vec![1, 2, 3, 5]);
    }

    #[test]
    fn brief_miss_keeps_the_id() {
        let mut tr = Tracker::new(TrackerConfig {
            iou_threshold: 0.3,
            max_missed_frames: 3,
        });
        tr.update(&people(), 0.0);
        tr.update(&people()[..3], 1.0);
        assert_eq!(ids(&tr.update(&people(), 2.0)), vec![1, 2, 3, 4]);
    }

    #[test]
    fn overlapping_people_keep_distinct_ids() {
        let mut tr = Tracker::new(TrackerConfig::default());
        // IoU between the two is 1/3, above the threshold: greedy matching must still pair
        // each with its own continuation.
        let mut a = [0.0, 0.0, 100.0, 200.0];
        let mut b = [50.0, 0.0, 150.0, 200.0];
        let first = ids(&tr.update(&[det("person", a), det("person", b)], 0.0));
        assert_eq!(first, vec![1, 2]);
        for f in 1..10 {
            a[0] += 3.0;
            a[2] += 3.0;
            b[0] -= 2.0;
            b[2] -= 2.0;
            // Reverse the input order: ids follow the boxes, not positions in the list.
            let out = tr.update(&[det("person", b), det("person", a)], f64::from(f));
            assert_eq!(ids(&out), vec![2, 1], "frame {f}");
        }
    }

    #[test]
    fn labels_never_match_each_other() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let bbox = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(ids(&tr.update(&[det("person", bbox)], 0.0)), vec![1]);
        assert_eq!(ids(&tr.update(&[det("dog", bbox)], 1.0)), vec![2]);
        assert_eq!(
            ids(&tr.update(&[det("person", bbox), det("dog", bbox)], 2.0)),
            vec![1, 2]
        );
    }

    #[test]
    fn finish_ends_all_live_tracks() {
        let mut tr = Tracker::new(TrackerConfig::default());
        tr.update(&people(), 0.0);
        let ended = tr.finish();
        assert_eq!(
            ended.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(tr.ended().len(), 4);
        assert!(tr.live().is_empty());
    }

    #[test]
    fn top_score_is_the_maximum() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let mut d = det("cat", [0.0, 0.0, 10.0, 10.0]);
        for (i, s) in [0.5, 0.9, 0.6].into_iter().enumerate() {
            d.score = s;
            tr.update(std::slice::from_ref(&d), i as f64);
        }
        assert_eq!(tr.live()[0].score, 0.6);
        assert_eq!(tr.live()[0].top_score, 0.9);
    }
}
