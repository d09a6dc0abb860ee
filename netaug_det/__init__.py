"""netaug_det: Network Augmentation (NetAug) for tiny MMDetection 3.x detectors.

Importing this package (or ``custom_imports=dict(imports=['netaug_det'])`` in a config) registers
every project module in mmdet's registries (scope ``mmdet``).
"""
from . import datasets, engine, models, utils  # noqa: F401
from .version import __version__

__all__ = ['__version__']
