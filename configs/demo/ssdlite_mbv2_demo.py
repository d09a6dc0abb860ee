# ssdlite_mbv2_coco.py on the demo data (COCO layout), sized for a CPU: 128x128 input, the
# recipe's SSD augmentation without Expand/MinIoURandomCrop (they shrink the demo's small objects
# to nothing at this size), the demo schedule (../_base_/demo_schedule.py) at lr 0.002.
_base_ = [
    '../ssdlite_mbv2_coco.py', '../_base_/datasets/demo_coco.py', '../_base_/demo_schedule.py'
]

data_root = _base_.demo_root
input_size = 128
max_epochs = _base_.demo_max_epochs
batch_size = _base_.demo_batch_size
model = dict(bbox_head=dict(num_classes=6))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
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

train_cfg = _base_.demo_train_cfg
optim_wrapper = dict(_delete_=True, optimizer=dict(_base_.demo_optimizer, lr=0.002))
param_scheduler = _base_.demo_param_scheduler
default_hooks = _base_.demo_default_hooks
auto_scale_lr = _base_.demo_auto_scale_lr
