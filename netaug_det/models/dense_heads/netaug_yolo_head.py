"""NetAug-capable depthwise YOLOv3 head: TinyYOLOV3Head with wider bridge convolutions."""
from typing import List, Sequence, Tuple

from mmdet.registry import MODELS
from torch import nn

from ..netaug import (ChannelPermutation, DynamicBatchNorm2d, DynamicConv2d, NetAugModule,
                      hidden_channel_permutations, importance_order)
from ..netaug.adapters import output_layer
from ..netaug.module import FactorFn, scale_width
from .tiny_yolo_head import TinyYOLOV3Head


@MODELS.register_module()
class NetAugTinyYOLOV3Head(NetAugModule, TinyYOLOV3Head):
    """NetAug-capable :class:`TinyYOLOV3Head`: every bridge convolution at its widest.

    The bridge of each level (3x3 depthwise-separable, ``in_channels[i]`` -> ``out_channels[i]``)
    is the head's hidden layer: its output width is scaled by a width and an expand factor (drawn
    per level, width first), and the 1x1 prediction conv reads its leading channels. Inputs
    (the neck's maps) and outputs (the prediction maps) keep the plain head's shapes in every
    mode; ``export()`` returns a :class:`TinyYOLOV3Head`. Hidden channels sort by the L1 norm of
    the prediction conv's input columns.

    Args:
        **kwargs: Arguments of :class:`TinyYOLOV3Head` (by keyword); ``conv_cfg`` must be None
            and ``norm_cfg`` of type 'BN'.
        aug_width_mult_list (Sequence[float]): Width factors. Defaults to (1.0, 1.8, 2.6).
        aug_expand_list (Sequence[float]): Expand factors. Defaults to (1.0, 1.6, 2.2, 2.8).
    """

    plain_cls = TinyYOLOV3Head

    def __init__(self, *args, aug_width_mult_list: Sequence[float] = (1.0, 1.8, 2.6),
                 aug_expand_list: Sequence[float] = (1.0, 1.6, 2.2, 2.8), **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        norm_cfg = plain_kwargs.get('norm_cfg', dict(type='BN'))
        if plain_kwargs.get('conv_cfg') is not None or norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError("NetAugTinyYOLOV3Head needs conv_cfg=None and norm_cfg=dict(type="
                             f"'BN'), got {plain_kwargs.get('conv_cfg')} and {norm_cfg}")
        self.base_widths = tuple(plain_kwargs['out_channels'])
        super().__init__(**dict(plain_kwargs, norm_cfg=dict(norm_cfg, type=DynamicBatchNorm2d),
                                conv_cfg=dict(type=DynamicConv2d),
                                out_channels=self._widths(lambda: max(aug_width_mult_list),
                                                          lambda: max(aug_expand_list))))
        self._setup_netaug(plain_kwargs, aug_width_mult_list, aug_expand_list)

    def _init_layers(self) -> None:
        """The plain layers at the widest widths, prediction convs dynamic in their input."""
        super()._init_layers()
        self.convs_pred = nn.ModuleList(
            DynamicConv2d(conv.in_channels, conv.out_channels, 1) for conv in self.convs_pred)

    def _apply_widths(self, width_factor: FactorFn, expand_factor: FactorFn) -> None:
        self._active_widths = self._widths(width_factor, expand_factor)
        for i, width in enumerate(self._active_widths):
            self.get_submodule(output_layer(self, f'convs_bridge.{i}')).conv.active_out_channels = \
                width

    def _widths(self, width_factor: FactorFn, expand_factor: FactorFn) -> Tuple[int, ...]:
        """Bridge widths: each base width times a width factor, then an expand factor."""
        return tuple(scale_width(scale_width(c, width_factor()), expand_factor())
                     for c in self.base_widths)

    def _channel_counts(self) -> Tuple[int, int]:
        return sum(self._active_widths), sum(self.base_widths)

    def sort_channels(self, keep_base: bool = False) -> List[ChannelPermutation]:
        """Sorts each bridge's output channels by the L1 norm of the prediction conv's input
        columns."""
        permutations = []
        for i, base in enumerate(self.base_widths):
            order = importance_order(self.convs_pred[i].weight, base if keep_base else 0)
            permutations += hidden_channel_permutations(
                self, [output_layer(self, f'convs_bridge.{i}')], [f'convs_pred.{i}.weight'], order)
        return permutations
