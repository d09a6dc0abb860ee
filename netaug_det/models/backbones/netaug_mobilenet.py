"""NetAug-capable MobileNet backbones: the plain module tree at its widest, with dynamic layers.

The base (tiny) model is the leading slice of every tensor. ``set_mode`` is the one place that
chooses widths: it derives an active :class:`MobileNetArch` from the base arch and writes each
dense conv's ``active_out_channels`` and each BN's ``batch_stats_only``. Everything else follows
the incoming tensor's width.
"""
import copy
import inspect
from dataclasses import replace
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_with_prefix
from torch import Tensor

from ..dynamic_layers import DynamicBatchNorm2d, DynamicConv2d
from .mobilenet import InvertedResidualNet, MobileNetArch, TinyMobileNetV2, TinyMobileNetV3

NETAUG_MODES = ('base', 'max', 'random', 'random_expand')
# SE layers never squeeze below this width (official NetAug DynamicSE.min_dim).
SE_MIN_CHANNELS = 16


def _scale(channels: float, factor: float) -> int:
    """NetAug's augmented width: ``channels * factor`` rounded to an integer (divisor 1)."""
    return make_divisible(channels * factor, 1)


def _leading(shape: torch.Size) -> Tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


@torch.no_grad()
def _permute(tensor: Optional[Tensor], dim: int, order: Tensor) -> None:
    if tensor is not None:
        tensor.copy_(tensor.index_select(dim, order))


def _permute_outputs(layer: ConvModule, order: Tensor) -> None:
    """Reorder the output channels of a ConvModule (conv rows, bias and its BN)."""
    _permute(layer.conv.weight, 0, order)
    _permute(layer.conv.bias, 0, order)
    if layer.with_norm:
        for tensor in (layer.norm.weight, layer.norm.bias, layer.norm.running_mean,
                       layer.norm.running_var):
            _permute(tensor, 0, order)


def _importance_order(weight: Tensor) -> Tensor:
    """Input channels of a conv weight by descending L1 norm."""
    importance = weight.abs().sum(dim=(0, 2, 3))
    return torch.sort(importance, descending=True, stable=True).indices


def augment_arch(base_arch: MobileNetArch, width_factor: Callable[[], float],
                 expand_factor: Callable[[], float]) -> MobileNetArch:
    """``base_arch`` with its widths scaled as in the official NetAug ``set_active``.

    Factors are drawn in the official order: stem; per block the output width (blocks with an
    identity shortcut keep their input width instead), then the expand factor on the hidden
    width (relative to the block's active input width); SE widths follow their hidden width;
    head last. Factors of 1.0 everywhere give ``base_arch`` back.
    """
    stem_channels = _scale(base_arch.stem_channels, width_factor())
    in_channels = stem_channels
    stages = []
    for stage in base_arch.stages:
        blocks = []
        for spec in stage:
            out_channels = in_channels if spec.with_shortcut else _scale(
                spec.out_channels, width_factor())
            mid_channels = in_channels
            if spec.with_expand_conv:
                mid_channels = _scale(spec.mid_channels / spec.in_channels * in_channels,
                                      expand_factor())
            se_channels = None
            if spec.se_channels is not None:
                se_channels = make_divisible(
                    max(spec.se_channels / spec.mid_channels * mid_channels, SE_MIN_CHANNELS), 1)
            blocks.append(replace(spec, in_channels=in_channels, mid_channels=mid_channels,
                                  out_channels=out_channels, se_channels=se_channels))
            in_channels = out_channels
        stages.append(tuple(blocks))
    return replace(base_arch, stem_channels=stem_channels, stages=tuple(stages),
                   head_channels=_scale(base_arch.head_channels, width_factor()))


