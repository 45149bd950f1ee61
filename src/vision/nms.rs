//! Non-max suppression of TFLite's `TFLite_Detection_PostProcess`
//! (`tensorflow/lite/kernels/detection_postprocess.cc`), with its exact sort semantics:
//!
//! - `DecreasingArgSort` is `std::stable_sort` (ties keep ascending index order);
//! - `DecreasingPartialArgSort` is `std::partial_sort`, which is not stable: emulated here
//!   exactly as libstdc++ implements it (`__heap_select` + `__sort_heap` over `__adjust_heap` /
//!   `__push_heap`), so ties come out in LiteRT-on-Linux order; `num_to_sort == 1` is
//!   `ArgMaxVector` (first maximum).
//!
//! All scratch memory lives in [`NmsScratch`], sized once; the functions here never allocate.

use super::boxes::{iou, BoxCorner};

/// Parameters of the multi-class NMS, as in TFLite's `OpData`.
#[derive(Clone, Debug, PartialEq)]
pub struct NmsParams {
    pub max_detections: usize,
    /// Fast NMS: classes reported per selected box (`max_classes_per_detection`).
    pub max_classes_per_detection: usize,
    /// Regular NMS: boxes kept per class (`detections_per_class`).
    pub detections_per_class: usize,
    pub score_threshold: f32,
    pub iou_threshold: f32,
    /// Number of real classes (without background).
    pub num_classes: usize,
    /// Classes per anchor in the score tensor (`num_classes` or `num_classes + 1`).
    pub num_classes_with_background: usize,
}

impl NmsParams {
    /// 1 when the score tensor has a leading background class, else 0.
    pub fn label_offset(&self) -> usize {
        self.num_classes_with_background - self.num_classes
    }

    /// Rows of each output (TFLite `num_detected_boxes`).
    pub fn output_rows(&self) -> usize {
        self.max_detections * self.max_classes_per_detection
    }
}

/// Output slices of the op: boxes `[rows*4]` (ymin, xmin, ymax, xmax), classes `[rows]`,
/// scores `[rows]`, with `rows = max_detections * max_classes_per_detection`.
pub struct NmsOutput<'a> {
    pub boxes: &'a mut [f32],
    pub classes: &'a mut [f32],
    pub scores: &'a mut [f32],
}

impl NmsOutput<'_> {
    fn clear(&mut self) {
        self.boxes.fill(0.0);
        self.classes.fill(0.0);
        self.scores.fill(0.0);
    }

    fn set(&mut self, row: usize, b: &BoxCorner, class: f32, score: f32) {
        self.boxes[row * 4..row * 4 + 4].copy_from_slice(&[b.ymin, b.xmin, b.ymax, b.xmax]);
        self.classes[row] = class;
        self.scores[row] = score;
    }
}

/// Scratch memory for one op instance (TFLite allocates these per invoke; we size them once).
#[derive(Debug, Default)]
pub struct NmsScratch {
    // Single-class NMS.
    keep_scores: Vec<f32>,
    keep_indices: Vec<u32>,
    sorted: Vec<u32>,
    selected: Vec<u32>,
    // Regular multi-class NMS.
    class_scores: Vec<f32>,
    box_indices_after: Vec<u32>,
    scores_after: Vec<f32>,
    sorted_indices: Vec<u32>,
    sorted_values: Vec<f32>,
    // Fast multi-class NMS.
    max_scores: Vec<f32>,
    sorted_class_indices: Vec<u32>,
}

impl NmsScratch {
    /// Scratch for `num_boxes` anchors with `p`; only the buffers of the chosen NMS variant are
    /// sized.
    pub fn new(num_boxes: usize, p: &NmsParams, regular: bool) -> Self {
        let mut s = NmsScratch {
            keep_scores: Vec::with_capacity(num_boxes),
            keep_indices: Vec::with_capacity(num_boxes),
            sorted: vec![0; num_boxes],
            selected: Vec::with_capacity(num_boxes),
            ..Default::default()
        };
        if regular {
            let n = num_boxes + p.max_detections;
            s.class_scores = vec![0.0; num_boxes];
            s.box_indices_after = vec![0; n];
            s.scores_after = vec![0.0; n];
            s.sorted_indices = vec![0; n];
            s.sorted_values = vec![0.0; p.max_detections];
        } else {
            s.max_scores = vec![0.0; num_boxes];
            s.sorted_class_indices = vec![0; num_boxes * p.num_classes];
        }
        s
    }
}

/// `ArgMaxVector`: index of the first maximum (strict `>`), 0 for an empty slice.
pub fn arg_max<T: Copy + PartialOrd>(values: &[T]) -> usize {
    let mut max_index = 0;
    let Some(&first) = values.first() else {
        return 0;
    };
    let mut max_value = first;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v > max_value {
            max_value = v;
            max_index = i;
        }
    }
    max_index
}

