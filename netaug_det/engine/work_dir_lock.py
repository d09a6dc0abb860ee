"""One training per work dir: an exclusive ``flock`` on ``<work_dir>/.train.lock``, held for the
run.

Two trainings into one work dir would overwrite each other's checkpoints and
``last_checkpoint``. The lock is the kernel's: it ends with the process that holds it, so a
killed run leaves no stale lock (the file stays and names the last holder;
:func:`netaug_det.utils.locks.exclusive_lock`).
"""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Optional

from ..utils.cli import RunRefusedError
from ..utils.locks import exclusive_lock

LOCK_NAME = '.train.lock'


@contextmanager
def work_dir_lock(work_dir: str) -> Iterator[Optional[str]]:
    """Holds the training lock of ``work_dir`` (created if missing) inside the ``with`` block;
    yields the lock file's path (None without ``fcntl``).

    Raises:
        RunRefusedError: another process holds it; the message names that process (pid, host,
            start time, command) and the fix.
    """
    os.makedirs(work_dir, exist_ok=True)

    def busy(holder: str) -> RunRefusedError:
        return RunRefusedError(
            f'another training is running in the work dir {work_dir} ({holder}); two runs in '
            'one work dir overwrite each other\'s checkpoints. Wait for it to finish or stop it, '
            'or train into another directory (--work-dir DIR)')

    with exclusive_lock(osp.join(work_dir, LOCK_NAME), busy) as path:
        yield path
