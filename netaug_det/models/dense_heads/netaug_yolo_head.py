"""NetAug-capable depthwise YOLOv3 head: TinyYOLOV3Head with wider bridge convolutions."""
from typing import List, Optional, Sequence, Tuple

from mmdet.registry import MODELS
from torch import nn

from ..backbones.netaug_mobilenet import factors_or_mbv2
from ..netaug import DynamicBatchNorm2d, DynamicConv2d, NetAugModule
from ..netaug.module import FactorFn, scale_width
from .tiny_yolo_head import TinyYOLOV3Head

HeadSpec = Tuple[int, ...]


def augment_bridges(widths: HeadSpec, width_factor: FactorFn, expand_factor: FactorFn) -> HeadSpec:
    """Bridge widths, level by level: each base width times a width factor, then an expand
    factor, each rounded (48 x 2.6 -> 125, x 2.8 -> 350, not round(48 x 7.28) = 349)."""
    return tuple(scale_width(scale_width(width, width_factor()), expand_factor())
                 for width in widths)


@MODELS.register_module()
class NetAugTinyYOLOV3Head(NetAugModule, TinyYOLOV3Head):
    """NetAug-capable :class:`TinyYOLOV3Head`: every bridge convolution at its widest.

    The NetAug recipe (``netaug_det/models/netaug/module.py``) with the bridge widths (one per
    level) as the spec: the bridge of each level (3x3 depthwise-separable,
    ``in_channels[i]`` -> ``out_channels[i]``) is the head's hidden layer, its output width
    scaled by a width and an expand factor (drawn per level, width first;
    :func:`augment_bridges`), and the 1x1 prediction conv reads its leading channels. The tree is
    the plain head built at the widest bridge widths with dynamic layers; the head is its own one
    block (``YOLOV3HeadAdapter``). Inputs (the neck's maps) and outputs (the prediction maps)
    keep the plain head's shapes in every mode; ``export()`` returns a :class:`TinyYOLOV3Head`.
    Hidden channels sort by the L1 norm of the prediction conv's input columns.

    Args:
        **kwargs: Arguments of :class:`TinyYOLOV3Head` (by keyword); ``conv_cfg`` must be None
            and ``norm_cfg`` of type 'BN'.
        aug_width_mult_list (Sequence[float], optional): Width factors. None (the default): the
            NetAug backbone's, filled in by ``TinyYOLOV3``; NetAug's MobileNetV2-w0.35 widths
            (1.0, 1.8, 2.6) when built without one.
        aug_expand_list (Sequence[float], optional): Expand factors. None: the backbone's, as
            above, else (1.0, 1.6, 2.2, 2.8).
    """

    plain_cls = TinyYOLOV3Head

    def __init__(self, *args, aug_width_mult_list: Optional[Sequence[float]] = None,
                 aug_expand_list: Optional[Sequence[float]] = None, **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        norm_cfg = plain_kwargs.get('norm_cfg', dict(type='BN'))
        if plain_kwargs.get('conv_cfg') is not None or norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError("NetAugTinyYOLOV3Head needs conv_cfg=None and norm_cfg=dict(type="
                             f"'BN'), got {plain_kwargs.get('conv_cfg')} and {norm_cfg}")
        aug_width_mult_list, aug_expand_list = factors_or_mbv2(aug_width_mult_list,
                                                               aug_expand_list)
        base_spec = tuple(plain_kwargs['out_channels'])
        widest_spec = augment_bridges(
            base_spec, *self.widest_factors(aug_width_mult_list, aug_expand_list))
        super().__init__(**dict(plain_kwargs, out_channels=widest_spec,
                                norm_cfg=dict(norm_cfg, type=DynamicBatchNorm2d),
                                conv_cfg=dict(type=DynamicConv2d)))
        self._setup_netaug(plain_kwargs, base_spec, widest_spec, aug_width_mult_list,
                           aug_expand_list)

    def _init_layers(self) -> None:
        """The plain layers (at the widths given to ``__init__``), prediction convs dynamic in
        their input."""
        super()._init_layers()
        self.convs_pred = nn.ModuleList(
            DynamicConv2d(conv.in_channels, conv.out_channels, 1) for conv in self.convs_pred)

    def augment_spec(self, spec: HeadSpec, width_factor: FactorFn,
                     expand_factor: FactorFn) -> HeadSpec:
        """See :func:`augment_bridges`."""
        return augment_bridges(spec, width_factor, expand_factor)

    def named_block_specs(self, spec: HeadSpec) -> List[Tuple[str, HeadSpec]]:
        """The head itself, one block."""
        return [('', spec)]
