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

Both are installed by :func:`install_checkpoint_io`, which ``import netaug_det`` calls. A crash
mid-write leaves the temporary file (``.tmp_*.part``); :func:`remove_stale_parts` removes old
ones when a run starts. :func:`explain_mismatch` says what a checkpoint that does not fit a model
is, and what to do with it.
"""
import contextlib
import copyreg
import glob
import os
import os.path as osp
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

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


PART_PREFIX, PART_SUFFIX = '.tmp_', '.part'
# A temporary file younger than this may belong to a write in progress (another process).
STALE_AFTER_S = 120


def remove_stale_parts(directory: str, stale_after_s: float = STALE_AFTER_S) -> List[str]:
    """Removes the temporary files of interrupted atomic writes (``.tmp_*.part``, written by
    :class:`AtomicLocalBackend`) older than ``stale_after_s`` from ``directory``; returns their
    names. Younger ones may belong to a write in progress and stay."""
    removed = []
    now = time.time()
    for path in glob.glob(osp.join(directory, f'{PART_PREFIX}*{PART_SUFFIX}')):
        # another rank of the same run may remove it first
        with contextlib.suppress(FileNotFoundError):
            if now - osp.getmtime(path) >= stale_after_s:
                os.remove(path)
                removed.append(osp.basename(path))
    return removed


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
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=PART_PREFIX, suffix=PART_SUFFIX)
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


def shape_relation(checkpoint_shapes: dict, model_shapes: dict) -> Optional[str]:
    """'wider' / 'narrower' when every shared tensor of a mismatching checkpoint is at least as
    large / at most as large as the model's in every dimension (None otherwise)."""
    differing = [(checkpoint_shapes[k], model_shapes[k]) for k in model_shapes
                 if k in checkpoint_shapes and checkpoint_shapes[k] != model_shapes[k]]
    if not differing or any(len(a) != len(b) for a, b in differing):
        return None
    if all(x >= y for a, b in differing for x, y in zip(a, b)):
        return 'wider'
    if all(x <= y for a, b in differing for x, y in zip(a, b)):
        return 'narrower'
    return None


def load_error_detail(error: RuntimeError) -> str:
    """The first specific line of a ``load_state_dict`` error (its first line only names the
    model class), for messages that name the file and the fix."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else repr(error))


def explain_mismatch(filename: str, model: torch.nn.Module, config: Optional[str] = None) -> str:
    """What a checkpoint that does not load strictly into ``model`` is, and what to do."""
    from mmengine.runner.checkpoint import _load_checkpoint

    checkpoint = _load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    state = {key.removeprefix('module.'): value for key, value in state.items()}
    checkpoint_shapes = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, 'shape')}
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(model_shapes) - set(checkpoint_shapes))
    unexpected = sorted(set(checkpoint_shapes) - set(model_shapes))
    relation = shape_relation(checkpoint_shapes, model_shapes)
    config = config or 'this config'
    header = f'{filename} does not fit the model of {config}: '
    if not missing and not unexpected and relation == 'wider':
        return header + (
            'it is a NetAug training checkpoint (its tensors hold the wide supernet) and the '
            'model is the plain one. Test the run\'s deploy.pth instead, or export this '
            'checkpoint first: python -m netaug_det.tools.export_deployable NETAUG_CONFIG '
            f'{filename} --out deploy.pth. To resume the run, use its NetAug config.')
    if not missing and not unexpected and relation == 'narrower':
        return header + (
            'it is a plain checkpoint (e.g. deploy.pth or a baseline run) and the model is a '
            'NetAug supernet. Test it with the baseline config (the one the NetAug config '
            'inherits); to start NetAug training from a plain backbone, pass it as '
            'backbone_checkpoint=FILE instead of load_from.')
    details = []
    if missing:
        details.append(f'{len(missing)} model key(s) missing from it (e.g. {missing[:3]})')
    if unexpected:
        details.append(f'{len(unexpected)} unexpected key(s) (e.g. {unexpected[:3]})')
    mismatched = [k for k in model_shapes if k in checkpoint_shapes
                  and checkpoint_shapes[k] != model_shapes[k]]
    if mismatched:
        key = mismatched[0]
        details.append(f'{len(mismatched)} shape mismatch(es) (e.g. {key}: '
                       f'{checkpoint_shapes[key]} in the file, {model_shapes[key]} in the model)')
    return header + '; '.join(details) + (
        '. It was written for another model: use the config it was trained with. To fine-tune '
        'from the matching part on purpose, set allow_partial_load = True (load_from only).')


def pretrained_state_dict(filename: str, expected: Dict[str, torch.Size],
                          prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The tensors a module expects from a checkpoint file, checked to be all there.

    The file may be the module's own state dict or any model checkpoint holding it under
    ``prefix`` (by default ``'backbone.'`` when the file has such keys and not the module's own:
    a detector's or classifier's checkpoint initialises a backbone as it is). ``expected`` maps
    the module's tensor names to shapes; shapes are not compared here (a NetAug module takes a
    plain checkpoint's smaller tensors into its base slices).

    Raises:
        ValueError: naming the file, the keys that are missing or unexpected, and the fix.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    checkpoint = _load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    state = {key.removeprefix('module.'): value for key, value in state.items()}
    if prefix is None and not set(expected) & set(state) and any(
            key.startswith('backbone.') for key in state):
        prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else f'{prefix}.'  # 'backbone' as mmengine
        state = {key[len(prefix):]: value for key, value in state.items()
                 if key.startswith(prefix)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        found = f' under {prefix!r}' if prefix else ''
        raise ValueError(
            f'{filename} does not hold the weights of this module{found}: '
            f'{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. '
            f'{unexpected[:3]}). Pass a checkpoint of the same architecture and widen_factor '
            '(a plain backbone state dict, or a detector/classifier checkpoint with backbone.* '
            'keys); official NetAug checkpoints convert with tools/model_converters/'
            'netaug_to_mmdet.py')
    return state
