"""Training-loop plugins: the NetAug hook and the runner that checks configs and data."""
from . import hooks  # noqa: F401
from .runner import NetAugDetRunner

__all__ = ['NetAugDetRunner']
