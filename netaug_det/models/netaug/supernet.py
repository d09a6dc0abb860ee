"""The NetAug view of a model: its NetAug modules, their mode, the auxiliary pass and the export.

:class:`NetAugSupernet` is the one owner of the augmentation mode of a model: it finds every
:class:`NetAugModule` in it (backbone, neck, head, ...), sets their widths together, and is the
only place that decides how BatchNorm behaves in an augmented pass. The export functions turn any
model holding NetAug modules into its plain (deployable) twin.
"""
import copy
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import mmengine
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer

from ...version import __version__
from ..train_loss import TrainingOnlyModule
from .channels import ChannelPermutation, permute_named_tensors, permute_optimizer_state
from .module import NETAUG_MODES, NetAugModule

SORT_SCOPES = ('auto', 'all', 'augmented')


def netaug_modules(model: nn.Module) -> 'OrderedDict[str, NetAugModule]':
    """The outermost NetAug modules of ``model`` by qualified name, in registration order."""
    found: 'OrderedDict[str, NetAugModule]' = OrderedDict()
    for name, module in model.named_modules():
        if isinstance(module, NetAugModule) and not any(
                outer == '' or name.startswith(f'{outer}.') for outer in found):
            found[name] = module
    return found


class NetAugSupernet:
    """The augmentation state of a model with NetAug modules, owned in one place.

    Args:
        model (nn.Module): an (unwrapped) model holding at least one :class:`NetAugModule`.

    Raises:
        TypeError: naming the fix when ``model`` holds no NetAug module.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modules = netaug_modules(model)
        if not self.modules:
            raise TypeError(
                f'NetAug needs a model with NetAug-capable modules, but {type(model).__name__} '
                'has none; set model.backbone.type to a NetAug backbone, e.g. '
                "'NetAugMobileNetV2' or 'NetAugMobileNetV3' (same arguments as the plain one), "
                'or see docs/netaug_for_your_model.md')
        self._mode = 'base'
        self.set_mode('base')

    @property
    def mode(self) -> str:
        """The mode the modules run in ('base' outside :meth:`augmented`)."""
        return self._mode

    def set_mode(self, mode: str, generator: Optional[torch.Generator] = None) -> None:
        """Sets the widths of every NetAug module (drawn in module order from ``generator``)."""
        if mode not in NETAUG_MODES:
            raise ValueError(f'mode must be one of {NETAUG_MODES}, got {mode!r}')
        for module in self.modules.values():
            module.set_widths(mode, generator)
        self._mode = mode

    @contextmanager
    def augmented(self, mode: str, generator: Optional[torch.Generator]) -> Iterator[None]:
        """Runs the block in an augmented ``mode`` and returns to 'base' afterwards.

        The one BatchNorm rule of an augmented pass: every BatchNorm of the model that is in
        train mode normalises with the batch's statistics and updates no running statistics
        (``track_running_stats`` is off for the block); a BatchNorm in eval mode (frozen stages)
        normalises with its running statistics, exactly as in the base model. So the running
        statistics are always those of the base model.
        """
        norms = [m for m in self.model.modules()
                 if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
        try:
            for norm in norms:
                norm.track_running_stats = False
            self.set_mode(mode, generator)
            yield
        finally:
            for norm in norms:
                norm.track_running_stats = True
            self.set_mode('base')

    def width_ratio(self) -> float:
        """Active over base channels, summed over every NetAug module (1.0 in 'base' mode)."""
        counts = [module._channel_counts() for module in self.modules.values()]
        return sum(active for active, _ in counts) / sum(base for _, base in counts)

    def sort_channels(self, scope: str = 'auto', optimizers: Sequence[Optimizer] = (),
                      copies: Sequence[nn.Module] = ()) -> List[ChannelPermutation]:
        """Sorts the hidden channels of every NetAug module; returns the permutations applied,
        named from the model. Whatever shadows the sorted tensors follows them: the per-element
        state of ``optimizers`` (momentum, Adam moments) and the gradients being accumulated
        (:func:`permute_optimizer_state`), and ``copies`` of the model with the same tensor names
        (e.g. an EMA copy).

        Args:
            scope (str): 'all' ranks every hidden channel (official NetAug); 'augmented' keeps
                the base channels where they are and ranks only those behind them; 'auto' does
                'augmented' for modules whose base slices were loaded from a plain checkpoint
                (``base_checkpoint``), so loaded weights are never replaced by untrained ones,
                and 'all' elsewhere.
            optimizers (Sequence[Optimizer]): optimizers over the model's parameters.
            copies (Sequence[nn.Module]): models whose tensors are named like the model's.
        """
        if scope not in SORT_SCOPES:
            raise ValueError(f'sort scope must be one of {SORT_SCOPES}, got {scope!r}')
        permutations = []
        for name, module in self.modules.items():
            keep_base = scope == 'augmented' or (scope == 'auto'
                                                 and module.base_checkpoint is not None)
            permutations += [perm.with_prefix(name) for perm in module.sort_channels(keep_base)]
        params = dict(self.model.named_parameters())
        for optimizer in optimizers:
            permute_optimizer_state(optimizer, params, permutations)
        for copy_ in copies:
            permute_named_tensors(copy_, permutations)
        return permutations


def export_plain_model(model: nn.Module) -> nn.Module:
    """The deployable twin of ``model``: a copy whose NetAug modules are replaced by their
    ``export()`` (the plain modules holding the base weights) and whose training-only modules
    (``TrainingOnlyModule``, e.g. distillation adapters) are left out. A model with neither is
    returned as it is."""
    found = netaug_modules(model)
    training_only = {name: module for name, module in model.named_children()
                     if isinstance(module, TrainingOnlyModule)}
    if not found and not training_only:
        return model
    if '' in found:
        return model.export()
    # Copy everything but the NetAug modules (their exports replace them), the training-only
    # modules and a training loss bound to the instance.
    memo = {id(module): None for module in [*found.values(), *training_only.values()]}
    bound_loss = model.__dict__.get('loss')
    if bound_loss is not None:
        memo[id(bound_loss)] = None
    plain = copy.deepcopy(model, memo)
    plain.__dict__.pop('loss', None)
    for name in training_only:
        delattr(plain, name)
    for name, module in found.items():
        parent_name, _, child = name.rpartition('.')
        setattr(plain.get_submodule(parent_name), child, module.export())
    return plain


def deployable_state_dict(model: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict of :func:`export_plain_model` (``model``) as compact CPU copies: the keys
    and shapes of the matching plain model, nothing of the augmented weights."""
    return OrderedDict((name, tensor.detach().to('cpu', copy=True))
                       for name, tensor in export_plain_model(model).state_dict().items())


def deployable_checkpoint(model: nn.Module, source_meta: Optional[dict] = None) -> Dict:
    """A checkpoint of the plain model that the baseline config loads with ``tools/test.py``.

    Args:
        model (nn.Module): a model with NetAug modules (unwrapped).
        source_meta (dict, optional): meta of the NetAug run; its ``dataset_meta``, ``epoch``,
            ``iter`` and ``seed`` are carried over (class names for inference tools).

    Returns:
        dict: ``{'meta': ..., 'state_dict': ...}`` with plain python values and CPU tensors only.
    """
    meta = {key: value for key, value in (source_meta or {}).items()
            if key in ('dataset_meta', 'epoch', 'iter', 'seed')}
    meta.update(
        exported_from=('NetAug model (base widths)' if netaug_modules(model) else
                       'plain model (training-only modules left out)'),
        netaug_det_version=__version__,
        mmengine_version=mmengine.__version__,
        time=time.strftime('%Y%m%d_%H%M%S', time.localtime()))
    return dict(meta=meta, state_dict=deployable_state_dict(model))