/// `DecreasingArgSort`: `indices = 0..values.len()` stably sorted by decreasing value.
/// Callers pass values without NaN (scores that passed a `>=` threshold), for which a stable sort
/// equals an unstable sort on (value descending, index ascending); the unstable sort does not
/// allocate.
pub fn decreasing_arg_sort(values: &[f32], indices: &mut [u32]) {
    for (i, x) in indices.iter_mut().enumerate() {
        *x = i as u32;
    }
    indices.sort_unstable_by(|&a, &b| {
        let (va, vb) = (values[a as usize], values[b as usize]);
        if va > vb {
            std::cmp::Ordering::Less
        } else if vb > va {
            std::cmp::Ordering::Greater
        } else {
            a.cmp(&b)
        }
    });
}

/// libstdc++ `__push_heap` with the comparator `comp(i, j) = values[i] > values[j]`.
fn push_heap<T: Copy + PartialOrd>(
    idx: &mut [u32],
    values: &[T],
    mut hole: isize,
    top: isize,
    value: u32,
) {
    let comp = |a: u32, b: u32| values[a as usize] > values[b as usize];
    let mut parent = (hole - 1) / 2;
    while hole > top && comp(idx[parent as usize], value) {
        idx[hole as usize] = idx[parent as usize];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    idx[hole as usize] = value;
}

/// libstdc++ `__adjust_heap` (heap on `idx[0..len]`).
fn adjust_heap<T: Copy + PartialOrd>(
    idx: &mut [u32],
    values: &[T],
    mut hole: isize,
    len: isize,
    value: u32,
) {
    let comp = |a: u32, b: u32| values[a as usize] > values[b as usize];
    let top = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if comp(idx[second as usize], idx[(second - 1) as usize]) {
            second -= 1;
        }
        idx[hole as usize] = idx[second as usize];
        hole = second;
    }
    if (len & 1) == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        idx[hole as usize] = idx[(second - 1) as usize];
        hole = second - 1;
    }
    push_heap(idx, values, hole, top, value);
}

/// libstdc++ `__pop_heap(first, last, result)`: heap is `idx[0..last]`.
fn pop_heap<T: Copy + PartialOrd>(idx: &mut [u32], values: &[T], last: usize, result: usize) {
    let value = idx[result];
    idx[result] = idx[0];
    adjust_heap(idx, values, 0, last as isize, value);
}

