#!/usr/bin/env python3
"""Compare `spotter detect --json` against LiteRT BUILTIN_REF on the same images.

Usage: python3 scripts/goldens/compare_detect.py SPOTTER_BIN IMAGE [IMAGE...]

Runs `SPOTTER_BIN detect --json --threshold 0.3 IMAGE...` (SPOTTER_BIN may be a
command line, e.g. "cargo run -q --release --", it is split with shlex), then runs
the Coral uint8 model with LiteRT's reference kernels on the same images with the
same preprocessing (scripts/goldens/preprocess.py), and checks per image:
  * width/height equal;
  * every reference detection with score >= threshold has a spotter detection with
    the same label, |score diff| < 1e-6 and every box coordinate within 0.01 px;
  * no extra spotter detection with score >= threshold.
spotter's stdout may be one JSON object (single image), a JSON array of objects,
or several objects one after another (JSON Lines). Exit 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference as ref  # noqa: E402


def parse_spotter_output(text: str) -> list[dict]:
    text = text.strip()
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        pass
    dec, pos, out = json.JSONDecoder(), 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = dec.raw_decode(text, pos)
        out.extend(obj if isinstance(obj, list) else [obj])
    return out


def match_image(ref_cli: dict, got: dict, threshold: float, score_tol: float, box_tol: float) -> list[str]:
    errs = []
    for key in ("width", "height"):
        if got.get(key) != ref_cli[key]:
            errs.append(f"{key}: spotter {got.get(key)!r} != reference {ref_cli[key]}")
    cands = [d for d in got.get("detections", []) if float(d.get("score", -1)) >= threshold]
    used = set()
    for r in ref_cli["detections"]:
        best, best_err = None, None
        for j, d in enumerate(cands):
            if j in used or d.get("label") != r["label"]:
                continue
            if abs(float(d["score"]) - r["score"]) >= score_tol:
                continue
            box = d.get("box")
            if not isinstance(box, list) or len(box) != 4:
                continue
            e = max(abs(float(a) - b) for a, b in zip(box, r["box"]))
            if best_err is None or e < best_err:
                best, best_err = j, e
        if best is None or best_err >= box_tol:
            near = f" (closest box error {best_err:.6g} px)" if best is not None else ""
            errs.append(f"missing: {r['label']} score={r['score']!r} box={[round(v, 4) for v in r['box']]}{near}")
        else:
            used.add(best)
            if cands[best].get("class_id", r["class_id"]) != r["class_id"]:
                errs.append(f"class_id: spotter {cands[best].get('class_id')} != reference {r['class_id']} ({r['label']})")
    for j, d in enumerate(cands):
        if j not in used:
            errs.append(f"extra: {d.get('label')} score={d.get('score')!r} box={d.get('box')}")
    return errs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spotter_bin")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--threshold", type=float, default=ref.DEFAULT_THRESHOLD)
    ap.add_argument("--score-tol", type=float, default=1e-6)
    ap.add_argument("--box-tol", type=float, default=0.01)
    args = ap.parse_args()

    cmd = shlex.split(args.spotter_bin) + ["detect", "--json", "--threshold", repr(args.threshold)] + args.images
    print("running:", shlex.join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"FAIL: cannot run spotter: {e}")
        return 1
    if proc.returncode != 0:
        print(f"FAIL: spotter exited {proc.returncode}\n{proc.stderr}")
        return 1
    try:
        outs = parse_spotter_output(proc.stdout)
    except json.JSONDecodeError as e:
        print(f"FAIL: spotter output is not JSON: {e}\n{proc.stdout[:2000]}")
        return 1
    by_path = {o.get("image"): o for o in outs if isinstance(o, dict)}

    labels = ref.load_labels()
    it = ref.make_interpreter(ref.CORAL_MODEL, preserve=False)
    failed = 0
    for k, img in enumerate(args.images):
        _, _, _, ref_cli = ref.coral_reference(img, img, labels, args.threshold, it=it)
        got = by_path.get(img)
        if got is None and len(outs) == len(args.images):
            got = outs[k]
        if got is None:
            errs = ["no spotter output for this image"]
        else:
            errs = match_image(ref_cli, got, args.threshold, args.score_tol, args.box_tol)
        status = "OK  " if not errs else "FAIL"
        summary = ", ".join("%s %.4f" % (d["label"], d["score"]) for d in ref_cli["detections"])
        print(f"{status} {img}: reference {len(ref_cli['detections'])} detection(s) [{summary}]")
        for e in errs:
            print("       " + e)
        failed += bool(errs)
    print(f"{len(args.images) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
