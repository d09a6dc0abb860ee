# NetAug ImageNet training of mbv3_w035_baseline_in1k.py (official netaug/bash/imagenet/
# mbv3-0.35.sh): widths x[1.0, 2.0, 3.0], expand ratios x[1.0, 1.6, 2.2, 2.8] (the
# NetAugMobileNetV3 defaults); the head's 1x1 conv widens with the same width factors (the
# official NetAugMobileNetV3 head). Initialisation, head and schedule: _base_/netaug_cls.py.
_base_ = ['./mbv3_w035_baseline_in1k.py', './_base_/netaug_cls.py']

model = dict(
    backbone=dict(type='NetAugMobileNetV3', **_base_.netaug_backbone), head=_base_.netaug_head)
