"""NetAug-capable depthwise YOLOv3 neck: TinyYOLOV3Neck with wider detection blocks."""
from typing import List, NamedTuple, Optional, Sequence, Tuple

from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.models.necks.yolo_neck import DetectionBlock
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..backbones.netaug_mobilenet import factors_or_mbv2
from ..netaug import DynamicBatchNorm2d, DynamicConv2d, NetAugModule
from ..netaug.module import FactorFn, scale_width
from .tiny_yolo_neck import TinyYOLOV3Neck


class DetectionBlockSpec(NamedTuple):
    """Widths of a YOLOv3 DetectionBlock: its 1x1 outputs and its 3x3 (hidden) outputs."""

    out_channels: int
    hidden_channels: int


NeckSpec = Tuple[DetectionBlockSpec, ...]


def augment_detection_blocks(spec: NeckSpec, width_factor: FactorFn,
                             expand_factor: FactorFn) -> NeckSpec:
    """``spec`` scaled block by block, deepest first: the 1x1 width by a width factor, then the
    hidden width, relative to it, by an expand factor (NetAug's rounding)."""
    blocks = []
    for base in spec:
        out = scale_width(base.out_channels, width_factor())
        blocks.append(DetectionBlockSpec(
            out, scale_width(base.hidden_channels / base.out_channels * out, expand_factor())))
    return tuple(blocks)


@MODELS.register_module()
class NetAugTinyYOLOV3Neck(NetAugModule, TinyYOLOV3Neck):
    """NetAug-capable :class:`TinyYOLOV3Neck`: every detection block at its widest.

    The NetAug recipe (``netaug_det/models/netaug/module.py``) with one
    :class:`DetectionBlockSpec` per block as the spec: each ``detect{i}`` block widens its 1x1
    outputs by a width factor and its 3x3 (hidden) outputs, twice the block width in YOLOv3, by
    an expand factor on top (drawn per block, width first; :func:`augment_detection_blocks`).
    The tree is the plain neck's layout built at the widest spec: the lateral ``conv{i}`` read
    the wide block output but write the plain width, so the concatenation with the backbone
    feature stays at plain widths and every input is a leading slice (which mmdet's
    ``YOLOV3Neck`` constructor cannot express, so the layers are built here). Inputs and outputs
    keep the plain neck's shapes in every mode; ``export()`` returns a :class:`TinyYOLOV3Neck`.

    Args:
        *args, **kwargs: Arguments of :class:`TinyYOLOV3Neck`; ``conv_cfg`` must be None and
            ``norm_cfg`` of type 'BN'.
        aug_width_mult_list (Sequence[float], optional): Factors on the block widths. None (the
            default): the NetAug backbone's, filled in by ``TinyYOLOV3``; NetAug's
            MobileNetV2-w0.35 widths (1.0, 1.8, 2.6) when built without one.
        aug_expand_list (Sequence[float], optional): Factors on the hidden widths. None: the
            backbone's, as above, else (1.0, 1.6, 2.2, 2.8).
    """

    plain_cls = TinyYOLOV3Neck

    def __init__(self, *args, aug_width_mult_list: Optional[Sequence[float]] = None,
                 aug_expand_list: Optional[Sequence[float]] = None, **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        if plain_kwargs['conv_cfg'] is not None or plain_kwargs['norm_cfg'].get('type') not in (
                'BN', 'BN2d'):
            raise ValueError("NetAugTinyYOLOV3Neck needs conv_cfg=None and norm_cfg=dict(type="
                             f"'BN'), got {plain_kwargs['conv_cfg']} and "
                             f"{plain_kwargs['norm_cfg']}")
        aug_width_mult_list, aug_expand_list = factors_or_mbv2(aug_width_mult_list,
                                                               aug_expand_list)
        self.check_scales(plain_kwargs['num_scales'], plain_kwargs['in_channels'],
                          plain_kwargs['out_channels'])
        base_spec = tuple(DetectionBlockSpec(out, 2 * out) for out in plain_kwargs['out_channels'])
        widest_spec = augment_detection_blocks(
            base_spec, *self.widest_factors(aug_width_mult_list, aug_expand_list))
        BaseModule.__init__(self, plain_kwargs['init_cfg'])
        self.num_scales = plain_kwargs['num_scales']
        self.in_channels = plain_kwargs['in_channels']
        self.out_channels = plain_kwargs['out_channels']
        self.use_depthwise = plain_kwargs['use_depthwise']
        self._build_layers(widest_spec, dict(
            conv_cfg=dict(type=DynamicConv2d),
            norm_cfg=dict(plain_kwargs['norm_cfg'], type=DynamicBatchNorm2d),
            act_cfg=plain_kwargs['act_cfg']))
        self._setup_netaug(plain_kwargs, base_spec, widest_spec, aug_width_mult_list,
                           aug_expand_list)

    def _build_layers(self, spec: NeckSpec, cfg: dict) -> None:
        """The plain neck's ``detect{i}`` and ``conv{i}`` at the block widths of ``spec``; the
        lateral ``conv{i}`` write the plain width."""
        for i, block_spec in enumerate(spec):
            in_channels = self.in_channels[i]
            if i > 0:  # conv{i} reads the wide detect{i} output, writes the plain width
                self.add_module(f'conv{i}', ConvModule(spec[i - 1].out_channels,
                                                       self.out_channels[i], 1, **cfg))
                in_channels += self.out_channels[i]
            self.add_module(f'detect{i + 1}', self._detection_block(in_channels, block_spec, cfg))

    def _detection_block(self, in_channels: int, spec: DetectionBlockSpec,
                         cfg: dict) -> DetectionBlock:
        """A ``DetectionBlock`` with ``spec``'s widths (3x3 convs depthwise-separable if the
        neck's are)."""
        block = DetectionBlock(in_channels, spec.out_channels, **cfg)
        for name, (cin, cout) in dict(
                conv2=(spec.out_channels, spec.hidden_channels),
                conv3=(spec.hidden_channels, spec.out_channels),
                conv4=(spec.out_channels, spec.hidden_channels),
                conv5=(spec.hidden_channels, spec.out_channels)).items():
            kernel = 3 if name in ('conv2', 'conv4') else 1
            separable = kernel == 3 and self.use_depthwise
            conv_type = DepthwiseSeparableConvModule if separable else ConvModule
            setattr(block, name, conv_type(cin, cout, kernel, padding=kernel // 2, **cfg))
        return block

    def augment_spec(self, spec: NeckSpec, width_factor: FactorFn,
                     expand_factor: FactorFn) -> NeckSpec:
        """See :func:`augment_detection_blocks`."""
        return augment_detection_blocks(spec, width_factor, expand_factor)

    def named_block_specs(self, spec: NeckSpec) -> List[Tuple[str, DetectionBlockSpec]]:
        """The detection blocks, deepest first."""
        return [(f'detect{i + 1}', block_spec) for i, block_spec in enumerate(spec)]

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Plain-width inputs and outputs; see :class:`TinyYOLOV3Neck`."""
        return tuple(out[:, :channels]
                     for out, channels in zip(super().forward(feats), self.out_channels))
