# The transfer experiment at demo scale (docs/transfer.md), on one CPU thread in about two hours:
# out-of-domain classification data (netaug_det/datasets/ood_imagefolder.py: 12 classes, none of
# the detection demo's) -> MobileNetV2-w0.35 classifiers without and with NetAug, each at its
# tuned learning rate, 3 seeds, plus the baseline trained 3x longer (NetAug's training time) ->
# plain demo detectors (configs/demo/yolov3_mbv2_demo.py, its 12-epoch demo schedule) from every
# classifier, each pretraining at its tuned detection learning rate, 3 detection seeds, and the
# detector from random init over the same seeds.
#   OMP_NUM_THREADS=1 python -m netaug_det.tools.run_plan configs/plans/transfer_demo.py
type = 'transfer'
title = 'Transfer at demo scale: out-of-domain classifiers -> demo detectors (CPU)'
work_dir = 'work_dirs/transfer_demo'
# the detection data first: a data/demo made with other arguments is refused before anything
# is generated
datasets = [
    dict(type='demo_detection', out_dir='data/demo'),
    dict(type='ood_classification', out_dir='data/transfer_cls', num_train=1200, num_val=240),
]


def schedule(epochs):
    """configs/demo/mbv2_cls_demo.py's schedule (1 warm-up epoch, cosine to 0) for ``epochs``."""
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'param_scheduler.1.T_max={epochs - 1}', f'param_scheduler.1.end={epochs}']


# 8 epochs of 1,200 images (296 iterations): what one CPU thread affords for 13 classifiers.
# NetAug's step costs about 3-4x the baseline's here, so the longer baseline trains 24 epochs.
classifier = dict(
    baseline='configs/transfer/mbv2_cls_ood.py',
    netaug='configs/transfer/mbv2_cls_netaug_ood.py',
    train_options=schedule(8),
    long_train_options=schedule(24),
    # of the config's 0.01, which was tuned for 40 epochs (shorter schedules favour larger rates)
    lr_mults=[1, 2, 4],
    grid_seeds=[0],
    seeds=[0, 1, 2])
detection = dict(
    config='configs/demo/yolov3_mbv2_demo.py',
    lr_mults=[0.5, 1, 2],  # of the config's 0.016 (tuned from random init)
    grid_classifier_seed=0,
    grid_seeds=[0],
    seeds=[0, 1, 2],
    # also the detector from random init (its config's lr 0.016), the same seeds: does any
    # pretraining help at all?
    scratch=True)
