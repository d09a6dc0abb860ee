# NetAug training of yolox_mbv2_coco.py: the same detector and recipe (its EMA included: deploy.pth
# holds the averaged weights), trained inside wider backbones; deploy.pth is the baseline's.
_base_ = './yolox_mbv2_coco.py'

model = dict(backbone=dict(type='NetAugMobileNetV2'))
custom_hooks = [*_base_.custom_hooks, dict(type='NetAugHook')]
