"""YOLOv3 neck whose 3x3 convolutions are depthwise separable (the NetAug paper's tiny neck)."""
from typing import Sequence

from mmcv.cnn import DepthwiseSeparableConvModule
from mmdet.models.necks import YOLOV3Neck
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class TinyYOLOV3Neck(YOLOV3Neck):
    """mmdet's ``YOLOV3Neck`` with a ``use_depthwise`` switch.

    With ``use_depthwise=True`` the two 3x3 convolutions (``conv2``, ``conv4``) of every
    ``DetectionBlock`` are mmcv ``DepthwiseSeparableConvModule`` s (3x3 depthwise conv + norm +
    act, then 1x1 pointwise conv + norm + act, same input and output widths); the 1x1
    convolutions, the upsample + concat layout and ``forward`` are mmdet's. With
    ``use_depthwise=False`` it is exactly ``YOLOV3Neck``.

    Shapes: ``forward`` takes the backbone's maps shallow to deep, ``feats[i]`` of shape
    (B, in_channels[num_scales - 1 - i], H_i, W_i) with strides halving towards the end, and
    returns ``num_scales`` maps deep to shallow, the i-th of shape (B, out_channels[i], H, W) at
    the resolution of the matching input.

    Args:
        num_scales (int): Number of scales.
        in_channels (Sequence[int]): Input channels per scale, deepest first. ``TinyYOLOV3`` fills
            them from the backbone's ``out_channels``.
        out_channels (Sequence[int]): Output channels per scale, deepest first.
        use_depthwise (bool): Depthwise-separable 3x3 convolutions. Defaults to True.
        conv_cfg, norm_cfg, act_cfg, init_cfg: as in ``YOLOV3Neck``.
    """

    def __init__(self,
                 num_scales: int,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int],
                 use_depthwise: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='LeakyReLU', negative_slope=0.1),
                 init_cfg: OptMultiConfig = None) -> None:
        self.check_scales(num_scales, in_channels, out_channels)
        super().__init__(num_scales, in_channels, out_channels, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, act_cfg=act_cfg, init_cfg=init_cfg)
        self.use_depthwise = use_depthwise
        if not use_depthwise:
            return
        for i in range(num_scales):
            block = getattr(self, f'detect{i + 1}')
            for name in ('conv2', 'conv4'):  # the 3x3 convolutions of a DetectionBlock
                conv = getattr(block, name)
                setattr(block, name, DepthwiseSeparableConvModule(
                    conv.in_channels, conv.out_channels, 3, padding=1, conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg, act_cfg=act_cfg))

    @staticmethod
    def check_scales(num_scales: int, in_channels: Sequence[int],
                     out_channels: Sequence[int]) -> None:
        """A ValueError unless ``in_channels`` and ``out_channels`` have one entry per scale."""
        if not num_scales == len(in_channels) == len(out_channels):
            raise ValueError(f'num_scales ({num_scales}), in_channels {list(in_channels)} and '
                             f'out_channels {list(out_channels)} must have one entry per scale')
