"""Utilities; importing this package installs safe, atomic checkpoint I/O (see ``checkpoint``)
and lets mmengine resolve ``netaug_det::`` config paths (see ``paths``)."""
from .checkpoint import install_checkpoint_io
from .paths import register_config_package

install_checkpoint_io()
register_config_package()

__all__ = ['install_checkpoint_io', 'register_config_package']
