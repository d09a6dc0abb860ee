"""Config variables that must reach every place derived from them, whichever file or override
sets them.

mmengine evaluates each config file once, so ``scale=(input_size, input_size)`` is a plain
``(416, 416)`` and ``data_root + 'annotations/...'`` a plain string by the time a child config
file that inherits it sets ``data_root = '/datasets/coco/'``, or ``--cfg-options input_size=320``
is merged; and the backbone's ``init_cfg`` does not follow the checkpoint variables.
:func:`apply_config_variables` carries them through. It runs when the runner is built
(``NetAugDetRunner.from_cfg``), so mmdet's own ``tools/train.py`` and ``tools/test.py``,
``mim train`` and this project's tools all run what the merged config says. The earlier values
of a variable are those of the config file ``cfg.filename`` and of every file it inherits, each
evaluated on its own (:func:`earlier_values`); a config built in memory (no file) is only checked
for consistency.

Variables:

- ``input_size``: square network input; every ``(S, S)`` under a transform size key (``scale``,
  ``size``, ``img_scale``) with ``S`` an earlier value follows it.
- ``data_root``: every dataset ``data_root`` equal to an earlier value follows it, and so does
  every ``ann_file`` that starts with one (COCO's evaluator).
- ``imagenet_checkpoints`` (dict of backbone checkpoints by pretraining, e.g. ``baseline`` /
  ``netaug`` / ``netaug_supernet``), ``backbone_pretrain`` (which of them this config starts
  from) and ``backbone_checkpoint`` (an explicit file, first): the backbone's ``init_cfg``.
"""
import ast
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.config.utils import _get_package_and_cfg_path
from mmengine.utils import get_installed_path


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
    """Every square size under a transform size key inside ``node``, multi-scale test-time
    augmentation (``TestTimeAug``) left out."""
    if key in SIZE_KEYS and _is_square(node):
        return [tuple(node)]
    if isinstance(node, dict) and node.get('type') == 'TestTimeAug':
        return []
    if isinstance(node, dict):
        return [size for k, v in node.items() for size in _transform_sizes(v, k)]
    if isinstance(node, (list, tuple)):
        return [size for v in node for size in _transform_sizes(v)]
    return []


def apply_input_size(cfg: Config, earlier_sizes: Sequence[int] = ()) -> None:
    """Carries ``cfg.input_size`` to the transform sizes derived from its ``earlier_sizes``
    (:func:`earlier_values`), in place; then every square transform size of the dataloaders
    must be the input size (sizes derived from neither are refused, not trained at the old
    size; the scales of a multi-scale ``TestTimeAug`` and variables the dataloaders do not use
    may differ)."""
    new_size = cfg.input_size
    check_input_size(new_size)
    stale_sizes = {size for size in earlier_sizes if size != new_size}
    if stale_sizes:

        def rule(key, value):
            if key in SIZE_KEYS and _is_square(value) and value[0] in stale_sizes:
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
            'configs/demo/yolov3_mbv2_demo.py does) or set input_size in the file that derives '
            f'them; e.g. --cfg-options input_size={new_size}')


def check_pair_input_size(cfg: Config, earlier_sizes: Sequence[Any] = ()) -> None:
    """mmdet's own configs (e.g. ``yolov3_mobilenetv2_8xb24-320-300e_coco.py``) name a
    ``(width, height)`` pair ``input_size`` and build their pipelines from it in the file; this
    project does not rewrite those pipelines, so a pair other than the files' own is refused
    rather than silently not trained at."""
    size = cfg.input_size
    if any(list(size) == list(earlier) for earlier in earlier_sizes
           if isinstance(earlier, (list, tuple))):
        return
    raise ValueError(
        f'input_size={tuple(size)!r} differs from the value {cfg.filename or "the config"} and '
        'its bases build their pipelines from: a (width, height) input_size is mmdet\'s own '
        'variable, read when each file is parsed, so the pipelines would keep the old size. '
        "Set the pipelines' scales (train_pipeline / test_pipeline) in your config instead")