/// libstdc++ `__make_heap` on `idx[0..len]`.
fn make_heap<T: Copy + PartialOrd>(idx: &mut [u32], values: &[T], len: usize) {
    if len < 2 {
        return;
    }
    let len = len as isize;
    let mut parent = (len - 2) / 2;
    loop {
        let value = idx[parent as usize];
        adjust_heap(idx, values, parent, len, value);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// `std::partial_sort(idx, idx + middle, idx + idx.len(), comp)` as libstdc++ implements it
/// (`__heap_select` then `__sort_heap`).
fn libstdcxx_partial_sort<T: Copy + PartialOrd>(idx: &mut [u32], values: &[T], middle: usize) {
    if middle == 0 {
        return;
    }
    // __heap_select
    make_heap(idx, values, middle);
    for i in middle..idx.len() {
        if values[idx[i] as usize] > values[idx[0] as usize] {
            pop_heap(idx, values, middle, i);
        }
    }
    // __sort_heap
    let mut last = middle;
    while last > 1 {
        last -= 1;
        pop_heap(idx, values, last, last);
    }
}

/// `DecreasingPartialArgSort(values, num_values, num_to_sort, indices)`: the first
/// `num_to_sort` entries of `indices` get the indices of the largest values, decreasing, with
/// ties ordered as libstdc++'s `std::partial_sort` leaves them. `indices.len() >= values.len()`.
pub fn decreasing_partial_arg_sort<T: Copy + PartialOrd>(
    values: &[T],
    num_to_sort: usize,
    indices: &mut [u32],
) {
    if num_to_sort == 1 {
        indices[0] = arg_max(values) as u32;
        return;
    }
    let idx = &mut indices[..values.len()];
    for (i, x) in idx.iter_mut().enumerate() {
        *x = i as u32;
    }
    libstdcxx_partial_sort(idx, values, num_to_sort);
}

/// Buffers of `NonMaxSuppressionSingleClassHelper`.
struct SingleClassBufs<'a> {
    keep_scores: &'a mut Vec<f32>,
    keep_indices: &'a mut Vec<u32>,
    sorted: &'a mut [u32],
    selected: &'a mut Vec<u32>,
}

/// `NonMaxSuppressionSingleClassHelper`: greedy NMS over the boxes whose score is
/// `>= score_threshold`, at most `max_detections` kept, in `bufs.selected` (box indices).
fn nms_single_class(
    boxes: &[BoxCorner],
    scores: &[f32],
    score_threshold: f32,
    iou_threshold: f32,
    max_detections: usize,
    bufs: SingleClassBufs<'_>,
) {
    let SingleClassBufs {
        keep_scores,
        keep_indices,
        sorted,
        selected,
    } = bufs;
    // SelectDetectionsAboveScoreThreshold
    keep_scores.clear();
    keep_indices.clear();
    for (i, &s) in scores.iter().enumerate() {
        if s >= score_threshold {
            keep_scores.push(s);
            keep_indices.push(i as u32);
        }
    }
    let kept = keep_scores.len();
    let output_size = kept.min(max_detections);
    selected.clear();
    // TFLite sorts all kept boxes (`DecreasingArgSort`, stable), then walks them in order:
    // an active box is selected and deactivates every later box it overlaps by more than the
    // threshold. Equivalently, a box is selected iff no box selected before it overlaps it,
    // so the walk only needs the kept boxes in sorted order up to the last one examined: a
    // binary heap on (score descending, kept index ascending), a total order equal to the
    // stable sort's, pops them lazily (usually a few dozen of ~2000), and each examined box is
    // checked against the few selected ones.
    let heap = &mut sorted[..kept];
    for (i, h) in heap.iter_mut().enumerate() {
        *h = i as u32;
    }
    // `before(a, b)`: kept box `a` comes before `b` in the stable decreasing order.
    let before = |a: u32, b: u32| {
        let (va, vb) = (keep_scores[a as usize], keep_scores[b as usize]);
        va > vb || (va == vb && a < b)
    };
    heap_build(heap, &before);
    let mut len = kept;
    while len > 0 && selected.len() < output_size {
        let top = heap[0];
        len -= 1;
        heap.swap(0, len);
        heap_sift_down(&mut heap[..len], 0, &before);
        let bj = keep_indices[top as usize];
        let suppressed = selected
            .iter()
            .any(|&bi| iou(&boxes[bi as usize], &boxes[bj as usize]) > iou_threshold);
        if !suppressed {
            selected.push(bj);
        }
    }
}

/// Make `h` a binary heap whose root comes first under `before`.
fn heap_build(h: &mut [u32], before: &impl Fn(u32, u32) -> bool) {
    for i in (0..h.len() / 2).rev() {
        heap_sift_down(h, i, before);
    }
}

fn heap_sift_down(h: &mut [u32], mut i: usize, before: &impl Fn(u32, u32) -> bool) {
    loop {
        let l = 2 * i + 1;
        if l >= h.len() {
            return;
        }
        let r = l + 1;
        let c = if r < h.len() && before(h[r], h[l]) {
            r
        } else {
            l
        };
        if !before(h[c], h[i]) {
            return;
        }
        h.swap(i, c);
        i = c;
    }
}

/// `NonMaxSuppressionMultiClassFastHelper` (`use_regular_nms = false`): per anchor, the top
/// `min(max_classes_per_detection, num_classes)` classes; NMS on each anchor's best score; each
/// selected anchor fills `max_classes_per_detection` output rows. `scores` is
/// `[num_boxes, num_classes_with_background]`. Rows not written by TFLite are zero. Returns
/// the number of detections (`num_detections`).
pub fn fast_nms(
    p: &NmsParams,
    boxes: &[BoxCorner],
    scores: &[f32],
    s: &mut NmsScratch,
    out: &mut NmsOutput<'_>,
) -> usize {
    fast_nms_ranked(
        p,
        boxes,
        scores,
        decreasing_partial_arg_sort,
        |v| v,
        s,
        out,
        &serial_for,
    )
}

/// [`fast_nms`] on raw quantized class scores (`T` = `u8` or `i8` bytes) and `dequant`, the
/// score of each byte.
///
/// `dequant` must be strictly increasing (see [`strictly_increasing`]): then every comparison
/// between two bytes has the outcome of the comparison between their scores, so the per-anchor
/// class order (ties included) and the result are exactly those of [`fast_nms`] on the
/// dequantized scores, without dequantizing `num_boxes * num_classes` scores per frame.
pub fn fast_nms_quantized<T: Copy + Ord + Sync>(
    p: &NmsParams,
    boxes: &[BoxCorner],
    scores: &[T],
    dequant: impl Fn(T) -> f32 + Sync,
    s: &mut NmsScratch,
    out: &mut NmsOutput<'_>,
    par: ParFor<'_>,
) -> usize {
    let rank = |row: &[T], k: usize, idx: &mut [u32]| {
        if k == 1 {
            // ArgMaxVector: the first maximum. Two vectorizable passes instead of a scan
            // with a loop-carried compare.
            let best = row.iter().copied().max();
            idx[0] = best
                .and_then(|m| row.iter().position(|&v| v == m))
                .unwrap_or(0) as u32;
        } else {
            decreasing_partial_arg_sort(row, k, idx);
        }
    };
    fast_nms_ranked(p, boxes, scores, rank, dequant, s, out, par)
}

/// A parallel for: `par(tasks, f)` calls `f(i)` once for every `i < tasks` (in any order, on
/// any threads) and returns when all calls have returned, e.g. `RunCtx::parallel_for`.
pub type ParFor<'a> = &'a dyn Fn(usize, &(dyn Fn(usize) + Sync));

/// [`ParFor`] on the calling thread.
pub fn serial_for(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    (0..tasks).for_each(f)
}

/// Anchors per ranking task: the SSD's 1917 anchors make 8 tasks.
const RANK_ROWS_PER_TASK: usize = 240;

/// `NonMaxSuppressionMultiClassFastHelper` with the per-anchor class ranking `rank(row, k,
/// indices)` (the first `k` indices of `row` by decreasing value, `DecreasingPartialArgSort`
/// order) and the score of each element. The ranking (a pure function of each anchor's row)
/// is split over `par` in anchor ranges; the selection after it runs on the caller.
#[allow(clippy::too_many_arguments)]
fn fast_nms_ranked<T: Copy + Sync>(
    p: &NmsParams,
    boxes: &[BoxCorner],
    scores: &[T],
    rank: impl Fn(&[T], usize, &mut [u32]) + Sync,
    score: impl Fn(T) -> f32 + Sync,
    s: &mut NmsScratch,
    out: &mut NmsOutput<'_>,
    par: ParFor<'_>,
) -> usize {
    let ncwb = p.num_classes_with_background;
    let lo = p.label_offset();
    let nc = p.num_classes;
    let per_anchor = p.max_classes_per_detection.min(nc);
    let rows = boxes.len();
    // The scratch is sized for `rows` anchors (`NmsScratch::new`); check once so the raw
    // pointers below stay in bounds.
    let rows = rows
        .min(s.max_scores.len())
        .min(s.sorted_class_indices.len() / nc.max(1));
    let tasks = rows.div_ceil(RANK_ROWS_PER_TASK).max(1);
    let idx = SendPtr(s.sorted_class_indices.as_mut_ptr());
    let max = SendPtr(s.max_scores.as_mut_ptr());
    par(tasks, &|t| {
        let (r0, r1) = (t * rows / tasks, (t + 1) * rows / tasks);
        // SAFETY: `r1 <= rows` anchors fit both scratch buffers (checked above); tasks own
        // disjoint anchor ranges, and the buffers outlive `par`.
        let (class_indices, max_scores) = unsafe {
            (
                std::slice::from_raw_parts_mut(idx.get().add(r0 * nc), (r1 - r0) * nc),
                std::slice::from_raw_parts_mut(max.get().add(r0), r1 - r0),
            )
        };
        for (j, row) in (r0..r1).enumerate() {
            let box_scores = &scores[row * ncwb + lo..row * ncwb + lo + nc];
            let ci = &mut class_indices[j * nc..(j + 1) * nc];
            rank(box_scores, per_anchor, ci);
            max_scores[j] = box_scores.get(ci[0] as usize).map_or(0.0, |&b| score(b));
        }
    });
    fast_nms_select(p, boxes, |i| score(scores[i]), s, out)
}

/// A scratch pointer handed to the tasks of one [`ParFor`], each writing a disjoint range.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used to give the ranking tasks disjoint ranges of one scratch buffer that
// outlives the parallel for.
unsafe impl<T> Sync for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Send for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    #[inline]
    fn get(&self) -> *mut T {
        self.0
    }
}

