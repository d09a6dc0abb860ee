"""Plain and NetAug-capable MobileNet backbones (mmdet MODELS plugins)."""
from .mobilenet import (BlockSpec, InvertedResidualNet, MobileNetArch, TinyMobileNetV2,
                        TinyMobileNetV3)
from .netaug_mobilenet import (NetAugInvertedResidualNet, NetAugMobileNetV2, NetAugMobileNetV3,
                               augment_arch)
from .official_netaug import OFFICIAL_ARCHS, convert_official_netaug

__all__ = [
    'BlockSpec', 'InvertedResidualNet', 'MobileNetArch', 'TinyMobileNetV2', 'TinyMobileNetV3',
    'NetAugInvertedResidualNet', 'NetAugMobileNetV2', 'NetAugMobileNetV3', 'augment_arch',
    'OFFICIAL_ARCHS', 'convert_official_netaug'
]
