"""Config variables that must reach every place derived from them after ``--cfg-options``.

mmengine evaluates a config file once, so ``scale=(input_size, input_size)`` is a plain
``(416, 416)`` by the time ``--cfg-options input_size=320`` is merged, and a new
``backbone_checkpoint`` does not reach ``model.backbone.init_cfg``. The tools call
:func:`apply_config_variables` after merging the options to carry both variables through.
"""
from typing import Any, List, Optional

from mmengine.config import Config

# Largest stride of the YOLOv3 feature pyramid: input sizes must be multiples of it.
MAX_STRIDE = 32
# Where a transform keeps its output size.
SIZE_KEYS = {'Resize': 'scale', 'Pad': 'size'}


def _replace_square(node: Any, old: int, new: int) -> Any:
    """``node`` with every ``(old, old)`` pair (tuple or list) replaced by ``(new, new)``."""
    if isinstance(node, dict):
        return type(node)({key: _replace_square(value, old, new) for key, value in node.items()})
    if isinstance(node, (list, tuple)):
        if len(node) == 2 and all(type(v) is int and v == old for v in node):
            return type(node)((new, new))
        return type(node)(_replace_square(value, old, new) for value in node)
    return node


def check_input_size(input_size: Any) -> None:
    """Raises a ValueError naming the fix unless ``input_size`` is a positive multiple of 32."""
    if type(input_size) is not int or input_size <= 0 or input_size % MAX_STRIDE:
        raise ValueError(f'input_size must be a positive multiple of {MAX_STRIDE} (the largest '
                         f'YOLOv3 stride), got {input_size!r}; e.g. --cfg-options input_size=320')


def _resize_and_pad_sizes(node: Any) -> List[tuple]:
    """Every square Resize ``scale`` and Pad ``size`` inside ``node``."""
    if isinstance(node, (list, tuple)):
        return [size for value in node for size in _resize_and_pad_sizes(value)]
    if not isinstance(node, dict):
        return []
    sizes = [size for value in node.values() for size in _resize_and_pad_sizes(value)]
    size = node.get(SIZE_KEYS.get(node.get('type')))
    if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
        sizes.append(tuple(size))
    return sizes


def apply_input_size(cfg: Config, original_size: int) -> None:
    """Carries a changed ``cfg.input_size`` to everything derived from it, in place.

    Every square size ``(original_size, original_size)`` in the config (the Resize scale and
    Pad size of the train and test pipelines, in the dataloaders and in the top-level
    ``train_pipeline`` / ``test_pipeline``, and any batch shape or ``BatchFixedSizePad`` size)
    becomes ``(cfg.input_size, cfg.input_size)``. Afterwards every square Resize scale and Pad
    size must be the input size: a config file that redefines ``input_size`` without
    rebuilding its inherited pipelines is refused rather than trained at the old size.

    Args:
        cfg (Config): The merged config.
        original_size (int): ``input_size`` as the config file defined it, before overrides.
    """
    new_size = cfg.input_size
    check_input_size(new_size)
    if new_size != original_size:
        found = False
        for key, value in cfg.items():
            replaced = _replace_square(value, original_size, new_size)
            if replaced != value:
                cfg[key] = replaced
                found = True
        if not found:
            raise ValueError(
                f'input_size changed from {original_size} to {new_size}, but no '
                f'({original_size}, {original_size}) size in the config derives from it; define '
                'the pipeline sizes as (input_size, input_size) or override them directly')
    stale = sorted(set(_resize_and_pad_sizes(cfg.to_dict())) - {(new_size, new_size)})
    if stale:
        raise ValueError(
            f'input_size is {new_size}, but pipelines still resize or pad to {stale}; a config '
            'file that sets input_size must rebuild the inherited pipelines from it (as '
            'configs/demo/yolov3_mbv2_demo.py does), or pass --cfg-options '
            f'input_size={new_size} to the baseline config instead')


def apply_backbone_checkpoint(cfg: Config) -> None:
    """Points ``model.backbone.init_cfg`` at ``cfg.backbone_checkpoint`` when it is set.

    ``backbone_checkpoint`` (a path or URL of ImageNet weights for the plain backbone) defaults
    to None: the backbone keeps its own ``init_cfg`` (random init in the netaug_det configs).
    """
    checkpoint = cfg.get('backbone_checkpoint')
    if checkpoint is not None:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=checkpoint)


def apply_config_variables(cfg: Config, original_input_size: Optional[int] = None) -> None:
    """Applies ``input_size`` (when the config has one) and ``backbone_checkpoint``, in place.

    Call it after ``cfg.merge_from_dict(cfg_options)``, with ``original_input_size`` read from
    the config before the merge (None: the size was not overridden).
    """
    if 'input_size' in cfg:
        apply_input_size(cfg, cfg.input_size if original_input_size is None
                         else original_input_size)
    apply_backbone_checkpoint(cfg)
