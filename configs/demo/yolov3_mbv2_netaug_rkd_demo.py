# NetAug with online self-distillation: the augmented model of each step teaches the base model
# with relational KD (RKD distance and angle on the neck's pooled features, teacher detached).
# No external teacher. deploy.pth is tested with yolov3_mbv2_demo.py. The weights make the two
# terms about a tenth of the detection loss at the start of training (docs/distillation.md).
_base_ = './yolov3_mbv2_netaug_demo.py'

custom_hooks = [dict(type='NetAugHook', self_distill=dict(rkd_distance=3000.0, rkd_angle=4000.0))]