/// True when `f` is strictly increasing over `domain` (in order): the precondition of
/// [`fast_nms_quantized`].
pub fn strictly_increasing<T: Copy>(
    domain: impl IntoIterator<Item = T>,
    f: impl Fn(T) -> f32,
) -> bool {
    let mut prev: Option<f32> = None;
    for x in domain {
        let y = f(x);
        if y.is_nan() || prev.is_some_and(|p| y <= p) {
            return false;
        }
        prev = Some(y);
    }
    true
}

/// The part of `NonMaxSuppressionMultiClassFastHelper` after the per-anchor class sort
/// (`s.max_scores`, `s.sorted_class_indices` filled): single-class NMS on the anchors' best
/// scores, then the output rows. `score(i)` is the score at flat index `i` of the
/// `[num_boxes, num_classes_with_background]` score tensor.
fn fast_nms_select(
    p: &NmsParams,
    boxes: &[BoxCorner],
    score: impl Fn(usize) -> f32,
    s: &mut NmsScratch,
    out: &mut NmsOutput<'_>,
) -> usize {
    out.clear();
    let ncwb = p.num_classes_with_background;
    let lo = p.label_offset();
    let per_anchor = p.max_classes_per_detection.min(p.num_classes);
    nms_single_class(
        boxes,
        &s.max_scores,
        p.score_threshold,
        p.iou_threshold,
        p.max_detections,
        SingleClassBufs {
            keep_scores: &mut s.keep_scores,
            keep_indices: &mut s.keep_indices,
            sorted: &mut s.sorted,
            selected: &mut s.selected,
        },
    );
    for (k, &sel) in s.selected.iter().enumerate() {
        let sel = sel as usize;
        let class_indices = &s.sorted_class_indices[sel * p.num_classes..];
        for (col, &c) in class_indices.iter().take(per_anchor).enumerate() {
            let row = p.max_classes_per_detection * k + col;
            out.set(
                row,
                &boxes[sel],
                c as f32,
                score(sel * ncwb + lo + c as usize),
            );
        }
    }
    s.selected.len()
}

