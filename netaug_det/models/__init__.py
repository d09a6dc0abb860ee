"""Model plugins: the NetAug machinery, NetAug-capable backbones, depthwise YOLOv3 neck/head,
the tiny detector, image classifiers (ImageNet pretraining) and distillation losses."""
from . import backbones, classifiers, dense_heads, detectors, losses, necks, netaug  # noqa: F401
