"""What the sub-models of a trained model score: the base, the widest and random augmented models,
with BatchNorm statistics tracked in training or recalibrated on training batches.

A NetAug run trains its augmented models only through the shared weights: their passes never
track BatchNorm statistics (:meth:`netaug_det.models.netaug.NetAugSupernet.augmented`), so the
running statistics of an augmented channel are never estimated and those of the shared channels
are the base model's. Before an augmented model is scored, :func:`recalibrate_bn` re-estimates
them on training batches (the official NetAug's ``reset_bn``), always on a copy: the model that
was given, and the checkpoint it came from, keep their statistics.

The scoring loop is mmengine's ``TestLoop`` without a runner (``test_step``, the evaluator's
``process`` and ``evaluate``), over batches read once and reused by every sub-model.
"""
import copy
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.evaluator import Evaluator
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.netaug import NetAugSupernet, export_plain_model
from ..models.netaug.supernet import netaug_modules

DRAW_MODES = ('random', 'random_expand')


class EvalSplit(NamedTuple):
    """A split to score on: its test batches (read once), its evaluator and its dataset size."""

    batches: List[dict]
    evaluator: Evaluator
    size: int


class SubmodelScore(NamedTuple):
    """The metrics of one sub-model on every split.

    ``name``: 'base', 'widest' or 'random N' (N from 1); ``bn``: 'tracked' (the running
    statistics training left) or 'recalibrated'; ``width``: active over base channels of the
    NetAug modules (1.0 for the base and for plain models); ``metrics``: split -> the evaluator's
    metrics.
    """

    name: str
    bn: str
    width: float
    metrics: Dict[str, Dict[str, float]]


def training_bn_layers(model: nn.Module) -> List[_BatchNorm]:
    """The BatchNorm layers of ``model`` that track running statistics in training mode (those
    of frozen stages or ``norm_eval`` stay in eval mode and are left out)."""
    was_training = model.training
    model.train()
    layers = [m for m in model.modules()
              if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    model.train(was_training)
    return layers


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: Sequence[torch.Tensor]) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are re-estimated on ``inputs``.

    Every BatchNorm that tracks statistics in training mode (:func:`training_bn_layers`) is
    reset, then averaged over the forward passes of ``inputs`` (preprocessed input batches) with
    equal weight per batch (``momentum=None``), the rest of the model in training mode without
    gradients. ``model`` itself is not changed.

    Returns:
        nn.Module: the recalibrated copy, in eval mode.
    """
    if not inputs:
        raise ValueError('recalibrating BatchNorm needs at least one training batch')
    model = copy.deepcopy(model)
    layers = training_bn_layers(model)
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    model.train()
    for batch in inputs:
        model(batch, mode='tensor')
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return model.eval()


def preprocessed_inputs(model: nn.Module, batches: Sequence[dict]) -> List[torch.Tensor]:
    """The input tensors of training ``batches`` after ``model``'s data preprocessor, as in
    training (its batch augmentations included)."""
    with torch.no_grad():
        return [model.data_preprocessor(copy.deepcopy(batch), True)['inputs']
                for batch in batches]


@torch.no_grad()
def evaluate(model: nn.Module, split: EvalSplit) -> Dict[str, float]:
    """The metrics of ``model`` (eval mode) on ``split``: mmengine's ``TestLoop`` without its
    runner and hooks (``test_step`` per batch, the evaluator's ``process`` and ``evaluate``)."""
    model.eval()
    for batch in split.batches:
        batch = copy.deepcopy(batch)  # test_step writes predictions into the data samples
        split.evaluator.process(data_samples=model.test_step(batch), data_batch=batch)
    return split.evaluator.evaluate(split.size)


def with_widths(model: nn.Module, mode: str,
                generator: Optional[torch.Generator] = None) -> Tuple[nn.Module, float]:
    """A copy of the NetAug ``model`` whose NetAug modules run at the widths of ``mode``
    ('max': the widest; 'random' / 'random_expand': one draw from ``generator``), and its width
    (active over base channels of the NetAug modules)."""
    model = copy.deepcopy(model)
    supernet = NetAugSupernet(model)
    supernet.set_mode(mode, generator)
    return model, supernet.width_ratio()


def score(name: str, model: nn.Module, width: float, splits: Dict[str, EvalSplit],
          recalib_inputs: Optional[Sequence[torch.Tensor]]) -> SubmodelScore:
    """Scores ``model`` (of ``width``) on every split, with its own BatchNorm statistics
    (``recalib_inputs`` None) or those re-estimated on ``recalib_inputs`` (in a copy)."""
    if recalib_inputs is not None:
        model = recalibrate_bn(model, recalib_inputs)
    return SubmodelScore(name, 'tracked' if recalib_inputs is None else 'recalibrated', width,
                         {split: evaluate(model, data) for split, data in splits.items()})


def evaluate_submodels(model: nn.Module, splits: Dict[str, EvalSplit],
                       recalib_inputs: Sequence[torch.Tensor], samples: int = 0, seed: int = 0,
                       draw_mode: str = 'random') -> List[SubmodelScore]:
    """Scores the base model of ``model`` with its tracked and with recalibrated BatchNorm
    statistics, and, for a model with NetAug modules, the widest model and ``samples`` random
    augmented models, each with recalibrated statistics.

    Args:
        model (nn.Module): a trained detector (plain, or a NetAug supernet loaded from its
            training checkpoint), in base mode; it is never changed.
        splits (dict): split name -> :class:`EvalSplit`.
        recalib_inputs (Sequence[Tensor]): preprocessed training batches
            (:func:`preprocessed_inputs`) that every recalibration uses.
        samples (int): random augmented models to draw (NetAug models only).
        seed (int): seed of the draws, made one after another from one generator: the first
            draws of a seed are the same whatever ``samples``.
        draw_mode (str): 'random' (widths and expand ratios, NetAug's width phase) or
            'random_expand' (expand ratios only, its later phase).

    Returns:
        list[SubmodelScore]: base (tracked), base (recalibrated), widest, random 1..samples.
    """
    if draw_mode not in DRAW_MODES:
        raise ValueError(f'draw_mode must be one of {DRAW_MODES}, got {draw_mode!r}')
    netaug = bool(netaug_modules(model))
    if samples and not netaug:
        raise ValueError(f'{samples} augmented model(s) asked of a plain model '
                         f'({type(model).__name__} holds no NetAug modules): ask for none, or '
                         'pass the NetAug model of the run')
    # the deployable twin: for a NetAug model exactly what deploy.pth holds
    base = export_plain_model(model) if netaug else model
    scores = [score('base', base, 1.0, splits, None),
              score('base', base, 1.0, splits, recalib_inputs)]
    if netaug:
        scores.append(score('widest', *with_widths(model, 'max'), splits, recalib_inputs))
        generator = torch.Generator().manual_seed(seed)
        scores += [score(f'random {i + 1}', *with_widths(model, draw_mode, generator), splits,
                         recalib_inputs) for i in range(samples)]
    return scores
