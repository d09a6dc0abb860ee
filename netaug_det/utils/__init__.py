"""Utilities; importing this package installs safe, atomic checkpoint I/O (see ``checkpoint``)."""
from .checkpoint import install_checkpoint_io

install_checkpoint_io()

__all__ = ['install_checkpoint_io']
