# Distillation from the demo teacher (configs/demo/yolov3_mbv2_teacher_demo.py, trained into
# work_dirs/demo_teacher/; the distillation ablation tool trains it and passes its checkpoint as
# distiller.teacher.checkpoint). A config adds dict(type='DistillationHook') to its custom_hooks.
# Soft targets on the head's maps are summed over anchors like YOLOv3's own losses (weight 1); the
# neck's maps are imitated through 1x1 adapters (40 -> 80 channels), standardised per channel, with
# a weight that makes the term about a tenth of the detection loss at the start of training
# (python -m netaug_det.tools.loss_terms; docs/distillation.md); not tuned.
distiller = dict(
    type='TeacherDistiller',
    teacher=dict(config='{{ fileDirname }}/../demo/yolov3_mbv2_teacher_demo.py',
                 checkpoint='work_dirs/demo_teacher/epoch_12.pth'),
    output_loss=dict(type='YOLOV3SoftTargetLoss', temperature=1.0, reduction='sum'),
    feature_loss=dict(type='FeatureImitationLoss', normalize=True, loss_weight=20.0))
