# The official NetAug ImageNet schedule (netaug/configs/netaug.yaml, netaug/train.py): 5 warm-up
# epochs, then 150 epochs of cosine decay to 0 (155 in all), SGD with Nesterov momentum 0.9,
# weight decay 4e-5 on conv and linear weights only (none on BatchNorm and biases), per step.
# The official learning rate is base_lr x GPUs (0.025 x 16 = 0.4 for MobileNetV2-w0.35, the
# paper's "initial learning rate 0.4" at batch 2048), warmed up linearly from base_lr, i.e. from
# 1/16 of it on 16 GPUs. --auto-scale-lr rescales lr to the batch actually used.
max_epochs = 155
warmup_epochs = 5

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.4, momentum=0.9, nesterov=True, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 16, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=2048)
