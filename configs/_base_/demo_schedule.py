# The demo schedule, sized for a CPU: 12 epochs of AdamW (weight decay 0.05) on batches of 16
# images on one process, lr warmed up from 0.1x over 40 iterations and x0.1 at 80% and 90% of the
# epochs, validation after the last epoch, seed 0, deterministic. The demo detectors
# (configs/demo/{yolov3,ssdlite,yolox}_mbv2_demo.py) inherit their recipe and this file; each sets
# its own lr (tuned per detector at this batch, docs/demo.md) and its own optimizer wrapper.
# mmengine refuses a key that two bases define, and every recipe defines train_cfg,
# param_scheduler, default_hooks and auto_scale_lr: so the block's values are named demo_* here
# and each demo config assigns them (randomness, which no recipe sets, is set here directly).
demo_max_epochs = 12
demo_batch_size = 16
demo_train_cfg = dict(max_epochs=demo_max_epochs, val_interval=demo_max_epochs)
demo_optimizer = dict(type='AdamW', weight_decay=0.05)
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=demo_max_epochs,
         milestones=[int(0.8 * demo_max_epochs), int(0.9 * demo_max_epochs)], gamma=0.1)
]
demo_default_hooks = dict(logger=dict(interval=10))
# The lr of each demo was tuned at this total batch (1 process x 16 images): --auto-scale-lr
# keeps it at that batch and scales it linearly to another.
demo_auto_scale_lr = dict(enable=False, base_batch_size=demo_batch_size)
randomness = dict(seed=0, deterministic=True)
