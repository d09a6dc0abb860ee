"""Knowledge distillation for dense detectors, as training terms of :class:`TrainLoss`.

- :class:`TeacherDistiller`: a fixed teacher detector (config + checkpoint) teaches the student
  on the same batch: soft targets on the head's outputs and imitation of the neck's features
  (through 1x1 adapters when widths differ). It is a :class:`TrainingOnlyModule`: the runner
  attaches it to the student as ``model.distiller`` when the config has ``distiller = dict(...)``,
  so its adapters are trained, checkpointed and all-reduced with the model, and never exported;
  the teacher itself is held outside the module tree (not trained, not checkpointed).
- :class:`SelfDistillation`: the losses of NetAug's augmented model teaching the base model in
  the same step (relational KD on the neck's pooled features, optional soft targets), and
  :class:`NetAugSelfDistillation`, the training term that applies them to the augmented pass of
  NetAug's own term (``NetAugHook(self_distill=...)`` adds it after ``NetAugAuxLoss``).

Both compare what a single-stage detector with a dense head produces (:func:`head_outputs`):
the features fed to the head (one map per level) and the head's raw outputs (one map per level).
"""
import copy
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from torch import nn

from ..utils.checkpoint import explain_mismatch
from .builders import build_detector
from .netaug import NetAugAuxLoss
from .train_loss import (LossDict, PassOutputs, TrainingOnlyModule, head_outputs, loss_total,
                         scaled)


def _levels(outs: tuple) -> List[torch.Tensor]:
    """The per-level raw maps of a dense head's outputs (YOLOv3: a 1-tuple of a list)."""
    first = outs[0]
    return list(first) if isinstance(first, (list, tuple)) else list(outs)


def build_teacher(config: str, checkpoint: str) -> nn.Module:
    """The teacher detector of ``config`` with the weights of ``checkpoint`` (strictly), in eval
    mode with every parameter frozen."""
    teacher = build_detector(Config.fromfile(config))
    try:
        load_checkpoint(teacher, checkpoint, map_location='cpu', strict=True, logger='silent')
    except RuntimeError:
        raise ValueError(explain_mismatch(checkpoint, teacher, config)) from None
    return teacher.eval().requires_grad_(False)


def _head_io(model: nn.Module, size: int = 64) -> Tuple[List[int], int]:
    """Widths of the features ``model`` feeds its head and the number of the head's output
    levels, from one small forward pass in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            feats, outs = head_outputs(model, torch.zeros(1, 3, size, size, device=device))
    finally:
        model.train(was_training)
    return [feat.shape[1] for feat in feats], len(_levels(outs))


def _synchronized_time(device: torch.device) -> float:
    """``time.perf_counter()`` after the device's queued work has finished (CUDA is async)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter()


