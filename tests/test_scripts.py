"""scripts/test.sh, the README's test command: what pytest command it runs. The script runs in a
copy of the checkout's scripts/ whose .venv/bin/python only prints its arguments (the real
set-up is skipped: the copy's stamp matches, as setup_env.sh writes it)."""
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT

STAMPED = ('requirements/pinned.txt', 'requirements/tests.txt', 'requirements/build.txt',
           'setup.py', 'scripts/setup_env.sh')  # what setup_env.sh's stamp_of() hashes


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what scripts/test.sh reads, with a ready .venv whose python echoes its args."""
    for name in STAMPED + ('scripts/test.sh', ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(REPO_ROOT, name), tmp_path / name)
    python = tmp_path / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "OMP_NUM_THREADS=$OMP_NUM_THREADS $*"\n')
    python.chmod(0o755)
    stamp = hashlib.sha256(b''.join((tmp_path / name).read_bytes() for name in STAMPED))
    (tmp_path / '.venv' / '.netaug_det_stamp').write_text(stamp.hexdigest()[:16] + '\n')
    return tmp_path


def pytest_command(checkout: Path, *args: str, **env: str) -> str:
    environ = {key: value for key, value in os.environ.items()
               if key not in ('OMP_NUM_THREADS', 'OMP_THREAD_LIMIT', 'TEST_WORKERS')}
    return subprocess.run(['bash', str(checkout / 'scripts' / 'test.sh'), *args],
                          env=dict(environ, **env), capture_output=True, text=True,
                          check=True).stdout.strip()


def test_one_worker_more_than_cores_whatever_omp_num_threads_says(checkout):
    """GNU nproc reports $OMP_NUM_THREADS when it is set: the workers must not follow it."""
    workers = len(os.sched_getaffinity(0)) + 1
    expected = f'-m pytest tests -n {workers} --dist loadgroup'
    assert pytest_command(checkout) == f'OMP_NUM_THREADS=1 {expected}'
    assert pytest_command(checkout, OMP_NUM_THREADS='1') == f'OMP_NUM_THREADS=1 {expected}'
    assert pytest_command(checkout, OMP_NUM_THREADS='3', OMP_THREAD_LIMIT='1') == \
        f'OMP_NUM_THREADS=3 {expected}'
    assert pytest_command(checkout, TEST_WORKERS='5').endswith('-n 5 --dist loadgroup')


def test_fast_selects_the_tests_not_marked_slow(checkout):
    assert pytest_command(checkout, '--fast', '-k', 'stats').endswith(
        '--dist loadgroup -m not slow -k stats')
