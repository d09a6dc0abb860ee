"""Utilities; importing this package installs safe, atomic checkpoint I/O (see ``checkpoint``)
and lets mmengine resolve ``netaug_det::`` config paths, reading package metafiles once (see
``paths``)."""
from .checkpoint import install_checkpoint_io
from .paths import memoize_package_metafiles, register_config_package

install_checkpoint_io()
register_config_package()
memoize_package_metafiles()

__all__ = ['install_checkpoint_io', 'memoize_package_metafiles', 'register_config_package']