class NetAugInvertedResidualNet(InvertedResidualNet):
    """Base of the NetAug backbones: the plain ``plain_cls`` tree at its widest augmented width.

    Input (B, 3, H, W). Every mode returns the plain backbone's feature maps shapes:
    (B, out_channels[i], H / stride_i, W / stride_i), the leading base channels of each
    (deeper layers still receive the wide tensors). Subclasses set ``plain_cls``.

    Args:
        *args, **kwargs: Arguments of ``plain_cls`` (``widen_factor``, ``out_indices``, ...).
            ``conv_cfg`` must be None, ``norm_cfg`` of type 'BN' and ``with_cp`` False;
            ``init_cfg`` of type 'Pretrained' loads a plain checkpoint into the leading (base)
            slices.
        aug_expand_list (Sequence[float]): Factors on each block's hidden (expand) width.
        aug_width_mult_list (Sequence[float]): Factors on the stem, block and head widths.
    """

    plain_cls = InvertedResidualNet

    def __init__(self, *args, aug_expand_list: Sequence[float],
                 aug_width_mult_list: Sequence[float], **kwargs) -> None:
        bound = inspect.signature(self.plain_cls).bind(*args, **kwargs)
        bound.apply_defaults()
        plain_kwargs = dict(bound.arguments)
        for name, factors in (('aug_expand_list', aug_expand_list),
                              ('aug_width_mult_list', aug_width_mult_list)):
            if 1.0 not in factors or min(factors) < 1.0:
                raise ValueError(f'{name} must contain 1.0 (the base model) and no factor below '
                                 f'1.0, got {factors}')
        conv_cfg, norm_cfg = plain_kwargs['conv_cfg'], plain_kwargs['norm_cfg']
        if conv_cfg is not None:
            raise ValueError(f'NetAug backbones use plain convolutions; set conv_cfg=None, got '
                             f'{conv_cfg}')
        if norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError(f"NetAug backbones support norm_cfg=dict(type='BN'); got "
                             f'{norm_cfg}')
        if plain_kwargs['with_cp']:
            raise ValueError('NetAug backbones need with_cp=False: checkpointed blocks would be '
                             'recomputed in backward with the widths of a later set_mode.')
        init_cfg = plain_kwargs['init_cfg']
        if isinstance(init_cfg, (list, tuple)) and any(
                cfg.get('type') == 'Pretrained' for cfg in init_cfg):
            raise ValueError("give a pretrained NetAug backbone init_cfg=dict(type='Pretrained', "
                             'checkpoint=...) on its own (a plain checkpoint for the base '
                             'slices), not inside a list.')
        base_arch = self.plain_cls.build_arch(plain_kwargs['widen_factor'],
                                              plain_kwargs['act_cfg'])
        max_width, max_expand = max(aug_width_mult_list), max(aug_expand_list)
        super().__init__(
            augment_arch(base_arch, lambda: max_width, lambda: max_expand),
            out_indices=plain_kwargs['out_indices'],
            frozen_stages=plain_kwargs['frozen_stages'],
            conv_cfg=dict(type=DynamicConv2d),
            norm_cfg=dict(norm_cfg, type=DynamicBatchNorm2d),
            norm_eval=plain_kwargs['norm_eval'],
            with_cp=False,
            pretrained=plain_kwargs['pretrained'],
            init_cfg=init_cfg)
        self.plain_kwargs = plain_kwargs
        self.base_arch = base_arch
        self.aug_expand_list = tuple(aug_expand_list)
        self.aug_width_mult_list = tuple(aug_width_mult_list)
        self.out_channels = tuple(base_arch.layer_channels[i] for i in self.out_indices)
        self.set_mode('base')

    @property
    def mode(self) -> str:
        """The current NetAug mode (one of ``NETAUG_MODES``)."""
        return self._mode

    @property
    def active_arch(self) -> MobileNetArch:
        """The widths the current mode runs (``base_arch`` in 'base' mode)."""
        return self._active_arch

    def set_mode(self, mode: str, generator: Optional[torch.Generator] = None) -> None:
        """Choose the widths of the next forward passes.

        Args:
            mode (str): 'base' (the tiny model), 'max' (every factor at its maximum), 'random'
                (width and expand factors drawn independently per layer) or 'random_expand'
                (widths at base, expand factors drawn per block).
            generator (torch.Generator, optional): Source of the random draws (the global RNG
                when None).
        """
        if mode not in NETAUG_MODES:
            raise ValueError(f'mode must be one of {NETAUG_MODES}, got {mode!r}')

        def draw(factors: Tuple[float, ...]) -> Callable[[], float]:
            return lambda: factors[int(torch.randint(len(factors), (1, ), generator=generator))]

        def fixed(factor: float) -> Callable[[], float]:
            return lambda: factor

        max_width, max_expand = max(self.aug_width_mult_list), max(self.aug_expand_list)
        width_factor, expand_factor = {
            'base': (fixed(1.0), fixed(1.0)),
            'max': (fixed(max_width), fixed(max_expand)),
            'random': (draw(self.aug_width_mult_list), draw(self.aug_expand_list)),
            'random_expand': (fixed(1.0), draw(self.aug_expand_list)),
        }[mode]
        arch = augment_arch(self.base_arch, width_factor, expand_factor)

        self.conv1.conv.active_out_channels = arch.stem_channels
        for block, spec in zip(self.blocks(), arch.blocks):
            if block.with_expand_conv:
                block.expand_conv.conv.active_out_channels = spec.mid_channels
            if block.with_se:
                block.se.conv1.conv.active_out_channels = spec.se_channels
                block.se.conv2.conv.active_out_channels = spec.mid_channels
            block.linear_conv.conv.active_out_channels = spec.out_channels
        self.conv2.conv.active_out_channels = arch.head_channels
        for module in self.modules():
            if isinstance(module, DynamicBatchNorm2d):
                module.batch_stats_only = mode != 'base'
        self._mode, self._active_arch = mode, arch

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> tuple of (B, out_channels[i], H / stride_i, W / stride_i)."""
        return tuple(
            out[:, :channels] for out, channels in zip(super().forward(x), self.out_channels))

    def _plain(self) -> InvertedResidualNet:
        """A fresh plain backbone with this backbone's arguments."""
        plain = self.plain_cls(**dict(self.plain_kwargs, pretrained=None, init_cfg=None))
        return plain.to(self.conv1.conv.weight)

    def export(self) -> InvertedResidualNet:
        """The plain backbone (``plain_cls``) holding the base weights: no dynamic modules."""
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
        """Copy a plain backbone's state dict into the leading (base) slices.

        Raises torch's ``load_state_dict`` error when names or shapes differ from ``plain_cls``
        with the same arguments.
        """
        plain = self._plain()
        plain.load_state_dict(state_dict)
        own_state = self.state_dict()
        for name, tensor in plain.state_dict().items():
            own_state[name][_leading(tensor.shape)].copy_(tensor)

    def init_weights(self) -> None:
        """Initialize; an ``init_cfg`` of type 'Pretrained' (a plain backbone checkpoint,
        optionally under ``prefix``) fills the base slices after the default initialization."""
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        self.init_cfg = copy.deepcopy(self.default_init_cfg)
        super().init_weights()
        self.init_cfg = init_cfg
        map_location = init_cfg.get('map_location', 'cpu')
        if init_cfg.get('prefix'):
            state_dict = _load_checkpoint_with_prefix(init_cfg['prefix'], init_cfg['checkpoint'],
                                                      map_location)
        else:
            checkpoint = _load_checkpoint(init_cfg['checkpoint'], map_location)
            state_dict = checkpoint.get('state_dict', checkpoint)
        self.load_base_state_dict(
            {name.removeprefix('module.'): tensor
             for name, tensor in state_dict.items()})

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Reorder each block's hidden channels (and its SE's) by the L1 norm of the projection
        weights, most important first, so the base slice holds the most important channels.
        Block outputs keep their order, so the function of the max model is unchanged."""
        for block in self.blocks():
            if not block.with_expand_conv:
                continue
            order = _importance_order(block.linear_conv.conv.weight)
            _permute_outputs(block.expand_conv, order)
            _permute_outputs(block.depthwise_conv, order)
            if block.with_se:
                _permute(block.se.conv1.conv.weight, 1, order)
                _permute_outputs(block.se.conv2, order)
                se_order = _importance_order(block.se.conv2.conv.weight)
                _permute(block.se.conv2.conv.weight, 1, se_order)
                _permute_outputs(block.se.conv1, se_order)
            _permute(block.linear_conv.conv.weight, 1, order)


@MODELS.register_module()
class NetAugMobileNetV2(NetAugInvertedResidualNet):
    """NetAug-capable :class:`TinyMobileNetV2` (official ``NetAugMobileNetV2`` widths).

    Takes the arguments of :class:`TinyMobileNetV2` plus ``aug_expand_list`` (default
    (1.0, 1.6, 2.2, 2.8)) and ``aug_width_mult_list`` (default (1.0, 1.8, 2.6)); ``export()``
    returns a :class:`TinyMobileNetV2`.
    """

    plain_cls = TinyMobileNetV2

    def __init__(self,
                 *args,
                 aug_expand_list: Sequence[float] = (1.0, 1.6, 2.2, 2.8),
                 aug_width_mult_list: Sequence[float] = (1.0, 1.8, 2.6),
                 **kwargs) -> None:
        super().__init__(*args, aug_expand_list=aug_expand_list,
                         aug_width_mult_list=aug_width_mult_list, **kwargs)


@MODELS.register_module()
class NetAugMobileNetV3(NetAugInvertedResidualNet):
    """NetAug-capable :class:`TinyMobileNetV3` (official ``NetAugMobileNetV3`` widths, SE layers
    widened with their block).

    Takes the arguments of :class:`TinyMobileNetV3` plus ``aug_expand_list`` (default
    (1.0, 1.6, 2.2, 2.8)) and ``aug_width_mult_list`` (default (1.0, 2.0, 3.0)); ``export()``
    returns a :class:`TinyMobileNetV3`.
    """

    plain_cls = TinyMobileNetV3

    def __init__(self,
                 *args,
                 aug_expand_list: Sequence[float] = (1.0, 1.6, 2.2, 2.8),
                 aug_width_mult_list: Sequence[float] = (1.0, 2.0, 3.0),
                 **kwargs) -> None:
        super().__init__(*args, aug_expand_list=aug_expand_list,
                         aug_width_mult_list=aug_width_mult_list, **kwargs)
