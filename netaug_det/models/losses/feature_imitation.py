"""Feature imitation: a student feature map regresses the teacher's, through a 1x1 adapter."""
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn


def standardize_channels(feat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each channel of ``feat`` (B, C, H, W) shifted and scaled to mean 0 and (population)
    variance 1 over the batch and all positions: ``(x - mean) / sqrt(var + eps)``."""
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    var = feat.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (feat - mean) / torch.sqrt(var + eps)


@MODELS.register_module()
class FeatureImitationLoss(nn.Module):
    """Mean squared error between an adapted student feature map and the teacher's.

    ``loss = loss_weight * mean over (B, Ct, H, W) of (adapter(student) - teacher)**2``, where
    ``adapter`` is a learnable 1x1 convolution (with bias) from ``Cs`` to ``Ct`` channels when
    the widths differ (hint learning, Romero et al., 2015; the 1x1 adaptation layer of Chen et
    al., 2017) and the identity when they are equal (then the loss has no parameters). With
    ``normalize=True`` both maps are first standardised per channel over the batch and all
    positions (:func:`standardize_channels`, as PKD, Cao et al., 2022); each channel's error
    is then ``2 * (1 - r)``, ``r`` the Pearson correlation of the two channels (up to ``eps``),
    so the loss ignores each channel's scale and offset.

    The adapter belongs to this loss module, not to the detector: it is in the detector's state
    dict (and in a NetAug export's copy of the detector) only if the caller makes the loss a
    submodule of the detector. Keep the loss outside it and give ``loss.parameters()`` to the
    optimizer, and the adapter is trained and never exported. Nothing is detached: the caller
    decides whether the teacher map carries gradients.

    Args:
        student_channels (int): ``Cs``.
        teacher_channels (int): ``Ct``.
        normalize (bool): standardise both maps per channel first. Defaults to False.
        loss_weight (float): Defaults to 1.0.

    Shapes: ``forward(student, teacher)`` takes (B, Cs, H, W) and (B, Ct, H, W) (same B, H, W)
    and returns a scalar.
    """

    def __init__(self, student_channels: int, teacher_channels: int, normalize: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.adapter = (nn.Identity() if student_channels == teacher_channels else
                        nn.Conv2d(student_channels, teacher_channels, kernel_size=1))
        self.normalize = normalize
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss of ``student`` against ``teacher`` (see the class docstring)."""
        adapted = self.adapter(student)
        if adapted.shape != teacher.shape:
            raise ValueError(f'adapted student map {tuple(adapted.shape)} (from '
                             f'{tuple(student.shape)}) does not match the teacher map '
                             f'{tuple(teacher.shape)}')
        if self.normalize:
            adapted, teacher = standardize_channels(adapted), standardize_channels(teacher)
        return self.loss_weight * F.mse_loss(adapted, teacher)
