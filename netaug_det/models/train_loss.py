"""The training loss of a model with extra terms (NetAug's auxiliary pass, distillation).

mmengine trains a model through ``model.loss(inputs, data_samples)`` (reached from ``train_step``
via ``forward(mode='loss')``) and sums every ``*loss*`` entry of the returned dict. A
:class:`TrainLoss` is bound once as the model's ``loss`` while training terms are attached
(:meth:`TrainLoss.attach`): it runs the model's own loss on the batch (the base pass), then
each term, and returns one dict. So one step stays one forward, one backward (one gradient
all-reduce under DDP) and one optimizer update, and the optimizer wrapper (clipping, AMP,
``accumulative_counts``) sees an ordinary loss. Terms are plain callables registered by name;
hooks add them in ``before_train`` and remove them in ``after_train``.

Entries without "loss" in their name are logged but not summed: the base losses' sum is logged
as ``base_total``, each term logs its own total, and mmengine's ``loss`` is their sum.
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmdet.models.utils import unpack_gt_instances
from torch import nn

LossValue = Union[torch.Tensor, List[torch.Tensor]]
LossDict = Dict[str, LossValue]


class PassOutputs(NamedTuple):
    """What one forward pass of the model produced: its losses and, when a term asked for
    them, the features fed to the head (``feats``) and the head's raw outputs (``outs``)."""

    losses: LossDict
    feats: Optional[Tuple[torch.Tensor, ...]] = None
    outs: Optional[tuple] = None


def loss_total(losses: LossDict) -> torch.Tensor:
    """The sum of the ``*loss*`` entries of ``losses``, as mmengine's ``parse_losses`` sums them."""
    total = 0
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        total = total + (value.mean() if isinstance(value, torch.Tensor) else sum(
            item.mean() for item in value))
    return total


def scaled(losses: LossDict, weight: float, prefix: str) -> LossDict:
    """``losses`` renamed ``<prefix><name>``, loss entries multiplied by ``weight``."""
    result = {}
    for name, value in losses.items():
        if 'loss' in name:
            value = value * weight if isinstance(value, torch.Tensor) else [
                item * weight for item in value]
        result[f'{prefix}{name}'] = value
    return result


def head_outputs(model: nn.Module, inputs: torch.Tensor) -> Tuple[tuple, tuple]:
    """The features a single-stage detector feeds its dense head, and the head's raw outputs
    (``extract_feat``, then ``bbox_head(feats)``, as ``SingleStageDetector.loss`` runs them)."""
    head = getattr(model, 'bbox_head', None)
    if not (callable(getattr(model, 'extract_feat', None))
            and callable(getattr(head, 'loss_by_feat', None))):
        raise TypeError(f'{type(model).__name__} has no extract_feat + bbox_head.loss_by_feat '
                        '(a single-stage detector with a dense head); distillation needs them')
    feats = tuple(model.extract_feat(inputs))
    return feats, head(feats)


def run_pass(model: nn.Module, inputs: torch.Tensor, data_samples: list,
             with_outputs: bool = False) -> PassOutputs:
    """One forward pass of ``model``'s own loss on a batch.

    With ``with_outputs`` the pass goes through the dense-head protocol of mmdet's single-stage
    detectors (:func:`head_outputs`, then ``bbox_head.loss_by_feat``), which is what
    ``SingleStageDetector.loss`` runs, and returns the features and head outputs as well.
    """
    if not with_outputs:
        return PassOutputs(type(model).loss(model, inputs, data_samples))
    feats, outs = head_outputs(model, inputs)
    gt_instances, gt_instances_ignore, img_metas = unpack_gt_instances(data_samples)
    losses = model.bbox_head.loss_by_feat(*outs, gt_instances, img_metas, gt_instances_ignore)
    return PassOutputs(losses, feats, outs)


