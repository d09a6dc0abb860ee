"""NetAug-capable depthwise YOLOv3 neck: TinyYOLOV3Neck with wider detection blocks."""
from typing import List, NamedTuple, Sequence, Tuple

from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.models.necks.yolo_neck import DetectionBlock
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..netaug import (ChannelPermutation, DynamicBatchNorm2d, DynamicConv2d, NetAugModule,
                      block_adapter)
from ..netaug.module import FactorFn, scale_width
from .tiny_yolo_neck import TinyYOLOV3Neck


class DetectionBlockSpec(NamedTuple):
    """Widths of a YOLOv3 DetectionBlock: its 1x1 outputs and its 3x3 (hidden) outputs."""

    out_channels: int
    hidden_channels: int


@MODELS.register_module()
class NetAugTinyYOLOV3Neck(NetAugModule, TinyYOLOV3Neck):
    """NetAug-capable :class:`TinyYOLOV3Neck`: every detection block at its widest.

    Each ``detect{i}`` block widens its 1x1 outputs by a width factor and its 3x3 (hidden) outputs,
    twice the block width in YOLOv3, by an expand factor on top (drawn per block, width first).
    The lateral ``conv{i}`` read the wide block output but write the plain width, so the
    concatenation with the backbone feature stays at plain widths and every input is a leading
    slice. Inputs and outputs keep the plain neck's shapes in every mode; ``export()`` returns a
    :class:`TinyYOLOV3Neck`.

    Args:
        *args, **kwargs: Arguments of :class:`TinyYOLOV3Neck`; ``conv_cfg`` must be None and
            ``norm_cfg`` of type 'BN'.
        aug_width_mult_list (Sequence[float]): Factors on the block widths. Defaults to
            (1.0, 1.8, 2.6), NetAug's MobileNetV2-w0.35 widths.
        aug_expand_list (Sequence[float]): Factors on the hidden widths. Defaults to
            (1.0, 1.6, 2.2, 2.8).
    """

    plain_cls = TinyYOLOV3Neck

    def __init__(self, *args, aug_width_mult_list: Sequence[float] = (1.0, 1.8, 2.6),
                 aug_expand_list: Sequence[float] = (1.0, 1.6, 2.2, 2.8), **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        if plain_kwargs['conv_cfg'] is not None or plain_kwargs['norm_cfg'].get('type') not in (
                'BN', 'BN2d'):
            raise ValueError("NetAugTinyYOLOV3Neck needs conv_cfg=None and norm_cfg=dict(type="
                             f"'BN'), got {plain_kwargs['conv_cfg']} and "
                             f"{plain_kwargs['norm_cfg']}")
        super().__init__(**plain_kwargs)
        self.base_specs = [DetectionBlockSpec(out, 2 * out) for out in self.out_channels]
        self._build_wide(self._specs(lambda: max(aug_width_mult_list),
                                     lambda: max(aug_expand_list)), plain_kwargs)
        self._setup_netaug(plain_kwargs, aug_width_mult_list, aug_expand_list)

    def _specs(self, width_factor: FactorFn, expand_factor: FactorFn) -> List[DetectionBlockSpec]:
        specs = []
        for base in self.base_specs:
            out = scale_width(base.out_channels, width_factor())
            specs.append(DetectionBlockSpec(
                out, scale_width(base.hidden_channels / base.out_channels * out, expand_factor())))
        return specs

    def _build_wide(self, specs: List[DetectionBlockSpec], plain_kwargs: dict) -> None:
        """Replaces the detection blocks and lateral convs by their widest dynamic versions."""
        cfg = dict(conv_cfg=dict(type=DynamicConv2d),
                   norm_cfg=dict(plain_kwargs['norm_cfg'], type=DynamicBatchNorm2d),
                   act_cfg=plain_kwargs['act_cfg'])
        for i, spec in enumerate(specs):
            plain_block = getattr(self, f'detect{i + 1}')
            block = DetectionBlock(plain_block.conv1.conv.in_channels, spec.out_channels, **cfg)
            for name, (cin, cout) in dict(
                    conv2=(spec.out_channels, spec.hidden_channels),
                    conv3=(spec.hidden_channels, spec.out_channels),
                    conv4=(spec.out_channels, spec.hidden_channels),
                    conv5=(spec.hidden_channels, spec.out_channels)).items():
                kernel = 3 if name in ('conv2', 'conv4') else 1
                separable = kernel == 3 and self.use_depthwise
                conv_type = DepthwiseSeparableConvModule if separable else ConvModule
                setattr(block, name, conv_type(cin, cout, kernel, padding=kernel // 2, **cfg))
            setattr(self, f'detect{i + 1}', block)
            if i > 0:  # conv{i} reads the wide detect{i} output, writes the plain width
                setattr(self, f'conv{i}', ConvModule(specs[i - 1].out_channels,
                                                     self.out_channels[i], 1, **cfg))

    def blocks(self) -> Tuple[nn.Module, ...]:
        """The detection blocks, deepest first."""
        return tuple(getattr(self, f'detect{i + 1}') for i in range(self.num_scales))

    def _apply_widths(self, width_factor: FactorFn, expand_factor: FactorFn) -> None:
        self._active_specs = self._specs(width_factor, expand_factor)
        for block, spec in zip(self.blocks(), self._active_specs):
            block_adapter(block).set_widths(block, spec)

    def _channel_counts(self) -> Tuple[int, int]:
        def count(specs):
            return sum(3 * spec.out_channels + 2 * spec.hidden_channels for spec in specs)

        return count(self._active_specs), count(self.base_specs)

    def sort_channels(self, keep_base: bool = False) -> List[ChannelPermutation]:
        """Sorts each block's hidden channels by the L1 norm of the 1x1 conv reading them."""
        return [perm.with_prefix(f'detect{i + 1}')
                for i, (block, spec) in enumerate(zip(self.blocks(), self.base_specs))
                for perm in block_adapter(block).sort_channels(block, spec, keep_base)]

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Plain-width inputs and outputs; see :class:`TinyYOLOV3Neck`."""
        return tuple(out[:, :channels]
                     for out, channels in zip(super().forward(feats), self.out_channels))
