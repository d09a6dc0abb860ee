# NetAug training of ssdlite_mbv2_coco.py: the same detector and recipe, trained inside wider
# backbones (NetAugHook added to the recipe's hooks); deploy.pth is the baseline's detector.
_base_ = './ssdlite_mbv2_coco.py'

model = dict(backbone=dict(type='NetAugMobileNetV2'))
custom_hooks = [*_base_.custom_hooks, dict(type='NetAugHook')]
