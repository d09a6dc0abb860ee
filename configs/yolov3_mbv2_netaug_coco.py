# NetAug training of yolov3_mbv2_coco.py: the same detector and schedule, trained inside wider
# backbones; the deployable detector is the baseline's.
_base_ = ['./yolov3_mbv2_coco.py', './_base_/netaug.py']

model = dict(backbone=dict(type='NetAugMobileNetV2'))
# The paper's NetAug detectors start from NetAug-pretrained ImageNet weights.
backbone_pretrain = 'netaug'
