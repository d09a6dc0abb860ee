"""Exclusive locks that name their holder: a ``flock`` on a file (the kernel's, so it ends with
the process that holds it, however it ends) and a JSON record of that process in the file.

``flock`` works between processes of one machine and on local file systems; on a network file
system it depends on the file system and its mount options.
"""
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None


def _describe_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode())
        return (f"pid {holder['pid']} on host {holder['host']}, started {holder['started']}: "
                f"{holder['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return 'a process that has not written its name yet'


@contextmanager
def exclusive_lock(path: str, busy: Callable[[str], Exception]) -> Iterator[Optional[str]]:
    """Holds the lock of ``path`` (created if missing) inside the ``with`` block, with this
    process recorded in it; yields ``path`` (None without ``fcntl``: no lock).

    Raises:
        Exception: ``busy(holder)`` when another process (or another lock in this one) holds it;
            ``holder`` describes it (pid, host, start time, command).
    """
    if fcntl is None:
        yield None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(_describe_holder(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                                      started=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                                      command=' '.join(sys.argv))).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def lock_holder(path: str) -> Optional[str]:
    """The description of the process holding ``path``'s lock, or None when none holds it."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe_holder(fd)
        return None
    finally:
        os.close(fd)
