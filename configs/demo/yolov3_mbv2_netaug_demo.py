# NetAug training of yolov3_mbv2_demo.py: the same detector, data and schedule, trained inside
# wider backbones, at NetAug's own tuned learning rate (its best point of the learning-rate grid
# over 3 seeds, docs/demo.md); the deployable detector (deploy.pth) is the baseline's.
_base_ = ['./yolov3_mbv2_demo.py', '../_base_/netaug.py']

model = dict(backbone=dict(type='NetAugMobileNetV2'))
optim_wrapper = dict(optimizer=dict(lr=0.004))
