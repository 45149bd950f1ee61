"""spotter preprocessing contract, reference implementation (integer math, bit-exact).

Steps (spotter's Rust side implements exactly the same):
  1. decode to RGB8 with PIL ``.convert("RGB")`` (alpha dropped without compositing,
     grayscale replicated into three channels);
  2. "spotter bilinear v1" resize W x H -> w x h, all integer math in int64;
  3. uint8 model: feed the resized uint8 as is;
     float model: (float32(u8) - 127.5) / 127.5 computed in float32.
"""
from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

MODEL_SIZE = 300


def load_rgb8(path) -> np.ndarray:
    """Decode an image file to a HxWx3 uint8 array exactly as PIL does."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        arr = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(arr)


def _axis_coeffs(src: int, dst: int):
    """Per destination index: (i0, i1, w) with w the weight of i1 in 1/2048 units."""
    d = np.arange(dst, dtype=np.int64)
    s = ((2 * d + 1) * src * 1024) // dst - 1024
    s = np.clip(s, 0, (src - 1) * 2048)
    i0 = s >> 11
    w = s & 2047
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, w


def resize_bilinear_v1(img: np.ndarray, w: int = MODEL_SIZE, h: int = MODEL_SIZE) -> np.ndarray:
    """'spotter bilinear v1': plain-stretch bilinear resize of an HxWxC uint8 image.

    for each dst x: sx = ((2*dx+1)*W*1024)//w - 1024, clamped to [0, (W-1)*2048];
    x0 = sx >> 11; wx = sx & 2047; x1 = min(x0+1, W-1)   (same for y with H, h)
    out = (p[y0,x0]*(2048-wx)*(2048-wy) + p[y0,x1]*wx*(2048-wy)
           + p[y1,x0]*(2048-wx)*wy + p[y1,x1]*wx*wy + (1<<21)) >> 22
    """
    if img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError("expected HxWxC uint8 array")
    H, W, _ = img.shape
    x0, x1, wx = _axis_coeffs(W, w)
    y0, y1, wy = _axis_coeffs(H, h)
    p = img.astype(np.int64)
    wx = wx[None, :, None]
    wy = wy[:, None, None]
    p00 = p[y0][:, x0]
    p01 = p[y0][:, x1]
    p10 = p[y1][:, x0]
    p11 = p[y1][:, x1]
    acc = (p00 * (2048 - wx) * (2048 - wy)
           + p01 * wx * (2048 - wy)
           + p10 * (2048 - wx) * wy
           + p11 * wx * wy
           + (1 << 21)) >> 22
    assert acc.min() >= 0 and acc.max() <= 255
    return np.ascontiguousarray(acc.astype(np.uint8))


def resize_bilinear_v1_scalar(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Slow, literal per-pixel version of the contract (used for self-checks)."""
    H, W, C = img.shape
    out = np.zeros((h, w, C), dtype=np.uint8)

    def coeff(d, src, dst):
        s = ((2 * d + 1) * src * 1024) // dst - 1024
        s = min(max(s, 0), (src - 1) * 2048)
        i0 = s >> 11
        return i0, min(i0 + 1, src - 1), s & 2047

    for dy in range(h):
        y0, y1, wy = coeff(dy, H, h)
        for dx in range(w):
            x0, x1, wx = coeff(dx, W, w)
            for c in range(C):
                v = (int(img[y0, x0, c]) * (2048 - wx) * (2048 - wy)
                     + int(img[y0, x1, c]) * wx * (2048 - wy)
                     + int(img[y1, x0, c]) * (2048 - wx) * wy
                     + int(img[y1, x1, c]) * wx * wy + (1 << 21)) >> 22
                out[dy, dx, c] = v
    return out


def preprocess_u8(path, size: int = MODEL_SIZE) -> np.ndarray:
    """Input tensor [1,size,size,3] uint8 for the Coral (uint8) model."""
    return resize_bilinear_v1(load_rgb8(path), size, size)[None]


def u8_to_f32(t: np.ndarray) -> np.ndarray:
    """(float32(u8) - 127.5) / 127.5 in float32 (each op rounded to float32)."""
    x = t.astype(np.float32)
    return ((x - np.float32(127.5)) / np.float32(127.5)).astype(np.float32)


def preprocess_f32(path, size: int = MODEL_SIZE) -> np.ndarray:
    """Input tensor [1,size,size,3] float32 in [-1,1] for the float (objectron) model."""
    return u8_to_f32(preprocess_u8(path, size))


def sha256(data) -> str:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def _self_test() -> None:
    rng = np.random.default_rng(0)
    # identity
    for shape in [(300, 300, 3), (7, 5, 3)]:
        a = rng.integers(0, 256, size=shape, dtype=np.uint8)
        assert np.array_equal(resize_bilinear_v1(a, shape[1], shape[0]), a), "identity failed"
    # vectorized == literal scalar on assorted sizes (down, up, mixed, 1-pixel)
    for (H, W, h, w) in [(13, 17, 5, 7), (5, 7, 13, 17), (9, 4, 3, 11), (1, 1, 3, 2), (3, 1, 1, 4), (40, 31, 30, 30)]:
        a = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        assert np.array_equal(resize_bilinear_v1(a, w, h), resize_bilinear_v1_scalar(a, w, h)), (H, W, h, w)
    # constant image stays constant
    a = np.full((37, 53, 3), 201, dtype=np.uint8)
    assert (resize_bilinear_v1(a, 300, 300) == 201).all()
    print("preprocess self-test OK")


if __name__ == "__main__":
    _self_test()
