"""The contract of a module that takes part in NetAug, and what every such module shares.

A NetAug module (backbone, neck, head, classifier head...) is its plain twin's module tree built at
the widest augmented width with the dynamic layers of ``dynamic_layers.py``, so that parameter
names are the plain module's and the base (tiny) model is the leading slice of every tensor. Its
inputs and outputs always keep the plain module's widths; only its inner widths are augmented.
That keeps any mix of NetAug and plain modules consistent (a plain neck after a NetAug backbone,
a concatenation of a lateral branch with a backbone feature) without modules knowing each other.

Every NetAug module follows one recipe (``docs/netaug_for_your_model.md``):

1. a **spec** holds the widths of its blocks; ``base_spec`` is the plain twin's, derived from
   the plain arguments;
2. ``augment_spec(spec, width_factor, expand_factor)`` scales a spec (one call of a factor
   function per draw, in a fixed order); the widest spec is the base spec at the largest factors;
3. the module tree is the plain twin's layout built at the widest spec with dynamic layers;
4. ``named_block_specs(spec)`` pairs each augmented block (a submodule name) with its part of a
   spec, and the **adapter** of the block's type (``adapters.py``) writes its active widths,
   sorts its hidden channels and counts its channels.

A subclass provides ``plain_cls`` (the plain twin, built from the same arguments by
:meth:`NetAugModule.export`), ``augment_spec`` and ``named_block_specs``, and calls
:meth:`NetAugModule._setup_netaug` at the end of ``__init__``; setting widths, sorting and
counting channels come from the mixin.

:class:`netaug_det.models.netaug.NetAugSupernet` finds these modules in a model and is the one
owner of their mode during training.
"""
import copy
import inspect
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.utils import make_divisible
from torch import Tensor, nn

from ...utils.checkpoint import load_error_detail, pretrained_state_dict

from .adapters import block_adapter
from .channels import ChannelPermutation

NETAUG_MODES = ('base', 'max', 'random', 'random_expand')
FactorFn = Callable[[], float]


def scale_width(channels: float, factor: float) -> int:
    """NetAug's augmented width: ``channels * factor`` rounded to an integer (``make_divisible``
    with divisor 1, as the official code does)."""
    return make_divisible(channels * factor, 1)


def check_factor_list(name: str, factors: Sequence[float]) -> Tuple[float, ...]:
    """``factors`` as a tuple, after checking it holds 1.0 (the base model) and nothing below."""
    if not factors or 1.0 not in factors or min(factors) < 1.0:
        raise ValueError(f'{name} must contain 1.0 (the base model) and no factor below 1.0, '
                         f'got {factors}')
    return tuple(factors)


def factor_fns(mode: str, width_factors: Sequence[float], expand_factors: Sequence[float],
               generator: Optional[torch.Generator]) -> Tuple[FactorFn, FactorFn]:
    """The width and expand factor sources of ``mode`` (see :data:`NETAUG_MODES`).

    'base': 1.0 everywhere; 'max': the largest factors; 'random': an independent draw per call
    from ``generator``; 'random_expand': widths at 1.0, expand factors drawn.
    """
    if mode not in NETAUG_MODES:
        raise ValueError(f'mode must be one of {NETAUG_MODES}, got {mode!r}')

    def draw(factors: Sequence[float]) -> FactorFn:
        return lambda: factors[int(torch.randint(len(factors), (1, ), generator=generator))]

    def fixed(factor: float) -> FactorFn:
        return lambda: factor

    if mode == 'base':
        return fixed(1.0), fixed(1.0)
    if mode == 'max':
        return fixed(max(width_factors)), fixed(max(expand_factors))
    if mode == 'random':
        return draw(width_factors), draw(expand_factors)
    return fixed(1.0), draw(expand_factors)


def _leading(shape: torch.Size) -> Tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


