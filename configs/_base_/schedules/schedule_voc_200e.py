# Pascal VOC: 200 epochs at a total batch of 64 (8 GPUs x 8 images), the NetAug paper's setting.
# mmdet's YOLOv3 recipe: SGD with momentum 0.9, weight decay 5e-4 and gradient clipping; lr 1e-3
# for a batch of 64 (mmdet's YOLOv3-MobileNetV2 uses 3e-3 for 192); linear warmup over 2000
# iterations from 0.1 x lr, then x0.1 at 80% and 90% of the epochs (as YOLOv3-DarkNet53's
# 273-epoch schedule: 218, 246).
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

max_epochs = 200
train_cfg = dict(max_epochs=max_epochs, val_interval=10)

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2000),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[int(0.8 * max_epochs), int(0.9 * max_epochs)], gamma=0.1)
]

# lr is set for this total batch; tools/train.py --auto-scale-lr rescales it linearly to the
# batch actually used (GPUs x train_dataloader.batch_size).
auto_scale_lr = dict(enable=False, base_batch_size=64)
