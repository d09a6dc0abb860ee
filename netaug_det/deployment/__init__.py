"""ONNX deployment of the deployable (plain) detector: export, onnxruntime inference,
post-processing, parity and graph checks, int8 quantization.

The submodules need ``onnx``, ``onnxruntime`` and ``onnxscript`` (the torch.export-based ONNX
exporter's op library), pinned in ``requirements/pinned.txt``. Importing this package needs none
of them; each submodule that does calls :func:`require_onnx_packages` first, so a missing package
is reported with the fix instead of a bare ``ModuleNotFoundError``.

- ``export``: load a config + checkpoint, export with or without in-graph post-processing.
- ``postprocess``: the in-graph YOLOv3 decoding + NMS, and mmdet's own post-processing of raw
  outputs.
- ``runtime``: onnxruntime sessions, preprocessed batches of a config's dataset, evaluation.
- ``checks``: parity figures against PyTorch and the graph signature of an ONNX file.
- ``quantize``: onnxruntime static int8 quantization with a calibration set.
"""
import importlib
import os.path as osp
from typing import List

from ..utils.cli import MissingPackagesError, user_errors

__all__ = ['MissingOnnxPackagesError', 'require_onnx_packages', 'exit_without_onnx_packages',
           'user_errors']

ONNX_PACKAGES = ('onnx', 'onnxruntime', 'onnxscript')
# pinned with them: onnxscript's IR package
_PINNED_NAMES = ONNX_PACKAGES + ('onnx-ir', )
_PINNED = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'requirements',
                   'pinned.txt')


class MissingOnnxPackagesError(MissingPackagesError):
    """Raised when a package that ONNX deployment needs cannot be imported."""


def _pinned_requirements() -> List[str]:
    """``name==version`` of the ONNX packages in requirements/pinned.txt (empty if absent)."""
    if not osp.isfile(_PINNED):
        return []
    with open(_PINNED) as f:
        pins = [line.strip() for line in f if '==' in line and not line.startswith('#')]
    return [pin for pin in pins if pin.split('==')[0] in _PINNED_NAMES]


def require_onnx_packages() -> None:
    """Imports ``onnx``, ``onnxruntime`` and ``onnxscript``; raises
    :class:`MissingOnnxPackagesError` naming the missing ones and how to install them."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError as error:
            missing.append(f'{name} ({error})')
    if missing:
        pins = ' '.join(_pinned_requirements()) or ' '.join(ONNX_PACKAGES)
        raise MissingOnnxPackagesError(
            f'ONNX deployment needs {", ".join(ONNX_PACKAGES)}; cannot import: '
            f'{"; ".join(missing)}. They are pinned in requirements/pinned.txt and installed by '
            f'scripts/setup_env.sh; or install them with: .venv/bin/python -m pip install {pins}')


def exit_without_onnx_packages() -> None:
    """For command-line tools: :func:`require_onnx_packages`, ending the program with its message
    (exit status 1) when a package is missing."""
    with user_errors():
        require_onnx_packages()
