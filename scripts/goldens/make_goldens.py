#!/usr/bin/env python3
"""Regenerate every committed golden file under tests/goldens/ (and tests/data/crops/).

Deterministic: same inputs + pinned versions (scripts/requirements.txt) -> same bytes.
Run from anywhere:  python3 scripts/goldens/make_goldens.py [--shared /work/shared]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from preprocess import load_rgb8, resize_bilinear_v1, sha256, u8_to_f32, _self_test  # noqa: E402
import reference as ref  # noqa: E402
import model_summary  # noqa: E402

ROOT = ref.ROOT
SAMPLES = ROOT / "models" / "samples"
CROPS_DIR = ROOT / "tests" / "data" / "crops"
CORAL_OUT = ROOT / "tests" / "goldens" / "coral"
OBJ_OUT = ROOT / "tests" / "goldens" / "objectron"
OBJ_MODEL_NAME = "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"

# 300x300 crops (left, top) of /work/shared/images sources that contain the object.
# motorcycle_left.png is deliberately absent: it has no licence for shipping.
CROPS = {
    "astronaut_crop": ("astronaut.png", (0, 0)),     # face + upper body of the astronaut
    "chelsea_crop": ("chelsea.png", (75, 0)),        # the cat's face
    "coffee_crop": ("coffee.png", (140, 10)),        # cup + saucer
    "horse_crop": ("horse.png", (100, 14)),          # horse silhouette (RGBA source)
}
# tensors whose raw bytes are stored (<name>.t<index>.bin): see README
BIN_ALL = [250, 258, 259]          # box encodings (+ the concat feeding the Squeeze), logistic scores
BIN_FIRST_ONLY = [257]             # concat of class logits feeding LOGISTIC: first image only (size)
OBJ_IMAGES = ["astronaut", "coffee"]
# extra JPEGs only hashed in decode.json (not shipped)
DECODE_EXTRA = ["hubble_deep_field.jpg", "rocket.jpg"]


def rel(p: Path) -> str:
    return str(Path(p).resolve().relative_to(ROOT))


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def make_crops(shared: Path) -> None:
    CROPS_DIR.mkdir(parents=True, exist_ok=True)
    for name, (src, (left, top)) in CROPS.items():
        out = CROPS_DIR / f"{name}.png"
        srcp = shared / "images" / src
        if not srcp.exists():
            print(f"  {srcp} missing: keeping committed {rel(out)}")
            continue
        rgb = load_rgb8(srcp)
        crop = np.ascontiguousarray(rgb[top:top + 300, left:left + 300])
        assert crop.shape == (300, 300, 3), (name, crop.shape)
        Image.fromarray(crop, "RGB").save(out, format="PNG", optimize=False, compress_level=9)
        assert np.array_equal(load_rgb8(out), crop)


def image_list():
    imgs = [(p.stem, p) for p in sorted(SAMPLES.iterdir()) if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    imgs += [(name, CROPS_DIR / f"{name}.png") for name in CROPS]
    return imgs


def quant_dict(d) -> dict:
    qp = d["quantization_parameters"]
    scale, zp = d["quantization"]
    return {
        "scale": ref.f32(scale),
        "zero_point": int(zp),
        "scales": [ref.f32(s) for s in qp["scales"]],
        "zero_points": [int(z) for z in qp["zero_points"]],
        "quantized_dimension": int(qp["quantized_dimension"]),
    }


def tensors_json(it, name: str, x: np.ndarray) -> dict:
    from ai_edge_litert import __version__ as litert_version  # type: ignore

    tensors, errors = [], []
    for d in sorted(it.get_tensor_details(), key=lambda d: d["index"]):
        rec = {
            "index": int(d["index"]),
            "name": d["name"],
            "shape": [int(s) for s in d["shape"]],
            "shape_signature": [int(s) for s in d.get("shape_signature", d["shape"])],
            "dtype": np.dtype(d["dtype"]).name,
            "quantization": quant_dict(d),
        }
        try:
            a = it.get_tensor(d["index"])
            a = np.ascontiguousarray(a)
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            b = a.tobytes()
            rec["nbytes"] = len(b)
            rec["sha256"] = ref.sha256_bytes(b)
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {e}"
            errors.append(rec["index"])
        tensors.append(rec)
    return {
        "image": name,
        "model": rel(ref.CORAL_MODEL),
        "model_sha256": ref.sha256_bytes(ref.CORAL_MODEL.read_bytes()),
        "litert": litert_version,
        "op_resolver": "BUILTIN_REF",
        "num_threads": 1,
        "input_sha256": sha256(x),
        "unreadable_tensors": errors,
        "tensors": tensors,
    }


def detections_json(image_path: Path, raw: dict, cli: dict) -> dict:
    n = int(raw["count"][0])
    labels = ref.load_labels()
    all_rows = []
    for i in range(len(raw["scores"])):
        r = ref.detection_record(labels, raw["classes"][i], raw["scores"][i], raw["boxes"][i],
                                 cli["width"], cli["height"])
        r["row"] = i
        r["valid"] = i < n
        r["box_norm_yxyx"] = [ref.f32(v) for v in raw["boxes"][i]]
        all_rows.append(r)
    return {
        "raw": {
            "count": ref.f32(raw["count"][0]),
            "boxes": [[ref.f32(v) for v in row] for row in raw["boxes"]],
            "classes": [ref.f32(v) for v in raw["classes"]],
            "scores": [ref.f32(v) for v in raw["scores"]],
            "boxes_bits": [[ref.f32_bits(v) for v in row] for row in raw["boxes"]],
            "classes_bits": [ref.f32_bits(v) for v in raw["classes"]],
            "scores_bits": [ref.f32_bits(v) for v in raw["scores"]],
            "count_bits": ref.f32_bits(raw["count"][0]),
        },
        "threshold": ref.DEFAULT_THRESHOLD,
        "cli": cli,
        "all": all_rows,
    }


def make_coral(images) -> dict:
    CORAL_OUT.mkdir(parents=True, exist_ok=True)
    labels = ref.load_labels()
    decode = {}
    bins_total = 0
    for k, (name, path) in enumerate(images):
        x, it, raw, cli = ref.coral_reference(path, rel(path), labels)
        # second fresh run must be bit-identical (determinism of the reference kernels)
        _, it2, raw2, _ = ref.coral_reference(path, rel(path), labels)
        for key in raw:
            assert raw[key].tobytes() == raw2[key].tobytes(), (name, key)
        (CORAL_OUT / f"{name}.input.u8").write_bytes(x.tobytes())
        write_json(CORAL_OUT / f"{name}.tensors.json", tensors_json(it, name, x))
        write_json(CORAL_OUT / f"{name}.detections.json", detections_json(path, raw, cli))
        for t in BIN_ALL + (BIN_FIRST_ONLY if k == 0 else []):
            b = np.ascontiguousarray(it.get_tensor(t)).tobytes()
            (CORAL_OUT / f"{name}.t{t}.bin").write_bytes(b)
            bins_total += len(b)
        rgb = load_rgb8(path)
        with Image.open(path) as im:
            mode, fmt = im.mode, im.format
        decode[name] = {
            "path": rel(path), "format": fmt, "source_mode": mode,
            "width": rgb.shape[1], "height": rgb.shape[0],
            "rgb8_sha256": sha256(rgb),
            "resized_300x300_sha256": sha256(resize_bilinear_v1(rgb, 300, 300)),
        }
        print(f"  coral {name}: count={int(raw['count'][0])} cli={[(d['label'], d['score']) for d in cli['detections']]}")
    print(f"  coral .bin total: {bins_total} bytes")
    return decode


def make_decode_json(decode: dict, shared: Path) -> None:
    import PIL
    from PIL import features

    extra = {}
    for fn in DECODE_EXTRA:
        p = shared / "images" / fn
        if not p.exists():
            continue
        rgb = load_rgb8(p)
        extra[fn] = {
            "path": f"shared/images/{fn}", "width": rgb.shape[1], "height": rgb.shape[0],
            "rgb8_sha256": sha256(rgb),
            "resized_300x300_sha256": sha256(resize_bilinear_v1(rgb, 300, 300)),
        }
    write_json(CORAL_OUT / "decode.json", {
        "decoder": f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}, libjpeg API {features.version('jpg')}, zlib {features.version('zlib')})",
        "rgb8": "PIL Image.convert('RGB') row-major HxWx3 bytes (alpha dropped, gray replicated)",
        "resize": "spotter bilinear v1 to 300x300, uint8 HxWx3 bytes (== <name>.input.u8)",
        "images": decode,
        "shared_only": extra,
    })


def make_objectron(shared: Path) -> None:
    model = shared / "models" / OBJ_MODEL_NAME
    if not model.exists():
        print(f"  {model} missing: skipping objectron goldens")
        return
    OBJ_OUT.mkdir(parents=True, exist_ok=True)
    index = {"model": OBJ_MODEL_NAME, "model_sha256": ref.sha256_bytes(model.read_bytes()),
             "stored_resolver": "BUILTIN_REF", "images": {}}
    for name in OBJ_IMAGES:
        path = SAMPLES / (name + ".png")
        x = u8_to_f32(resize_bilinear_v1(load_rgb8(path), 300, 300)[None])
        assert x.dtype == np.float32
        res = {}
        for label, reference in (("BUILTIN_REF", True), ("default", False)):
            it = ref.make_interpreter(model, reference=reference, preserve=False)
            ref.run(it, x)
            outs = {d["name"]: np.array(it.get_tensor(d["index"])) for d in it.get_output_details()}
            res[label] = (outs["raw_outputs/box_encodings"], outs["raw_outputs/class_predictions"])
        boxes, logits = res["BUILTIN_REF"]
        (OBJ_OUT / f"{name}.input.f32").write_bytes(x.astype("<f4").tobytes())
        (OBJ_OUT / f"{name}.boxes.f32").write_bytes(boxes.astype("<f4").tobytes())
        (OBJ_OUT / f"{name}.logits.f32").write_bytes(logits.astype("<f4").tobytes())
        cmp = {}
        for i, key in enumerate(("boxes", "logits")):
            a, b = res["BUILTIN_REF"][i].astype(np.float64), res["default"][i].astype(np.float64)
            cmp[key] = {
                "bit_identical": res["BUILTIN_REF"][i].tobytes() == res["default"][i].tobytes(),
                "max_abs_diff": float(np.max(np.abs(a - b))),
                "n_diff": int(np.sum(res["BUILTIN_REF"][i] != res["default"][i])),
                "n": int(a.size),
            }
        index["images"][name] = {
            "source": rel(path),
            "input_sha256": sha256(x),
            "boxes_shape": list(boxes.shape), "boxes_sha256": sha256(boxes),
            "logits_shape": list(logits.shape), "logits_sha256": sha256(logits),
            "default_vs_builtin_ref": cmp,
        }
        print(f"  objectron {name}: default vs BUILTIN_REF {cmp}")
    write_json(OBJ_OUT / "index.json", index)
    (OBJ_OUT / "model_summary.txt").write_text(model_summary.summarize(str(model)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("/work/shared"),
                    help="shared/ folder (images/ and models/) ; default /work/shared")
    args = ap.parse_args()
    _self_test()
    print("crops ...")
    make_crops(args.shared)
    print("coral (uint8) ...")
    decode = make_coral(image_list())
    make_decode_json(decode, args.shared)
    (CORAL_OUT / "model_summary.txt").write_text(model_summary.summarize(str(ref.CORAL_MODEL)))
    print("objectron (float) ...")
    make_objectron(args.shared)
    print("done")


if __name__ == "__main__":
    main()
