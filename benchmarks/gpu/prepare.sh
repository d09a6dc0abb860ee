#!/usr/bin/env bash
# On the bare GPU machine, from the repository root with .whl/ carried: installs the wheels into
# /tmp/site and builds mmcv's CPU ops against the machine's torch. See benchmarks/gpu/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SITE=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" \
    $(ls "$ROOT"/.whl/*.whl)
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
work="$(mktemp -d)"
tar -xzf "$ROOT"/.whl/mmcv-2.1.0.tar.gz -C "$work"
sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-2.1.0/setup.py"
(cd "$work/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
    python3 -m pip install -q --no-deps --no-build-isolation --target "$SITE" .)
python3 -c "import torch, mmcv, mmcv.ops, mmdet, netaug_det; print('torch', torch.__version__, \
'| cuda', torch.cuda.get_device_name(), '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__)"
