# ImageNet-1k classification with MobileNetV2-w0.35 at 160x160, the official NetAug recipe
# without NetAug (mit-han-lab/tinyml, netaug/configs/default.yaml and netaug.yaml): 155 epochs
# (5 warm-up), SGD Nesterov, cosine, label smoothing 0.1, weight decay 4e-5 (not on BatchNorm and
# biases), batch 128 per GPU on 16 GPUs. The classifier's checkpoint is a backbone_checkpoint for
# the detection configs as it is (its backbone.* keys are the detection backbone's).
_base_ = [
    './_base_/imagenet_bs128.py', './_base_/schedule_in1k_155e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    type='TinyImageClassifier',
    # ImageNet mean and std on 0-255 RGB values (= ToTensor + Normalize of the official code)
    data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    # every layer: the 1280-channel conv2 is the 8th output (index 7)
    backbone=dict(type='TinyMobileNetV2', widen_factor=0.35, out_indices=(7, )),
    # global pool, dropout (official rate 0), linear; in_channels follows the backbone
    head=dict(type='TinyClsHead', num_classes=1000, dropout=0.0),
    label_smoothing=0.1)

# The official code seeds with 0, checkpoints every epoch and exports its best epoch.
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=True)
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='accuracy/top1', rule='greater'))
log_processor = dict(mean_pattern=r'.*(loss|time|data_time|grad_norm|_total|_width|acc_).*')
