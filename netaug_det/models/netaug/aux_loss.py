"""NetAug's training term: the loss of an augmented model sampled for the step."""
from typing import Optional

import torch
from torch import nn

from ..train_loss import LossDict, PassOutputs, loss_total, run_pass, scaled
from .supernet import NetAugSupernet


class NetAugAuxLoss:
    """The auxiliary term of NetAug (paper Eq. 2): ``alpha`` x the loss of an augmented model.

    Added to a :class:`netaug_det.models.train_loss.TrainLoss` by ``NetAugHook``, which sets,
    before every step, ``aug_mode`` ('random', 'random_expand', or None for no auxiliary pass)
    and seeds ``generator``. The term runs the same batch through the model inside
    ``supernet.augmented(aug_mode, generator)`` and returns its losses as ``aux_<name>``
    multiplied by ``alpha``, plus ``aux_total`` (their sum) and ``aux_width`` (active over base
    channels of the sampled model), which are logged but not summed again.

    Args:
        supernet (NetAugSupernet): the model's NetAug modules and their mode.
        alpha (float): weight of the auxiliary losses.
    """

    needs_outputs = False

    def __init__(self, supernet: NetAugSupernet, alpha: float) -> None:
        self.supernet = supernet
        self.alpha = alpha
        self.aug_mode: Optional[str] = None
        self.generator = torch.Generator()

    def __call__(self, model: nn.Module, inputs: torch.Tensor, data_samples: list,
                 base: PassOutputs) -> LossDict:
        if self.aug_mode is None:
            return {}
        with self.supernet.augmented(self.aug_mode, self.generator):
            width = self.supernet.width_ratio()
            aux = run_pass(model, inputs, data_samples, self.needs_outputs)
        losses = scaled(aux.losses, self.alpha, 'aux_')
        losses['aux_total'] = loss_total(losses).detach()
        losses['aux_width'] = torch.tensor(width, device=inputs.device)
        return losses
