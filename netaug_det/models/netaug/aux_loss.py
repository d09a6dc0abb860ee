"""NetAug's training term: the loss of an augmented model sampled for the step."""
from typing import Optional

import torch
from torch import nn

from ..distillation import SelfDistillation
from ..train_loss import LossDict, PassOutputs, head_outputs, loss_total, run_pass, scaled
from .supernet import NetAugSupernet


class NetAugAuxLoss:
    """The auxiliary term of NetAug (paper Eq. 2): ``alpha`` x the loss of an augmented model.

    Added to a :class:`netaug_det.models.train_loss.TrainLoss` by ``NetAugHook``, which sets,
    before every step, ``aug_mode`` ('random', 'random_expand', or None for no auxiliary pass)
    and ``step_weight``, and seeds ``generator``. The term runs the same batch through the model
    inside ``supernet.augmented(aug_mode, generator)`` and returns its losses as ``aux_<name>``
    multiplied by ``alpha``, plus ``aux_total`` (their sum) and ``aux_width`` (active over base
    channels of the sampled model), which are logged but not summed again. ``step_weight``
    multiplies every loss of the term (``NetAugHook`` sets it to ``aux_interval``, so that a pass
    run on every k-th step only keeps its expected weight).

    With ``self_distill`` (the arguments of :class:`SelfDistillation`), the augmented model also
    teaches the base model: ``self_kd_loss_*`` terms (their own weights, not ``alpha``) and
    ``self_kd_total``; the sampled model's pass is the teacher, or an extra pass of the largest
    model with ``teacher='max'``.

    Args:
        supernet (NetAugSupernet): the model's NetAug modules and their mode.
        alpha (float): weight of the auxiliary losses.
        self_distill (dict, optional): self-distillation settings; None: none.
    """

    # runs after the base pass's graph is released when TrainLoss.release_base_graph is on
    after_base_release = True

    def __init__(self, supernet: NetAugSupernet, alpha: float,
                 self_distill: Optional[dict] = None) -> None:
        self.supernet = supernet
        self.alpha = alpha
        self.aug_mode: Optional[str] = None
        self.step_weight = 1.0
        self.generator = torch.Generator()
        self.self_distill = None
        if self_distill is not None:
            num_classes = getattr(getattr(supernet.model, 'bbox_head', None), 'num_classes', None)
            self.self_distill = SelfDistillation(num_classes=num_classes, **self_distill)
        self.needs_outputs = self.self_distill is not None

    def __call__(self, model: nn.Module, inputs: torch.Tensor, data_samples: list,
                 base: PassOutputs) -> LossDict:
        if self.aug_mode is None:
            return {}
        with self.supernet.augmented(self.aug_mode, self.generator):
            width = self.supernet.width_ratio()
            aux = run_pass(model, inputs, data_samples, self.needs_outputs)
        losses = scaled(aux.losses, self.alpha * self.step_weight, 'aux_')
        losses['aux_total'] = loss_total(losses).detach()
        losses['aux_width'] = torch.tensor(width, device=inputs.device)
        if self.self_distill is not None:
            teacher_feats, teacher_outs = aux.feats, aux.outs
            if self.self_distill.teacher == 'max':
                with self.supernet.augmented('max', None), \
                        torch.set_grad_enabled(not self.self_distill.detach_teacher):
                    teacher_feats, teacher_outs = head_outputs(model, inputs)
            distill = scaled(self.self_distill(base, teacher_feats, teacher_outs),
                             self.step_weight, '')
            losses.update(distill)
            losses['self_kd_total'] = loss_total(distill).detach()
        return losses
