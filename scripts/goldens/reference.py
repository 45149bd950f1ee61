"""LiteRT reference runs + the `spotter detect --json` output contract.

Shared by make_goldens.py and compare_detect.py.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from preprocess import preprocess_u8

ROOT = Path(__file__).resolve().parents[2]
CORAL_MODEL = ROOT / "models" / "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
COCO_LABELS = ROOT / "models" / "coco_labels.txt"
DEFAULT_THRESHOLD = 0.3


def make_interpreter(model_path, reference: bool = True, preserve: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {}
    if reference:
        kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_REF
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = Interpreter(model_path=str(model_path), num_threads=1,
                         experimental_preserve_all_tensors=preserve, **kw)
    it.allocate_tensors()
    return it


def run(it, x: np.ndarray) -> None:
    inp = it.get_input_details()[0]
    assert tuple(inp["shape"]) == x.shape and inp["dtype"] == x.dtype, (inp, x.shape, x.dtype)
    it.set_tensor(inp["index"], x)
    it.invoke()


def load_labels(path=COCO_LABELS) -> dict[int, str]:
    labels = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        num, name = line.split(maxsplit=1)
        labels[int(num)] = name.strip()
    return labels


def label_for(labels: dict[int, str], class_id: int) -> str:
    # ids absent from coco_labels.txt (none observed so far) get a synthetic name
    return labels.get(class_id, f"class_{class_id}")


def postprocess_outputs(it) -> dict:
    """Raw TFLite_Detection_PostProcess outputs as numpy float32 arrays."""
    outs = {}
    for d in it.get_output_details():
        outs[d["name"]] = it.get_tensor(d["index"])
    boxes = outs["TFLite_Detection_PostProcess"][0]
    classes = outs["TFLite_Detection_PostProcess:1"][0]
    scores = outs["TFLite_Detection_PostProcess:2"][0]
    count = outs["TFLite_Detection_PostProcess:3"]
    for a in (boxes, classes, scores, count):
        assert a.dtype == np.float32
    return {"boxes": boxes, "classes": classes, "scores": scores, "count": count}


def f32(x) -> float:
    """float32 -> Python float (exact; json/repr prints the shortest round-trip digits)."""
    return float(np.float32(x))


def f32_bits(x) -> str:
    return "0x%08x" % int(np.array(x, dtype=np.float32).view(np.uint32))


def detection_record(labels, cls, score, box, width: int, height: int) -> dict:
    ymin, xmin, ymax, xmax = (f32(v) for v in box)
    c = int(round(f32(cls)))
    return {
        "label": label_for(labels, c),
        "class_id": c,
        "score": f32(score),
        # pixels of the ORIGINAL image, float64 math on the float32 values, no clamping
        "box": [xmin * width, ymin * height, xmax * width, ymax * height],
    }


def cli_json(image_arg: str, width: int, height: int, raw: dict, labels,
             threshold: float = DEFAULT_THRESHOLD) -> dict:
    """What `spotter detect --json --threshold T IMAGE` must print for one image."""
    n = int(raw["count"][0])
    dets = []
    for i in range(n):
        if f32(raw["scores"][i]) >= threshold:  # compared in float64
            dets.append(detection_record(labels, raw["classes"][i], raw["scores"][i],
                                         raw["boxes"][i], width, height))
    return {"image": image_arg, "width": width, "height": height, "detections": dets}


def coral_reference(image_path, image_arg: str | None = None, labels=None,
                    threshold: float = DEFAULT_THRESHOLD, it=None):
    """Run the Coral uint8 model with BUILTIN_REF on one image. Returns (input, it, raw, cli)."""
    from PIL import Image

    labels = labels if labels is not None else load_labels()
    with Image.open(image_path) as im:
        width, height = im.size
    x = preprocess_u8(image_path)
    it = it if it is not None else make_interpreter(CORAL_MODEL)
    run(it, x)
    raw = postprocess_outputs(it)
    cli = cli_json(str(image_arg if image_arg is not None else image_path), width, height, raw, labels, threshold)
    return x, it, raw, cli


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()
