# yolov3_mbv2_voc.py (YOLOv3 + MobileNetV2-w0.35) on the seeded demo data, sized for a CPU:
# 128x128 input, 16 images per batch, 12 epochs with AdamW (tools/run_demo.py trains and
# compares it).
_base_ = '../yolov3_mbv2_voc.py'

# Data: data/demo/ as written by tools/misc/make_demo_data.py (netaug_det/datasets/demo_data.py).
data_root = 'data/demo/'
voc_dir = 'VOCdevkit/VOCdemo/'
metainfo = dict(classes=('disc', 'ring', 'triangle', 'square', 'star', 'cross'))
model = dict(bbox_head=dict(num_classes=6))
# Trained from scratch on purpose (a paper config refuses to start without ImageNet weights).
allow_random_init = True

# Schedule.
input_size = 128
max_epochs = 12
batch_size = 16


def at_input_size(pipeline):
    """The inherited ``pipeline`` with its Resize scale and Pad size at ``input_size``, without
    Expand and MinIoURandomCrop: zooming out and cropping shrink the demo's small objects to a
    few pixels at this resolution, and a dozen epochs cannot use such hard augmentation."""
    keys = dict(Resize='scale', Pad='size')
    return [
        dict(step, **{keys[step['type']]: (input_size, input_size)})
        if step['type'] in keys else step for step in pipeline
        if step['type'] not in ('Expand', 'MinIoURandomCrop')
    ]


train_pipeline = at_input_size(_base_.train_pipeline)
test_pipeline = at_input_size(_base_.test_pipeline)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        type='VOCDataset',
        data_root=data_root,
        ann_file=voc_dir + 'ImageSets/Main/train.txt',
        data_prefix=dict(sub_data_root=voc_dir),
        metainfo=metainfo,
        # unlike VOC, small boxes are kept: the demo data has many
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        ann_file=voc_dir + 'ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root=voc_dir),
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# From random init, AdamW gets a usable detector in a CPU budget of iterations; SGD (the VOC
# recipe) needs many more. lr 0.016: the baseline's best point of the learning-rate grid over
# 3 seeds (0.008 gave the same mean to 0.1 AP50; docs/demo.md); NetAug's own is 0.004.
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.016, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[int(0.8 * max_epochs), int(0.9 * max_epochs)], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0, deterministic=True)
