"""tools/dist_train.sh and dist_test.sh run outside a checkout with a .venv: from a copy of tools/
(as the installed package carries it in netaug_det/.mim/tools/) with the python on PATH, and in
a checkout with its .venv's python and the checkout's package first on the path."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_demo.py')


def run_script(script, args, env):
    return subprocess.run(['bash', script] + args, env=env, capture_output=True, text=True,
                          timeout=300)


def python_dir(folder, marker=None):
    """A folder holding ``python``: this interpreter (writing ``marker`` when it runs)."""
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'python'), 'w') as f:
        touch = f'touch {marker}\n' if marker else ''
        f.write(f'#!/bin/sh\n{touch}exec {sys.executable} "$@"\n')
    os.chmod(osp.join(folder, 'python'), 0o755)
    return folder


@pytest.mark.slow
def test_dist_scripts_outside_a_checkout(tmp_path):
    """A copy of tools/ with no .venv beside it (the installed package's layout); netaug_det
    importable as an installed package is (here through PYTHONPATH)."""
    tools = tmp_path / 'site' / 'netaug_det' / '.mim' / 'tools'
    shutil.copytree(osp.join(REPO_ROOT, 'tools'), tools)
    bin_dir = python_dir(str(tmp_path / 'bin'))
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', PYTHONPATH=REPO_ROOT,
               OMP_NUM_THREADS='1', PORT='29511')
    env.pop('PYTHON', None)
    train = run_script(str(tools / 'dist_train.sh'), [CONFIG, '1', '--help'], env)
    assert train.returncode == 0 and '--work-dir' in train.stdout, train.stderr[-2000:]
    test = run_script(str(tools / 'dist_test.sh'), [CONFIG, 'ckpt.pth', '1', '--help'], env)
    assert test.returncode == 0 and 'checkpoint' in test.stdout, test.stderr[-2000:]


@pytest.mark.slow
def test_dist_scripts_prefer_the_checkout_venv(tmp_path):
    checkout = tmp_path / 'checkout'
    shutil.copytree(osp.join(REPO_ROOT, 'tools'), checkout / 'tools')
    os.symlink(osp.join(REPO_ROOT, 'netaug_det'), checkout / 'netaug_det')
    marker = tmp_path / 'venv_python_ran'
    python_dir(str(checkout / '.venv' / 'bin'), marker)
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT='29512')
    env.pop('PYTHON', None)
    env.pop('PYTHONPATH', None)  # the checkout's package is found through the script
    train = run_script(str(checkout / 'tools' / 'dist_train.sh'), [CONFIG, '1', '--help'], env)
    assert train.returncode == 0 and '--work-dir' in train.stdout, train.stderr[-2000:]
    assert marker.exists()
