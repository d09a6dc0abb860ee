# YOLOv3 with a MobileNetV2-w0.35 backbone and a depthwise-separable neck and head (the NetAug
# paper's detector). TinyYOLOV3 derives the neck's and head's in_channels from the backbone, so
# only widths chosen here appear: neck 40 and head bridge 80 channels per scale, fitted to the
# paper's Figure-5 MACs (derivation and table: docs/models.md).

# ImageNet-pretrained backbones, by how they were pretrained: 'baseline' (plain ImageNet
# training) and 'netaug' (NetAug ImageNet training, its deployable base model): plain backbones,
# converted from the official NetAug checkpoints with tools/model_converters/netaug_to_mmdet.py
# or pretrained with configs/imagenet/ (a classifier checkpoint or deploy.pth as it is);
# 'netaug_supernet': a NetAug ImageNet run's own checkpoint (epoch_N.pth), the whole supernet,
# which initialises every slice of a NetAug backbone of the same widths (NetAug configs only).
# backbone_pretrain picks the one this config starts from (the paper pairs baseline detectors
# with baseline weights and NetAug detectors with NetAug weights); backbone_checkpoint, when
# set, is used instead. None everywhere: random init. Set them with --cfg-options (e.g.
# imagenet_checkpoints.netaug=PATH); the runner copies the choice into
# model.backbone.init_cfg (netaug_det/utils/config.py; docs/pretraining.md).
imagenet_checkpoints = dict(baseline=None, netaug=None, netaug_supernet=None)
backbone_pretrain = 'baseline'
backbone_checkpoint = None

data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)
model = dict(
    type='TinyYOLOV3',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='TinyMobileNetV2', widen_factor=0.35, out_indices=(2, 4, 6)),
    neck=dict(type='TinyYOLOV3Neck', num_scales=3, out_channels=[40, 40, 40]),
    bbox_head=dict(
        type='TinyYOLOV3Head',
        num_classes=80,
        out_channels=[80, 80, 80],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(116, 90), (156, 198), (373, 326)],
                        [(30, 61), (62, 45), (59, 119)],
                        [(10, 13), (16, 30), (33, 23)]],
            strides=[32, 16, 8]),
        bbox_coder=dict(type='YOLOBBoxCoder'),
        featmap_strides=[32, 16, 8],
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0, reduction='sum'),
        loss_conf=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0, reduction='sum'),
        loss_xy=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0, reduction='sum'),
        loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction='sum')),
    train_cfg=dict(
        assigner=dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        conf_thr=0.005,
        nms=dict(type='nms', iou_threshold=0.45),
        max_per_img=100))
