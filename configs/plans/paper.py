# The paper's detection pipeline as one plan (python -m netaug_det.tools.run_plan
# configs/plans/paper.py [--dry-run]; docs/scaling.md): ImageNet pretraining of MobileNetV2-w0.35
# and MobileNetV3-w0.35 without and with NetAug, then YOLOv3 on Pascal VOC and COCO from each
# pretraining (baseline detectors from baseline weights, NetAug detectors from NetAug's deploy.pth,
# as the paper pairs them), each at every resolution of Figure 5's sweep and with every seed.
# Table 4 reads the 416 runs of the sweeps. The learning rates are the configs' own: tune them per
# method first (lr_grid; the project's standard) and add them as train_options.
title = 'NetAug paper: Table 4 (detection) and Figure 5'
work_dir = 'work_dirs/paper'
seeds = [0, 1, 2]

# Cost model (GPU-hours = train_images x epochs / images_per_s_per_gpu / 3600, NetAug x
# netaug_cost), not measured here. ImageNet: 254 images/s per GPU is the paper's Table 3
# (MobileNetV2-Tiny, 150 epochs = 210 GPU-hours: 1,281,167 x 150 / 210 / 3600), and NetAug's
# 245 vs 210 GPU-hours gives netaug_cost 1.167. Detection: 100 images/s per GPU for YOLOv3 at 416
# with batch 8 per GPU is an assumption (the paper gives no figure); replace both with your
# cluster's measured throughput. Evaluation and queueing are not counted.
netaug_cost = 245 / 210
imagenet = dict(train_images=1281167, images_per_s_per_gpu=254, gpus=8, nodes=2)
voc = dict(train_images=16551, images_per_s_per_gpu=100, gpus=8, nodes=1, dataset='VOC',
           resolutions=[256, 288, 320, 352, 384, 416], table=416, paper_mac_reduction=0.41)
coco = dict(train_images=117266, images_per_s_per_gpu=100, gpus=8, nodes=2, dataset='COCO',
            resolutions=[288, 320, 352, 384, 416, 448], table=416, paper_mac_reduction=0.38)

# 'final': the last epoch's checkpoint (plain classifier); 'deploy': NetAug's deploy.pth (the base
# classifier, tested under the baseline config).
pretraining = dict(
    mbv2_baseline=dict(config='configs/imagenet/mbv2_w035_baseline_in1k.py', checkpoint='final',
                       **imagenet),
    mbv2_netaug=dict(config='configs/imagenet/mbv2_w035_netaug_in1k.py',
                     test_config='configs/imagenet/mbv2_w035_baseline_in1k.py',
                     checkpoint='deploy', netaug=True, **imagenet),
    mbv3_baseline=dict(config='configs/imagenet/mbv3_w035_baseline_in1k.py', checkpoint='final',
                       **imagenet),
    mbv3_netaug=dict(config='configs/imagenet/mbv3_w035_netaug_in1k.py',
                     test_config='configs/imagenet/mbv3_w035_baseline_in1k.py',
                     checkpoint='deploy', netaug=True, **imagenet))


def yolov3(dataset, backbone, paper, settings):
    """The detection entry of YOLOv3 with ``backbone`` on ``dataset`` (configs/yolov3_*), each
    method from its own pretraining; ``paper``: Table 4's AP50 of its baseline (150 epochs) and
    NetAug rows."""
    return dict(name=f'{dataset}_{backbone}', backbone=f'MbV{backbone[-1]} w0.35',
                baseline=f'configs/yolov3_{backbone}_{dataset}.py',
                netaug=f'configs/yolov3_{backbone}_netaug_{dataset}.py',
                pretrained=dict(baseline=f'{backbone}_baseline', netaug=f'{backbone}_netaug'),
                paper=paper, **settings)


detection = [
    yolov3('voc', 'mbv2', dict(baseline=60.4, netaug=62.4), voc),
    yolov3('voc', 'mbv3', dict(baseline=63.6, netaug=65.3), voc),
    yolov3('coco', 'mbv2', dict(baseline=24.7, netaug=25.4), coco),
    yolov3('coco', 'mbv3', dict(baseline=29.2, netaug=30.7), coco),
]
