# The MobileNetV2 detector with a MobileNetV3-Large-w0.35 backbone (strides 8, 16, 32).
_base_ = './yolov3_mbv2_coco.py'

model = dict(backbone=dict(type='TinyMobileNetV3', out_indices=(2, 4, 5)))
