"""Plain and NetAug-capable MobileNet backbones (mmdet MODELS plugins)."""
from .mobilenet import (BlockSpec, InvertedResidualNet, MobileNetArch, TinyMobileNetV2,
                        TinyMobileNetV3)
from .netaug_mobilenet import (NetAugInvertedResidualNet, NetAugMCUNet, NetAugMobileNetV2,
                               NetAugMobileNetV2Tiny, NetAugMobileNetV3,
                               NetAugProxylessNASMobile, augment_arch)
from .official_netaug import OFFICIAL_ARCHS, convert_official_netaug
from .tinyml import MCUNet, MobileNetV2Tiny, ProxylessNASMobile, SearchedMobileNet

__all__ = [
    'BlockSpec', 'InvertedResidualNet', 'MobileNetArch', 'TinyMobileNetV2', 'TinyMobileNetV3',
    'MobileNetV2Tiny', 'SearchedMobileNet', 'ProxylessNASMobile', 'MCUNet',
    'NetAugInvertedResidualNet', 'NetAugMobileNetV2', 'NetAugMobileNetV3', 'NetAugMobileNetV2Tiny',
    'NetAugProxylessNASMobile', 'NetAugMCUNet', 'augment_arch', 'OFFICIAL_ARCHS',
    'convert_official_netaug'
]