@MODELS.register_module()
class TeacherDistiller(TrainingOnlyModule):
    """Distillation from a fixed teacher detector, a term of the student's :class:`TrainLoss`.

    Each step the teacher runs the student's preprocessed batch (so both must take the same
    input normalisation and size) under ``torch.no_grad()`` in eval mode (its BatchNorm
    statistics never move), and the term returns ``kd_loss_output`` (``output_loss`` summed over
    the head's levels), ``kd_loss_feature`` (``feature_loss`` summed over the neck's levels, one
    loss module, with its adapter, per level), ``kd_total`` and ``kd_teacher_time`` (seconds of
    the teacher's forward pass; logged, not summed).

    Args:
        student (nn.Module): the student detector (given by the runner).
        teacher (dict): ``dict(config=..., checkpoint=...)`` of the teacher detector.
        output_loss (dict, optional): loss on the raw head maps, e.g.
            ``dict(type='YOLOV3SoftTargetLoss', temperature=2.0)``; ``num_classes`` is the
            student head's. Its maps must have the teacher's shapes (same head layout).
        feature_loss (dict, optional): loss on the neck's maps, e.g.
            ``dict(type='FeatureImitationLoss')``; ``student_channels`` and ``teacher_channels``
            are filled per level.
    """

    needs_outputs = True

    def __init__(self, student: nn.Module, teacher: dict, output_loss: Optional[dict] = None,
                 feature_loss: Optional[dict] = None) -> None:
        super().__init__()
        if output_loss is None and feature_loss is None:
            raise ValueError('TeacherDistiller needs output_loss and/or feature_loss')
        self.__dict__['teacher'] = build_teacher(teacher['config'], teacher['checkpoint'])
        (student_channels, student_levels), (teacher_channels, teacher_levels) = (
            _head_io(student), _head_io(self.teacher))
        if (len(student_channels), student_levels) != (len(teacher_channels), teacher_levels):
            raise ValueError(
                f'TeacherDistiller: the student feeds its head {len(student_channels)} feature '
                f'levels and its head outputs {student_levels}, the teacher '
                f'({teacher["config"]}) {len(teacher_channels)} and {teacher_levels}; the levels '
                'are compared one to one, so take a teacher with the same neck and head layout')
        self.output_loss = None
        if output_loss is not None:
            num_classes = getattr(student.bbox_head, 'num_classes', None)
            self.output_loss = MODELS.build(dict(dict(num_classes=num_classes), **output_loss))
        self.feature_losses = None
        if feature_loss is not None:
            self.feature_losses = nn.ModuleList(
                MODELS.build(dict(feature_loss, student_channels=cs, teacher_channels=ct))
                for cs, ct in zip(student_channels, teacher_channels))

    def forward(self, model: nn.Module, inputs: torch.Tensor, data_samples: list,
                base: PassOutputs) -> LossDict:
        """The distillation losses of the base pass ``base`` (see the class docstring)."""
        teacher = self.teacher.to(inputs.device)
        start = _synchronized_time(inputs.device)
        with torch.no_grad():
            teacher_feats, teacher_outs = head_outputs(teacher, inputs)
        teacher_time = _synchronized_time(inputs.device) - start
        losses = {}
        if self.output_loss is not None:
            losses['kd_loss_output'] = sum(
                self.output_loss(s, t)
                for s, t in zip(_levels(base.outs), _levels(teacher_outs), strict=True))
        if self.feature_losses is not None:
            losses['kd_loss_feature'] = sum(
                loss(s, t) for loss, s, t in zip(self.feature_losses, base.feats, teacher_feats,
                                                 strict=True))
        losses['kd_total'] = loss_total(losses).detach()
        losses['kd_teacher_time'] = torch.tensor(teacher_time)
        return losses

    def __deepcopy__(self, memo: dict) -> 'TeacherDistiller':
        """A copy (e.g. ``EMAHook``'s averaged model) that shares the fixed teacher."""
        memo[id(self.teacher)] = self.teacher
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            copied.__dict__[name] = copy.deepcopy(value, memo)
        return copied


