"""Output-level distillation for YOLOv3 heads: soft objectness and class targets per anchor."""
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn


def binary_kl_with_logits(student_logits: torch.Tensor,
                          teacher_logits: torch.Tensor) -> torch.Tensor:
    """Elementwise KL divergence KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s))).

    ``p_t * (log p_t - log p_s) + (1 - p_t) * (log(1 - p_t) - log(1 - p_s))`` with
    ``p = sigmoid(logit)``, computed from log-sigmoids (stable for large logits). It equals the
    binary cross-entropy of the student against the soft target ``p_t`` minus the target's own
    entropy, so it is 0 exactly when the logits are equal. Nothing is detached.

    Args:
        student_logits (Tensor): any shape.
        teacher_logits (Tensor): the same shape.

    Returns:
        Tensor: the same shape, >= 0.
    """
    p_t = torch.sigmoid(teacher_logits)
    return (p_t * (F.logsigmoid(teacher_logits) - F.logsigmoid(student_logits))
            + (1 - p_t) * (F.logsigmoid(-teacher_logits) - F.logsigmoid(-student_logits)))


@MODELS.register_module()
class YOLOV3SoftTargetLoss(nn.Module):
    """Knowledge distillation on one level of a YOLOv3 head's raw prediction map.

    YOLOv3 (mmdet's ``YOLOV3Head``, ``TinyYOLOV3Head``) predicts, per anchor, box offsets
    (x, y, w, h), an objectness logit and ``num_classes`` class logits, each class scored by its
    own sigmoid and trained with binary cross-entropy (multi-label, no softmax). So the soft
    targets are binary too: the teacher's objectness and each of its class probabilities, at
    temperature ``T``, and the student matches each one with a binary KL divergence. Box
    offsets are not distilled. Per anchor ``n`` (image, anchor, row, column), with
    ``KL(t, s) = KL(Bernoulli(sigmoid(t / T)) || Bernoulli(sigmoid(s / T)))``::

        obj_n = KL(t_obj_n, s_obj_n)
        cls_n = sum over classes c of KL(t_c_n, s_c_n)
        w_n   = sigmoid(t_obj_n)  if teacher_obj_weight  else 1
        loss  = loss_weight * T**2 * (mean_n obj_n + sum_n w_n * cls_n / sum_n w_n)

    With ``reduction='sum'`` the anchors are summed instead (``sum_n obj_n + sum_n w_n cls_n``),
    the reduction of YOLOv3's own losses (``reduction='sum'`` over anchors and images in mmdet's
    YOLOv3 configs), so that the distillation term has their scale at any input size and batch.

    The objectness term is a plain mean over all ``B * A * H * W`` anchors (the student learns
    where the teacher sees background too); the class term is a mean over anchors, weighted by
    the teacher's objectness (temperature 1) when ``teacher_obj_weight``, so that class targets
    count where the teacher sees an object (YOLOv3 trains class scores at positive anchors
    only). Classes are summed, as YOLOv3's BCE class loss sums them. ``T**2`` keeps the
    gradient's scale independent of the temperature (Hinton et al., 2015). Nothing is detached,
    the teacher weight included: the caller passes a detached teacher for fixed-teacher KD, or
    a live one to let gradients reach the teacher.

    Args:
        num_classes (int): classes of the head (``C``).
        temperature (float): ``T`` > 0. Defaults to 1.0.
        teacher_obj_weight (bool): weight the class term by the teacher's objectness.
            Defaults to True.
        loss_weight (float): Defaults to 1.0.
        reduction (str): 'mean' or 'sum' over anchors. Defaults to 'mean'.

    Shapes: ``forward(student, teacher)`` takes two raw prediction maps of the same level,
    both (B, A * (5 + C), H, W) in mmdet's layout (anchor-major: channel ``a * (5 + C) + k``,
    ``k`` = x, y, w, h, objectness, classes), and returns a scalar.
    """

    def __init__(self, num_classes: int, temperature: float = 1.0,
                 teacher_obj_weight: bool = True, loss_weight: float = 1.0,
                 reduction: str = 'mean') -> None:
        super().__init__()
        if num_classes < 1 or temperature <= 0:
            raise ValueError(f'need num_classes >= 1 and temperature > 0, got {num_classes} '
                             f'and {temperature}')
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self.num_classes = num_classes
        self.temperature = temperature
        self.teacher_obj_weight = teacher_obj_weight
        self.loss_weight = loss_weight

    def _per_anchor(self, pred_map: torch.Tensor) -> torch.Tensor:
        """(B, A * (5 + C), H, W) -> (B, A, 5 + C, H, W)."""
        attribs = 5 + self.num_classes
        if pred_map.dim() != 4 or pred_map.shape[1] % attribs:
            raise ValueError(f'expected a (B, A * (5 + {self.num_classes}), H, W) prediction map, '
                             f'got {tuple(pred_map.shape)}')
        batch, channels, height, width = pred_map.shape
        return pred_map.view(batch, channels // attribs, attribs, height, width)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss of ``student`` against ``teacher`` (see the class docstring)."""
        if student.shape != teacher.shape:
            raise ValueError(f'student and teacher maps differ: {tuple(student.shape)} vs '
                             f'{tuple(teacher.shape)}')
        s, t = self._per_anchor(student), self._per_anchor(teacher)
        temp = self.temperature
        obj = binary_kl_with_logits(s[:, :, 4] / temp, t[:, :, 4] / temp)  # (B, A, H, W)
        cls = binary_kl_with_logits(s[:, :, 5:] / temp, t[:, :, 5:] / temp).sum(dim=2)
        weight = torch.sigmoid(t[:, :, 4]) if self.teacher_obj_weight else torch.ones_like(cls)
        if self.reduction == 'sum':
            total = obj.sum() + (weight * cls).sum()
        else:
            total = obj.mean() + (weight * cls).sum() / weight.sum().clamp(
                min=torch.finfo(weight.dtype).eps)
        return self.loss_weight * temp ** 2 * total
