"""Classifier heads of the MobileNets: plain and NetAug-capable (official NetAug layout).

MobileNetV2: global average pool, dropout, linear. MobileNetV3: global average pool, a 1x1 conv
with bias and hard-swish (no norm; 1280 features), dropout, linear. The NetAug head is the plain
head at its widest: it reads the backbone's final features at their active width (the official
NetAug classifiers' ``DynamicLinear``) and widens the MobileNetV3 1x1 conv with the width factor.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_activation_layer, build_conv_layer
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..netaug import ChannelPermutation, DynamicConv2d, DynamicLinear, NetAugModule
from ..netaug.module import FactorFn, check_factor_list


@MODELS.register_module()
class TinyClsHead(BaseModule):
    """Global average pool, optional 1x1 conv (``mid_channels``), dropout, linear classifier.

    Input: the backbone's last feature map (B, in_channels, H, W); output: logits
    (B, num_classes). The 1x1 conv runs on the pooled (B, C, 1, 1) map with a bias and no norm,
    as in the official MobileNetV3 (a linear layer by another name, kept a conv so that it is
    initialised as a conv, as in the official code).

    Args:
        in_channels (int): Channels of the input feature map.
        num_classes (int): Number of classes.
        mid_channels (int, optional): Width of the 1x1 conv after pooling (MobileNetV3: 1280);
            None for no such layer (MobileNetV2). Defaults to None.
        mid_act_cfg (dict): Activation of the 1x1 conv. Defaults to ``dict(type='HSwish')``.
        dropout (float): Dropout before the linear layer (official NetAug recipe: 0). Defaults
            to 0.
        conv_cfg (dict, optional): Config of the 1x1 conv. Defaults to None (``nn.Conv2d``).
        init_cfg (dict or list[dict], optional): Defaults to the official initialisation:
            He (fan-out) normal for the conv, truncated normal (std 0.02) for the linear layer,
            zero biases.
    """

    linear_cls: type = nn.Linear
    default_init_cfg = [
        dict(type='Kaiming', layer='Conv2d'),
        dict(type='TruncNormal', layer='Linear', std=0.02)
    ]

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 mid_channels: Optional[int] = None,
                 mid_act_cfg: dict = dict(type='HSwish'),
                 dropout: float = 0.0,
                 conv_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg if init_cfg is not None else list(self.default_init_cfg))
        if num_classes < 1:
            raise ValueError(f'num_classes must be at least 1, got {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mid_conv = self.mid_act = None
        if mid_channels is not None:
            # a bare conv, not mmcv's ConvModule, whose init_weights would overwrite init_cfg
            self.mid_conv = build_conv_layer(conv_cfg, in_channels, mid_channels, 1, bias=True)
            self.mid_act = build_activation_layer(mid_act_cfg)
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_cls(in_channels if mid_channels is None else mid_channels,
                                  num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> logits (B, num_classes)."""
        x = self.pool(x)
        if self.mid_conv is not None:
            x = self.mid_act(self.mid_conv(x))
        return self.fc(self.dropout(torch.flatten(x, 1)))


@MODELS.register_module()
class NetAugTinyClsHead(NetAugModule, TinyClsHead):
    """NetAug-capable :class:`TinyClsHead`, the official NetAug classifier head.

    Its linear layer is a ``DynamicLinear`` that reads as many features as it is given, up to
    ``max_in_channels``: the widened final features of a backbone built with
    ``active_last_output=True`` (or the base ones of any other backbone). The 1x1 conv of a
    MobileNetV3 head (``mid_channels``) is widened by a width factor drawn after the backbone's
    (official order). Its output is always (B, num_classes); ``export()`` returns the plain
    :class:`TinyClsHead` (leading slices: the base features and base 1x1 conv). Nothing is
    sorted here (the official code sorts the backbone's blocks only).

    :class:`netaug_det.models.classifiers.TinyImageClassifier` fills in ``in_channels``,
    ``max_in_channels`` and, for a NetAug backbone, ``aug_width_mult_list`` from the backbone.

    Args:
        *args, **kwargs: Arguments of :class:`TinyClsHead` (``conv_cfg`` must be None).
        aug_width_mult_list (Sequence[float]): Factors on ``mid_channels``. Defaults to
            (1.0, 1.8, 2.6), NetAug's MobileNetV2-w0.35 widths.
        max_in_channels (int, optional): The widest input; defaults to ``in_channels``.
    """

    plain_cls = TinyClsHead
    linear_cls = DynamicLinear

    def __init__(self, *args, aug_width_mult_list: Sequence[float] = (1.0, 1.8, 2.6),
                 max_in_channels: Optional[int] = None, **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        if plain_kwargs['conv_cfg'] is not None:
            raise ValueError('NetAugTinyClsHead builds its own dynamic conv; set conv_cfg=None, '
                             f"got {plain_kwargs['conv_cfg']}")
        in_channels, mid_channels = plain_kwargs['in_channels'], plain_kwargs['mid_channels']
        max_in_channels = in_channels if max_in_channels is None else max_in_channels
        if max_in_channels < in_channels:
            raise ValueError(f'max_in_channels ({max_in_channels}) must be at least '
                             f'in_channels ({in_channels})')
        self.base_mid_channels = mid_channels
        max_width = max(check_factor_list('aug_width_mult_list', aug_width_mult_list))
        super().__init__(**dict(
            plain_kwargs, in_channels=max_in_channels,
            mid_channels=None if mid_channels is None else self._scale(mid_channels, max_width),
            conv_cfg=dict(type=DynamicConv2d)))
        self._setup_netaug(plain_kwargs, mid_channels,
                           None if mid_channels is None else self._scale(mid_channels, max_width),
                           aug_width_mult_list, (1.0, ))

    @staticmethod
    def _scale(channels: int, factor: float) -> int:
        """NetAug's augmented width (divisor 1), as the backbones round theirs."""
        return make_divisible(channels * factor, 1)

    def _apply_widths(self, width_factor: FactorFn, expand_factor: FactorFn) -> None:
        if self.mid_conv is not None:
            self._active_mid = self._scale(self.base_mid_channels, width_factor())
            self.mid_conv.active_out_channels = self._active_mid

    def _channel_counts(self) -> Tuple[int, int]:
        if self.mid_conv is None:
            return 0, 0
        return self._active_mid, self.base_mid_channels

    def sort_channels(self, keep_base: bool = False) -> List[ChannelPermutation]:
        """Sorts nothing (official NetAug sorts the backbone's hidden channels only)."""
        return []
