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
