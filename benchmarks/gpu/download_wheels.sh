#!/usr/bin/env bash
# Downloads what a bare GPU machine with Python 3.12 needs to run the project into .whl/
# (run here, with PyPI access, from the repository root). See benchmarks/gpu/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/.whl"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$OUT"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$OUT" \
    mmengine==0.10.7 mmdet==3.3.0 addict termcolor terminaltables yapf platformdirs \
    importlib-metadata zipp pycocotools==2.0.8 shapely tomli six tqdm
# mmcv 2.1.0 has no wheel for recent torch: its source distribution is built there.
"$PY" -m pip download -q --no-deps --no-binary=:all: -d "$OUT" mmcv==2.1.0
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$OUT" "$ROOT"
du -sh "$OUT"
