//! Vision: image decode and resize, labels, drawing, box post-processing.

pub mod boxes;
pub mod draw;
pub mod image;
pub mod labels;
pub mod nms;
pub mod ssd;
