"""NetAug-capable MobileNet backbones: the plain module tree at its widest, with dynamic layers.

The base (tiny) model is the leading slice of every tensor. ``set_widths`` derives an active
:class:`MobileNetArch` from the base arch (:func:`augment_arch`) and hands each block to its
adapter (``netaug_det/models/netaug/adapters.py``); everything else follows the incoming
tensor's width. Outputs keep the plain backbone's widths in every mode.
"""
from dataclasses import replace
from typing import List, Sequence, Tuple

from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from torch import Tensor

from ..netaug import (ChannelPermutation, DynamicBatchNorm2d, DynamicConv2d, NetAugModule,
                      block_adapter)
from ..netaug.module import FactorFn, scale_width
from .mobilenet import InvertedResidualNet, MobileNetArch, TinyMobileNetV2, TinyMobileNetV3
from .tinyml import MCUNet, MobileNetV2Tiny, ProxylessNASMobile

# SE layers never squeeze below this width (official NetAug DynamicSE.min_dim).
SE_MIN_CHANNELS = 16


def augment_arch(base_arch: MobileNetArch, width_factor: FactorFn, expand_factor: FactorFn,
                 num_fixed_stages: int = 0) -> MobileNetArch:
    """``base_arch`` with its widths scaled as in the official NetAug ``set_active``.

    Factors are drawn in the official order: stem; per block the output width (blocks with an
    identity shortcut keep their input width instead), then the expand factor on the hidden
    width (relative to the block's active input width); SE widths follow their hidden width;
    head last (an arch without a final conv, as MCUNet's, draws none). The stem and the first
    ``num_fixed_stages - 1`` stages (frozen stages: a value of ``frozen_stages + 1``) keep their
    base widths and draw nothing. Factors of 1.0 everywhere give ``base_arch`` back.
    """
    fixed = num_fixed_stages > 0
    stem_channels = (base_arch.stem_channels
                     if fixed else scale_width(base_arch.stem_channels, width_factor()))
    in_channels = stem_channels
    stages = []
    for index, stage in enumerate(base_arch.stages):
        if index + 1 < num_fixed_stages:
            stages.append(stage)
            in_channels = stage[-1].out_channels
            continue
        blocks = []
        for spec in stage:
            out_channels = in_channels if spec.with_shortcut else scale_width(
                spec.out_channels, width_factor())
            mid_channels = in_channels
            if spec.with_expand_conv:
                mid_channels = scale_width(
                    spec.mid_channels / spec.in_channels * in_channels, expand_factor())
            se_channels = None
            if spec.se_channels is not None:
                se_channels = make_divisible(
                    max(spec.se_channels / spec.mid_channels * mid_channels, SE_MIN_CHANNELS), 1)
            blocks.append(replace(spec, in_channels=in_channels, mid_channels=mid_channels,
                                  out_channels=out_channels, se_channels=se_channels))
            in_channels = out_channels
        stages.append(tuple(blocks))
    head_channels = base_arch.head_channels
    if head_channels is not None:
        head_channels = scale_width(head_channels, width_factor())
    return replace(base_arch, stem_channels=stem_channels, stages=tuple(stages),
                   head_channels=head_channels)


def arch_channels(arch: MobileNetArch) -> int:
    """Output channels of every layer of ``arch``, summed (stem, hidden and block outputs, head)."""
    return arch.stem_channels + (arch.head_channels or 0) + sum(
        spec.mid_channels + spec.out_channels for spec in arch.blocks)


