# yolox_mbv2_coco.py on the demo data (COCO layout), sized for a CPU: 128x128 input, no Mosaic /
# MixUp / multi-scale batches (the recipe's YOLOXModeSwitchHook, which ends them, goes too) and no
# EMA (its momentum is set for 300 epochs), the demo schedule (../_base_/demo_schedule.py) at
# lr 0.002.
_base_ = [
    '../yolox_mbv2_coco.py', '../_base_/datasets/demo_coco.py', '../_base_/demo_schedule.py'
]

data_root = _base_.demo_root
input_size = 128
img_scale = (input_size, input_size)
max_epochs = _base_.demo_max_epochs
batch_size = _base_.demo_batch_size
model = dict(data_preprocessor=dict(batch_augments=None), bbox_head=dict(num_classes=6))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='YOLOXHSVRandomAug'),  # before the flip: it converts colours in place
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=img_scale, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=1,
    dataset=dict(_delete_=True, pipeline=train_pipeline, **_base_.demo_train_set))
val_dataloader = dict(
    batch_size=batch_size, num_workers=1,
    dataset=dict(_delete_=True, pipeline=test_pipeline, **_base_.demo_val_set))
test_dataloader = val_dataloader
val_evaluator = _base_.demo_evaluator
test_evaluator = val_evaluator

train_cfg = dict(_base_.demo_train_cfg, dynamic_intervals=None)
optim_wrapper = dict(_delete_=True, optimizer=dict(_base_.demo_optimizer, lr=0.002),
                     paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
param_scheduler = _base_.demo_param_scheduler
custom_hooks = []
default_hooks = _base_.demo_default_hooks
auto_scale_lr = _base_.demo_auto_scale_lr
