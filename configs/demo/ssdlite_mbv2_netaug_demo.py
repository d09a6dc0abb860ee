# NetAug training of ssdlite_mbv2_demo.py; its deploy.pth is tested with ssdlite_mbv2_demo.py.
_base_ = './ssdlite_mbv2_demo.py'

model = dict(backbone=dict(type='NetAugMobileNetV2'))
custom_hooks = [*_base_.custom_hooks, dict(type='NetAugHook')]