class NetAugInvertedResidualNet(NetAugModule, InvertedResidualNet):
    """Base of the NetAug backbones: the plain ``plain_cls`` tree at its widest augmented width.

    Input (B, 3, H, W). Every mode returns the plain backbone's feature map shapes:
    (B, out_channels[i], H / stride_i, W / stride_i), the leading base channels of each
    (deeper layers still receive the wide tensors). Subclasses set ``plain_cls``.

    Args:
        *args, **kwargs: Arguments of ``plain_cls`` (``widen_factor``, ``out_indices``, ...).
            ``conv_cfg`` must be None, ``norm_cfg`` of type 'BN', ``with_cp`` and ``norm_eval``
            False; ``frozen_stages`` keeps those stages at base width, never sorted, with their
            BatchNorms in eval mode; ``init_cfg`` of type 'Pretrained' loads a plain checkpoint
            into the leading (base) slices.
        aug_expand_list (Sequence[float]): Factors on each block's hidden (expand) width.
        aug_width_mult_list (Sequence[float]): Factors on the stem, block and head widths.
        active_last_output (bool): Return the last output at its active width instead of its
            base width (opt-in, for a NetAug classifier head that reads the widened final
            features, as the official NetAug classifiers do; see ``NetAugTinyClsHead``). Its
            width is then at most ``widest_out_channels[-1]``. Defaults to False.
    """

    plain_cls = InvertedResidualNet

    def __init__(self, *args, aug_expand_list: Sequence[float],
                 aug_width_mult_list: Sequence[float], active_last_output: bool = False,
                 **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        conv_cfg, norm_cfg = plain_kwargs['conv_cfg'], plain_kwargs['norm_cfg']
        if conv_cfg is not None:
            raise ValueError(f'NetAug backbones use plain convolutions; set conv_cfg=None, got '
                             f'{conv_cfg}')
        if norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError(f"NetAug backbones support norm_cfg=dict(type='BN'); got "
                             f'{norm_cfg}')
        if plain_kwargs['with_cp']:
            raise ValueError('NetAug backbones need with_cp=False: checkpointed blocks would be '
                             'recomputed in backward with the widths of a later set_widths.')
        if plain_kwargs['norm_eval']:
            raise ValueError('NetAug backbones need norm_eval=False: the augmented channels of a '
                             'widened BatchNorm have no running statistics to evaluate with. To '
                             'keep pretrained early layers fixed, use frozen_stages instead (they '
                             'stay at base width with their BatchNorms in eval mode).')
        init_cfg = plain_kwargs['init_cfg']
        if isinstance(init_cfg, (list, tuple)) and any(
                cfg.get('type') == 'Pretrained' for cfg in init_cfg):
            raise ValueError("give a pretrained NetAug backbone init_cfg=dict(type='Pretrained', "
                             'checkpoint=...) on its own (a plain checkpoint for the base '
                             'slices), not inside a list.')
        base_arch = self.plain_cls.build_arch(plain_kwargs['widen_factor'],
                                              plain_kwargs['act_cfg'])
        num_fixed_stages = plain_kwargs['frozen_stages'] + 1
        max_width, max_expand = max(aug_width_mult_list), max(aug_expand_list)
        max_arch = augment_arch(base_arch, lambda: max_width, lambda: max_expand,
                                num_fixed_stages)
        super().__init__(
            max_arch,
            out_indices=plain_kwargs['out_indices'],
            frozen_stages=plain_kwargs['frozen_stages'],
            conv_cfg=dict(type=DynamicConv2d),
            norm_cfg=dict(norm_cfg, type=DynamicBatchNorm2d),
            norm_eval=False,
            with_cp=False,
            pretrained=plain_kwargs['pretrained'],
            init_cfg=init_cfg)
        self.base_arch = base_arch
        self.num_fixed_stages = num_fixed_stages
        self.out_channels = tuple(base_arch.layer_channels[i] for i in self.out_indices)
        self.active_last_output = active_last_output
        #: the widest each output can be (``out_channels``, but for an active last output)
        self.widest_out_channels = self.out_channels[:-1] + (
            max_arch.layer_channels[self.out_indices[-1]]
            if active_last_output else self.out_channels[-1], )
        self._setup_netaug(dict(plain_kwargs, pretrained=None), aug_width_mult_list,
                           aug_expand_list)

    @property
    def active_arch(self) -> MobileNetArch:
        """The widths the next forward passes run (``base_arch`` after ``set_widths('base')``)."""
        return self._active_arch

    def _apply_widths(self, width_factor: FactorFn, expand_factor: FactorFn) -> None:
        arch = augment_arch(self.base_arch, width_factor, expand_factor, self.num_fixed_stages)
        self.conv1.conv.active_out_channels = arch.stem_channels
        for block, spec in zip(self.blocks(), arch.blocks):
            block_adapter(block).set_widths(block, spec)
        if arch.head_channels is not None:
            self.conv2.conv.active_out_channels = arch.head_channels
        self._active_arch = arch

    def _channel_counts(self) -> Tuple[int, int]:
        return arch_channels(self._active_arch), arch_channels(self.base_arch)

    def _default_init_cfg(self) -> list:
        return self.default_init_cfg

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> tuple of (B, out_channels[i], H / stride_i, W / stride_i); with
        ``active_last_output`` the last one has the active width of its layer instead."""
        outs = super().forward(x)
        base = [out[:, :channels] for out, channels in zip(outs, self.out_channels)]
        return tuple(base[:-1] + [outs[-1] if self.active_last_output else base[-1]])

    def sort_channels(self, keep_base: bool = False) -> List[ChannelPermutation]:
        """Reorders each block's hidden channels (and its SE's) by the L1 norm of the projection
        weights, most important first (official NetAug); blocks of frozen stages stay as they
        are. Block outputs keep their order, so the function of the max model is unchanged.
        Returns the permutations applied (names relative to the backbone)."""
        first_sorted = sum(len(stage) for stage in self.base_arch.stages[:max(
            self.num_fixed_stages - 1, 0)])
        permutations = []
        for index, (block, spec) in enumerate(zip(self.blocks(), self.base_arch.blocks)):
            if index < first_sorted:
                continue
            prefix = self.block_name(index)
            permutations += [
                perm.with_prefix(prefix)
                for perm in block_adapter(block).sort_channels(block, spec, keep_base)
            ]
        return permutations

    def block_name(self, index: int) -> str:
        """The module name of the ``index``-th block (``layer<i>.<j>``), as in ``blocks()``."""
        for i, stage in enumerate(self.base_arch.stages):
            if index < len(stage):
                return f'layer{i + 1}.{index}'
            index -= len(stage)
        raise IndexError(f'block index out of range: {index}')


@MODELS.register_module()
class NetAugMobileNetV2(NetAugInvertedResidualNet):
    """NetAug-capable :class:`TinyMobileNetV2` (official ``NetAugMobileNetV2`` widths).

    Takes the arguments of :class:`TinyMobileNetV2` plus ``aug_expand_list`` (default
    (1.0, 1.6, 2.2, 2.8)), ``aug_width_mult_list`` (default (1.0, 1.8, 2.6)) and
    ``active_last_output`` (see :class:`NetAugInvertedResidualNet`); ``export()``
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
    (1.0, 1.6, 2.2, 2.8)), ``aug_width_mult_list`` (default (1.0, 2.0, 3.0)) and
    ``active_last_output`` (see :class:`NetAugInvertedResidualNet`); ``export()``
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


