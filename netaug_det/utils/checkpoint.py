"""Checkpoint I/O for mmengine 0.10.7 on torch>=2.6: safe loading and atomic saving.

Loading: torch>=2.6 unpickles checkpoints with ``weights_only=True``, which refuses the few
non-tensor types mmengine writes into its own checkpoints (the message hub's ``HistoryBuffer``
and the numpy arrays inside it), so ``--resume``, ``load_from``, ``tools/test.py CKPT`` and
``Pretrained`` init all fail out of the box. Instead of turning the restricted unpickler off
(``weights_only=False`` would execute arbitrary code from any file), this module adds exactly
those types to torch's allow-list (:func:`torch.serialization.add_safe_globals`): the ones a
checkpoint of a plain mmengine / mmdet run holds (:func:`mmengine_checkpoint_globals`), such as
``argparse.Namespace`` in a ``meta`` and numpy arrays and scalars under numpy 1 and 2 names.
Pickle protocol 2 (``torch.save``'s) writes a method such as ``HistoryBuffer.mean`` as
``getattr(HistoryBuffer, 'mean')``; ``builtins.getattr`` is therefore allow-listed as
:func:`restricted_getattr`, which returns only the public functions of allow-listed classes and
refuses anything else. Loading stays restricted: a file that needs any other global is refused
with a message naming the file and the global. netaug_det itself pickles a ``HistoryBuffer``
from its data alone (``HistoryBuffer(log_history, count_history, max_length)``, registered with
:mod:`copyreg`). Every local checkpoint mmengine loads (``load_from``, ``--resume``,
``Pretrained``, ``load_checkpoint``) goes through :func:`load_checkpoint_file`, which turns a
truncated file, a file that is not a checkpoint and a refused global into a
:class:`CheckpointFileError` naming the file and the fix (torch's own message suggests
``weights_only=False``, the one fix never to apply to a file of unknown origin).

Saving: mmengine's local backend writes checkpoints in place, so a crash mid-write leaves a
truncated ``epoch_N.pth`` that ``--resume`` then picks up. :class:`AtomicLocalBackend` writes to
a temporary file in the same directory and renames it over the target (``os.replace``), so a
reader only ever sees a complete old file or a complete new one.

Both are installed by :func:`install_checkpoint_io`, which ``import netaug_det`` calls. A crash
mid-write leaves the temporary file (``.tmp_*.part``); :func:`remove_stale_parts` removes old
ones when a run starts. :func:`explain_mismatch` says what a checkpoint that does not fit a model
is, and what to do with it.
"""
import argparse
import contextlib
import copyreg
import glob
import inspect
import os
import os.path as osp
import pickle
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be read safely: truncated, not a checkpoint, or holding a
    global outside the allow-list; the message names the file and the fix."""


# numpy's pickle helpers moved from numpy.core to numpy._core in numpy 2; a checkpoint names the
# module of the numpy that wrote it
NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def mmengine_checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """Non-tensor globals found in checkpoints written by mmengine's Runner or
    ``save_checkpoint``, with or without netaug_det imported (torch's allow-list entries)."""
    numpy_dtypes = [type(np.dtype(name)) for name in
                    ('float64', 'float32', 'float16', 'int64', 'int32', 'uint8', 'bool')]
    numpy_helpers = [(helper, f'{module}.{helper.__name__}') for module in NUMPY_MODULES
                     for helper in (np.core.multiarray._reconstruct, np.core.multiarray.scalar)]
    return [
        HistoryBuffer,
        argparse.Namespace,
        np.ndarray,
        np.dtype,
        *numpy_helpers,
        *numpy_dtypes,
        (restricted_getattr, 'builtins.getattr'),
    ]


# classes whose public functions a checkpoint may name through getattr (pickle protocol 2)
GETATTR_OWNERS = (HistoryBuffer, )


def restricted_getattr(owner: object, name: str) -> Callable:
    """``getattr`` for unpickling: only a public function defined by a class of
    :data:`GETATTR_OWNERS` (``HistoryBuffer.mean``: how protocol 2 pickles a method of a class);
    anything else raises ``pickle.UnpicklingError``."""
    function = vars(owner).get(name) if owner in GETATTR_OWNERS else None
    if name.startswith('_') or not inspect.isfunction(function):
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL builtins.getattr of {name!r} on {owner!r}; only public '
            f'functions of {[cls.__name__ for cls in GETATTR_OWNERS]} are allowed')
    return function


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


