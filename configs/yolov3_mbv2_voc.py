# YOLOv3 + MobileNetV2-w0.35 (depthwise neck and head) on Pascal VOC 07+12 -> VOC 2007 test,
# 416x416, 200 epochs, total batch 64 (8 GPUs x 8).
_base_ = [
    './_base_/models/yolov3_mbv2.py', './_base_/datasets/voc0712_yolov3.py',
    './_base_/schedules/schedule_voc_200e.py', './_base_/default_runtime.py'
]

model = dict(bbox_head=dict(num_classes=20))
