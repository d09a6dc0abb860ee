# NetAug training of yolov3_mbv2_demo.py: the same detector, data and schedule, trained inside
# wider backbones; the deployable detector (deploy.pth) is the baseline's.
_base_ = ['./yolov3_mbv2_demo.py', '../_base_/netaug.py']

model = dict(backbone=dict(type='NetAugMobileNetV2'))
