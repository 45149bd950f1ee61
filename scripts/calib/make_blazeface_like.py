"""Make a BlazeFace-like float32 TFLite face detector (random weights) for calibration tests.

Usage (venv: scripts/calib/requirements.txt, with tensorflow-cpu):
  python3 scripts/calib/make_blazeface_like.py [--out tests/data/calib/blazeface_like.tflite]

Architecture, after MediaPipe's BlazeFace (short range, 128x128): a 5x5 stride-2 conv + PRELU,
then "BlazeBlocks": depthwise 3x3 -> 1x1 conv, added to a shortcut that is MAX_POOL_2D'd when
the block strides and channel-PADded when it widens, then PRELU. The 8x8 features are
RESIZE_BILINEAR'd to 16x16 and added to the 16x16 features (an FPN-style merge). Two heads per
scale (2 anchors at 16x16, 6 at 8x8): box regressors [1, 896, 16] and class logits [1, 896, 1],
each a CONCATENATION of RESHAPEd 1x1 convs. The ops: CONV_2D, DEPTHWISE_CONV_2D, PRELU, PAD,
MAX_POOL_2D, RESIZE_BILINEAR, ADD, RESHAPE, CONCATENATION.

Weights are random (seeded) but scaled like a trained net's (He init, small biases, PRELU
slopes 0.05..0.3), so activations keep a realistic spread through the depth. The model is
float32 end to end (no fp16 weights), < 1 MB.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def build(seed: int):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    keras = tf.keras
    L = keras.layers

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def conv(x, out_ch, k=1, stride=1):
        in_ch = x.shape[-1]
        layer = L.Conv2D(out_ch, k, strides=stride, padding="same")
        y = layer(x)
        layer.set_weights([he((k, k, in_ch, out_ch), k * k * in_ch),
                           (rng.standard_normal(out_ch) * 0.05).astype(np.float32)])
        return y

    def dwconv(x, stride=1):
        ch = x.shape[-1]
        layer = L.DepthwiseConv2D(3, strides=stride, padding="same")
        y = layer(x)
        layer.set_weights([he((3, 3, ch, 1), 9), (rng.standard_normal(ch) * 0.05).astype(np.float32)])
        return y

    def prelu(x):
        layer = L.PReLU(shared_axes=[1, 2])
        y = layer(x)
        layer.set_weights([rng.uniform(0.05, 0.3, (1, 1, x.shape[-1])).astype(np.float32)])
        return y

    def block(x, out_ch, stride=1):
        in_ch = x.shape[-1]
        y = conv(dwconv(x, stride), out_ch)
        s = x
        if stride == 2:
            s = L.MaxPooling2D(2)(s)
        if out_ch > in_ch:
            s = L.Lambda(lambda t, p=out_ch - in_ch: tf.pad(t, [[0, 0], [0, 0], [0, 0], [0, p]]))(s)
        return prelu(L.Add()([s, y]))

    inp = keras.Input((128, 128, 3), batch_size=1, name="input")
    x = prelu(conv(inp, 24, 5, 2))                      # 64x64
    for ch in (24, 28):
        x = block(x, ch)
    x = block(x, 32, 2)                                 # 32x32
    for ch in (36, 42):
        x = block(x, ch)
    x = block(x, 48, 2)                                 # 16x16
    for ch in (56, 64, 72, 80, 88):
        x = block(x, ch)
    f16 = x
    x = block(x, 96, 2)                                 # 8x8
    for _ in range(4):
        x = block(x, 96)
    f8 = x
    up = L.Resizing(16, 16, interpolation="bilinear")(conv(f8, 88))
    f16 = prelu(L.Add()([f16, up]))

    def heads(f, anchors, n):
        r = L.Reshape((n, 16))(conv(f, anchors * 16))
        c = L.Reshape((n, 1))(conv(f, anchors))
        return r, c

    r16, c16 = heads(f16, 2, 512)
    r8, c8 = heads(f8, 6, 384)
    regressors = L.Concatenate(axis=1, name="regressors")([r16, r8])
    classificators = L.Concatenate(axis=1, name="classificators")([c16, c8])
    return keras.Model(inp, [regressors, classificators])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests/data/calib/blazeface_like.tflite"))
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    import tensorflow as tf
    model = build(a.seed)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    data = conv.convert()
    Path(a.out).write_bytes(data)
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=data)
    ops = sorted({o["op_name"] for o in it._get_ops_details()})
    print(f"wrote {a.out}: {len(data)} bytes, ops {ops}")
    print("inputs", [(d["name"], list(d["shape"])) for d in it.get_input_details()])
    print("outputs", [(d["name"], list(d["shape"])) for d in it.get_output_details()])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