def apply_data_root(cfg: Config, earlier_roots: Sequence[str] = ()) -> None:
    """Carries ``cfg.data_root`` to the datasets and evaluators derived from its
    ``earlier_roots`` (:func:`earlier_values`), in place: a ``data_root`` equal to one, an
    ``ann_file`` that starts with one (the longest)."""
    new_root = cfg.data_root
    stale_roots = sorted({root for root in earlier_roots if root and root != new_root},
                         key=len, reverse=True)
    if not stale_roots:
        return

    def rule(key, value):
        if key == 'data_root' and value in stale_roots:
            return new_root
        if key == 'ann_file' and isinstance(value, str):
            root = next((root for root in stale_roots if value.startswith(root)), None)
            if root is not None:
                return new_root + value[len(root):]
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


def _base_path(base: str, filename: str) -> str:
    """The file of a ``_base_`` entry of config ``filename``: a package's config file
    (``mmdet::_base_/default_runtime.py``) found directly, anything else as mmengine finds it
    (mmengine first searches the package's model-index files, half a second each)."""
    if '::' in base:
        package, relative = _get_package_and_cfg_path(base)
        direct = osp.join(get_installed_path(package), '.mim', 'configs', relative)
        if osp.isfile(direct):
            return direct
    return Config._get_cfg_path(base, filename)[0]


def _config_files(filename: str) -> List[str]:
    """``filename`` and every config file it inherits (``_base_``, ``mmdet::`` ones included),
    each once, nearest first."""
    files, todo = [], [filename]
    while todo:
        path = todo.pop(0)
        if path not in files:
            files.append(path)
            todo += [_base_path(base, path) for base in Config._get_base_files(path)]
    return files


def _assigned(path: str, keys: Sequence[str]) -> Dict[str, ast.expr]:
    """The top-level assignments to ``keys`` in a Python config file: {key: value node}."""
    if not path.endswith('.py'):
        return {key: None for key in keys}  # other formats: evaluate the whole file
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    return {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name) and target.id in keys}


def earlier_values(filename: Optional[str], keys: Sequence[str]) -> Dict[str, list]:
    """The values each of ``keys`` has in the config file ``filename`` and in every file it
    inherits that sets it, before any override: the values that places derived from the
    variable may still hold. A literal is read from the file, any other value by evaluating the
    file with its bases. ``filename`` None: none."""
    values = {key: [] for key in keys}
    for path in _config_files(filename) if filename else []:
        file_cfg = None
        for key, node in _assigned(path, keys).items():
            try:
                value = ast.literal_eval(node)
            except ValueError:
                file_cfg = file_cfg or Config.fromfile(path, import_custom_modules=False)
                value = file_cfg.get(key)
            if value not in values[key]:
                values[key].append(value)
    return values


def apply_config_variables(cfg: Config) -> None:
    """Applies ``input_size``, ``data_root`` and the backbone checkpoint variables, in place.

    The earlier values of a variable are those of the file ``cfg.filename`` and of the files
    it inherits (:func:`earlier_values`): a child file's ``data_root = '/datasets/coco/'`` and a
    ``--cfg-options data_root=...`` on top of it both reach the inherited dataloaders. Applying
    twice changes nothing more.
    """
    earlier = earlier_values(cfg.filename, [key for key in ('input_size', 'data_root')
                                            if key in cfg])
    if isinstance(cfg.get('input_size'), (list, tuple)):
        check_pair_input_size(cfg, earlier['input_size'])
    elif 'input_size' in cfg:
        apply_input_size(cfg, earlier['input_size'])
    if 'data_root' in cfg:
        apply_data_root(cfg, earlier['data_root'])
    checkpoint = backbone_checkpoint(cfg)
    if checkpoint is not None:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=checkpoint)
