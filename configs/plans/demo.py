# The paper plan's chain at demo scale, on a CPU in a few minutes (docs/scaling.md):
# demo classification data -> baseline and NetAug classifiers (2 epochs) -> baseline and NetAug
# detectors from them (2 epochs) at two resolutions -> Table 4's layout and the AP50-vs-MACs sweep.
#   python -m netaug_det.tools.run_plan configs/plans/demo.py --executor local --jobs 2
# Its numbers show the pipeline working, not NetAug's effect (docs/demo.md has that).
title = 'Demo plan: demo classification -> classifiers -> detectors -> sweep (CPU)'
work_dir = 'work_dirs/plan_demo'
seeds = [0]
# the detection data first: a data/demo made with other arguments is refused before anything
# is generated
datasets = [
    dict(type='demo_detection', out_dir='data/demo'),
    dict(type='demo_classification', out_dir='data/demo_cls'),
]

# Cost model of the estimate: per device (here one CPU thread), rough rates of this machine.
netaug_cost = 3.0
classifier = dict(train_images=1500, images_per_s_per_gpu=250, gpus=0, nodes=1)
# configs/demo/mbv2_cls_demo.py shortened to 2 epochs (1 warm-up, 1 cosine); the checkpoint hook
# still saves the last epoch.
two_epochs = [
    'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', 'param_scheduler.1.T_max=1',
    'param_scheduler.1.end=2'
]
pretraining = dict(
    cls_baseline=dict(config='configs/demo/mbv2_cls_demo.py', checkpoint='final',
                      train_options=two_epochs, **classifier),
    cls_netaug=dict(config='configs/demo/mbv2_cls_netaug_demo.py',
                    test_config='configs/demo/mbv2_cls_demo.py', checkpoint='deploy',
                    netaug=True, train_options=two_epochs, **classifier))

detection = [
    dict(name='demo', backbone='MbV2 w0.35', dataset='demo',
         baseline='configs/demo/yolov3_mbv2_demo.py',
         netaug='configs/demo/yolov3_mbv2_netaug_demo.py',
         pretrained=dict(baseline='cls_baseline', netaug='cls_netaug'), epochs=2,
         resolutions=[96, 128], table=128, train_images=320, images_per_s_per_gpu=50, gpus=0,
         nodes=1),
]
