"""Model plugins: the NetAug machinery, NetAug-capable backbones, depthwise YOLOv3 neck/head and
the tiny detector."""
from . import backbones, dense_heads, detectors, necks, netaug  # noqa: F401
