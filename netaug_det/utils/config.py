"""Config variables that must reach every place derived from them after ``--cfg-options``.

mmengine evaluates a config file once, so ``scale=(input_size, input_size)`` is a plain
``(416, 416)`` and ``data_root + 'annotations/...'`` a plain string by the time
``--cfg-options input_size=320 data_root=/data/coco/`` is merged, and the backbone's ``init_cfg``
does not follow the checkpoint variables. :func:`apply_config_variables` carries them through. It
runs when the runner is built (``NetAugDetRunner.from_cfg``), so mmdet's own ``tools/train.py``,
``mim train`` and this project's tools all train what the merged config says. The values the
config file itself defines are read back from ``cfg.filename``; a config built in memory (no
file) is only checked for consistency.

Variables:

- ``input_size``: square network input; every ``(S, S)`` under a transform size key (``scale``,
  ``size``, ``img_scale``) with ``S`` the file's value follows it.
- ``data_root``: every dataset ``data_root`` equal to the file's value follows it, and so does
  every ``ann_file`` that starts with it (COCO's evaluator).
- ``imagenet_checkpoints`` (dict of backbone checkpoints by pretraining, e.g. ``baseline`` /
  ``netaug`` / ``netaug_supernet``), ``backbone_pretrain`` (which of them this config starts
  from) and ``backbone_checkpoint`` (an explicit file, first): the backbone's ``init_cfg``.
"""
from typing import Any, List, Optional

from mmengine.config import Config

# Largest stride of the YOLOv3 feature pyramid: input sizes must be multiples of it.
MAX_STRIDE = 32
# Where transforms keep their output size.
SIZE_KEYS = ('scale', 'size', 'img_scale')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def check_input_size(input_size: Any) -> None:
    """Raises a ValueError naming the fix unless ``input_size`` is a positive multiple of 32."""
    if type(input_size) is not int or input_size <= 0 or input_size % MAX_STRIDE:
        raise ValueError(f'input_size must be a positive multiple of {MAX_STRIDE} (the largest '
                         f'YOLOv3 stride), got {input_size!r}; e.g. --cfg-options input_size=320')


def _is_square(value: Any, side: Optional[int] = None) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(type(v) is int for v in value) and value[0] == value[1]
            and (side is None or value[0] == side))


def _rewrite(node: Any, key: Optional[str], rule) -> Any:
    """``node`` rebuilt with ``rule(key, value)`` applied to every (key, leaf-or-pair) in it."""
    replaced = rule(key, node)
    if replaced is not node:
        return replaced
    if isinstance(node, dict):
        return type(node)({k: _rewrite(v, k, rule) for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(_rewrite(v, None, rule) for v in node)
    return node


def _transform_sizes(node: Any, key: Optional[str] = None) -> List[tuple]:
    """Every square size under a transform size key inside ``node``."""
    if key in SIZE_KEYS and _is_square(node):
        return [tuple(node)]
    if isinstance(node, dict):
        return [size for k, v in node.items() for size in _transform_sizes(v, k)]
    if isinstance(node, (list, tuple)):
        return [size for v in node for size in _transform_sizes(v)]
    return []


def apply_input_size(cfg: Config, file_size: Optional[int]) -> None:
    """Carries ``cfg.input_size`` to the transform sizes derived from the file's value, in place;
    then every square transform size of the dataloaders must be the input size (a config that
    redefines ``input_size`` without rebuilding its inherited pipelines is refused, not trained
    at the old size; variables the dataloaders do not use, such as a TTA pipeline, may differ)."""
    new_size = cfg.input_size
    check_input_size(new_size)
    if file_size is not None and file_size != new_size:

        def rule(key, value):
            if key in SIZE_KEYS and _is_square(value, file_size):
                return type(value)((new_size, new_size))
            return value

        for name in list(cfg.keys()):
            if name != 'model':
                cfg[name] = _rewrite(cfg[name], name, rule)
    loaders = [cfg.get(name) for name in LOADERS]
    stale = sorted(set(_transform_sizes(loaders)) - {(new_size, new_size)})
    if stale:
        raise ValueError(
            f'input_size is {new_size}, but pipelines still resize or pad to {stale}; a config '
            'file that sets input_size must rebuild the inherited pipelines from it (as '
            'configs/demo/yolov3_mbv2_demo.py does), or pass --cfg-options '
            f'input_size={new_size} to the config it inherits instead')


def apply_data_root(cfg: Config, file_root: Optional[str]) -> None:
    """Carries a changed ``cfg.data_root`` to the datasets and evaluators, in place."""
    new_root = cfg.data_root
    if file_root is None or file_root == new_root:
        return

    def rule(key, value):
        if key == 'data_root' and value == file_root:
            return new_root
        if key == 'ann_file' and isinstance(value, str) and value.startswith(file_root):
            return new_root + value[len(file_root):]
        return value

    for name in list(cfg.keys()):
        if name not in ('model', 'data_root'):
            cfg[name] = _rewrite(cfg[name], name, rule)


def backbone_checkpoint(cfg: Config) -> Optional[str]:
    """The checkpoint that initialises the backbone: ``backbone_checkpoint`` if set, else
    ``imagenet_checkpoints[backbone_pretrain]`` (None: the backbone's own ``init_cfg``).

    Raises:
        ValueError: ``backbone_pretrain`` is not a key, or its entry is None while another entry
            is set (a checkpoint given under the key the config does not read would leave the
            backbone randomly initialised without a word).
    """
    if cfg.get('backbone_checkpoint'):
        return cfg.backbone_checkpoint
    checkpoints = cfg.get('imagenet_checkpoints')
    if not checkpoints:
        return None
    pretrain = cfg.get('backbone_pretrain', 'baseline')
    if pretrain not in checkpoints:
        raise ValueError(f'backbone_pretrain={pretrain!r} is not a key of imagenet_checkpoints '
                         f'{sorted(checkpoints)}; e.g. --cfg-options backbone_pretrain=netaug')
    given = sorted(key for key, value in checkpoints.items() if value)
    if checkpoints[pretrain] is None and given:
        raise ValueError(
            f'this config reads imagenet_checkpoints.{pretrain} (backbone_pretrain={pretrain!r}), '
            f'which is None, while {", ".join(f"imagenet_checkpoints.{k}" for k in given)} is set: '
            f'pass --cfg-options backbone_pretrain={given[0]} to start from it, or set '
            f'imagenet_checkpoints.{pretrain}')
    return checkpoints[pretrain]


def apply_config_variables(cfg: Config) -> None:
    """Applies ``input_size``, ``data_root`` and the backbone checkpoint variables, in place.

    The values before ``--cfg-options`` are those of the file ``cfg.filename`` (when there is
    one). Applying twice changes nothing more.
    """
    file_cfg = Config.fromfile(cfg.filename) if cfg.filename else None
    if 'input_size' in cfg:
        apply_input_size(cfg, file_cfg.get('input_size') if file_cfg else None)
    if 'data_root' in cfg:
        apply_data_root(cfg, file_cfg.get('data_root') if file_cfg else None)
    checkpoint = backbone_checkpoint(cfg)
    if checkpoint is not None:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=checkpoint)
