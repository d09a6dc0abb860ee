# mbv2_w035_baseline_in1k.py with MobileNetV3-Large-w0.35 (official netaug/bash/imagenet/
# mbv3-0.35.sh): its classifier head pools the 336-channel conv2, then a 1x1 conv to 1280
# features (bias, hard-swish, no norm) and the linear layer; weight decay 3e-5; base_lr 0.1 per
# GPU, i.e. 1.6 on 16 GPUs (the script's value, 4x the MobileNetV2 one; the paper's text gives
# 0.4 for all models).
_base_ = './mbv2_w035_baseline_in1k.py'

model = dict(
    backbone=dict(type='TinyMobileNetV3', out_indices=(6, )),
    head=dict(mid_channels=1280, mid_act_cfg=dict(type='HSwish')))
optim_wrapper = dict(optimizer=dict(lr=1.6, weight_decay=3e-5))
