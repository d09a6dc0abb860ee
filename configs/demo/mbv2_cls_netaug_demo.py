# NetAug training of mbv2_cls_demo.py, the way configs/imagenet/mbv2_w035_netaug_in1k.py adds
# NetAug to its baseline (configs/imagenet/_base_/netaug_cls.py); deploy.pth is the plain
# classifier of mbv2_cls_demo.py, the last epoch checkpoint the whole supernet.
_base_ = ['./mbv2_cls_demo.py', '../imagenet/_base_/netaug_cls.py']

model = dict(
    backbone=dict(type='NetAugMobileNetV2', **_base_.netaug_backbone), head=_base_.netaug_head)
