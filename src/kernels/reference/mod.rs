//! Scalar reference kernels: clear, not clever. Bit-exact with LiteRT's reference kernels.

pub mod activation;
pub mod broadcast;
pub mod concat;
pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod fixedpoint;
pub mod fully_connected;
pub mod mean;
pub mod pool;
pub mod quantize;
pub mod resize;
pub mod shape;
