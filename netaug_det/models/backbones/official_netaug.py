"""Map official NetAug ImageNet checkpoints onto our plain backbones.

The official models (``mit-han-lab/tinyml``, ``netaug/models/base/``: ``mbv2.py``, ``mbv3.py``,
``tiny_mbv2.py``, ``proxylessnas.py``, ``mcunet.py``) name their layers
``backbone.input_stem.op_list.{0,1}``, ``backbone.stages.{s}.op_list.{b}.conv`` and
``head.op_list.{i}``; inside a block ``inverted_conv``, ``depth_conv``, ``se_layer``
(``reduce_conv``, ``expand_conv``) and ``point_conv``, each a ``conv`` plus a ``norm``. The
classifier layers of the head have no counterpart in a detection backbone and are dropped. The
keys of :data:`OFFICIAL_ARCHS` are the official model names (``setup.py``'s ``build_model``,
without the width suffix).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from torch import Tensor

from .mobilenet import TinyMobileNetV2, TinyMobileNetV3
from .tinyml import MCUNet, MobileNetV2Tiny, ProxylessNASMobile

OFFICIAL_ARCHS = {
    'mbv2': TinyMobileNetV2,
    'mbv3': TinyMobileNetV3,
    'tinymbv2': MobileNetV2Tiny,
    'proxylessnas': ProxylessNASMobile,
    'mcunet': MCUNet,
}
#: The width multiplier of the official releases (``setup.py``'s model names: ``mbv2-0.35`` ...).
OFFICIAL_WIDEN_FACTORS = dict(mbv2=0.35, mbv3=0.35, tinymbv2=0.35, proxylessnas=0.35, mcunet=1.0)

_COMMON_PREFIXES = (
    (r'backbone\.input_stem\.op_list\.0\.', lambda m: 'conv1.'),
    (r'backbone\.input_stem\.op_list\.1\.conv\.', lambda m: 'layer1.0.'),
    (r'backbone\.stages\.(\d+)\.op_list\.(\d+)\.conv\.',
     lambda m: f'layer{int(m[1]) + 2}.{m[2]}.'),
)
# The heads of MobileNetV2, MobileNetV2-Tiny and ProxylessNAS start with an inverted block (our
# layer7), then the final 1x1 conv; MCUNet's has the block only; MobileNetV3's starts with the
# 960 conv. Later head layers are the classifier.
_HEAD_BLOCK = (r'head\.op_list\.0\.conv\.', lambda m: 'layer7.0.')
_BLOCK_THEN_CONV = (_HEAD_BLOCK, (r'head\.op_list\.1\.', lambda m: 'conv2.'))
_HEAD_PREFIXES = {
    'mbv2': _BLOCK_THEN_CONV,
    'mbv3': ((r'head\.op_list\.0\.', lambda m: 'conv2.'), ),
    'tinymbv2': _BLOCK_THEN_CONV,
    'proxylessnas': _BLOCK_THEN_CONV,
    'mcunet': (_HEAD_BLOCK, ),
}
_RENAMES = {
    'inverted_conv': 'expand_conv',
    'depth_conv': 'depthwise_conv',
    'point_conv': 'linear_conv',
    'norm': 'bn',
    'se_layer': 'se',
    'reduce_conv': 'conv1.conv',
    'expand_conv': 'conv2.conv',
}


def _convert_key(key: str, arch: str) -> str:
    """Our name for an official key; '' for classifier keys."""
    for pattern, prefix in _COMMON_PREFIXES + _HEAD_PREFIXES[arch]:
        match = re.match(pattern, key)
        if match:
            rest = key[match.end():].split('.')
            return prefix(match) + '.'.join(_RENAMES.get(part, part) for part in rest)
    if key.startswith('head.'):
        return ''
    raise KeyError(f'{key!r} is not a key of an official NetAug {arch} checkpoint; pass the '
                   'right --arch, or a checkpoint saved from netaug/models/base.')


def convert_official_netaug(
        state_dict: Dict[str, Tensor], arch: str,
        widen_factor: Optional[float] = None) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename an official NetAug base-model state dict to our plain backbone's names.

    Args:
        state_dict (dict): The official model's state dict (a ``module.`` prefix is removed).
        arch (str): A key of :data:`OFFICIAL_ARCHS`: 'mbv2', 'mbv3', 'tinymbv2', 'proxylessnas'
            or 'mcunet'.
        widen_factor (float, optional): The checkpoint's width multiplier; None means the
            official release's (:data:`OFFICIAL_WIDEN_FACTORS`: 0.35, or 1.0 for MCUNet). The
            result is checked by loading it strictly into the matching plain backbone.

    Returns:
        tuple: The converted state dict (keys of the backbone ``OFFICIAL_ARCHS[arch]``) and the
        dropped classifier keys.
    """
    if arch not in OFFICIAL_ARCHS:
        raise ValueError(f'arch must be one of {sorted(OFFICIAL_ARCHS)}, got {arch!r}')
    converted, dropped = OrderedDict(), []
    for key, tensor in state_dict.items():
        key = key.removeprefix('module.')
        new_key = _convert_key(key, arch)
        if new_key:
            converted[new_key] = tensor
        else:
            dropped.append(key)
    if widen_factor is None:
        widen_factor = OFFICIAL_WIDEN_FACTORS[arch]
    OFFICIAL_ARCHS[arch](widen_factor=widen_factor).load_state_dict(converted)
    return converted, dropped
