#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py args...]
exec "$(dirname "$0")/torchrun.sh" "$2" "$(dirname "$0")/train.py" "$1" "${@:3}"
