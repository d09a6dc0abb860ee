"""Installs netaug_det; runtime pins come from requirements/pinned.txt (the single source)."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_pins(name: str) -> list:
    lines = (ROOT / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


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
    python_requires='>=3.11',
    install_requires=read_pins('pinned.txt'),
    extras_require={'tests': read_pins('tests.txt')},
    license='Apache-2.0',
)
