"""Relational knowledge distillation (RKD, Park et al., CVPR 2019): the student matches the
teacher's distances (RKD-D) and angles (RKD-A) between the samples of a batch.

Both losses compare embeddings (N, D) of the same N samples; the student's and the teacher's D
may differ, since only relations between samples are compared. Feature maps (N, C, H, W), or a
sequence of them such as a neck's levels, are reduced to embeddings by :func:`pool_embeddings`.
The penalty is the paper's Huber loss (``F.smooth_l1_loss`` with ``beta=1``):
``0.5 * x**2`` for ``|x| <= 1``, ``|x| - 0.5`` otherwise, averaged over the distinct pairs (RKD-D)
or the triplets of distinct samples (RKD-A). The paper writes sums; its official code and
MMRazor average over all N**2 pairs (N**3 triplets) including the degenerate ones, whose terms
are 0, so their values are ours times ``(N - 1) / N`` (RKD-D) and ``(N - 1) * (N - 2) / N**2``
(RKD-A). Relations are taken within the batch given (under DDP, one GPU's batch). Nothing is
detached: the caller decides whether the teacher side carries gradients.
"""
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

Features = Union[torch.Tensor, Sequence[torch.Tensor]]


def pool_embeddings(feats: Features) -> torch.Tensor:
    """Embeddings (N, D) for relational losses.

    A (N, D) tensor is returned as it is; a map (N, C, ...) is averaged over its spatial
    positions into (N, C); a sequence of maps (e.g. a neck's levels) is pooled level by level
    and concatenated into (N, sum of C).
    """
    if not isinstance(feats, torch.Tensor):
        return torch.cat([pool_embeddings(feat) for feat in feats], dim=1)
    if feats.dim() < 2:
        raise ValueError(f'expected (N, D) or (N, C, H, W) features, got {tuple(feats.shape)}')
    return feats.flatten(2).mean(dim=2) if feats.dim() > 2 else feats


def distance_potentials(emb: torch.Tensor) -> torch.Tensor:
    """RKD-D potentials of (N, D) embeddings, N >= 2: ``||e_i - e_j|| / mu`` for each pair
    i < j, ``mu`` the mean of these distances. Returns (N * (N - 1) / 2,)."""
    rows, cols = torch.triu_indices(len(emb), len(emb), offset=1, device=emb.device)
    dist = (emb[rows] - emb[cols]).norm(dim=1)
    return dist / dist.mean().clamp(min=torch.finfo(dist.dtype).eps)


def angle_potentials(emb: torch.Tensor) -> torch.Tensor:
    """RKD-A potentials of (N, D) embeddings, N >= 3: ``cos`` of the angle at ``e_j`` of each
    triplet of distinct samples (i, j, k), ``<u_ij, u_kj>`` with ``u_ij`` the unit vector from
    ``e_j`` to ``e_i``. Returns (N * (N - 1) * (N - 2),), ordered by (j, i, k)."""
    units = F.normalize(emb.unsqueeze(0) - emb.unsqueeze(1), p=2, dim=2)  # [j, i] = u_ij
    cosines = torch.bmm(units, units.transpose(1, 2))  # [j, i, k] = <u_ij, u_kj>
    index = torch.arange(len(emb), device=emb.device)
    j, i, k = index.view(-1, 1, 1), index.view(1, -1, 1), index.view(1, 1, -1)
    return cosines[(i != j) & (k != j) & (i != k)]


class _RelationalLoss(nn.Module):
    """Huber loss between the student's and the teacher's relational potentials.

    Subclasses set ``potentials`` (embeddings (N, D) -> potentials) and ``min_samples``.
    ``forward(student, teacher)`` takes features accepted by :func:`pool_embeddings` for the
    same N samples and returns a scalar. Below ``min_samples`` samples there is no relation:
    the loss is a zero that still depends on both inputs (so every parameter that produced
    them takes part in the backward pass, as DDP expects).
    """

    potentials: Callable[[torch.Tensor], torch.Tensor]
    min_samples: int

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: Features, teacher: Features) -> torch.Tensor:
        """The loss of ``student`` against ``teacher`` (see the class docstring)."""
        s_emb, t_emb = pool_embeddings(student), pool_embeddings(teacher)
        if len(s_emb) != len(t_emb):
            raise ValueError(f'student and teacher have {len(s_emb)} and {len(t_emb)} samples')
        if len(s_emb) < self.min_samples:
            return 0 * (s_emb.sum() + t_emb.sum())
        return self.loss_weight * F.smooth_l1_loss(
            self.potentials(s_emb), self.potentials(t_emb), beta=1.0)


@MODELS.register_module()
class RKDDistanceLoss(_RelationalLoss):
    """RKD-D: ``loss_weight * mean over pairs i < j of huber(psi_s(i, j) - psi_t(i, j))`` with
    ``psi(i, j) = ||e_i - e_j|| / mu`` (:func:`distance_potentials`; each side normalised by
    its own mean distance ``mu``). Invariant to translating or scaling either side's embeddings.
    Zero for N < 2.

    Args:
        loss_weight (float): Defaults to 1.0.
    """

    min_samples = 2
    potentials = staticmethod(distance_potentials)


@MODELS.register_module()
class RKDAngleLoss(_RelationalLoss):
    """RKD-A: ``loss_weight * mean over triplets of distinct (i, j, k) of
    huber(psi_s(i, j, k) - psi_t(i, j, k))`` with ``psi(i, j, k) = cos of the angle at e_j``
    (:func:`angle_potentials`). Invariant to translating, scaling (by a positive factor) or
    rotating either side's embeddings. Zero for N < 3.

    Args:
        loss_weight (float): Defaults to 1.0.
    """

    min_samples = 3
    potentials = staticmethod(angle_potentials)
