"""Detector-side NetAug support: the combined base + auxiliary loss and the deployable export.

A NetAug detector is any mmdet detector whose backbone is NetAug-capable (``set_mode``,
``export``, ``sort_channels``; see ``NetAugMobileNetV2``). :class:`NetAugLoss` replaces the
detector's ``loss`` during training (``NetAugHook`` installs it), :func:`deployable_checkpoint`
turns the trained detector into a checkpoint of the plain baseline detector.
"""
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Union

import mmengine
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..version import __version__

LossValue = Union[torch.Tensor, List[torch.Tensor]]

AUG_MODES = ('random', 'random_expand')
NETAUG_BACKBONE_METHODS = ('set_mode', 'export', 'sort_channels')


def netaug_backbone(detector: nn.Module) -> nn.Module:
    """Returns ``detector.backbone`` after checking that it is NetAug-capable."""
    backbone = getattr(detector, 'backbone', None)
    missing = [
        name for name in NETAUG_BACKBONE_METHODS if not callable(getattr(backbone, name, None))
    ]
    if missing:
        raise TypeError(
            f'NetAug needs a NetAug-capable backbone, but {type(detector).__name__}.backbone is '
            f'{type(backbone).__name__} (no {", ".join(missing)}); set model.backbone.type to '
            "'NetAugMobileNetV2' or 'NetAugMobileNetV3' (same arguments as the plain backbone)")
    return backbone


@contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers in ``module`` normalise with batch statistics (as in train mode) but
    leave their running statistics and ``num_batches_tracked`` untouched inside the block."""
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    for norm in norms:
        norm.track_running_stats = False
    try:
        yield
    finally:
        for norm in norms:
            norm.track_running_stats = True


def _scaled(value: LossValue, alpha: float) -> LossValue:
    if isinstance(value, torch.Tensor):
        return value * alpha
    return [item * alpha for item in value]


class NetAugLoss:
    """Loss of one NetAug training step (paper Eq. 2): base losses + ``alpha`` x augmented losses.

    Installed as ``detector.loss`` by ``NetAugHook`` and called like ``BaseDetector.loss``:
    ``batch_inputs`` (N, 3, H, W) and N data samples. It computes the detector's losses with the
    backbone in base mode, then, on the same batch and with the same neck and head, the losses
    of one augmented backbone sampled with ``generator`` in ``aug_mode`` ('random' or
    'random_expand'; None skips the auxiliary pass), and switches the backbone back to base.
    No BatchNorm layer of the detector (neck and head included) updates its running statistics
    in the auxiliary pass, so they stay exactly those of the base model.

    The returned dict holds the base losses under their own names and the auxiliary ones under
    ``aux_<name>``, loss terms multiplied by ``alpha``. mmengine's ``parse_losses`` sums every
    ``*loss*`` entry into one scalar and logs each entry, so one training step is one forward,
    one backward (one gradient all-reduce under DDP) and one optimizer update, with the
    gradient of base + alpha * aux.

    Args:
        detector (nn.Module): the (unwrapped) detector; its current ``loss`` computes each pass.
        alpha (float): weight of the auxiliary losses.
        generator (torch.Generator): the only source of randomness for sampling augmented widths.
    """

    def __init__(self, detector: nn.Module, alpha: float, generator: torch.Generator) -> None:
        self.detector = detector
        self.loss_fn = detector.loss
        self.backbone = netaug_backbone(detector)
        self.alpha = alpha
        self.generator = generator
        self.aug_mode: Optional[str] = AUG_MODES[0]

    def __call__(self, batch_inputs: torch.Tensor,
                 batch_data_samples: list) -> Dict[str, LossValue]:
        losses = self.loss_fn(batch_inputs, batch_data_samples)
        if self.aug_mode is None:
            return losses
        self.backbone.set_mode(self.aug_mode, self.generator)
        try:
            with frozen_running_stats(self.detector):
                aux_losses = self.loss_fn(batch_inputs, batch_data_samples)
        finally:
            self.backbone.set_mode('base')
        for name, value in aux_losses.items():
            losses[f'aux_{name}'] = _scaled(value, self.alpha) if 'loss' in name else value
        return losses


def deployable_state_dict(detector: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """The detector's state dict with its NetAug backbone replaced by ``backbone.export()``.

    The keys and shapes are those of the matching baseline detector (plain backbone); tensors
    are compact CPU copies, so nothing of the augmented weights or the NetAug state is kept.
    """
    backbone = netaug_backbone(detector)
    state_dict = OrderedDict(
        (f'backbone.{name}', tensor) for name, tensor in backbone.export().state_dict().items())
    state_dict.update((name, tensor) for name, tensor in detector.state_dict().items()
                      if not name.startswith('backbone.'))
    return OrderedDict(
        (name, tensor.detach().to('cpu', copy=True)) for name, tensor in state_dict.items())


def deployable_checkpoint(detector: nn.Module, source_meta: Optional[dict] = None) -> dict:
    """A checkpoint of the base detector that the baseline config loads with ``tools/test.py``.

    Args:
        detector (nn.Module): a detector with a NetAug-capable backbone (unwrapped).
        source_meta (dict, optional): meta of the NetAug run; its ``dataset_meta``, ``epoch``,
            ``iter`` and ``seed`` are carried over (class names for inference tools).

    Returns:
        dict: ``{'meta': ..., 'state_dict': ...}`` with plain python values and CPU tensors only.
    """
    meta = {key: value for key, value in (source_meta or {}).items()
            if key in ('dataset_meta', 'epoch', 'iter', 'seed')}
    meta.update(
        exported_from='NetAug detector (base model)',
        netaug_det_version=__version__,
        mmengine_version=mmengine.__version__,
        time=time.strftime('%Y%m%d_%H%M%S', time.localtime()))
    return dict(meta=meta, state_dict=deployable_state_dict(detector))
