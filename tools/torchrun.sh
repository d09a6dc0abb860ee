#!/usr/bin/env bash
# Runs a netaug_det tool under torchrun with --launcher pytorch: tools/torchrun.sh NUM_PROCS TOOL [args...]
# Used by dist_train.sh / dist_test.sh, from a checkout (tools/) or the installed package
# (netaug_det/.mim/tools/). Python: $PYTHON if set, else the checkout's .venv/bin/python when there
# is one, else python (python3) on PATH (conda, system or any virtual environment). Multi-node: set
# NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node. Without GPUs mmengine uses the gloo
# backend (2 processes on a 2-core machine work).
NPROCS=$1
TOOL=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$PYTHON" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"
    elif command -v python >/dev/null; then PYTHON=python
    else PYTHON=python3; fi
fi
# a checkout's package first on the path; an installed package is found as it is
if [ -d "$ROOT/netaug_det" ]; then export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"; fi

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROCS" --master_port="${PORT:-29500}" \
    "$TOOL" "${@:3}" --launcher pytorch
