"""Installs netaug_det as an OpenMMLab extension.

``install_requires`` states the compatible ranges the code needs, so ``pip install .`` into an
existing OpenMMLab environment keeps its torch, mmcv and mmdet. The exact, verified versions are
the reproducible environment of the README's commands: ``requirements/pinned.txt``, used as pip
constraints by ``scripts/setup_env.sh``. A non-editable install carries the configs (and the
mmdet-style tool scripts) and ``model-index.yml`` in ``netaug_det/.mim/``, as mmdet's wheels do,
so the tools (``python -m netaug_det.tools.<name>``) work from any directory, ``mim search
netaug_det`` lists the configs and a config can inherit ``netaug_det::demo/yolov3_mbv2_demo.py``.
"""
import os.path as osp
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
PACKAGE_DATA = ('configs', 'tools')
# mim's and mmengine's index of the configs (each folder's metafile.yml travels with configs/)
PACKAGE_DATA_FILES = ('model-index.yml', )

INSTALL_REQUIRES = [
    'torch>=2.1',
    'torchvision>=0.16',
    'mmengine>=0.10.4,<1.0',
    'mmcv>=2.0.0rc4,<2.2.0',  # mmdet 3.3 refuses mmcv>=2.2
    'mmdet>=3.3.0,<3.4',
    'numpy',
    'opencv-python',
    'matplotlib',
    'submitit>=1.5',  # the experiment tools' executors (local and SLURM jobs)
]
EXTRAS_REQUIRE = {
    # torch's torch.export-based ONNX exporter needs onnxscript and onnx-ir
    'onnx': ['onnx>=1.17', 'onnxscript>=0.5', 'onnx-ir', 'onnxruntime>=1.20'],
    'tests': ['pytest'],
}


class BuildWithProjectFiles(build_py):
    """``build_py`` that also copies ``configs/``, ``tools/`` and ``model-index.yml`` into
    ``netaug_det/.mim/``, the layout of mmdet's wheels that mim and mmengine read."""

    def run(self) -> None:
        super().run()
        mim = osp.join(self.build_lib, 'netaug_det', '.mim')
        for name in PACKAGE_DATA:
            target = osp.join(mim, name)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        for name in PACKAGE_DATA_FILES:
            shutil.copy2(ROOT / name, osp.join(mim, name))


def read_version() -> str:
    namespace = {}
    exec((ROOT / 'netaug_det' / 'version.py').read_text(), namespace)
    return namespace['__version__']


setup(
    name='netaug_det',
    version=read_version(),
    description='Network Augmentation (NetAug) for tiny MMDetection 3.x detectors',
    long_description=(ROOT / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['netaug_det', 'netaug_det.*']),
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    cmdclass={'build_py': BuildWithProjectFiles},
    license='Apache-2.0',
)
