"""Where the project's configs live: the repository checkout, or the installed package."""
import os.path as osp

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Installed (non-editable) packages carry configs/ here, as mmdet's carry mmdet/.mim/configs.
PACKAGE_DATA_DIR = osp.join(PACKAGE_DIR, '.mim')
CHECKOUT_DIR = osp.dirname(PACKAGE_DIR)


def project_path(relative: str) -> str:
    """The absolute path of a project file such as ``configs/demo/yolov3_mbv2_demo.py``: in the
    installed package data when there is some, else in the repository checkout."""
    for root in (PACKAGE_DATA_DIR, CHECKOUT_DIR):
        candidate = osp.join(root, relative)
        if osp.exists(candidate):
            return candidate
    raise FileNotFoundError(f'{relative} is neither in a netaug_det checkout ({CHECKOUT_DIR}) nor '
                            f'in the installed package data ({PACKAGE_DATA_DIR}); reinstall '
                            'netaug_det (pip install netaug_det) or run from the repository')


def register_config_package() -> None:
    """Lets mmengine resolve ``netaug_det::<folder>/<config>.py`` (in ``_base_`` and
    ``mmengine.hub.get_config``) in the installed package's ``.mim/configs``, as it resolves
    ``mmdet::``: mmengine knows only the OpenMMLab packages of its ``MODULE2PACKAGE``."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault('netaug_det', 'netaug_det')


def memoize_package_metafiles() -> None:
    """Reads each installed package's model metafiles once per process when mmengine resolves
    a ``mmdet::`` config path: mmengine looks every such path up in all of mmdet's metafiles
    first (about 200 YAML files, 0.5-1 s), even a ``_base_/`` file, which is in none of them,
    so that each config load paid it again. The files are those of the installed package,
    which a process does not change; the lookup and its result stay mmengine's."""
    import functools

    from mmengine.config import utils as config_utils
    from mmengine.fileio import load

    if config_utils.load is not load:  # replaced already
        return
    load_metafile = functools.lru_cache(maxsize=None)(load)

    def load_once(file, *args, **kwargs):
        """mmengine's ``load``, a path's contents kept (read, never changed, by mmengine)."""
        if isinstance(file, str) and not args and not kwargs:
            return load_metafile(file)
        return load(file, *args, **kwargs)

    config_utils.load = load_once
