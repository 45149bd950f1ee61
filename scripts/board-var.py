#!/usr/bin/env python3
"""Print one value of a board.toml: `board-var.py boards/rpi4/board.toml build.target`.

Used by the Makefile (Python 3.11+ has tomllib). Lists print space-separated; a missing key
prints nothing and exits 0 (the Makefile decides what is required); a missing file is an error.
"""
import sys
import tomllib

if len(sys.argv) != 3:
    sys.exit("usage: board-var.py BOARD_TOML KEY.PATH")
path, key = sys.argv[1], sys.argv[2]
try:
    with open(path, "rb") as f:
        value = tomllib.load(f)
except FileNotFoundError:
    sys.exit(f"board-var: no board file {path} (boards/: {', '.join(sorted(__import__('os').listdir('boards')))})")
except tomllib.TOMLDecodeError as e:
    sys.exit(f"board-var: {path}: {e}")
for part in key.split("."):
    if not isinstance(value, dict) or part not in value:
        sys.exit(0)
    value = value[part]
if isinstance(value, list):
    print(" ".join(str(v) for v in value))
elif isinstance(value, bool):
    print("true" if value else "false")
else:
    print(value)
