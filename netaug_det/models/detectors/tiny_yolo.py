"""YOLOv3 detector whose neck and head widths follow the backbone it is built with."""
from mmdet.models.detectors import YOLOV3
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from ..builders import build_backbone, derived, with_backbone_factors


@MODELS.register_module()
class TinyYOLOV3(YOLOV3):
    """mmdet's ``YOLOV3`` that derives the neck and head input widths from the built modules.

    The neck's ``in_channels`` are the backbone's ``out_channels`` reversed (deepest first, as
    ``YOLOV3Neck`` expects) and the head's ``in_channels`` are the neck's ``out_channels``, so a
    config changes the backbone (``widen_factor``, ``out_indices``, MobileNetV2 -> V3) without
    touching channel lists. A NetAug neck or head that sets no factor lists takes the NetAug
    backbone's (``aug_width_mult_list``, ``aug_expand_list``). Everything else (losses,
    ``predict``, data flow) is ``YOLOV3``'s: ``forward(inputs)`` with inputs (B, 3, H, W)
    returns, in 'tensor' mode, a 1-tuple of the head's per-level prediction maps
    (B, num_base_priors * (5 + num_classes), H / s, W / s) for the head's strides s (32, 16, 8).

    Args:
        backbone (dict): Backbone config; the built backbone must have ``out_channels``.
        neck (dict): Neck config without ``in_channels``.
        bbox_head (dict): Head config without ``in_channels``.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as in ``YOLOV3``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        # SingleStageDetector.__init__ builds all three parts from their configs at once; the
        # widths are only known part by part, so the parts are built here in order.
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone, out_channels = build_backbone(backbone, 'TinyYOLOV3')
        neck = derived(neck, 'neck', 'in_channels', list(out_channels[::-1]),
                       "backbone's out_channels (reversed)", 'TinyYOLOV3')
        self.neck = MODELS.build(with_backbone_factors(neck, self.backbone))
        bbox_head = derived(bbox_head, 'bbox_head', 'in_channels', list(self.neck.out_channels),
                            "neck's out_channels", 'TinyYOLOV3')
        self.bbox_head = MODELS.build(dict(with_backbone_factors(bbox_head, self.backbone),
                                           train_cfg=train_cfg, test_cfg=test_cfg))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
