# NetAug on all operators of the demo detector: backbone, neck and head are widened in the
# auxiliary pass (the paper's "all operators"); the deployable detector is still the baseline's
# (configs/demo/yolov3_mbv2_demo.py tests its deploy.pth). The neck and head take the NetAug
# backbone's factors (NetAugMobileNetV2-w0.35's here) unless they set their own.
_base_ = './yolov3_mbv2_netaug_demo.py'

model = dict(neck=dict(type='NetAugTinyYOLOV3Neck'), bbox_head=dict(type='NetAugTinyYOLOV3Head'))
