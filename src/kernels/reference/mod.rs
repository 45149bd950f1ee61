//! Scalar reference kernels: clear, not clever. Bit-exact with LiteRT's reference kernels.

pub mod activation;
pub mod broadcast;
pub mod concat;
pub mod elementwise;
pub mod fixedpoint;
pub mod quantize;
pub mod resize;
pub mod shape;
