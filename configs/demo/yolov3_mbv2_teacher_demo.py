# The teacher of the distillation demos: the demo detector with a MobileNetV2-w1.0 backbone and a
# neck and head twice as wide (80 and 160 channels), trained with the demo recipe:
#   tools/train.py configs/demo/yolov3_mbv2_teacher_demo.py --work-dir work_dirs/demo_teacher
_base_ = './yolov3_mbv2_demo.py'

model = dict(
    backbone=dict(widen_factor=1.0),
    neck=dict(out_channels=[80, 80, 80]),
    bbox_head=dict(out_channels=[160, 160, 160]))
