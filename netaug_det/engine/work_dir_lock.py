"""One training per work dir: an exclusive ``flock`` on ``<work_dir>/.train.lock``, held for the
run.

Two trainings into one work dir would overwrite each other's checkpoints and
``last_checkpoint``. The lock is the kernel's: it ends with the process that holds it, so a
killed run leaves no stale lock (the file stays and names the last holder). ``flock`` works
between processes of one machine and on local file systems; on a network file system it
depends on the file system and its mount options.
"""
import json
import os
import os.path as osp
import socket
import sys
import time
from contextlib import contextmanager
from typing import Iterator, Optional

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

from ..utils.cli import RunRefusedError

LOCK_NAME = '.train.lock'


def _holder() -> dict:
    return dict(pid=os.getpid(), host=socket.gethostname(),
                started=time.strftime('%Y-%m-%d %H:%M:%S %Z'), command=' '.join(sys.argv))


def _describe(lock_path: str) -> str:
    try:
        with open(lock_path) as f:
            holder = json.load(f)
        return (f"pid {holder['pid']} on host {holder['host']}, started {holder['started']}: "
                f"{holder['command']}")
    except (OSError, ValueError, KeyError):
        return 'a process that has not written its name yet'


@contextmanager
def work_dir_lock(work_dir: str) -> Iterator[Optional[str]]:
    """Holds the training lock of ``work_dir`` (created if missing) inside the ``with`` block;
    yields the lock file's path (None without ``fcntl``).

    Raises:
        RunRefusedError: another process holds it; the message names that process (pid, host,
            start time, command) and the fix.
    """
    if fcntl is None:
        yield None
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunRefusedError(
                f'another training is running in the work dir {work_dir} ({_describe(path)}); '
                'two runs in one work dir overwrite each other\'s checkpoints. Wait for it to '
                'finish or stop it, or train into another directory (--work-dir DIR)') from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder()).encode())
        yield path
    finally:
        os.close(fd)  # releases the lock
