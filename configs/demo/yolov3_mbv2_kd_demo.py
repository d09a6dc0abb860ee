# The demo detector distilled from the demo teacher (configs/_base_/demo_distiller.py); its
# final checkpoint is tested with yolov3_mbv2_demo.py (the adapters are not part of the detector).
_base_ = ['./yolov3_mbv2_demo.py', '../_base_/demo_distiller.py']

custom_hooks = [dict(type='DistillationHook')]
