# NetAug + distillation from the demo teacher + online self-distillation (RKD) in one step.
_base_ = ['./yolov3_mbv2_netaug_rkd_demo.py', '../_base_/demo_distiller.py']

custom_hooks = [*_base_.custom_hooks, dict(type='DistillationHook')]
