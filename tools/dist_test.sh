#!/usr/bin/env bash
# Distributed testing: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [tools/test.py args...]
exec "$(dirname "$0")/torchrun.sh" "$3" "$(dirname "$0")/test.py" "$1" "$2" "${@:4}"
