"""Make the TF frozen-graph fixture (a tiny SSD-like conv net), its ONNX twin and TF goldens.

Usage (from the repository root, with the venv of scripts/calib/requirements.txt):
  python3 scripts/calib/make_tf_fixture.py [--images ../shared/images] [--out calibration/tests/data]

The graph is what the TF Object Detection API exports, in miniature:
  - a pre-processing head: `image` (uint8 [1,96,96,3]) -> Cast -> Sub 127.5 -> Mul 1/127.5,
    ending in the tensor `Preprocessor/normalized` (the calibrator cuts here with --inputs);
  - a backbone of conv + FusedBatchNorm + Relu6, a depthwise conv, a residual Add, a MaxPool and an AvgPool;
  - two SSD feature maps (24x24 and 12x12), each with a box head and a class head, reshaped to
    [1, N, 4] / [1, N, 3] and concatenated into `concat_boxes` / `concat_scores` (the tensors
    the calibrator keeps with --outputs);
  - a post-processing tail (sigmoid scores, box decoding against constant anchors) that
    TFLite-style exports cut away.
Weights are random (seeded) with batch-norm statistics chosen so activations stay O(1).
The graph is frozen with convert_variables_to_constants_v2. Batch norm is the V1
FusedBatchNorm op of TF1-era OD API graphs (tract-tensorflow reads V1, not V3).

Writes to --out:
  tf_ssd_tiny.pb            the frozen graph (GraphDef)
  tf_ssd_tiny.onnx          the same net cut to Preprocessor/normalized -> concat_* (tf2onnx,
                            NCHW convs with transposes, as tf2onnx writes them)
  blaze_tiny.onnx           a BlazeFace-like NCHW net written with onnx.helper (Conv, BatchNorm,
                            PRelu, depthwise, residual Add, Relu, MaxPool, channel Pad, Clip,
                            Resize, Transpose+Reshape heads, Mul, Softmax, AveragePool, Gemm,
                            Sigmoid) and blaze_tiny.golden.json (ONNX Runtime outputs)
  unsupported_tanh.onnx     Conv + Tanh: the error test's unsupported op
  tf_ssd_tiny.golden.json   per image: TF float outputs of concat_boxes / concat_scores on the
                            image preprocessed exactly as spotter-calibrate does
                            (spotter bilinear v1 to 96x96, (px - 127.5) / 127.5)
CI never runs this script; it only reads what it wrote.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "goldens"))
from preprocess import load_rgb8, resize_bilinear_v1  # noqa: E402

import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

SIZE = 96
GOLDEN_IMAGES = ["astronaut.png", "chelsea.png", "coffee.png"]
ANCHORS_PER_CELL = 2
CLASSES = 3


class Net(tf.Module):
    def __init__(self, seed: int = 7):
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.vars = {}

    def var(self, name, shape, scale):
        v = tf.Variable(self.rng.normal(0.0, scale, shape).astype(np.float32), name=name)
        self.vars[name] = v
        return v

    def make(self):
        r = self.rng
        specs = {}

        def conv(name, kh, kw, cin, cout):
            specs[name] = ("conv", self.var(name + "/weights", (kh, kw, cin, cout),
                                            np.sqrt(2.0 / (kh * kw * cin))))

        def dw(name, k, c):
            specs[name] = ("dw", self.var(name + "/depthwise_weights", (k, k, c, 1),
                                          np.sqrt(2.0 / (k * k))))

        def bn(name, c):
            specs[name + "/BatchNorm"] = (
                "bn",
                tf.Variable((1.0 + 0.2 * r.standard_normal(c)).astype(np.float32), name=name + "/gamma"),
                tf.Variable((0.1 * r.standard_normal(c)).astype(np.float32), name=name + "/beta"),
                tf.Variable((0.1 * r.standard_normal(c)).astype(np.float32), name=name + "/moving_mean"),
                tf.Variable((0.5 + r.random(c)).astype(np.float32), name=name + "/moving_variance"),
            )

        def bias(name, c):
            specs[name + "/biases"] = ("bias", self.var(name + "/biases", (c,), 0.1))

        conv("Conv", 3, 3, 3, 8); bn("Conv", 8)
        dw("dw1", 3, 8); bn("dw1", 8)
        conv("pw1", 1, 1, 8, 16); bn("pw1", 16)
        dw("dw2", 3, 16); bn("dw2", 16)
        conv("pw2", 1, 1, 16, 16); bn("pw2", 16)
        conv("down", 3, 3, 16, 24); bn("down", 24)
        conv("extra", 1, 1, 24, 32); bn("extra", 32)
        for i, c in ((0, 24), (1, 32)):
            conv(f"BoxPredictor_{i}/BoxEncodingPredictor", 3, 3, c, ANCHORS_PER_CELL * 4)
            bias(f"BoxPredictor_{i}/BoxEncodingPredictor", ANCHORS_PER_CELL * 4)
            conv(f"BoxPredictor_{i}/ClassPredictor", 1, 1, c, ANCHORS_PER_CELL * CLASSES)
            bias(f"BoxPredictor_{i}/ClassPredictor", ANCHORS_PER_CELL * CLASSES)
        self.specs = specs
        n = (24 * 24 + 12 * 12) * ANCHORS_PER_CELL
        self.anchors = tf.constant(r.random((1, n, 4)).astype(np.float32))

    def forward(self, image):
        s = self.specs

        def conv(x, name, stride=1, padding="SAME"):
            return tf.nn.conv2d(x, s[name][1], [1, stride, stride, 1], padding, name=name + "/Conv2D")

        def dwconv(x, name, stride=1):
            return tf.nn.depthwise_conv2d(x, s[name][1], [1, stride, stride, 1], "SAME",
                                          name=name + "/depthwise")

        def bn(x, name):
            _, g, b, m, v = s[name + "/BatchNorm"]
            return tf.raw_ops.FusedBatchNorm(x=x, scale=g, offset=b, mean=m, variance=v,
                                             epsilon=1e-3, is_training=False,
                                             name=name + "/BatchNorm/FusedBatchNorm")[0]

        def biased(x, name):
            return tf.nn.bias_add(x, s[name + "/biases"][1], name=name + "/BiasAdd")

        x = tf.cast(image, tf.float32)
        x = tf.subtract(x, 127.5, name="Preprocessor/sub")
        x = tf.multiply(x, 1.0 / 127.5, name="Preprocessor/normalized")
        # 96 -> 48: conv 3x3 s2 SAME + BN + relu6.
        x = tf.nn.relu6(bn(conv(x, "Conv", 2), "Conv"), name="Conv/Relu6")
        # Depthwise separable block, then a residual block.
        x = tf.nn.relu6(bn(dwconv(x, "dw1"), "dw1"), name="dw1/Relu6")
        x = bn(conv(x, "pw1"), "pw1")
        y = tf.nn.relu6(bn(dwconv(x, "dw2"), "dw2"), name="dw2/Relu6")
        y = bn(conv(y, "pw2"), "pw2")
        x = tf.add(x, y, name="residual/add")
        # 48 -> 24: MaxPool 2x2.
        x = tf.nn.max_pool2d(x, 2, 2, "VALID", name="pool/MaxPool")
        # 3x3 SAME conv, stays 24x24. (No tf.pad: tract-tensorflow 0.23.9 cannot type its Pad;
        # the ONNX fixtures cover PAD.)
        f0 = tf.nn.relu6(bn(conv(x, "down", 1), "down"), name="down/Relu6")
        # 24 -> 12: AvgPool 2x2 + 1x1 conv.
        f1 = tf.nn.avg_pool2d(f0, 2, 2, "VALID", name="extra/AvgPool")
        f1 = tf.nn.relu6(bn(conv(f1, "extra"), "extra"), name="extra/Relu6")
        boxes, scores = [], []
        for i, f in enumerate((f0, f1)):
            p = f"BoxPredictor_{i}"
            b = biased(conv(f, p + "/BoxEncodingPredictor"), p + "/BoxEncodingPredictor")
            c = biased(conv(f, p + "/ClassPredictor"), p + "/ClassPredictor")
            boxes.append(tf.reshape(b, [1, -1, 4], name=p + "/Reshape"))
            scores.append(tf.reshape(c, [1, -1, CLASSES], name=p + "/Reshape_1"))
        box = tf.concat(boxes, axis=1, name="concat_boxes")
        score = tf.concat(scores, axis=1, name="concat_scores")
        # Post-processing tail (cut away by --outputs concat_boxes,concat_scores).
        det_scores = tf.sigmoid(score, name="Postprocessor/scores")
        det_boxes = tf.add(tf.multiply(box, 0.1), self.anchors, name="Postprocessor/decoded")
        return {"detection_boxes": det_boxes, "detection_scores": det_scores}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=str(Path("..") / "shared" / "images"))
    ap.add_argument("--out", default="calibration/tests/data")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    net = Net()
    net.make()
    fn = tf.function(net.forward).get_concrete_function(
        tf.TensorSpec([1, SIZE, SIZE, 3], tf.uint8, name="image"))
    frozen = convert_variables_to_constants_v2(fn)
    gd = frozen.graph.as_graph_def()
    pb = out / "tf_ssd_tiny.pb"
    pb.write_bytes(gd.SerializeToString())
    print(f"{pb}: {pb.stat().st_size} bytes, {len(gd.node)} nodes")

    # Goldens: the cut tensors, fed the normalized input directly (what the calibrator feeds).
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    golden = {"input": "Preprocessor/normalized", "outputs": ["concat_boxes", "concat_scores"],
              "size": SIZE, "mean": 127.5, "std": 127.5, "images": {}}
    with tf.compat.v1.Session(graph=g) as sess:
        for name in GOLDEN_IMAGES:
            px = resize_bilinear_v1(load_rgb8(Path(a.images) / name), SIZE, SIZE)
            x = ((px.astype(np.float32) - np.float32(127.5)) / np.float32(127.5))[None]
            b, s = sess.run(["concat_boxes:0", "concat_scores:0"],
                            {"Preprocessor/normalized:0": x})
            golden["images"][name] = {"concat_boxes": b.reshape(-1).tolist(),
                                      "concat_scores": s.reshape(-1).tolist(),
                                      "shapes": [list(b.shape), list(s.shape)]}
            print(name, "boxes", b.shape, float(np.abs(b).max()), "scores", s.shape,
                  float(np.abs(s).max()))
    (out / "tf_ssd_tiny.golden.json").write_text(json.dumps(golden))

    # ONNX twin of the cut graph (tf2onnx: NCHW convs with transposes around them).
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        gd, input_names=["Preprocessor/normalized:0"],
        output_names=["concat_boxes:0", "concat_scores:0"], opset=13,
        output_path=str(out / "tf_ssd_tiny.onnx"))
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "tf_ssd_tiny.onnx"), providers=["CPUExecutionProvider"])
    px = resize_bilinear_v1(load_rgb8(Path(a.images) / GOLDEN_IMAGES[0]), SIZE, SIZE)
    x = ((px.astype(np.float32) - np.float32(127.5)) / np.float32(127.5))[None]
    ob = sess.run(None, {sess.get_inputs()[0].name: x})
    ref = golden["images"][GOLDEN_IMAGES[0]]
    print("onnx vs tf max abs diff:",
          float(np.abs(ob[0].reshape(-1) - np.array(ref["concat_boxes"])).max()),
          [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()])
    make_onnx_extras(out, Path(a.images))


def make_onnx_extras(out: Path, images: Path) -> None:
    """BlazeFace-like NCHW ONNX (onnx.helper) with ORT goldens, and an unsupported-op model."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    r = np.random.default_rng(11)

    def w(name, *shape, scale=None):
        fan = int(np.prod(shape[1:])) or 1
        v = r.normal(0.0, scale or np.sqrt(2.0 / fan), shape).astype(np.float32)
        return numpy_helper.from_array(v, name)

    inits = [
        w("c0.w", 8, 3, 5, 5), w("c0.b", 8, scale=0.1),
        numpy_helper.from_array((1 + 0.2 * r.standard_normal(8)).astype(np.float32), "bn.s"),
        numpy_helper.from_array((0.1 * r.standard_normal(8)).astype(np.float32), "bn.b"),
        numpy_helper.from_array((0.1 * r.standard_normal(8)).astype(np.float32), "bn.m"),
        numpy_helper.from_array((0.5 + r.random(8)).astype(np.float32), "bn.v"),
        numpy_helper.from_array((0.25 * r.random((8, 1, 1))).astype(np.float32), "prelu.slope"),
        w("dw.w", 8, 1, 3, 3), w("dw.b", 8, scale=0.1),
        w("pw.w", 8, 8, 1, 1), w("pw.b", 8, scale=0.1),
        numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 8, 0, 0], np.int64), "chpad"),
        w("c2.w", 16, 16, 3, 3), w("c2.b", 16, scale=0.1),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "six"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up.scales"),
        w("hb.w", 8, 16, 1, 1), w("hb.b", 8, scale=0.1),
        w("hs.w", 2, 16, 1, 1), w("hs.b", 2, scale=0.1),
        numpy_helper.from_array(np.array([1, -1, 4], np.int64), "shape4"),
        numpy_helper.from_array(np.array([1, -1, 2], np.int64), "shape2"),
        numpy_helper.from_array(np.array(2.0, np.float32), "temp"),
        w("fc.w", 5, 16), w("fc.b", 5, scale=0.1),
    ]
    N = helper.make_node
    nodes = [
        N("Conv", ["input", "c0.w", "c0.b"], ["c0"], name="c0", kernel_shape=[5, 5],
          strides=[2, 2], pads=[1, 1, 2, 2]),
        N("BatchNormalization", ["c0", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn",
          epsilon=1e-3),
        N("PRelu", ["bn", "prelu.slope"], ["prelu0"], name="prelu0"),
        N("Conv", ["prelu0", "dw.w", "dw.b"], ["dw"], name="dw", kernel_shape=[3, 3],
          pads=[1, 1, 1, 1], group=8),
        N("Conv", ["dw", "pw.w", "pw.b"], ["pw"], name="pw", kernel_shape=[1, 1]),
        N("Add", ["pw", "prelu0"], ["res"], name="res"),
        N("Relu", ["res"], ["relu"], name="relu"),
        N("MaxPool", ["relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        N("Pad", ["pool", "chpad"], ["padded"], name="chpad", mode="constant"),
        N("Conv", ["padded", "c2.w", "c2.b"], ["c2"], name="c2", kernel_shape=[3, 3],
          pads=[1, 1, 1, 1]),
        N("Clip", ["c2", "zero", "six"], ["c2r"], name="c2r"),
        N("Resize", ["c2r", "", "up.scales"], ["up"], name="up", mode="linear",
          coordinate_transformation_mode="half_pixel"),
        N("Conv", ["c2r", "hb.w", "hb.b"], ["hb"], name="hb", kernel_shape=[1, 1]),
        N("Transpose", ["hb"], ["hbt"], name="hbt", perm=[0, 2, 3, 1]),
        N("Reshape", ["hbt", "shape4"], ["boxes"], name="boxes"),
        N("Conv", ["up", "hs.w", "hs.b"], ["hs"], name="hs", kernel_shape=[1, 1]),
        N("Transpose", ["hs"], ["hst"], name="hst", perm=[0, 2, 3, 1]),
        N("Reshape", ["hst", "shape2"], ["hsr"], name="hsr"),
        N("Mul", ["hsr", "temp"], ["hsm"], name="hsm"),
        N("Softmax", ["hsm"], ["scores"], name="scores", axis=-1),
        N("AveragePool", ["c2r"], ["gap"], name="gap", kernel_shape=[16, 16]),
        N("Flatten", ["gap"], ["flat"], name="flat"),
        N("Gemm", ["flat", "fc.w", "fc.b"], ["fc"], name="fc", transB=1),
        N("Sigmoid", ["fc"], ["logits"], name="logits"),
    ]
    graph = helper.make_graph(
        nodes, "blaze_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 512, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1024, 2]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(out / "blaze_tiny.onnx"))
    sess = ort.InferenceSession(str(out / "blaze_tiny.onnx"), providers=["CPUExecutionProvider"])
    golden = {"size": 64, "mean": 127.5, "std": 127.5, "images": {}}
    for name in GOLDEN_IMAGES:
        px = resize_bilinear_v1(load_rgb8(images / name), 64, 64)
        x = ((px.astype(np.float32) - np.float32(127.5)) / np.float32(127.5))[None]
        outs = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})
        golden["images"][name] = {o.name: v.reshape(-1).tolist()
                                  for o, v in zip(sess.get_outputs(), outs)}
    (out / "blaze_tiny.golden.json").write_text(json.dumps(golden))
    print("blaze_tiny.onnx", [(o.name, v.shape) for o, v in zip(sess.get_outputs(), outs)])

    t_nodes = [N("Conv", ["input", "c0.w", "c0.b"], ["c0"], name="c0", kernel_shape=[5, 5],
                 pads=[2, 2, 2, 2]),
               N("Tanh", ["c0"], ["y"], name="the_tanh")]
    tg = helper.make_graph(
        t_nodes, "unsupported_tanh",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], inits[:2])
    tm = helper.make_model(tg, opset_imports=[helper.make_opsetid("", 13)])
    tm.ir_version = 8
    onnx.checker.check_model(tm)
    onnx.save(tm, str(out / "unsupported_tanh.onnx"))


if __name__ == "__main__":
    main()