class NetAugModule:
    """Mixin for an ``nn.Module`` that holds the weights of its widest augmented version.

    Use it as the first base class, before the plain module class, and call
    :meth:`_setup_netaug` at the end of ``__init__``.
    """

    plain_cls: type = nn.Module
    #: a plain checkpoint loaded into the base slices by ``init_weights`` (None: none was)
    base_checkpoint: Optional[str] = None

    def _setup_netaug(self, plain_kwargs: dict, base_spec: Any, widest_spec: Any,
                      aug_width_mult_list: Sequence[float],
                      aug_expand_list: Sequence[float]) -> None:
        """Records the plain arguments, the base and widest specs (the tree is built at
        ``widest_spec``) and the factor lists, then runs the base model."""
        self.plain_kwargs = plain_kwargs
        self.base_spec = base_spec
        self.widest_spec = widest_spec
        self.aug_width_mult_list = check_factor_list('aug_width_mult_list', aug_width_mult_list)
        self.aug_expand_list = check_factor_list('aug_expand_list', aug_expand_list)
        self.set_widths('base')

    @staticmethod
    def widest_factors(aug_width_mult_list: Sequence[float],
                       aug_expand_list: Sequence[float]) -> Tuple[FactorFn, FactorFn]:
        """The factor functions of the widest model ('max' mode), to build the tree with."""
        return factor_fns('max', check_factor_list('aug_width_mult_list', aug_width_mult_list),
                          check_factor_list('aug_expand_list', aug_expand_list), None)

    @classmethod
    def bind_plain_args(cls, args: tuple, kwargs: dict) -> dict:
        """The arguments of ``plain_cls`` given to this class as keywords, with the defaults
        filled in (arguments ``plain_cls`` takes through ``**kwargs`` included)."""
        signature = inspect.signature(cls.plain_cls)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        plain_kwargs = {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                plain_kwargs.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise TypeError(f'{cls.__name__}: pass the arguments of '
                                    f'{cls.plain_cls.__name__} by keyword')
            else:
                plain_kwargs[name] = value
        return plain_kwargs

    def set_widths(self, mode: str, generator: Optional[torch.Generator] = None) -> None:
        """Chooses the inner widths of the next forward passes (see :func:`factor_fns`)."""
        self._apply_widths(*factor_fns(mode, self.aug_width_mult_list, self.aug_expand_list,
                                       generator))

    def augment_spec(self, spec: Any, width_factor: FactorFn, expand_factor: FactorFn) -> Any:
        """``spec`` with its widths scaled by the factors the functions draw."""
        raise NotImplementedError

    def named_block_specs(self, spec: Any) -> List[Tuple[str, Any]]:
        """(submodule name, block spec) of each augmented block, in data-flow order; the name
        '' is the module itself."""
        raise NotImplementedError

    def _apply_widths(self, width_factor: FactorFn, expand_factor: FactorFn) -> None:
        """Writes the widths of ``augment_spec(base_spec, ...)`` into the blocks."""
        self.active_spec = self.augment_spec(self.base_spec, width_factor, expand_factor)
        for name, spec in self.named_block_specs(self.active_spec):
            block = self.get_submodule(name)
            block_adapter(block).set_widths(block, spec)

    def _channel_counts(self) -> Tuple[int, int]:
        """(active, base) output channels of the augmented blocks' layers, for logging."""
        def count(spec: Any) -> int:
            return sum(block_adapter(self.get_submodule(name)).channels(block_spec)
                       for name, block_spec in self.named_block_specs(spec))

        return count(self.active_spec), count(self.base_spec)

    def sort_channels(self, keep_base: bool = False) -> List[ChannelPermutation]:
        """Reorders hidden channels by importance; returns the permutations applied, in order.

        With ``keep_base`` the base (leading) channels stay where they are and only the
        augmented channels behind them are ranked. Blocks that never widen (the widest spec is
        their base spec, e.g. frozen stages) stay as they are.
        """
        widest = dict(self.named_block_specs(self.widest_spec))
        permutations = []
        for name, spec in self.named_block_specs(self.base_spec):
            if widest[name] == spec:
                continue
            block = self.get_submodule(name)
            permutations += [perm.with_prefix(name)
                             for perm in block_adapter(block).sort_channels(block, spec, keep_base)]
        return permutations

    def _plain(self) -> nn.Module:
        """A fresh plain twin with this module's arguments, on this module's device."""
        kwargs = dict(self.plain_kwargs)
        if 'init_cfg' in kwargs:
            kwargs['init_cfg'] = None  # the weights come from this module
        plain = self.plain_cls(**kwargs)
        return plain.to(next(self.parameters()).device)

    def export(self) -> nn.Module:
        """The plain twin (``plain_cls``) holding the base weights: no dynamic layers."""
        plain = self._plain()
        plain_state = plain.state_dict()
        plain.load_state_dict({
            name: tensor[_leading(plain_state[name].shape)]
            for name, tensor in self.state_dict().items()
        })
        plain.is_init = True
        return plain.train(self.training)

    @torch.no_grad()
    def load_base_state_dict(self, state_dict: Dict[str, Tensor]) -> None:
        """Copies a plain twin's state dict into the leading (base) slices.

        Raises torch's ``load_state_dict`` error when names or shapes differ from ``plain_cls``
        with the same arguments.
        """
        plain = self._plain()
        plain.load_state_dict(state_dict)
        own_state = self.state_dict()
        for name, tensor in plain.state_dict().items():
            own_state[name][_leading(tensor.shape)].copy_(tensor)

    def _default_init_cfg(self) -> Optional[dict]:
        """The initialisation used before a plain pretrained checkpoint fills the base slices."""
        return None

    def init_weights(self) -> None:
        """Initialises; ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` loads a
        checkpoint after the default initialisation, checked strictly:

        - a plain twin's weights (e.g. ImageNet weights of the plain backbone, or a detector's
          ``backbone.*``) fill the base slices; the augmented slices keep the default
          initialisation and the file is recorded in ``base_checkpoint``;
        - a whole NetAug supernet of the same widths (e.g. a NetAug ImageNet classifier's
          backbone) fills every slice.
        """
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        self.init_cfg = copy.deepcopy(self._default_init_cfg())
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        filename = init_cfg['checkpoint']
        own = {name: tensor.shape for name, tensor in self.state_dict().items()}
        state_dict = pretrained_state_dict(filename, own, init_cfg.get('prefix'))
        if all(state_dict[name].shape == shape for name, shape in own.items()):
            self.load_state_dict(state_dict)
            return
        try:
            self.load_base_state_dict(state_dict)
        except RuntimeError as error:
            raise ValueError(f'{filename} holds neither the plain twin of this NetAug module nor '
                             f'its whole supernet: {load_error_detail(error)}; pass a '
                             'checkpoint of the same architecture and widen_factor') from None
        self.base_checkpoint = filename
