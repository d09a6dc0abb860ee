# NetAug training: the hook samples an augmented (wider) model each step and adds its loss to the
# base loss (defaults from the official code, see NetAugHook). A config turns NetAug on by
# inheriting its baseline and this file and setting a NetAug backbone type with the same
# arguments, e.g. model = dict(backbone=dict(type='NetAugMobileNetV2')).
custom_hooks = [dict(type='NetAugHook')]
