# COCO: 120 epochs at a total batch of 128 (16 GPUs x 8 images), the NetAug paper's setting.
# The VOC recipe with lr scaled linearly to the batch (2e-3) and the steps at 80% and 90% of
# the epochs.
_base_ = './schedule_voc_200e.py'

max_epochs = 120
train_cfg = dict(max_epochs=max_epochs)

optim_wrapper = dict(optimizer=dict(lr=0.002))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2000),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[int(0.8 * max_epochs), int(0.9 * max_epochs)], gamma=0.1)
]

auto_scale_lr = dict(base_batch_size=128)
