//! Scalar reference kernels: clear, not clever. Bit-exact with LiteRT's reference kernels.

pub mod fixedpoint;
