#!/usr/bin/env bash
# The README's test command: sets up .venv/ when needed, then runs the whole test suite on every
# core (pytest-xdist). `scripts/test.sh --fast` leaves out the tests marked slow (training,
# experiment tools, child processes); other arguments go to pytest. See docs/testing.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
ARGS=()
for arg in "$@"; do
    if [[ "$arg" == --fast ]]; then ARGS+=(-m "not slow"); else ARGS+=("$arg"); fi
done
# one worker more than cores: the experiment-tool tests spend part of their time waiting for
# their child processes, which left the cores idle about 12% of the suite (docs/testing.md).
# The cores are counted without OMP_NUM_THREADS, which GNU nproc would report instead.
CORES="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
WORKERS="${TEST_WORKERS:-$(( CORES + 1 ))}"
# one intra-op thread per worker: the workers (and the processes they start) share the cores
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest tests -n "$WORKERS" --dist loadgroup "${ARGS[@]}"
