"""NetAug's training term: the loss of an augmented model sampled for the step."""
from typing import Optional

import torch
from torch import nn

from ..train_loss import LossDict, PassOutputs, loss_total, run_pass, scaled
from .supernet import NetAugSupernet


class NetAugAuxLoss:
    """The auxiliary term of NetAug (paper Eq. 2): ``alpha`` x the loss of an augmented model.

    Added to a :class:`netaug_det.models.train_loss.TrainLoss` by ``NetAugHook``, which calls
    :meth:`prepare_step` before every step. The term runs the same batch through the model
    inside ``supernet.augmented(aug_mode, generator)`` and returns its losses as ``aux_<name>``
    multiplied by ``alpha``, plus ``aux_total`` (their sum) and ``aux_width`` (active over base
    channels of the sampled model), which are logged but not summed again. ``step_weight``
    multiplies every loss of the term (``NetAugHook`` sets it to ``aux_interval``, so that a pass
    run on every k-th step only keeps its expected weight).

    With ``keep_outputs`` the augmented pass keeps the features fed to the head and the head's
    raw outputs as ``last_pass`` (None on a step without the pass), for terms that read them
    after this one (NetAug self-distillation,
    :class:`netaug_det.models.distillation.NetAugSelfDistillation`).

    Args:
        supernet (NetAugSupernet): the model's NetAug modules and their mode.
        alpha (float): weight of the auxiliary losses.
        keep_outputs (bool): keep the augmented pass's outputs as ``last_pass``.
    """

    # runs after the base pass's graph is released when TrainLoss.release_base_graph is on
    after_base_release = True

    def __init__(self, supernet: NetAugSupernet, alpha: float, keep_outputs: bool = False) -> None:
        self.supernet = supernet
        self.alpha = alpha
        self.needs_outputs = keep_outputs
        self.aug_mode: Optional[str] = None
        self.step_weight = 1.0
        self.generator = torch.Generator()
        self.last_pass: Optional[PassOutputs] = None

    def prepare_step(self, aug_mode: Optional[str], step_weight: float, seed: int) -> None:
        """Sets up the coming step: its augmentation mode ('random', 'random_expand', or None
        for no auxiliary pass), the weight of its losses and the seed of its sampled model."""
        self.aug_mode = aug_mode
        self.step_weight = step_weight
        self.generator.manual_seed(seed)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, data_samples: list,
                 base: PassOutputs) -> LossDict:
        self.last_pass = None
        if self.aug_mode is None:
            return {}
        with self.supernet.augmented(self.aug_mode, self.generator):
            width = self.supernet.width_ratio()
            aux = run_pass(model, inputs, data_samples, self.needs_outputs)
        losses = scaled(aux.losses, self.alpha * self.step_weight, 'aux_')
        losses['aux_total'] = loss_total(losses).detach()
        losses['aux_width'] = torch.tensor(width, device=inputs.device)
        if self.needs_outputs:
            self.last_pass = aux
        return losses
