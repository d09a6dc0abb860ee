"""YOLOv3 head whose 3x3 bridge convolutions are depthwise separable (the NetAug paper's head)."""
from typing import Optional

from mmcv.cnn import DepthwiseSeparableConvModule
from mmdet.models.dense_heads import YOLOV3Head
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import nn


@MODELS.register_module()
class TinyYOLOV3Head(YOLOV3Head):
    """mmdet's ``YOLOV3Head`` with a ``use_depthwise`` switch.

    With ``use_depthwise=True`` (the default) each level's 3x3 bridge convolution is an mmcv
    ``DepthwiseSeparableConvModule`` (3x3 depthwise conv + norm + act on ``in_channels[i]``, then
    1x1 pointwise conv + norm + act to ``out_channels[i]``); the 1x1 prediction convolutions,
    anchors, target assignment, losses, ``predict`` with NMS and weight init are mmdet's. With
    ``use_depthwise=False`` it has exactly ``YOLOV3Head``'s layers. Unlike ``YOLOV3Head``,
    predicted boxes are clipped to the image after NMS (the original image with
    ``rescale=True``, the network input otherwise): YOLO's box decoding is unbounded.

    Shapes: ``forward`` takes one map per level, deepest first, (B, in_channels[i], H_i, W_i), and
    returns a 1-tuple holding one prediction map per level,
    (B, num_base_priors * (5 + num_classes), H_i, W_i).

    Args:
        use_depthwise (bool): Depthwise-separable bridge convolutions. Defaults to True.
        **kwargs: arguments of ``YOLOV3Head`` (``num_classes``, ``in_channels`` (filled by
            ``TinyYOLOV3`` from the neck), ``out_channels``, anchors, losses, ...).
    """

    def __init__(self, *args, use_depthwise: bool = True, **kwargs) -> None:
        # read by _init_layers, which YOLOV3Head.__init__ calls
        self.use_depthwise = use_depthwise
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        """mmdet's layers, then the bridges replaced by depthwise-separable ones if asked."""
        super()._init_layers()
        if self.use_depthwise:
            self.convs_bridge = nn.ModuleList(
                DepthwiseSeparableConvModule(in_channels, out_channels, 3, padding=1,
                                             conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                             act_cfg=self.act_cfg)
                for in_channels, out_channels in zip(self.in_channels, self.out_channels))

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """mmdet's rescaling, score fusion and NMS, then boxes clipped to the image."""
        results = super()._bbox_post_process(
            results, cfg, rescale=rescale, with_nms=with_nms, img_meta=img_meta)
        height, width = img_meta['ori_shape' if rescale else 'img_shape'][:2]
        results.bboxes[:, 0::2] = results.bboxes[:, 0::2].clamp(0, width)
        results.bboxes[:, 1::2] = results.bboxes[:, 1::2].clamp(0, height)
        return results
