"""NetAug-capable MobileNet backbones: the plain module tree at its widest, with dynamic layers.

The NetAug recipe (``netaug_det/models/netaug/module.py``) with a :class:`MobileNetArch` as the
spec: the base arch comes from the plain arguments, :func:`augment_arch` scales it, the tree is
the plain one built at the widest arch, and the stem conv, each inverted residual block and the
final conv are the blocks handed to their adapters (``netaug_det/models/netaug/adapters.py``);
everything else follows the incoming tensor's width. The base (tiny) model is the leading slice of
every tensor. Outputs keep the plain backbone's widths in every mode.
"""
from dataclasses import replace
from typing import List, Optional, Sequence, Tuple

from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from torch import Tensor

from ..netaug import DynamicBatchNorm2d, DynamicConv2d, NetAugModule
from ..netaug.module import FactorFn, scale_width
from .mobilenet import InvertedResidualNet, MobileNetArch, TinyMobileNetV2, TinyMobileNetV3
from .tinyml import MCUNet, MobileNetV2Tiny, ProxylessNASMobile

# SE layers never squeeze below this width (official NetAug DynamicSE.min_dim).
SE_MIN_CHANNELS = 16
#: Official NetAug factors of MobileNetV2-w0.35 (netaug/bash/imagenet/mbv2-0.35.sh); the expand
#: factors are every official model's.
MBV2_WIDTH_FACTORS = (1.0, 1.8, 2.6)
EXPAND_FACTORS = (1.0, 1.6, 2.2, 2.8)


def factors_or_mbv2(aug_width_mult_list: Optional[Sequence[float]],
                    aug_expand_list: Optional[Sequence[float]]) -> Tuple[Sequence[float], ...]:
    """The factor lists given, NetAug's MobileNetV2-w0.35 ones where None (a NetAug neck or head
    built without a NetAug backbone to take them from)."""
    return (MBV2_WIDTH_FACTORS if aug_width_mult_list is None else aug_width_mult_list,
            EXPAND_FACTORS if aug_expand_list is None else aug_expand_list)


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
        max_arch = augment_arch(base_arch, *self.widest_factors(aug_width_mult_list,
                                                                aug_expand_list),
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
        self.num_fixed_stages = num_fixed_stages
        self.out_channels = tuple(base_arch.layer_channels[i] for i in self.out_indices)
        self.active_last_output = active_last_output
        #: the widest each output can be (``out_channels``, but for an active last output)
        self.widest_out_channels = self.out_channels[:-1] + (
            max_arch.layer_channels[self.out_indices[-1]]
            if active_last_output else self.out_channels[-1], )
        self._setup_netaug(dict(plain_kwargs, pretrained=None), base_arch, max_arch,
                           aug_width_mult_list, aug_expand_list)

    @property
    def base_arch(self) -> MobileNetArch:
        """The plain backbone's widths (the base spec)."""
        return self.base_spec

    @property
    def active_arch(self) -> MobileNetArch:
        """The widths the next forward passes run (``base_arch`` after ``set_widths('base')``)."""
        return self.active_spec

    def augment_spec(self, spec: MobileNetArch, width_factor: FactorFn,
                     expand_factor: FactorFn) -> MobileNetArch:
        """See :func:`augment_arch`; frozen stages keep their widths."""
        return augment_arch(spec, width_factor, expand_factor, self.num_fixed_stages)

    def named_block_specs(self, spec: MobileNetArch) -> List[Tuple[str, object]]:
        """The stem conv, every inverted residual block, the final conv if any."""
        head = [] if spec.head_channels is None else [('conv2', spec.head_channels)]
        return [('conv1', spec.stem_channels),
                *((self.block_name(i), block) for i, block in enumerate(spec.blocks)), *head]

    def _default_init_cfg(self) -> list:
        return self.default_init_cfg

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> tuple of (B, out_channels[i], H / stride_i, W / stride_i); with
        ``active_last_output`` the last one has the active width of its layer instead."""
        outs = super().forward(x)
        base = [out[:, :channels] for out, channels in zip(outs, self.out_channels)]
        return tuple(base[:-1] + [outs[-1] if self.active_last_output else base[-1]])

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
                 aug_expand_list: Sequence[float] = EXPAND_FACTORS,
                 aug_width_mult_list: Sequence[float] = MBV2_WIDTH_FACTORS,
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
                 aug_expand_list: Sequence[float] = EXPAND_FACTORS,
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
                 aug_expand_list: Sequence[float] = EXPAND_FACTORS,
                 aug_width_mult_list: Sequence[float] = (1.0, 1.6, 2.2),
                 **kwargs) -> None:
        super().__init__(*args, aug_expand_list=aug_expand_list,
                         aug_width_mult_list=aug_width_mult_list, **kwargs)
