"""Registries of the scope ``netaug_det``: children of mmdet's, holding nothing of their own.

netaug_det registers its modules in mmdet's registries (scope ``mmdet``), so mmdet's tools build
them. A config that inherits ``_base_ = 'netaug_det::demo/yolov3_mbv2_demo.py'`` gets
``_scope_='netaug_det'`` on its type dicts from mmengine, which then imports this module and
builds through these registries; a child registry finds every name in its parents (mmdet's, then
mmengine's), so such a config builds exactly what the same config builds in scope ``mmdet``.
"""
from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

SCOPE = 'netaug_det'
NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS',
         'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS',
         'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
         'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS')


def _child(name: str) -> Registry:
    parent = getattr(mmdet_registry, name)
    # locations: what to import before a lookup (importing netaug_det registers its modules)
    return Registry(parent.name, parent=parent, scope=SCOPE, locations=['netaug_det'])


REGISTRIES = {name: _child(name) for name in NAMES}
globals().update(REGISTRIES)

__all__ = list(NAMES)
