"""Channel sorting: the permutations a sort applies, and applying them to other state.

A NetAug module's ``sort_channels`` reorders hidden channels so that the leading (shared) slice
holds the most important ones. It returns what it moved as a list of
:class:`ChannelPermutation` (tensor name, dimension, new order), in the order they were applied,
so that everything that shadows those tensors follows without comparing tensors: optimizer
state (momentum, Adam moments), gradients being accumulated, and averaged (EMA) copies of the
model (:func:`permute_optimizer_state`, :func:`permute_named_tensors`).
"""
from typing import Dict, Iterable, List, NamedTuple, Optional

import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn


class ChannelPermutation(NamedTuple):
    """``tensor.copy_(tensor.index_select(dim, order))`` applied to the tensor called ``name``
    (a parameter or buffer name, relative to the module that reports it)."""

    name: str
    dim: int
    order: Tensor

    def with_prefix(self, prefix: str) -> 'ChannelPermutation':
        """The same permutation, named from an enclosing module (``prefix`` ends without dot)."""
        return self._replace(name=f'{prefix}.{self.name}' if prefix else self.name)


def importance_order(weight: Tensor, num_kept: int = 0) -> Tensor:
    """Input channels of a conv weight (C_out, C_in, k, k) by descending L1 norm.

    The first ``num_kept`` channels stay where they are (in their order); only the remaining
    ones are ranked, behind them. ``num_kept=0`` ranks them all (the official NetAug sort).
    """
    importance = weight.detach().abs().sum(dim=(0, 2, 3))
    kept = torch.arange(num_kept, device=weight.device)
    ranked = torch.sort(importance[num_kept:], descending=True, stable=True).indices + num_kept
    return torch.cat([kept, ranked])


def _tensor(module: nn.Module, name: str) -> Optional[Tensor]:
    owner_name, _, attr = name.rpartition('.')
    return getattr(module.get_submodule(owner_name), attr)


@torch.no_grad()
def permute_named_tensors(module: nn.Module, permutations: Iterable[ChannelPermutation]) -> None:
    """Applies ``permutations`` in order to the named tensors of ``module`` (in place)."""
    for name, dim, order in permutations:
        tensor = _tensor(module, name)
        tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))


def output_permutations(prefix: str, layer: ConvModule, order: Tensor) -> List[ChannelPermutation]:
    """Permutations reordering the output channels of ``layer`` (conv rows, bias, its BN)."""
    names = ['conv.weight'] + (['conv.bias'] if layer.conv.bias is not None else [])
    if layer.with_norm:
        norm = layer.norm_name
        names += [f'{norm}.{attr}' for attr in ('weight', 'bias', 'running_mean', 'running_var')]
    return [ChannelPermutation(f'{prefix}.{name}', 0, order) for name in names]


@torch.no_grad()
def permute_optimizer_state(optimizer: torch.optim.Optimizer, params: Dict[str, nn.Parameter],
                            permutations: Iterable[ChannelPermutation]) -> None:
    """Makes per-element optimizer state and pending gradients follow a channel sort.

    For every permuted parameter (``params`` maps the permutations' names to parameters), each
    tensor in ``optimizer.state[param]`` with the parameter's shape (SGD momentum, Adam's moments)
    and the parameter's ``grad`` (gradients accumulated over ``accumulative_counts`` steps) are
    permuted like the parameter. Scalars such as Adam's ``step`` stay. Buffers are ignored.
    """
    for name, dim, order in permutations:
        param = params.get(name)
        if param is None:
            continue
        shadows = [value for value in optimizer.state.get(param, {}).values()
                   if isinstance(value, Tensor) and value.shape == param.shape]
        if param.grad is not None:
            shadows.append(param.grad)
        for tensor in shadows:
            tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))
