//! Kernels: the arithmetic of each op over typed slices.
//!
//! `reference` holds scalar kernels that implement TFLite's reference arithmetic exactly
//! (see `docs/numerics.md`). They are the oracle: every SIMD kernel must produce bit-identical
//! results.

pub mod reference;

pub mod isa;

pub use isa::Isa;
