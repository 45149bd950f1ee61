//! Vision: image decode and resize, labels, drawing, box post-processing.
