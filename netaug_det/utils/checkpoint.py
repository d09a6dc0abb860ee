"""Checkpoint I/O for mmengine 0.10.7 on torch>=2.6: safe loading and atomic saving.

Loading: torch>=2.6 unpickles checkpoints with ``weights_only=True``, which refuses the few
non-tensor types mmengine writes into its own checkpoints (the message hub's ``HistoryBuffer``
and the numpy arrays inside it), so ``--resume``, ``load_from``, ``tools/test.py CKPT`` and
``Pretrained`` init all fail out of the box. Instead of turning the restricted unpickler off
(``weights_only=False`` would execute arbitrary code from any file), this module adds exactly
those types to torch's allow-list (:func:`torch.serialization.add_safe_globals`). Loading stays
restricted: a file that needs any other global is still refused by torch. By default a
``HistoryBuffer`` pickles its statistics functions, which unpickle through ``getattr`` (a global
too powerful to allow-list); it is therefore pickled from its data alone
(``HistoryBuffer(log_history, count_history, max_length)``, registered with :mod:`copyreg`), the
form in which netaug_det writes checkpoints.

Saving: mmengine's local backend writes checkpoints in place, so a crash mid-write leaves a
truncated ``epoch_N.pth`` that ``--resume`` then picks up. :class:`AtomicLocalBackend` writes to
a temporary file in the same directory and renames it over the target (``os.replace``), so a
reader only ever sees a complete old file or a complete new one.

Both are installed by :func:`install_checkpoint_io`, which ``import netaug_det`` calls.
"""
import copyreg
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer


def mmengine_checkpoint_globals() -> List[Callable]:
    """Non-tensor globals found in checkpoints written by mmengine's Runner."""
    numpy_dtypes = [type(np.dtype(name)) for name in ('float64', 'float32', 'int64', 'int32')]
    return [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        *numpy_dtypes,
    ]


def reduce_history_buffer(buffer: HistoryBuffer) -> Tuple[type, tuple]:
    """Pickles a ``HistoryBuffer`` as its constructor call on plain arrays."""
    return HistoryBuffer, (buffer._log_history, buffer._count_history, buffer.max_length)


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put``/``put_text`` (temp file + rename)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        self._write_atomic(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        self._write_atomic(obj.encode(encoding), filepath)

    @staticmethod
    def _write_atomic(data: bytes, filepath: Union[str, Path]) -> None:
        directory = osp.dirname(osp.abspath(filepath))
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp_', suffix='.part')
        try:
            os.fchmod(fd, 0o666 & ~_current_umask())  # mkstemp creates files as 0600
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, filepath)
        except BaseException:
            if osp.exists(tmp_path):
                os.remove(tmp_path)
            raise


def install_checkpoint_io() -> None:
    """Allow-lists mmengine's checkpoint types and makes local writes atomic (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    copyreg.pickle(HistoryBuffer, reduce_history_buffer)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