/// `NonMaxSuppressionMultiClassRegularHelper` (`use_regular_nms = true`): NMS per class (at most
/// `detections_per_class` each), merged into the best `max_detections` across classes after
/// every class. Output rows past the count are zero. Returns the number of detections.
pub fn regular_nms(
    p: &NmsParams,
    boxes: &[BoxCorner],
    scores: &[f32],
    s: &mut NmsScratch,
    out: &mut NmsOutput<'_>,
) -> usize {
    out.clear();
    let num_boxes = boxes.len();
    let ncwb = p.num_classes_with_background;
    let lo = p.label_offset();
    let mut size_sorted = 0usize;
    for col in 0..p.num_classes {
        for row in 0..num_boxes {
            s.class_scores[row] = scores[row * ncwb + col + lo];
        }
        nms_single_class(
            boxes,
            &s.class_scores,
            p.score_threshold,
            p.iou_threshold,
            p.detections_per_class,
            SingleClassBufs {
                keep_scores: &mut s.keep_scores,
                keep_indices: &mut s.keep_indices,
                sorted: &mut s.sorted,
                selected: &mut s.selected,
            },
        );
        let mut output_index = size_sorted;
        for &sel in s.selected.iter() {
            s.box_indices_after[output_index] = sel * ncwb as u32 + (col + lo) as u32;
            s.scores_after[output_index] = s.class_scores[sel as usize];
            output_index += 1;
        }
        let n = output_index.min(p.max_detections);
        decreasing_partial_arg_sort(&s.scores_after[..output_index], n, &mut s.sorted_indices);
        for row in 0..n {
            let temp = s.sorted_indices[row] as usize;
            s.sorted_indices[row] = s.box_indices_after[temp];
            s.sorted_values[row] = s.scores_after[temp];
        }
        for row in 0..n {
            s.box_indices_after[row] = s.sorted_indices[row];
            s.scores_after[row] = s.sorted_values[row];
        }
        size_sorted = n;
    }
    for i in 0..size_sorted {
        let flat = s.box_indices_after[i] as usize;
        let anchor = flat / ncwb;
        let class = flat - anchor * ncwb - lo;
        out.set(i, &boxes[anchor], class as f32, s.scores_after[i]);
    }
    size_sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First `k` indices of the decreasing partial arg sort.
    fn sorted_prefix(values: &[f32], k: usize) -> Vec<u32> {
        let mut idx = vec![0u32; values.len()];
        decreasing_partial_arg_sort(values, k, &mut idx);
        idx.truncate(k);
        idx
    }

    #[test]
    fn arg_max_first_maximum() {
        assert_eq!(arg_max(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(arg_max(&[5.0]), 0);
        assert_eq!(arg_max::<f32>(&[]), 0);
    }

    #[test]
    fn stable_sort_ties_ascending_index() {
        let v = [0.5, 0.9, 0.5, 0.9, 0.1];
        let mut idx = [0u32; 5];
        decreasing_arg_sort(&v, &mut idx);
        assert_eq!(idx, [1, 3, 0, 2, 4]);
    }

    #[test]
    fn partial_sort_values_decreasing() {
        let v = [0.1, 0.7, 0.3, 0.9, 0.5, 0.2];
        assert_eq!(sorted_prefix(&v, 3), vec![3, 1, 4]);
        assert_eq!(sorted_prefix(&v, 6), vec![3, 1, 4, 2, 5, 0]);
        assert_eq!(sorted_prefix(&v, 1), vec![3]);
    }

    #[test]
    fn partial_sort_ties_follow_libstdcxx() {
        // Expected orders printed by a C++ program running std::partial_sort (g++ 12,
        // libstdc++) on iota indices with comp(i, j) = v[i] > v[j].
        let cases: [(&[f32], &[&[u32]]); 5] = [
            (&[1.0; 3], &[&[0, 1], &[0, 1, 2]]),
            (&[1.0; 4], &[&[0, 1], &[0, 1, 2], &[1, 3, 0, 2]]),
            (
                &[1.0; 7],
                &[
                    &[0, 1],
                    &[0, 1, 2],
                    &[1, 3, 0, 2],
                    &[3, 4, 1, 0, 2],
                    &[3, 4, 1, 0, 2, 5],
                    &[3, 4, 1, 0, 5, 2, 6],
                ],
            ),
            (
                &[0.5, 0.9, 0.5, 0.9, 0.1, 0.5, 0.9],
                &[
                    &[3, 1],
                    &[6, 1, 3],
                    &[1, 3, 6, 0],
                    &[1, 3, 6, 0, 5],
                    &[1, 3, 6, 0, 2, 5],
                    &[1, 3, 6, 0, 2, 5, 4],
                ],
            ),
            (
                &[3.0, 1.0, 3.0, 2.0, 3.0, 1.0, 2.0, 3.0, 3.0],
                &[
                    &[2, 0],
                    &[4, 0, 2],
                    &[4, 0, 7, 2],
                    &[0, 4, 7, 8, 2],
                    &[7, 4, 8, 0, 2, 6],
                    &[7, 4, 8, 2, 0, 3, 6],
                    &[7, 4, 8, 2, 0, 3, 6, 1],
                    &[7, 4, 8, 2, 0, 3, 6, 1, 5],
                ],
            ),
        ];
        for (values, expected) in cases {
            for (i, want) in expected.iter().enumerate() {
                let k = i + 2;
                assert_eq!(sorted_prefix(values, k), want.to_vec(), "{values:?} k={k}");
            }
        }
    }

    fn bx(ymin: f32, xmin: f32, ymax: f32, xmax: f32) -> BoxCorner {
        BoxCorner {
            ymin,
            xmin,
            ymax,
            xmax,
        }
    }

    fn params(regular: bool) -> NmsParams {
        NmsParams {
            max_detections: 3,
            max_classes_per_detection: 1,
            detections_per_class: if regular { 2 } else { 0 },
            score_threshold: 0.3,
            iou_threshold: 0.5,
            num_classes: 2,
            num_classes_with_background: 3,
        }
    }

    /// Four boxes: 0 and 1 overlap heavily (IoU 0.81), 2 is separate, 3 overlaps nothing.
    fn boxes() -> Vec<BoxCorner> {
        vec![
            bx(0.0, 0.0, 1.0, 1.0),
            bx(0.0, 0.0, 0.9, 0.9),
            bx(2.0, 2.0, 3.0, 3.0),
            bx(5.0, 5.0, 6.0, 6.0),
        ]
    }

    fn run(p: &NmsParams, regular: bool, scores: &[f32]) -> (usize, Vec<f32>, Vec<f32>, Vec<f32>) {
        let b = boxes();
        let rows = p.output_rows();
        let (mut ob, mut oc, mut os) = (vec![9.0; rows * 4], vec![9.0; rows], vec![9.0; rows]);
        let mut s = NmsScratch::new(b.len(), p, regular);
        let mut out = NmsOutput {
            boxes: &mut ob,
            classes: &mut oc,
            scores: &mut os,
        };
        let n = if regular {
            regular_nms(p, &b, scores, &mut s, &mut out)
        } else {
            fast_nms(p, &b, scores, &mut s, &mut out)
        };
        (n, ob, oc, os)
    }

    // Scores [box][background, class0, class1].
    const SCORES: [f32; 12] = [
        0.0, 0.9, 0.8, // box 0: class0 0.9, class1 0.8
        0.0, 0.85, 0.7, // box 1: suppressed by box 0 in class 0 and 1
        0.0, 0.2, 0.6, // box 2: class1 0.6
        0.0, 0.4, 0.1, // box 3: class0 0.4
    ];

    #[test]
    fn fast_nms_hand_derived() {
        let p = params(false);
        let (n, ob, oc, os) = run(&p, false, &SCORES);
        // Max scores: [0.9, 0.85, 0.6, 0.4]; box 1 suppressed by box 0.
        assert_eq!(n, 3);
        assert_eq!(oc, vec![0.0, 1.0, 0.0]);
        assert_eq!(os, vec![0.9, 0.6, 0.4]);
        assert_eq!(&ob[..4], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(&ob[4..8], &[2.0, 2.0, 3.0, 3.0]);
        assert_eq!(&ob[8..], &[5.0, 5.0, 6.0, 6.0]);
    }

    #[test]
    fn regular_nms_hand_derived() {
        let p = params(true);
        let (n, ob, oc, os) = run(&p, true, &SCORES);
        // Class 0: kept 0 (0.9), 3 (0.4) [1 suppressed]. Class 1: kept 0 (0.8), 2 (0.6).
        // Best 3 of {0.9 c0 b0, 0.4 c0 b3, 0.8 c1 b0, 0.6 c1 b2}.
        assert_eq!(n, 3);
        assert_eq!(os, vec![0.9, 0.8, 0.6]);
        assert_eq!(oc, vec![0.0, 1.0, 1.0]);
        assert_eq!(&ob[..4], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(&ob[4..8], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(&ob[8..], &[2.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn fast_nms_two_classes_per_detection_and_zero_fill() {
        let mut p = params(false);
        p.max_classes_per_detection = 2;
        p.max_detections = 4;
        let (n, _ob, oc, os) = run(&p, false, &SCORES);
        assert_eq!(n, 3);
        assert_eq!(oc, vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(os, vec![0.9, 0.8, 0.6, 0.2, 0.4, 0.1, 0.0, 0.0]);
    }

    #[test]
    fn regular_nms_ties_use_partial_sort_order() {
        // No background; one class; four disjoint boxes all scoring 0.5, detections_per_class 4,
        // max_detections 4. Single-class NMS (stable) selects [0,1,2,3]; libstdc++'s partial sort
        // of four equal scores gives [1,3,0,2] (see partial_sort_ties_follow_libstdcxx).
        let p = NmsParams {
            max_detections: 4,
            max_classes_per_detection: 1,
            detections_per_class: 4,
            score_threshold: 0.1,
            iou_threshold: 0.5,
            num_classes: 1,
            num_classes_with_background: 1,
        };
        let b = vec![
            bx(0.0, 0.0, 1.0, 1.0),
            bx(1.0, 0.0, 2.0, 1.0),
            bx(2.0, 0.0, 3.0, 1.0),
            bx(3.0, 0.0, 4.0, 1.0),
        ];
        let scores = [0.5f32; 4];
        let (mut ob, mut oc, mut os) = (vec![0.0; 16], vec![0.0; 4], vec![0.0; 4]);
        let mut s = NmsScratch::new(4, &p, true);
        let n = regular_nms(
            &p,
            &b,
            &scores,
            &mut s,
            &mut NmsOutput {
                boxes: &mut ob,
                classes: &mut oc,
                scores: &mut os,
            },
        );
        assert_eq!(n, 4);
        let ymins: Vec<f32> = ob.chunks(4).map(|c| c[0]).collect();
        assert_eq!(ymins, vec![1.0, 3.0, 0.0, 2.0]);
    }

    #[test]
    fn fast_nms_ties_stable_by_anchor() {
        // Equal max scores, disjoint boxes: single-class NMS uses the stable sort → anchor order.
        let mut p = params(false);
        p.max_detections = 4;
        let scores = [
            0.0, 0.5, 0.0, //
            0.0, 0.0, 0.5, //
            0.0, 0.5, 0.0, //
            0.0, 0.5, 0.5, //
        ];
        let b = vec![
            bx(0.0, 0.0, 1.0, 1.0),
            bx(1.0, 0.0, 2.0, 1.0),
            bx(2.0, 0.0, 3.0, 1.0),
            bx(3.0, 0.0, 4.0, 1.0),
        ];
        let (mut ob, mut oc, mut os) = (vec![0.0; 16], vec![0.0; 4], vec![0.0; 4]);
        let mut s = NmsScratch::new(4, &p, false);
        let n = fast_nms(
            &p,
            &b,
            &scores,
            &mut s,
            &mut NmsOutput {
                boxes: &mut ob,
                classes: &mut oc,
                scores: &mut os,
            },
        );
        assert_eq!(n, 4);
        let ymins: Vec<f32> = ob.chunks(4).map(|c| c[0]).collect();
        assert_eq!(ymins, vec![0.0, 1.0, 2.0, 3.0]);
        // Box 3 ties between its classes: ArgMax takes the first (class 0).
        assert_eq!(oc, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn below_threshold_gives_zero_detections() {
        let p = params(false);
        let (n, ob, oc, os) = run(&p, false, &[0.0; 12]);
        assert_eq!(n, 0);
        assert!(ob.iter().chain(&oc).chain(&os).all(|&v| v == 0.0));
        let p = params(true);
        let (n, _, _, os) = run(&p, true, &[0.0; 12]);
        assert_eq!(n, 0);
        assert!(os.iter().all(|&v| v == 0.0));
    }

    use proptest::prelude::*;

    proptest! {
        /// Ranking bytes through a strictly increasing dequantization gives exactly the float
        /// result, ties (many equal bytes) and several classes per anchor included.
        #[test]
        fn fast_nms_quantized_equals_fast_nms_on_dequantized_scores(
            bytes in proptest::collection::vec(0u8..8, 6 * 4),
            per_anchor in 1usize..4,
            zp in 0i32..4,
        ) {
            let mut p = params(false);
            p.num_classes = 3;
            p.num_classes_with_background = 4;
            p.max_classes_per_detection = per_anchor;
            p.max_detections = 3;
            p.score_threshold = 0.05;
            let bx = boxes();
            let n = bx.len();
            let bytes = &bytes[..n * 4];
            let deq = |b: u8| (b as i32 - zp) as f32 * 0.25;
            prop_assume!(strictly_increasing(0..=255u8, deq));
            let floats: Vec<f32> = bytes.iter().map(|&b| deq(b)).collect();
            let rows = p.output_rows();
            let mut want = (vec![0.0; rows * 4], vec![0.0; rows], vec![0.0; rows]);
            let mut got = (vec![1.0; rows * 4], vec![1.0; rows], vec![1.0; rows]);
            let mut s1 = NmsScratch::new(n, &p, false);
            let mut s2 = NmsScratch::new(n, &p, false);
            let n1 = fast_nms(&p, &bx, &floats, &mut s1, &mut NmsOutput {
                boxes: &mut want.0, classes: &mut want.1, scores: &mut want.2,
            });
            let n2 = fast_nms_quantized(&p, &bx, bytes, deq, &mut s2, &mut NmsOutput {
                boxes: &mut got.0, classes: &mut got.1, scores: &mut got.2,
            }, &serial_for);
            prop_assert_eq!(n1, n2);
            prop_assert_eq!(want, got);
        }
    }

    /// The ranking split over anchor ranges on a real pool (many anchors, so several tasks
    /// per thread) gives exactly the serial float [`fast_nms`] result.
    #[test]
    fn fast_nms_quantized_parallel_ranking_equals_serial() {
        let n = 1917;
        let mut p = params(false);
        p.num_classes = 90;
        p.num_classes_with_background = 91;
        p.max_detections = 10;
        p.score_threshold = 0.5;
        let bx: Vec<BoxCorner> = (0..n)
            .map(|i| {
                let (y, x) = ((i / 50) as f32 * 0.4, (i % 50) as f32 * 0.4);
                bx(y, x, y + 1.0, x + 1.0)
            })
            .collect();
        let mut seed = 0x9e37_79b9_u32;
        let bytes: Vec<u8> = (0..n * 91)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed >> 24) as u8
            })
            .collect();
        let deq = |b: u8| (b as i32 - 3) as f32 * (1.0 / 256.0);
        let floats: Vec<f32> = bytes.iter().map(|&b| deq(b)).collect();
        for per_anchor in [1, 3] {
            p.max_classes_per_detection = per_anchor;
            let rows = p.output_rows();
            let mut want = (vec![0.0; rows * 4], vec![0.0; rows], vec![0.0; rows]);
            let mut s1 = NmsScratch::new(n, &p, false);
            let n1 = fast_nms(
                &p,
                &bx,
                &floats,
                &mut s1,
                &mut NmsOutput {
                    boxes: &mut want.0,
                    classes: &mut want.1,
                    scores: &mut want.2,
                },
            );
            assert!(n1 > 0);
            for threads in 1..=3 {
                let ctx = crate::ops::RunCtx::with_threads(threads);
                let par = |t: usize, f: &(dyn Fn(usize) + Sync)| ctx.parallel_for(t, f);
                let mut got = (vec![1.0; rows * 4], vec![1.0; rows], vec![1.0; rows]);
                let mut s2 = NmsScratch::new(n, &p, false);
                let n2 = fast_nms_quantized(
                    &p,
                    &bx,
                    &bytes,
                    deq,
                    &mut s2,
                    &mut NmsOutput {
                        boxes: &mut got.0,
                        classes: &mut got.1,
                        scores: &mut got.2,
                    },
                    &par,
                );
                assert_eq!(
                    (n1, &want),
                    (n2, &got),
                    "{per_anchor} classes, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn strictly_increasing_rejects_flat_and_nan_maps() {
        assert!(strictly_increasing(0..=255u8, |b| b as f32 * 0.1));
        assert!(!strictly_increasing(0..=255u8, |_| 1.0));
        assert!(!strictly_increasing(0..=255u8, |b| b as f32 * -0.1));
        assert!(!strictly_increasing(0..=255u8, |b| b as f32 * f32::NAN));
        assert!(strictly_increasing(-128..=127i8, |b| b as f32));
    }

    /// TFLite's eager `NonMaxSuppressionSingleClassHelper` (sort everything, then deactivate),
    /// the oracle of the lazy heap walk.
    fn eager_single_class(
        boxes: &[BoxCorner],
        scores: &[f32],
        thr: f32,
        iou_thr: f32,
        max: usize,
    ) -> Vec<u32> {
        let keep: Vec<u32> = (0..scores.len() as u32)
            .filter(|&i| scores[i as usize] >= thr)
            .collect();
        let ks: Vec<f32> = keep.iter().map(|&i| scores[i as usize]).collect();
        let mut sorted = vec![0u32; keep.len()];
        decreasing_arg_sort(&ks, &mut sorted);
        let mut active = vec![true; keep.len()];
        let mut out = Vec::new();
        for i in 0..keep.len() {
            if out.len() >= keep.len().min(max) {
                break;
            }
            if !active[i] {
                continue;
            }
            let bi = keep[sorted[i] as usize];
            out.push(bi);
            for j in i + 1..keep.len() {
                let bj = keep[sorted[j] as usize];
                if active[j] && iou(&boxes[bi as usize], &boxes[bj as usize]) > iou_thr {
                    active[j] = false;
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn lazy_single_class_nms_equals_tflites_eager_walk(
            raw in proptest::collection::vec((0u8..6, 0u8..6, 1u8..4, 1u8..4, 0u8..5), 1..60),
            max in 1usize..12,
        ) {
            let boxes: Vec<BoxCorner> = raw.iter().map(|&(y, x, h, w, _)| {
                bx(y as f32, x as f32, (y + h) as f32, (x + w) as f32)
            }).collect();
            let scores: Vec<f32> = raw.iter().map(|r| r.4 as f32 * 0.25).collect();
            let n = boxes.len();
            let (mut ks, mut ki, mut sorted, mut sel) =
                (Vec::new(), Vec::new(), vec![0u32; n], Vec::new());
            nms_single_class(&boxes, &scores, 0.25, 0.3, max, SingleClassBufs {
                keep_scores: &mut ks, keep_indices: &mut ki, sorted: &mut sorted,
                selected: &mut sel,
            });
            prop_assert_eq!(sel, eager_single_class(&boxes, &scores, 0.25, 0.3, max));
        }
    }
}
