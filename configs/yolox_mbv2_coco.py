# An anchor-free tiny detector: mmdet's YOLOX-nano recipe (depthwise PAFPN neck and decoupled
# depthwise head, SimOTA assignment, Mosaic/MixUp, EMA, 300 epochs) on a MobileNetV2-w0.35
# backbone instead of CSPDarknet-nano. YOLOX rather than RTMDet: YOLOX-nano is mmdet's sub-1M
# parameter anchor-free detector and its depthwise neck and head are the tiny-detector design of
# the NetAug paper, while RTMDet-tiny (4.8M params) is a size larger. Strides 8, 16, 32 come from
# layer3, layer5 and layer7 (16, 32, 112 channels).
_base_ = 'mmdet::yolox/yolox_nano_8xb8-300e_coco.py'

custom_imports = dict(imports=['netaug_det'], allow_failed_imports=False)
runner_type = 'NetAugDetRunner'

model = dict(
    backbone=dict(_delete_=True, type='TinyMobileNetV2', widen_factor=0.35,
                  out_indices=(2, 4, 6)),
    neck=dict(in_channels=[16, 32, 112]))