@MODELS.register_module()
class NetAugMobileNetV2Tiny(NetAugMobileNetV2):
    """NetAug-capable :class:`MobileNetV2Tiny` (official ``NetAugTinyMobileNetV2``).

    Takes the arguments of :class:`MobileNetV2Tiny` plus the aug lists of
    :class:`NetAugMobileNetV2`, whose defaults are also the official ones for this model
    (``netaug/bash/imagenet/tinymbv2.sh``); ``export()`` returns a :class:`MobileNetV2Tiny`.
    """

    plain_cls = MobileNetV2Tiny


@MODELS.register_module()
class NetAugProxylessNASMobile(NetAugMobileNetV2):
    """NetAug-capable :class:`ProxylessNASMobile` (official ``NetAugProxylessNASMobile``).

    Takes the arguments of :class:`ProxylessNASMobile` plus the aug lists of
    :class:`NetAugMobileNetV2`, whose defaults are also the official ones for this model
    (``netaug/bash/imagenet/proxylessnas-0.35.sh``); ``export()`` returns a
    :class:`ProxylessNASMobile`.
    """

    plain_cls = ProxylessNASMobile


@MODELS.register_module()
class NetAugMCUNet(NetAugInvertedResidualNet):
    """NetAug-capable :class:`MCUNet` (official ``NetAugMCUNet``; no final conv to widen).

    Takes the arguments of :class:`MCUNet` plus ``aug_expand_list`` (default
    (1.0, 1.6, 2.2, 2.8)) and ``aug_width_mult_list`` (default (1.0, 1.6, 2.2)), the official
    ones (``netaug/bash/imagenet/mcunet.sh``); ``export()`` returns an :class:`MCUNet`.
    """

    plain_cls = MCUNet

    def __init__(self,
                 *args,
                 aug_expand_list: Sequence[float] = (1.0, 1.6, 2.2, 2.8),
                 aug_width_mult_list: Sequence[float] = (1.0, 1.6, 2.2),
                 **kwargs) -> None:
        super().__init__(*args, aug_expand_list=aug_expand_list,
                         aug_width_mult_list=aug_width_mult_list, **kwargs)
