"""The TinyML backbones of the NetAug paper's Table 1: MobileNetV2-Tiny, MCUNet, ProxylessNAS.

Each is a table transcribed from the official NetAug code (``mit-han-lab/tinyml``, folder
``netaug/models/base/``: ``tiny_mbv2.py``, ``mcunet.py``, ``proxylessnas.py``), turned into a
:class:`~netaug_det.models.backbones.mobilenet.MobileNetArch` by ``build_arch`` and built by
:class:`~netaug_det.models.backbones.mobilenet.InvertedResidualNet`, like ``TinyMobileNetV2``.
Layer names follow the official layout: ``conv1`` is the stem conv, ``layer1`` the depthwise-
separable block of the official input stem, ``layer2``..``layer6`` the five official stages,
``layer7`` the inverted block that starts the official head, ``conv2`` its final 1x1 conv
(MCUNet has none). The NetAug twins are in ``netaug_mobilenet.py``.
"""
from dataclasses import replace
from functools import partialmethod
from typing import List, Optional, Sequence

from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS

from .mobilenet import (InvertedResidualNet, MobileNetArch, TinyMobileNetV2,
                        inverted_residual_stages)


@MODELS.register_module()
class MobileNetV2Tiny(TinyMobileNetV2):
    """MobileNetV2-Tiny (Lin et al., 2020, MCUNet paper), the first model of NetAug's Table 1.

    The official ``TinyMobileNetV2`` (``netaug/models/base/tiny_mbv2.py``) is MobileNetV2 w0.35
    (``mbv2.py``) whose final 1x1 conv has 448 channels instead of 1280; here that width is
    ``make_divisible(1280 * widen_factor, 8)``, 448 at the default w0.35. Every other width,
    kernel size and expand ratio is :class:`TinyMobileNetV2`'s. At w0.35 the default
    ``out_indices=(2, 4, 6)`` return 16, 32 and 112 channels at strides 8, 16 and 32.

    Args:
        widen_factor (float): Width multiplier. Defaults to 0.35 (the model's own width, unlike
            :class:`TinyMobileNetV2`, whose defaults are mmdet's).
        out_indices (Sequence[int]): Returned layers, 0..6 for layer1..layer7, 7 for conv2.
        Other args: see :class:`TinyMobileNetV2`.
    """

    # width of the final 1x1 conv at widen_factor 1.0 (scaled, with no 1280 floor)
    head_conv_channels = 1280

    # the model's own width and outputs; every other default is TinyMobileNetV2's (mmdet's)
    __init__ = partialmethod(TinyMobileNetV2.__init__, widen_factor=0.35, out_indices=(2, 4, 6))

    @classmethod
    def build_arch(cls, widen_factor: float, act_cfg: dict) -> MobileNetArch:
        """Layer widths for ``widen_factor``: :class:`TinyMobileNetV2`'s with a scaled conv2."""
        return replace(super().build_arch(widen_factor, act_cfg),
                       head_channels=make_divisible(cls.head_conv_channels * widen_factor, 8))


class SearchedMobileNet(InvertedResidualNet):
    """Base of the NAS-found TinyML backbones (ProxylessNAS-Mobile, MCUNet): one table each.

    A subclass sets the official definition's table (class attributes):

    - ``stem_channels``: width of the 3x3 stride-2 stem conv;
    - ``arch_settings``: one row per layer: the expand ratio of each block, the kernel size of
      each block, the output channels and the stride of the first block. The first row is the
      depthwise-separable block of the official input stem (expand ratio 1: no expand conv), the
      last the inverted block that starts the official head;
    - ``head_conv_channels``: width of the final 1x1 conv, None for none.

    Widths at ``widen_factor`` follow the official code: ``make_divisible(c * widen_factor, 8)``
    for the stem and every layer, ``make_divisible(round(e * in_channels), 8)`` for hidden widths,
    ``max(make_divisible(head * widen_factor, 8), head)`` for the final conv. Activations are all
    ReLU6 (``act_cfg``). As in the official code, a block has an identity shortcut when its stride
    is 1, it keeps its width and it is not the first block of its layer.
    """

    stem_channels: int = 32
    arch_settings: List[list] = []
    head_conv_channels: Optional[int] = None

    @classmethod
    def build_arch(cls, widen_factor: float, act_cfg: dict) -> MobileNetArch:
        """Layer widths for ``widen_factor`` (official NetAug rounding)."""
        stem_channels = make_divisible(cls.stem_channels * widen_factor, 8)
        stages = inverted_residual_stages(stem_channels, cls.arch_settings, widen_factor, act_cfg,
                                          first_block_shortcut=False)
        head_channels = head_act_cfg = None
        if cls.head_conv_channels is not None:
            head_channels = max(make_divisible(cls.head_conv_channels * widen_factor, 8),
                                cls.head_conv_channels)
            head_act_cfg = act_cfg
        return MobileNetArch(stem_channels, act_cfg, stages, head_channels, head_act_cfg)


