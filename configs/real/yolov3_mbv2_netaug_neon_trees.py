# NetAug training of yolov3_mbv2_neon_trees.py: the same detector, data and schedule, trained
# inside wider backbones (the two lines of ../demo/yolov3_mbv2_netaug_demo.py); the deployable
# detector (deploy.pth) is the baseline's.
_base_ = ['./yolov3_mbv2_neon_trees.py', '../_base_/netaug.py']

model = dict(backbone=dict(type='NetAugMobileNetV2'))
# lr 0.016: NetAug's best point of the learning-rate grid on these trees over 3 seeds (0.001 to
# 0.032; the demo data's 0.004 gave 6.0 against 8.5; docs/real_data.md)
optim_wrapper = dict(optimizer=dict(lr=0.016))
