#!/usr/bin/env bash
# The README's main command: sets up .venv/ when needed, then runs the demo job
# (demo data -> baseline and NetAug YOLOv3-MobileNetV2-w0.35 on CPU -> side-by-side table).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
# mmengine imports pkg_resources, whose deprecation notice (setuptools 80, needed by the mmcv
# build) would otherwise repeat in every training log.
export PYTHONWARNINGS="ignore:pkg_resources is deprecated as an API:UserWarning"
exec .venv/bin/python tools/run_demo.py "$@"
