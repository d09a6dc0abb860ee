#!/usr/bin/env bash
# Creates (or verifies) the project environment in .venv/ at the checkout root.
#
# Idempotent: when .venv/ already matches requirements/*.txt and setup.py it returns in seconds.
# Writes only to .venv/, the checkout (the editable install) and one cache directory outside the
# checkout, NETAUG_DET_CACHE (default ~/.cache/netaug_det), which keeps the mmcv wheel built here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY_BIN="${NETAUG_DET_PYTHON:-python3.11}"
CACHE="${NETAUG_DET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netaug_det}"
PINNED="$ROOT/requirements/pinned.txt"
TEST_REQS="$ROOT/requirements/tests.txt"
BUILD_REQS="$ROOT/requirements/build.txt"
# mmcv 2.1.0 ships no wheel for this torch; these flags build its CPU ops in about 12 minutes on
# 2 cores (half the default -O3 -g build) with NMS as fast, and C++20 is what torch 2.14 needs.
MMCV_CFLAGS="${NETAUG_DET_MMCV_CFLAGS:--O1 -g0}"
MMCV_SDIST_SHA256="d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f"

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pin() { grep -E "^$1==" "$PINNED" | cut -d= -f3; }

stamp_of() {
    cat "$PINNED" "$TEST_REQS" "$BUILD_REQS" "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
}

STAMP_FILE="$VENV/.netaug_det_stamp"
STAMP="$(stamp_of)"
if [[ -x "$VENV/bin/python" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP" ]]; then
    exit 0
fi

command -v "$PY_BIN" >/dev/null || { echo "setup_env: $PY_BIN not found; install Python 3.11 or set NETAUG_DET_PYTHON" >&2; exit 1; }
START=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $($PY_BIN --version)"
    "$PY_BIN" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
pip_install() {  # pip, minus its warnings about local index folders that lack a package
    local status=0
    "${PIP[@]}" install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) || status=$?
    return "$status"
}

log "installing torch $(pin torch) + torchvision $(pin torchvision) and build tools (several GB, a few minutes)"
pip_install -c "$PINNED" "torch==$(pin torch)" "torchvision==$(pin torchvision)" \
    "numpy==$(pin numpy)" -r "$BUILD_REQS"

TORCH_VER="$(pin torch)"
MMCV_VER="$(pin mmcv)"
FLAGS_KEY="$(printf '%s' "$MMCV_CFLAGS c++20" | sha256sum | cut -c1-8)"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VER-torch$TORCH_VER-cp311-cpu-$FLAGS_KEY"

build_mmcv_wheel() {
    local work
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' RETURN
    log "mmcv $MMCV_VER: no cached wheel in $WHEEL_DIR; building from the PyPI source"
    "$VENV/bin/python" - "$MMCV_VER" "$MMCV_SDIST_SHA256" "$work/mmcv.tar.gz" <<'PY'
import hashlib, re, sys, urllib.request
version, sha256, dest = sys.argv[1:]
index = urllib.request.urlopen('https://pypi.org/simple/mmcv/', timeout=120).read().decode()
url = re.search(rf'href="([^"]*mmcv-{re.escape(version)}\.tar\.gz)[^"]*"', index).group(1)
data = urllib.request.urlopen(url, timeout=600).read()
if hashlib.sha256(data).hexdigest() != sha256:
    sys.exit(f'mmcv sdist hash mismatch for {url}')
open(dest, 'wb').write(data)
PY
    tar -xzf "$work/mmcv.tar.gz" -C "$work"
    local src="$work/mmcv-$MMCV_VER"
    grep -q -- "-std=c++17" "$src/setup.py" || { echo "setup_env: mmcv setup.py layout changed" >&2; exit 1; }
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    log "compiling mmcv ops with CFLAGS='$MMCV_CFLAGS' -std=c++20 (about 12 minutes on 2 cores; progress every 30 s)"
    (
        cd "$src"
        export MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
        export CFLAGS="$MMCV_CFLAGS" CXXFLAGS="$MMCV_CFLAGS"
        "$VENV/bin/python" setup.py bdist_wheel -d "$work/dist" > "$work/build.log" 2>&1 &
        local builder=$!
        while kill -0 "$builder" 2>/dev/null; do
            sleep 30
            log "mmcv build: $(grep -oE '^\[[0-9]+/[0-9]+\]' "$work/build.log" | tail -n 1) compiled"
        done
        wait "$builder" || { tail -n 40 "$work/build.log" >&2; exit 1; }
    )
    ls "$work"/dist/mmcv-*.whl >/dev/null 2>&1 || { echo "setup_env: mmcv build failed (see docs/install.md, troubleshooting)" >&2; exit 1; }
    mkdir -p "$WHEEL_DIR"
    local wheel
    wheel="$(ls "$work"/dist/mmcv-*.whl)"
    cp "$wheel" "$WHEEL_DIR/.partial" && mv "$WHEEL_DIR/.partial" "$WHEEL_DIR/$(basename "$wheel")"
    log "cached $(basename "$wheel") in $WHEEL_DIR"
}

if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    build_mmcv_wheel
else
    log "mmcv $MMCV_VER: reusing cached wheel from $WHEEL_DIR"
fi

log "installing mmcv, mmengine, mmdet, pycocotools, onnx + onnxruntime and test tools"
pip_install -c "$PINNED" "$WHEEL_DIR"/mmcv-*.whl "mmengine==$(pin mmengine)" \
    "mmdet==$(pin mmdet)" "opencv-python==$(pin opencv-python)" "pycocotools==$(pin pycocotools)" \
    "matplotlib==$(pin matplotlib)" "scipy==$(pin scipy)" "onnx==$(pin onnx)" \
    "onnxscript==$(pin onnxscript)" "onnx-ir==$(pin onnx-ir)" "onnxruntime==$(pin onnxruntime)" \
    "submitit==$(pin submitit)" "cloudpickle==$(pin cloudpickle)" -r "$TEST_REQS"
log "installing netaug_det (editable)"
pip_install --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import mmcv.ops, mmdet, netaug_det, onnxruntime; print('mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| onnxruntime', onnxruntime.__version__, '| netaug_det', netaug_det.__version__)"
echo "$STAMP" > "$STAMP_FILE"
log "environment ready in $(( $(date +%s) - START )) s"
