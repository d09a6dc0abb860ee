# YOLOv3 + MobileNetV2-w0.35 (depthwise neck and head) on COCO train2017 -> val2017, 416x416,
# 120 epochs, total batch 128 (16 GPUs x 8).
_base_ = [
    './_base_/models/yolov3_mbv2.py', './_base_/datasets/coco_yolov3.py',
    './_base_/schedules/schedule_coco_120e.py', './_base_/default_runtime.py'
]