class _InjectGradients(torch.autograd.Function):
    """Returns ``value`` unchanged; in backward, hands the stored ``grads`` times the upstream
    gradient to ``params``, so they reach the parameters through autograd (and DDP's hooks).
    ``value`` is summed into the loss as its mean (mmengine's ``parse_losses``), so the upstream
    gradient of each element is the same and its sum is the factor (1 for a scalar)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, grads: tuple, *params: torch.Tensor) -> torch.Tensor:
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, upstream: torch.Tensor) -> tuple:
        factor = upstream.sum()
        return (None, None, *[None if grad is None else grad * factor for grad in ctx.grads])


def release_graph(losses: LossDict, model: nn.Module, prescale: float = 1.0) -> LossDict:
    """``losses`` with their graph released: the gradient of their sum with respect to the
    model's parameters is computed now (nothing accumulates into ``.grad`` yet), every entry is
    detached, and one summed entry carries that gradient to the parameters when the final loss
    is backpropagated, multiplied by whatever scales it (``accumulative_counts``, AMP's loss
    scale). The update is the one of the unreleased losses; the activations behind them are
    freed before the rest of the step.

    ``prescale``: the early gradient is taken from the sum times this (then divided back), as the
    AMP loss scaler does, so that fp16 activation gradients neither underflow nor overflow where
    the scaler's own backward would not; an overflow gives inf gradients, which the scaler then
    detects (it skips the step and lowers its scale) exactly as for an ordinary loss.
    """
    carrier = next((name for name in losses if 'loss' in name), None)
    if carrier is None:
        raise ValueError(f'release_graph: no "loss" entry among {list(losses)} to carry the '
                         'gradient')
    params = [param for param in model.parameters() if param.requires_grad]
    grads = torch.autograd.grad(loss_total(losses) * prescale, params, allow_unused=True)
    grads = tuple(None if grad is None else grad / prescale for grad in grads)
    released = {name: value.detach() if isinstance(value, torch.Tensor) else
                [item.detach() for item in value] for name, value in losses.items()}
    value = released[carrier]
    if isinstance(value, torch.Tensor):
        released[carrier] = _InjectGradients.apply(value, grads, *params)
    else:
        released[carrier] = [_InjectGradients.apply(value[0], grads, *params), *value[1:]]
    return released


class TrainingOnlyModule(nn.Module):
    """A submodule a model carries for training only (e.g. distillation adapters): trained and
    checkpointed with the model, removed by ``export_plain_model`` (never in ``deploy.pth``)."""


TrainTerm = Callable[[nn.Module, torch.Tensor, list, PassOutputs], LossDict]


class TrainLoss:
    """A model's ``loss`` while training terms are attached: base pass, then every term.

    A term is a callable ``term(model, inputs, data_samples, base) -> dict`` (``base`` is the
    base pass's :class:`PassOutputs`); a term with ``needs_outputs = True`` makes the base pass
    keep features and head outputs. Terms run in the order they were added, except that terms
    with ``after_base_release = True`` (NetAug's auxiliary pass) run after all the others.

    With ``release_base_graph`` (lower peak memory, the same update), the gradient of everything
    computed before those terms is taken right away (:func:`release_graph`), so the base pass's
    activations are freed before the auxiliary pass runs.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.terms: Dict[str, TrainTerm] = {}
        self.release_base_graph = False
        # the AMP loss scale of the coming step (prepare_step), for release_graph's prescale
        self.grad_prescale = 1.0

    @classmethod
    def of(cls, model: nn.Module) -> Optional['TrainLoss']:
        """The TrainLoss bound to ``model``, if any."""
        loss = model.__dict__.get('loss')
        return loss if isinstance(loss, cls) else None

    @classmethod
    def attach(cls, model: nn.Module) -> 'TrainLoss':
        """Binds a TrainLoss as ``model.loss`` (once: a bound one is returned as it is)."""
        loss = cls.of(model)
        if loss is None:
            if 'loss' in model.__dict__:
                raise RuntimeError(f'{type(model).__name__}.loss is already replaced by '
                                   f'{model.__dict__["loss"]!r}; netaug_det cannot add its '
                                   'training terms on top of it')
            # The rebinding: an instance attribute ``loss`` shadows the class's ``loss`` method,
            # so mmengine's ``train_step`` -> ``forward(mode='loss')`` -> ``self.loss(...)`` runs
            # this TrainLoss; ``remove`` deletes it again and the class method is back.
            loss = model.loss = cls(model)
        return loss

    def prepare_step(self, grad_prescale: float) -> None:
        """Sets up the coming step: the AMP loss scale that the released base gradient is
        taken at (``release_base_graph``; 1.0 without AMP)."""
        self.grad_prescale = grad_prescale

    def add(self, name: str, term: TrainTerm) -> None:
        """Adds ``term`` under ``name`` (replacing a term of the same name)."""
        self.terms[name] = term

    def remove(self, name: str, term: TrainTerm) -> None:
        """Removes ``term`` if it is still the one under ``name``; unbinds itself from the model
        when no term is left, so the model's own ``loss`` is back."""
        if self.terms.get(name) is term:
            del self.terms[name]
        if not self.terms and self.model.__dict__.get('loss') is self:
            del self.model.loss

    def __call__(self, inputs: torch.Tensor, data_samples: list) -> LossDict:
        with_outputs = any(getattr(term, 'needs_outputs', False) for term in self.terms.values())
        base = run_pass(self.model, inputs, data_samples, with_outputs)
        losses = dict(base.losses)
        losses['base_total'] = loss_total(base.losses).detach()
        late = [term for term in self.terms.values() if getattr(term, 'after_base_release', False)]
        for term in self.terms.values():
            if term not in late:
                losses.update(term(self.model, inputs, data_samples, base))
        if self.release_base_graph and late and torch.is_grad_enabled():
            losses = release_graph(losses, self.model, self.grad_prescale)
            base = PassOutputs(losses)
        for term in late:
            losses.update(term(self.model, inputs, data_samples, base))
        return losses
