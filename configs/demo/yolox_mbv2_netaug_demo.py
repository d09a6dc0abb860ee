# NetAug training of yolox_mbv2_demo.py; its deploy.pth is tested with yolox_mbv2_demo.py.
_base_ = './yolox_mbv2_demo.py'

model = dict(backbone=dict(type='NetAugMobileNetV2'))
custom_hooks = [dict(type='NetAugHook')]
