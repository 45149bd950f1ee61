"""Compare spotter-calibrate's int8 model with ONNX Runtime's quantize_static on held-out photos.

Usage:
  python3 scripts/calib/compare_ort.py --model FLOAT.tflite --images DIR \
      [--holdout a.png,b.png] [--calibrate target/release/spotter-calibrate] [--work DIR]
      [--ort-method MinMax,Entropy,Percentile] [-- EXTRA spotter-calibrate ARGS]

Steps: split DIR into calibration images and held-out photos; run spotter-calibrate (which also
writes the folded float32 model); convert that float32 TFLite to ONNX with tflite2onnx; quantize
it with onnxruntime.quantization.quantize_static (QDQ, int8 activations and weights, per-channel,
same calibration images, same preprocessing); then on the held-out photos compare each model's
outputs with the float TFLite model run in LiteRT (BUILTIN_REF): SQNR = 10 log10(sum f^2 /
sum (f - q)^2) over all held-out images, per output. Our int8 model is run in LiteRT too.

Needs (besides scripts/requirements.txt): onnx, onnxruntime, tflite2onnx; tf2onnx (with
tensorflow-cpu) for models tflite2onnx cannot convert (--converter, default auto).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "goldens"))
from preprocess import load_rgb8, resize_bilinear_v1  # noqa: E402
from reference import make_interpreter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOLDOUT = "chelsea.png,motorcycle_left.png,rocket.jpg"


def preprocess(path, w, h) -> np.ndarray:
    px = resize_bilinear_v1(load_rgb8(path), w, h)[None].astype(np.float32)
    return ((px - np.float32(127.5)) / np.float32(127.5)).astype(np.float32)


def tflite_outputs(it, x):
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).astype(np.float32).copy()
            for d in it.get_output_details()}


def sqnr(ref: list[np.ndarray], test: list[np.ndarray]) -> float:
    s = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in ref)
    n = sum(float(np.sum((r.astype(np.float64) - t.astype(np.float64)) ** 2)) for r, t in zip(ref, test))
    return float("inf") if n == 0 else 10 * np.log10(s / n)


def onnx_feed(sess, x_nhwc):
    inp = sess.get_inputs()[0]
    shape = inp.shape
    x = x_nhwc
    if len(shape) == 4 and shape[1] == 3 and shape[3] != 3:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return {inp.name: x}


def match_onnx_outputs(sess, names_shapes):
    """Map TFLite output names to ONNX output names (by name, else by shape, in order)."""
    outs = sess.get_outputs()
    mapping = {}
    used = set()
    for name, shape in names_shapes:
        cand = [o for o in outs if o.name == name and o.name not in used]
        if not cand:
            cand = [o for o in outs if list(o.shape) == list(shape) and o.name not in used]
        if not cand:
            raise SystemExit(f"cannot match TFLite output {name} {shape} among ONNX outputs "
                             f"{[(o.name, o.shape) for o in outs]}")
        mapping[name] = cand[0].name
        used.add(cand[0].name)
    return mapping


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--holdout", default=DEFAULT_HOLDOUT)
    ap.add_argument("--calibrate", default=str(ROOT / "target/release/spotter-calibrate"))
    ap.add_argument("--work")
    ap.add_argument("--ort-method", default="MinMax,Entropy,Percentile")
    ap.add_argument("--converter", default="auto", choices=["auto", "tflite2onnx", "tf2onnx"],
                    help="float TFLite -> ONNX (auto: tflite2onnx, else tf2onnx)")
    ap.add_argument("--skip-ours", action="store_true", help="reuse WORK/ours_int8.tflite")
    ap.add_argument("extra", nargs="*", help="extra spotter-calibrate arguments (after --)")
    a = ap.parse_args()

    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work = Path(a.work or tempfile.mkdtemp(prefix="calib-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    holdout = [h.strip() for h in a.holdout.split(",") if h.strip()]
    images = sorted(p for p in Path(a.images).iterdir() if p.is_file() and not p.name.startswith("."))
    missing = [h for h in holdout if not any(p.name == h for p in images)]
    if missing:
        raise SystemExit(f"held-out images not in {a.images}: {missing}")
    calib_dir, eval_dir = work / "calib", work / "eval"
    for d in (calib_dir, eval_dir):
        d.mkdir(exist_ok=True)
        for old in d.iterdir():
            old.unlink()
    for p in images:
        (eval_dir if p.name in holdout else calib_dir).joinpath(p.name).symlink_to(p.resolve())

    # 1. spotter-calibrate.
    ours = work / "ours_int8.tflite"
    float32 = work / "float32.tflite"
    cmd = [a.calibrate, "--model", a.model, "--images", str(calib_dir), "--out", str(ours),
           "--eval-images", str(eval_dir), "--write-float", str(float32),
           "--report", str(work / "report.json"), "--quiet", *a.extra]
    print("$", " ".join(cmd), flush=True)
    if not a.skip_ours:
        subprocess.run(cmd, check=True)

    # 2. float32 TFLite -> ONNX.
    onnx_float = work / "float.onnx"
    converter = a.converter
    if converter in ("auto", "tflite2onnx"):
        import tflite2onnx
        try:
            tflite2onnx.convert(str(float32), str(onnx_float))
            converter = "tflite2onnx"
        except Exception as e:  # tflite2onnx 0.4.1 cannot convert e.g. a channel PAD
            if converter == "tflite2onnx":
                raise
            print(f"tflite2onnx failed ({type(e).__name__}: {e}); using tf2onnx", flush=True)
            converter = "tf2onnx"
    if converter == "tf2onnx":
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(float32),
                        "--output", str(onnx_float), "--opset", "13"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"float ONNX by {converter}", flush=True)
    # tflite2onnx writes an old opset; per-channel QDQ needs DequantizeLinear's axis (opset 13).
    import onnx
    from onnx import version_converter
    m = onnx.load(str(onnx_float))
    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        m = version_converter.convert_version(m, 13)
        onnx.save(m, str(onnx_float))
    onnx_pre = work / "float.pre.onnx"
    quant_pre_process(str(onnx_float), str(onnx_pre), skip_symbolic_shape=True)

    ref_it = make_interpreter(a.model, preserve=False)
    d = ref_it.get_input_details()[0]
    _, h, w, _ = [int(v) for v in d["shape"]]
    out_names_shapes = [(o["name"], list(o["shape"])) for o in ref_it.get_output_details()]
    calib_inputs = [preprocess(p, w, h) for p in sorted(calib_dir.iterdir())]
    eval_paths = sorted(eval_dir.iterdir())
    eval_inputs = [preprocess(p, w, h) for p in eval_paths]

    float_sess = ort.InferenceSession(str(onnx_pre), providers=["CPUExecutionProvider"])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib_inputs)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else onnx_feed(float_sess, x)

    # 3. References: float TFLite in LiteRT.
    ref = [tflite_outputs(ref_it, x) for x in eval_inputs]
    results = {}

    def score(label, outs_per_image):
        results[label] = {n: sqnr([r[n] for r in ref], [o[n] for o in outs_per_image])
                          for n, _ in out_names_shapes}

    # Sanity: the float ONNX model vs float TFLite.
    fmap = match_onnx_outputs(float_sess, out_names_shapes)
    score(f"float ONNX ({converter})", [
        {n: float_sess.run([fmap[n]], onnx_feed(float_sess, x))[0].reshape(s) for n, s in out_names_shapes}
        for x in eval_inputs])

    # 4. Ours in LiteRT.
    ours_it = make_interpreter(ours, preserve=False)
    ours_outs = []
    for x in eval_inputs:
        o = tflite_outputs(ours_it, x)
        # Our outputs keep the float model's names.
        ours_outs.append({n: o[n].reshape(s) for n, s in out_names_shapes})
    score("spotter-calibrate int8 (run in LiteRT)", ours_outs)

    # 5. ORT quantize_static.
    methods = {"MinMax": CalibrationMethod.MinMax, "Entropy": CalibrationMethod.Entropy,
               "Percentile": CalibrationMethod.Percentile}
    for m in [s.strip() for s in a.ort_method.split(",") if s.strip()]:
        qpath = work / f"ort_int8_{m}.onnx"
        quantize_static(str(onnx_pre), str(qpath), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, calibrate_method=methods[m])
        qs = ort.InferenceSession(str(qpath), providers=["CPUExecutionProvider"])
        qmap = match_onnx_outputs(qs, out_names_shapes)
        score(f"ORT quantize_static QDQ {m}", [
            {n: qs.run([qmap[n]], onnx_feed(qs, x))[0].reshape(s) for n, s in out_names_shapes}
            for x in eval_inputs])

    print(f"\nheld-out images: {[p.name for p in eval_paths]}; calibration images: {len(calib_inputs)}")
    names = [n for n, _ in out_names_shapes]
    print(f"{'output SQNR vs float TFLite (dB)':<44}" + "".join(f"{n[-28:]:>30}" for n in names))
    for label, r in results.items():
        print(f"{label:<44}" + "".join(f"{r[n]:>30.2f}" for n in names))
    (work / "compare.json").write_text(json.dumps(results, indent=2))
    print(f"\nwork dir: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
