//! Scalar reference kernels: clear, not clever. Bit-exact with LiteRT's reference kernels.

pub mod conv;
pub mod depthwise;
pub mod fixedpoint;
pub mod fully_connected;
pub mod mean;
pub mod pool;
