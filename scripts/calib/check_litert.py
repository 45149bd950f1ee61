"""Check that LiteRT (BUILTIN_REF kernels) runs a .tflite written by spotter.

Usage:
  python3 scripts/calib/check_litert.py WRITTEN.tflite [--like ORIGINAL.tflite] [--image IMG]...
      [--spotter-outputs DIR]

Runs WRITTEN on each image (spotter's preprocessing: bilinear v1 to the model size; float
inputs get (x-127.5)/127.5, uint8 inputs the raw pixels, int8 inputs pixel-128). With --like,
also runs ORIGINAL on the same inputs and requires identical outputs (for a lossless rewrite
such as `load -> write`). Prints per-output shapes and max |diff|; exits 1 on mismatch.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "goldens"))
from preprocess import load_rgb8, resize_bilinear_v1  # noqa: E402
from reference import make_interpreter  # noqa: E402


def model_input(it, img_path) -> np.ndarray:
    d = it.get_input_details()[0]
    _, h, w, _ = d["shape"]
    px = resize_bilinear_v1(load_rgb8(img_path), int(w), int(h))[None]
    if d["dtype"] == np.float32:
        return ((px.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)).astype(np.float32)
    if d["dtype"] == np.int8:
        return (px.astype(np.int16) - 128).astype(np.int8)
    return px


def outputs(it, x) -> list[np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--like")
    ap.add_argument("--image", action="append", default=[])
    a = ap.parse_args()
    root = Path(__file__).resolve().parents[2]
    images = a.image or [str(root / "models/samples/astronaut.png")]
    it = make_interpreter(a.model, preserve=False)
    ref = make_interpreter(a.like, preserve=False) if a.like else None
    ok = True
    for img in images:
        x = model_input(it, img)
        got = outputs(it, x)
        line = [Path(img).name]
        if ref is not None:
            want = outputs(ref, model_input(ref, img))
            for i, (g, w) in enumerate(zip(got, want)):
                same = g.shape == w.shape and g.dtype == w.dtype and np.array_equal(g, w)
                diff = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) if g.shape == w.shape else float("inf")
                line.append(f"out{i} {g.dtype}{list(g.shape)} max|diff|={diff:g}{'' if same else ' MISMATCH'}")
                ok &= same
        else:
            for i, g in enumerate(got):
                line.append(f"out{i} {g.dtype}{list(g.shape)} finite={bool(np.isfinite(g.astype(np.float64)).all())}")
        print("  ".join(line))
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