@MODELS.register_module()
class ProxylessNASMobile(SearchedMobileNet):
    """ProxylessNAS-Mobile (Cai et al., ICLR 2019) as in NetAug's Table 1 (w0.35 by default).

    Table from ``netaug/models/base/proxylessnas.py`` of ``mit-han-lab/tinyml``. At w0.35 the
    layers have 8, 16, 16, 32, 32, 64 and 112 channels (strides 2, 4, 8, 16, 16, 32, 32) and
    ``conv2`` 1280; the default ``out_indices=(2, 4, 6)`` return 16, 32 and 112 channels at
    strides 8, 16 and 32. The first block of ``layer5`` keeps its width (32) at stride 1 but has
    no identity shortcut, as in the official model.

    Args:
        widen_factor (float): Width multiplier. Defaults to 0.35.
        out_indices (Sequence[int]): Returned layers, 0..6 for layer1..layer7, 7 for conv2.
        act_cfg (dict): Activation of every layer. Defaults to ``dict(type='ReLU6')``.
        Other args: see :class:`TinyMobileNetV2`.
    """

    stem_channels = 32
    # expand ratio and kernel size of each block, channels, stride of the first block
    arch_settings = [[[1], [3], 16, 1],
                     [[3, 3], [5, 3], 32, 2],
                     [[3, 3, 3, 3], [7, 3, 5, 5], 40, 2],
                     [[6, 3, 3, 3], [7, 5, 5, 5], 80, 2],
                     [[6, 3, 3, 3], [5, 5, 5, 5], 96, 1],
                     [[6, 6, 3, 3], [7, 7, 7, 7], 192, 2],
                     [[6], [7], 320, 1]]
    head_conv_channels = 1280

    def __init__(self,
                 widen_factor: float = 0.35,
                 out_indices: Sequence[int] = (2, 4, 6),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(self.build_arch(widen_factor, act_cfg), out_indices, frozen_stages,
                         conv_cfg, norm_cfg, norm_eval, with_cp, pretrained, init_cfg)


@MODELS.register_module()
class MCUNet(SearchedMobileNet):
    """MCUNet (Lin et al., NeurIPS 2020), the ImageNet model of NetAug's Table 1.

    Table from ``netaug/models/base/mcunet.py`` of ``mit-han-lab/tinyml``, whose widths are
    absolute (``widen_factor=1.0``, the default, reproduces them). The layers have 8, 16, 24, 40,
    48, 96 and 160 channels (strides 2, 4, 8, 16, 16, 32, 32); there is no final 1x1 conv: the
    official head is the inverted block ``layer7`` (96 -> 160, kernel 7, hidden 480), pooling and
    the classifier. The default ``out_indices=(2, 4, 6)`` return 24, 48 and 160 channels at
    strides 8, 16 and 32.

    Args:
        widen_factor (float): Width multiplier on the official widths. Defaults to 1.0.
        out_indices (Sequence[int]): Returned layers, 0..6 for layer1..layer7.
        act_cfg (dict): Activation of every layer. Defaults to ``dict(type='ReLU6')``.
        Other args: see :class:`TinyMobileNetV2`.
    """

    stem_channels = 16
    # expand ratio and kernel size of each block, channels, stride of the first block; the
    # official head block has 480 hidden channels, expand ratio 5 on its 96 inputs
    arch_settings = [[[1], [3], 8, 1],
                     [[3, 5, 5, 4], [7, 3, 7, 5], 16, 2],
                     [[5, 5, 5], [5, 5, 5], 24, 2],
                     [[5, 6, 4], [3, 7, 5], 40, 2],
                     [[5, 5, 5], [5, 7, 3], 48, 1],
                     [[6, 5, 4], [3, 7, 3], 96, 2],
                     [[5], [7], 160, 1]]
    head_conv_channels = None

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 4, 6),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(self.build_arch(widen_factor, act_cfg), out_indices, frozen_stages,
                         conv_cfg, norm_cfg, norm_eval, with_cp, pretrained, init_cfg)
