# NetAug training of yolov3_mbv2_neon_trees.py: the same detector, data and schedule, trained
# inside wider backbones (the two lines of ../demo/yolov3_mbv2_netaug_demo.py, with its learning
# rate tuned on the demo data: tune it on this data with lr_grid, docs/real_data.md); the
# deployable detector (deploy.pth) is the baseline's.
_base_ = ['./yolov3_mbv2_neon_trees.py', '../_base_/netaug.py']

model = dict(backbone=dict(type='NetAugMobileNetV2'))
optim_wrapper = dict(optimizer=dict(lr=0.004))
