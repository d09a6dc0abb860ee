"""Model plugins: the NetAug machinery, NetAug-capable backbones, depthwise YOLOv3 neck/head,
the tiny detector and distillation losses."""
from . import backbones, dense_heads, detectors, losses, necks, netaug  # noqa: F401
