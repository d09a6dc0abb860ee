# SSDLite with a MobileNetV2-w0.35 backbone: mmdet's own ssdlite_mobilenetv2 recipe (320x320,
# depthwise SSD neck and head, from scratch, 600 epochs at batch 192), with the width multiplier
# of the NetAug paper's tiny models. TinyMobileNetV2 is state-dict compatible with mmdet's
# MobileNetV2; out_indices (4, 7) return layer5 (32 channels at w0.35, stride 16) and conv2
# (1280, stride 32), as in the recipe. SSDHeadWithPredictFix is mmdet's SSDHead with the mmdet 3.3
# prediction bug fixed (same layers and checkpoints).
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

custom_imports = dict(imports=['netaug_det'], allow_failed_imports=False)
runner_type = 'NetAugDetRunner'

model = dict(
    backbone=dict(type='TinyMobileNetV2', widen_factor=0.35),
    neck=dict(in_channels=(32, 1280), out_channels=(32, 1280, 512, 256, 256, 128)),
    bbox_head=dict(type='SSDHeadWithPredictFix', in_channels=(32, 1280, 512, 256, 256, 128)))
