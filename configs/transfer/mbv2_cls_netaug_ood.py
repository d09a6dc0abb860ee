# NetAug training of mbv2_cls_ood.py, the way configs/demo/mbv2_cls_netaug_demo.py adds NetAug to
# mbv2_cls_demo.py (configs/imagenet/_base_/netaug_cls.py); deploy.pth is mbv2_cls_ood.py's
# plain classifier, the last epoch checkpoint the whole supernet.
_base_ = ['./mbv2_cls_ood.py', '../imagenet/_base_/netaug_cls.py']

model = dict(
    backbone=dict(type='NetAugMobileNetV2', **_base_.netaug_backbone), head=_base_.netaug_head)
