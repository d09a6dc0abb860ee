"""A non-editable install into an existing environment: nothing already installed is touched,
the requirements are ranges the environment satisfies, and the tools run from any directory with
the configs shipped inside the package. No network: pip runs with --no-index."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
from typing import Tuple

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # pip and the tools in child processes

CHECK_SCRIPT = '''
import importlib.metadata as metadata
from packaging.requirements import Requirement
for line in metadata.requires('netaug_det'):
    requirement = Requirement(line)
    if requirement.marker is None:
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (line, installed)
import netaug_det
print(netaug_det.__file__)
'''
STACK = ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'numpy')


# the installed package, not a checkout that PYTHONPATH may name
INSTALLED_ENV = {name: value for name, value in os.environ.items() if name != 'PYTHONPATH'}


def run(args, **kwargs) -> str:
    kwargs.setdefault('env', INSTALLED_ENV)
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def versions(python: str) -> str:
    return run([python, '-c', 'import importlib.metadata as m; print([m.version(n) for n in '
                f'{STACK!r}])'])


def install_copy(tmp_path) -> Tuple[str, str, str]:
    """A non-editable install of a copy of this checkout (its tracked files and new ones git
    does not ignore, as a clone has them) into a fresh venv that sees this environment's
    packages (torch, mmcv, mmdet...) as if they were its own: the situation of a team installing
    netaug_det into their OpenMMLab environment. Returns (python, site-packages, the versions of
    the stack before the install)."""
    venv = tmp_path / 'venv'
    run([sys._base_executable, '-m', 'venv', '--without-pip', str(venv)])
    python = str(venv / 'bin' / 'python')
    site = run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).strip()
    with open(osp.join(site, 'existing_environment.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    before = versions(python)

    source = tmp_path / 'source'
    files = run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'], cwd=REPO_ROOT)
    for name in files.split():
        if osp.isfile(osp.join(REPO_ROOT, name)):
            os.makedirs(source / osp.dirname(name), exist_ok=True)
            shutil.copy2(osp.join(REPO_ROOT, name), source / name)
    run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-index',
         '--no-build-isolation', '--no-deps', str(source)])
    return python, site, before


def test_install_into_an_existing_environment(tmp_path):
    python, site, before = install_copy(tmp_path)
    assert versions(python) == before

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    installed = run([python, '-c', CHECK_SCRIPT], cwd=elsewhere).strip()
    assert installed.startswith(site)
    config = osp.join(osp.dirname(installed), '.mim', 'configs', 'demo', 'yolov3_mbv2_demo.py')
    assert osp.isfile(config)
    macs = run([python, '-m', 'netaug_det.tools.get_macs', config], cwd=elsewhere)
    assert macs.splitlines()[1].split() == ['128', '0.325', '24.2']
    assert 'seeds' in run([python, '-m', 'netaug_det.tools.run_demo', '--help'], cwd=elsewhere)
    located = run([python, '-c', 'from netaug_det.utils.paths import project_path; '
                   "print(project_path('configs/demo/yolov3_mbv2_demo.py'))"], cwd=elsewhere)
    assert located.strip() == config
