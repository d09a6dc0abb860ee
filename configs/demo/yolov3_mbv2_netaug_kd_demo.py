# NetAug + distillation from the demo teacher, in one step: base + alpha * aux + KD of the base
# pass. deploy.pth is tested with yolov3_mbv2_demo.py.
_base_ = ['./yolov3_mbv2_netaug_demo.py', '../_base_/demo_distiller.py']

custom_hooks = [*_base_.custom_hooks, dict(type='DistillationHook')]
