# What NetAug changes in an ImageNet classifier config, besides the backbone type (the configs
# inherit their baseline and this file):
# - the official NetAug initialisation (netaug.yaml init_type, its README's note 1):
#   kaiming_uniform (PyTorch's default conv init) instead of the baseline's He fan-out normal;
# - the classifier head reads the augmented model's widened final features, as the official
#   NetAug classifiers' DynamicLinear does: the backbone returns its last output at the active
#   width (active_last_output=True) and the head is NetAugTinyClsHead;
# - the official schedule exactly: widths augmented for the first 80 of 155 epochs
#   (stop_aug_w_epoch: 75), expand ratios throughout, channels sorted at every width epoch;
# - the official memory profile: the base pass's gradient is taken before the augmented pass
#   runs, so the two graphs are never alive together (release_base_graph; the same update).
kaiming_uniform = dict(type='Kaiming', layer='Conv2d', a=5**0.5, mode='fan_in',
                       nonlinearity='leaky_relu', distribution='uniform')
netaug_backbone = dict(
    active_last_output=True,
    init_cfg=[kaiming_uniform, dict(type='Constant', val=1, layer=['_BatchNorm'])])
netaug_head = dict(
    type='NetAugTinyClsHead',
    init_cfg=[kaiming_uniform, dict(type='TruncNormal', layer='Linear', std=0.02)])
custom_hooks = [dict(type='NetAugHook', width_aug_ratio=80 / 155, release_base_graph=True)]
