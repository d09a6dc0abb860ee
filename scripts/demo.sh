#!/usr/bin/env bash
# The README's main command: sets up .venv/ when needed, then runs the demo job
# (demo data -> baseline and NetAug YOLOv3-MobileNetV2-w0.35 on CPU -> side-by-side table).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec .venv/bin/python tools/run_demo.py "$@"
