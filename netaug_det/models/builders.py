"""Model builders: a detector from a config (in its default scope), and what the models that
derive their parts' widths from the built backbone share."""
from typing import Any, Sequence, Tuple, Union

from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from .netaug import NetAugModule


def build_backbone(cfg: dict, owner: str) -> Tuple[nn.Module, Tuple[int, ...]]:
    """The backbone built from ``cfg`` and its ``out_channels``; a TypeError naming the fix when
    it does not report them (``owner``: the model that needs them)."""
    backbone = MODELS.build(cfg)
    out_channels = getattr(backbone, 'out_channels', None)
    if out_channels is None:
        raise TypeError(f'{type(backbone).__name__} has no out_channels; {owner} needs a backbone '
                        'that reports the widths of its outputs (e.g. TinyMobileNetV2, '
                        'TinyMobileNetV3, NetAugMobileNetV2/V3)')
    return backbone, tuple(out_channels)


def derived(cfg: dict, part: str, key: str, value: Any, source: str, owner: str) -> dict:
    """``cfg`` (of the model's ``part``) with ``key`` set to ``value``; an explicit, different
    value is an error (sequences compare as lists)."""
    def normal(item: Any) -> Any:
        return list(item) if isinstance(item, (list, tuple)) else item

    given = cfg.get(key)
    if given is not None and normal(given) != normal(value):
        raise ValueError(f'{part}.{key}={normal(given)} contradicts the {source} '
                         f'{normal(value)}; {owner} derives it, so remove {key} from the {part} '
                         'config')
    return dict(cfg, **{key: value})


def with_backbone_factors(cfg: dict, backbone: nn.Module,
                          keys: Sequence[str] = ('aug_width_mult_list', 'aug_expand_list')) -> dict:
    """``cfg`` of a model part with the NetAug factor lists ``keys`` it leaves unset taken from a
    NetAug ``backbone``, when the part is a NetAug module: a NetAug neck or head then widens by
    the backbone's family factors (e.g. MobileNetV3's x3.0), not by fixed defaults."""
    part_cls = cfg['type'] if isinstance(cfg['type'], type) else MODELS.get(cfg['type'])
    if not (isinstance(backbone, NetAugModule) and part_cls is not None
            and issubclass(part_cls, NetAugModule)):
        return cfg
    return dict(cfg, **{key: getattr(backbone, key) for key in keys if cfg.get(key) is None})


def build_detector(cfg: Union[str, Config, dict]) -> nn.Module:
    """Builds a detector in the mmdet scope from a config (or its path; its ``model`` is built
    in its ``default_scope``) or from a model config dict."""
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    scope, model_cfg = 'mmdet', cfg
    if isinstance(cfg, Config):
        scope, model_cfg = cfg.get('default_scope', 'mmdet'), cfg.model
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model_cfg)
