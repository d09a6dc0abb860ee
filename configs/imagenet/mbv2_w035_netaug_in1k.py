# NetAug ImageNet training of mbv2_w035_baseline_in1k.py, as the official NetAug code runs it
# (netaug/bash/imagenet/mbv2-0.35.sh): widths x[1.0, 1.8, 2.6], expand ratios x[1.0, 1.6, 2.2,
# 2.8] (the NetAugMobileNetV2 defaults); initialisation, head and schedule: _base_/netaug_cls.py.
# At the end NetAugHook writes deploy.pth, the plain classifier of the baseline config; the
# epoch checkpoints hold the whole supernet (docs/pretraining.md: which initialises what).
_base_ = ['./mbv2_w035_baseline_in1k.py', './_base_/netaug_cls.py']

model = dict(
    backbone=dict(type='NetAugMobileNetV2', **_base_.netaug_backbone), head=_base_.netaug_head)
