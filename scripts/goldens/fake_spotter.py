#!/usr/bin/env python3
"""Stand-in for `spotter detect --json` built on the LiteRT reference (tests compare_detect.py).

python3 scripts/goldens/fake_spotter.py detect --json --threshold 0.3 IMAGE...
Prints one JSON object per line. --perturb makes it drift (to see compare_detect fail).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference as ref  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("cmd", choices=["detect"])
ap.add_argument("--json", action="store_true")
ap.add_argument("--threshold", type=float, default=0.3)
ap.add_argument("--perturb", action="store_true")
ap.add_argument("images", nargs="+")
a = ap.parse_args()
it = ref.make_interpreter(ref.CORAL_MODEL, preserve=False)
for img in a.images:
    _, _, _, cli = ref.coral_reference(img, img, threshold=a.threshold, it=it)
    if a.perturb and cli["detections"]:
        cli["detections"][0]["box"][0] += 0.02
    print(json.dumps(cli))