def _refused_global(error: Exception) -> Optional[str]:
    """The global named in torch's refusal of a file (None for other errors)."""
    match = re.search(r'(?:GLOBAL|global) ([\w.]+)', str(error))
    return match.group(1) if match and 'Weights only load failed' in str(error) else None


def load_checkpoint_file(filename: str, map_location: Union[str, Callable, None] = 'cpu') -> dict:
    """A local checkpoint unpickled with ``weights_only=True`` (the allow-list of
    :func:`install_checkpoint_io`), or an error that says what the file is and what to do.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointFileError: the file is truncated or not a checkpoint (re-download or
            re-export it), or holds a global outside the allow-list (names the global).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        global_name = _refused_global(error)
        if global_name is not None:
            # getattr stays restricted to HistoryBuffer's methods, however trusted the file
            trusted = '' if global_name == 'builtins.getattr' else (
                '; or, only if you trust the file, call torch.serialization.add_safe_globals('
                f'[{global_name}]) before loading it')
            raise CheckpointFileError(
                f'{filename} holds {global_name}, which is not on the allow-list of safe '
                'checkpoint types (tensors and what mmengine/mmdet checkpoints hold; loading '
                'anything else may run code from the file). Load only the weights: re-save it '
                'where it was written with torch.save({"state_dict": model.state_dict()}, '
                f'FILE){trusted}') from None
        kind = 'a truncated or damaged checkpoint' if _starts_like_zip(filename) \
            else 'not a PyTorch checkpoint, or a truncated one'
        raise CheckpointFileError(
            f'{filename} ({osp.getsize(filename)} bytes) is {kind}: torch cannot read it '
            f'({type(error).__name__}: {str(error).partition(chr(10))[0][:200]}). An interrupted '
            'download, copy or save leaves such a file: download it again, or re-export it '
            '(python -m netaug_det.tools.export_deployable for a deploy.pth); a training run '
            'resumes from an earlier epoch_N.pth') from None


def _starts_like_zip(filename: str) -> bool:
    """Whether the file starts as a zip archive does (torch's format since 1.6)."""
    with open(filename, 'rb') as f:
        return f.read(4) == b'PK\x03\x04'


def load_from_local(filename: str, map_location: Union[str, Callable, None]) -> dict:
    """mmengine's checkpoint loader for local paths (``CheckpointLoader`` scheme ``''``):
    :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location)


def install_checkpoint_io() -> None:
    """Allow-lists mmengine's checkpoint types, loads local checkpoints through
    :func:`load_checkpoint_file` and makes local writes atomic (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    copyreg.pickle(HistoryBuffer, reduce_history_buffer)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


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


# Widths are rounded to multiples of 8 (make_divisible), hidden widths after the expand ratio:
# between two widen_factors the ratio of channel counts varies by up to 2x over the demo and paper
# backbones (0.75 vs 0.35: 1.5 to 3.0); a NetAug supernet's stage and hidden widths grow by
# different factors (2.6 and 7.3 against its plain model: 2.8x).
WIDTH_RATIO_SPREAD = 2.1


def width_ratio(checkpoint_shapes: dict, model_shapes: dict) -> Optional[float]:
    """The factor by which the file's channel counts differ from the model's (the median over
    every differing dimension of the backbone's tensors, all tensors if there is no backbone)
    when one factor explains them all, up to the rounding of widths (the largest and the
    smallest ratio within :data:`WIDTH_RATIO_SPREAD`); None otherwise."""
    keys = [k for k in model_shapes if k in checkpoint_shapes]
    if any(k.startswith('backbone.') for k in keys):
        keys = [k for k in keys if k.startswith('backbone.')]
    if any(len(checkpoint_shapes[k]) != len(model_shapes[k]) for k in keys):
        return None
    ratios = [x / y for k in keys for x, y in zip(checkpoint_shapes[k], model_shapes[k])
              if x != y]
    if not ratios or (min(ratios) < 1 < max(ratios)) or \
            max(ratios) / min(ratios) > WIDTH_RATIO_SPREAD:
        return None
    return float(np.median(ratios))


def config_of(config: Union[str, Config, None]) -> Optional[Config]:
    """``config`` read (a file name) or as it is; None when there is none to read."""
    if isinstance(config, Config):
        return config
    return Config.fromfile(config) if config and osp.isfile(config) else None


def backbone_widths(cfg: Optional[Config], checkpoint_shapes: dict,
                    ratio: float) -> Tuple[Optional[float], Optional[float]]:
    """(file's, model's) backbone ``widen_factor``: the model's from the config, the file's the
    one with which the config's backbone has exactly the file's backbone shapes (None when no
    common factor near ``ratio`` times the model's does)."""
    backbone_cfg = cfg.model.get('backbone') if cfg is not None else None
    model_factor = backbone_cfg.get('widen_factor') if backbone_cfg is not None else None
    if model_factor is None:
        return None, None
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    wanted = {k[len('backbone.'):]: v for k, v in checkpoint_shapes.items()
              if k.startswith('backbone.')}
    estimate = model_factor * ratio
    candidates = sorted({0.25, 0.35, 0.5, 0.75, 1.0, 1.25, 1.4, 1.5, 2.0, round(estimate, 2)},
                        key=lambda factor: abs(factor - estimate))
    for factor in candidates[:4]:
        # in the config's scope, whatever scope the process is in; a factor the backbone refuses
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')), \
                contextlib.suppress(Exception):
            backbone = MODELS.build(dict(backbone_cfg, widen_factor=factor, init_cfg=None))
            if {k: tuple(v.shape) for k, v in backbone.state_dict().items()} == wanted:
                return factor, model_factor
    return None, model_factor


def explain_width(header: str, ratio: float, checkpoint_shapes: dict,
                  cfg: Optional[Config]) -> str:
    """The message for a checkpoint of another backbone width (:func:`width_ratio`)."""
    file_factor, model_factor = backbone_widths(cfg, checkpoint_shapes, ratio)
    if file_factor is not None:
        widths = (f'it was trained with backbone widen_factor={file_factor}, the model has '
                  f'widen_factor={model_factor}')
        fix = f'or set --cfg-options model.backbone.widen_factor={file_factor}'
    else:
        about = f' (widen_factor about {model_factor * ratio:.2f} in the file, {model_factor} ' \
            'in the model)' if model_factor is not None else ''
        widths = f'its backbone is {ratio:.2f} times as wide as the model\'s{about}'
        fix = "or set the config's model.backbone.widen_factor to the file's"
    return header + (
        f'{widths}: every mismatching backbone tensor is scaled by that factor (a checkpoint of '
        'another width, not a NetAug/plain mix-up). Use the config it was trained with, '
        f'{fix} (the neck and head of this project\'s detectors follow the backbone; any other '
        'width set in the config must match the file too)')


def _is_netaug_model(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds NetAug modules, known by the attributes of their contract
    (``netaug_det.models.netaug.NetAugModule``: ``plain_cls``, ``widest_spec``), since this base
    helper imports no model code."""
    return any(hasattr(module, 'plain_cls') and hasattr(module, 'widest_spec')
               for module in model.modules())


def explain_mismatch(filename: str, model: torch.nn.Module,
                     config: Union[str, Config, None] = None) -> str:
    """What a checkpoint that does not load strictly into ``model`` is, and what to do.

    ``config`` (a file or the ``Config`` that built ``model``) names it, and lets a width
    mismatch name both ``widen_factor`` values.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    checkpoint = _load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    state = {key.removeprefix('module.'): value for key, value in state.items()}
    checkpoint_shapes = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, 'shape')}
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(model_shapes) - set(checkpoint_shapes))
    unexpected = sorted(set(checkpoint_shapes) - set(model_shapes))
    relation = shape_relation(checkpoint_shapes, model_shapes)
    cfg = config_of(config)
    name = (cfg.filename if cfg is not None else config) or 'this config'
    header = f'{filename} does not fit the model of {name}: '
    # NetAugHook writes its state under 'netaug' into every checkpoint of a NetAug run
    netaug_model = _is_netaug_model(model)
    if not missing and not unexpected and relation == 'wider' and 'netaug' in checkpoint \
            and not netaug_model:
        return header + (
            'it is a NetAug training checkpoint (its tensors hold the wide supernet) and the '
            'model is the plain one. Test the run\'s deploy.pth instead, or export this '
            'checkpoint first: python -m netaug_det.tools.export_deployable NETAUG_CONFIG '
            f'{filename} --out deploy.pth. To resume the run, use its NetAug config.')
    if not missing and not unexpected and relation == 'narrower' and \
            'netaug' not in checkpoint and netaug_model:
        return header + (
            'it is a plain checkpoint (e.g. deploy.pth or a baseline run) and the model is a '
            'NetAug supernet. Test it with the baseline config (the one the NetAug config '
            'inherits); to start NetAug training from a plain backbone, pass it as '
            'backbone_checkpoint=FILE instead of load_from.')
    ratio = None if missing or unexpected else width_ratio(checkpoint_shapes, model_shapes)
    if ratio is not None:
        return explain_width(header, ratio, checkpoint_shapes, cfg)
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
