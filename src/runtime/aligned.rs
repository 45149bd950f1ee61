//! A heap buffer whose start is 64-byte aligned, so kernels can view it as any element type
//! and SIMD loads are aligned at tensor starts.

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

// SAFETY: `Block` is a plain byte array with no padding (size 64 = alignment 64) and every bit
// pattern is valid.
unsafe impl bytemuck::Zeroable for Block {}
// SAFETY: as above; `Block` is `Copy`, `repr(C)` and has no padding or pointers.
unsafe impl bytemuck::Pod for Block {}

#[derive(Clone, Default)]
pub struct AlignedBuf {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeroed bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBuf {
            blocks: vec![Block([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut b = Self::zeroed(bytes.len());
        b.as_mut_slice().copy_from_slice(bytes);
        b
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.blocks)[..self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.blocks)[..self.len]
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.blocks.as_mut_ptr() as *mut u8
    }
}
