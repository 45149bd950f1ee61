"""Make the ONNX Runtime QDQ int8 objectron SSD fixture and its ORT goldens.

Usage (from the repository root, with the venv of scripts/calib/requirements.txt):
  python3 scripts/calib/make_onnx_qdq.py [--calibrate target/release/spotter-calibrate]
      [--model ../shared/models/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite]
      [--images ../shared/images] [--out tests/data/onnx]

Steps (as compare_ort.py): spotter-calibrate writes the folded float32 TFLite; tflite2onnx
converts it; the opset is raised to 13 (per-channel DequantizeLinear); quant_pre_process;
onnxruntime.quantization.quantize_static (QDQ, int8 activations and weights, per-channel,
MinMax) on the calibration images minus the held-out ones; activations uint8 (default) or int8
(--activations int8; the Rust test covers both, run the script twice). Then ORT (CPU EP, default graph
optimizations: QDQ groups fuse into QLinearConv etc.) runs the model on the objectron golden
inputs (tests/goldens/objectron/NAME.input.f32, NHWC float, transposed to the
model's NCHW) and the outputs are stored as
NAME.ACT.outI.f32 (I = output index) next to the model, with index_ACT.json naming outputs, shapes and each output's
final DequantizeLinear scale/zero point, so the Rust test can compare in LSBs.
CI never runs this script; it only reads what it wrote.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "goldens"))
from preprocess import load_rgb8, resize_bilinear_v1  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = {"chelsea.png", "motorcycle_left.png", "rocket.jpg"}


def preprocess(path, w, h) -> np.ndarray:
    px = resize_bilinear_v1(load_rgb8(path), w, h)[None].astype(np.float32)
    return ((px - np.float32(127.5)) / np.float32(127.5)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibrate", default=str(ROOT / "target/release/spotter-calibrate"))
    ap.add_argument("--model", default=str(
        ROOT / "../shared/models/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"))
    ap.add_argument("--images", default=str(ROOT / "../shared/images"))
    ap.add_argument("--out", default=str(ROOT / "tests/data/onnx"))
    ap.add_argument("--work")
    ap.add_argument("--activations", choices=["int8", "uint8"], default="uint8",
                    help="activation type (uint8 = QUInt8, ONNX Runtime's default and what "
                    "its x86 CPU EP fuses into QLinearConv everywhere)")
    a = ap.parse_args()

    import onnx
    import onnxruntime as ort
    import tflite2onnx
    from onnx import numpy_helper, version_converter
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work = Path(a.work or tempfile.mkdtemp(prefix="onnx-qdq-"))
    work.mkdir(parents=True, exist_ok=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    float32 = work / "float32.tflite"
    if not float32.exists():
        # Any calibration output will do: we only need the folded float32 model.
        subprocess.run([a.calibrate, "--model", a.model, "--images", a.images, "--limit", "1",
                        "--out", str(work / "unused_int8.tflite"), "--write-float", str(float32),
                        "--quiet"], check=True)
    onnx_float = work / "float.onnx"
    tflite2onnx.convert(str(float32), str(onnx_float))
    m = onnx.load(str(onnx_float))
    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        m = version_converter.convert_version(m, 13)
        onnx.save(m, str(onnx_float))
    onnx_pre = work / "float.pre.onnx"
    quant_pre_process(str(onnx_float), str(onnx_pre), skip_symbolic_shape=True)

    fs = ort.InferenceSession(str(onnx_pre), providers=["CPUExecutionProvider"])
    inp = fs.get_inputs()[0]
    # tflite2onnx makes the input NCHW: [1, 3, H, W].
    if len(inp.shape) != 4 or inp.shape[1] != 3:
        raise SystemExit(f"unexpected input {inp.name} {inp.shape}")
    h, w = int(inp.shape[2]), int(inp.shape[3])
    images = sorted(p for p in Path(a.images).iterdir()
                    if p.is_file() and p.name not in HOLDOUT and not p.name.startswith("."))
    calib = [np.ascontiguousarray(preprocess(p, w, h).transpose(0, 3, 1, 2)) for p in images]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {inp.name: x}

    act = QuantType.QUInt8 if a.activations == "uint8" else QuantType.QInt8
    qpath = out / f"ssd_mobilenetv2_oidv4_qdq_{a.activations}.onnx"
    quantize_static(str(onnx_pre), str(qpath), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=act,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)

    # Final DequantizeLinear of each output: the LSB to compare in.
    qm = onnx.load(str(qpath))
    inits = {t.name: numpy_helper.to_array(t) for t in qm.graph.initializer}
    producers = {o: n for n in qm.graph.node for o in n.output}
    sess = ort.InferenceSession(str(qpath), providers=["CPUExecutionProvider"])
    index = {"model": qpath.name, "model_sha256": hashlib.sha256(qpath.read_bytes()).hexdigest(),
             "onnxruntime": ort.__version__, "source_model": Path(a.model).name,
             "calibration_images": [p.name for p in images], "outputs": [], "images": []}
    for o in sess.get_outputs():
        p = producers.get(o.name)
        entry = {"name": o.name, "shape": list(o.shape)}
        if p is not None and p.op_type == "DequantizeLinear":
            entry["scale"] = float(inits[p.input[1]])
            entry["zero_point"] = int(inits[p.input[2]]) if len(p.input) > 2 else 0
        index["outputs"].append(entry)
    golden_dir = ROOT / "tests/goldens/objectron"
    for f in sorted(golden_dir.glob("*.input.f32")):
        name = f.name.removesuffix(".input.f32")
        x = np.fromfile(f, dtype="<f4").reshape(1, h, w, 3)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        outs = sess.run(None, {inp.name: x})
        for i, v in enumerate(outs):
            v.astype("<f4").tofile(out / f"{name}.{a.activations}.out{i}.f32")
        index["images"].append(name)
    (out / f"index_{a.activations}.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {qpath} ({qpath.stat().st_size} bytes) and goldens for {index['images']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