class SelfDistillation(nn.Module):
    """Online self-distillation: the augmented model teaches the base model in the same step.

    Relational KD (RKD-D and RKD-A on the neck's features, pooled per level over positions and
    concatenated) and, optionally, soft targets on the head's outputs, between the base pass
    (student) and the augmented pass (teacher). Holds no parameters.

    Args:
        num_classes (int): the detector head's classes (for the soft targets).
        rkd_distance (float): weight of RKD-D (0 leaves it out). Defaults to 25.0.
        rkd_angle (float): weight of RKD-A (0 leaves it out). Defaults to 50.0.
        output (float): weight of the soft-target loss on the head outputs (0 leaves it out).
        temperature (float): temperature of the soft targets. Defaults to 1.0.
        teacher (str): 'sampled' (the augmented model of the step, whose pass NetAug runs
            anyway) or 'max' (the largest augmented model, an extra forward pass).
        detach_teacher (bool): the teacher side receives no gradient from these losses
            (otherwise the base and augmented models learn from each other). Defaults to True.
    """

    def __init__(self, num_classes: int, rkd_distance: float = 25.0, rkd_angle: float = 50.0,
                 output: float = 0.0, temperature: float = 1.0, teacher: str = 'sampled',
                 detach_teacher: bool = True) -> None:
        super().__init__()
        if teacher not in ('sampled', 'max'):
            raise ValueError(f"self_distill teacher must be 'sampled' or 'max', got {teacher!r}")
        if not (rkd_distance or rkd_angle or output):
            raise ValueError('self_distill needs a positive rkd_distance, rkd_angle or output')
        self.teacher = teacher
        self.detach_teacher = detach_teacher
        losses = {name: (loss_type, weight) for name, loss_type, weight in (
            ('rkd_distance', 'RKDDistanceLoss', rkd_distance),
            ('rkd_angle', 'RKDAngleLoss', rkd_angle)) if weight}
        self.relational = nn.ModuleDict({
            name: MODELS.build(dict(type=loss_type, loss_weight=weight))
            for name, (loss_type, weight) in losses.items()})
        self.output_loss = MODELS.build(dict(
            type='YOLOV3SoftTargetLoss', num_classes=num_classes, temperature=temperature,
            loss_weight=output)) if output else None

    def forward(self, student: PassOutputs, teacher_feats: Sequence[torch.Tensor],
                teacher_outs: tuple) -> Dict[str, torch.Tensor]:
        """The self-distillation losses of the base pass ``student`` against the teacher's."""
        teacher_levels = _levels(teacher_outs)
        if self.detach_teacher:
            teacher_feats = [feat.detach() for feat in teacher_feats]
            teacher_levels = [level.detach() for level in teacher_levels]
        losses = {f'self_kd_loss_{name}': loss(list(student.feats), list(teacher_feats))
                  for name, loss in self.relational.items()}
        if self.output_loss is not None:
            losses['self_kd_loss_output'] = sum(
                self.output_loss(s, t) for s, t in zip(_levels(student.outs), teacher_levels))
        return losses


class NetAugSelfDistillation:
    """NetAug self-distillation as a training term of :class:`TrainLoss`: on every step with an
    auxiliary pass, :class:`SelfDistillation`'s losses between the base pass and the augmented
    pass that ``aux`` (NetAug's term, built with ``keep_outputs=True``) just ran, multiplied by
    its ``step_weight``, plus ``self_kd_total`` (logged, not summed). With ``teacher='max'`` the
    teacher is an extra pass of the largest augmented model instead.

    Added after ``aux`` (late terms run in the order they were added), so the augmented pass of
    the step is there when it runs.

    Args:
        aux (NetAugAuxLoss): NetAug's auxiliary term of the same model.
        num_classes (int): the detector head's classes (for the soft targets).
        **kwargs: the other arguments of :class:`SelfDistillation`.
    """

    needs_outputs = True
    after_base_release = True

    def __init__(self, aux: NetAugAuxLoss, num_classes: int, **kwargs) -> None:
        if not aux.needs_outputs:
            raise ValueError('NetAugSelfDistillation needs the augmented pass\'s outputs: build '
                             'the NetAugAuxLoss with keep_outputs=True')
        self.aux = aux
        self.losses = SelfDistillation(num_classes=num_classes, **kwargs)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, data_samples: list,
                 base: PassOutputs) -> LossDict:
        augmented = self.aux.last_pass
        if augmented is None:
            return {}
        teacher_feats, teacher_outs = augmented.feats, augmented.outs
        if self.losses.teacher == 'max':
            with self.aux.supernet.augmented('max', None), \
                    torch.set_grad_enabled(not self.losses.detach_teacher):
                teacher_feats, teacher_outs = head_outputs(model, inputs)
        losses = scaled(self.losses(base, teacher_feats, teacher_outs), self.aux.step_weight, '')
        losses['self_kd_total'] = loss_total(losses).detach()
        return losses
