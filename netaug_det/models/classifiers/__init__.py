"""Image classifiers for ImageNet pretraining of the backbones: plain and NetAug heads."""
from .cls_head import NetAugTinyClsHead, TinyClsHead
from .image_classifier import TinyImageClassifier

__all__ = ['NetAugTinyClsHead', 'TinyClsHead', 'TinyImageClassifier']
