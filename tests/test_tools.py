"""The command-line entry points: tools/train.py, tools/test.py and tools/dist_train.sh.

They run as subprocesses on the toy regression task of ``tests/toy_task.py`` (registered through
``custom_imports``), so
these tests cover argument handling, resume, test-from-checkpoint and the CPU DDP launch path
without depending on a detector.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

import netaug_det  # noqa: F401  loads mmengine checkpoints under weights_only
from conftest import REPO_ROOT

# every test starts the tools as child processes; one pytest-xdist worker runs them all, and no
# other test that launches processes on ports at the same time
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('processes')]

TOY_PYTHONPATH = os.pathsep.join([osp.join(REPO_ROOT, 'tests'), REPO_ROOT])

TOY_CONFIG = '''
custom_imports = dict(imports=['toy_task'], allow_failed_imports=False)
model = dict(type='ToyRegressor')
loader = dict(
    dataset=dict(type='ToyDataset'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    batch_size=4,
    num_workers=0)
train_dataloader = loader
test_dataloader = dict(loader, sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='ToyMSE')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
train_cfg = dict(by_epoch=False, max_iters=6)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=3)
'''


@pytest.fixture(scope='module')
def toy_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp('toy')
    config = folder / 'toy_config.py'
    config.write_text(TOY_CONFIG)
    return config


@pytest.fixture(scope='module')
def full_run(toy_config):
    """Work dir of an uninterrupted 6-iteration run (checkpoints at 2, 4, 6)."""
    work_dir = toy_config.parent / 'full'
    train(toy_config, work_dir)
    return work_dir


def run_tool(args, cwd, check=True, **env_overrides):
    """Runs a tool with the toy task importable; asserts success unless ``check`` is False."""
    env = dict(os.environ, PYTHONPATH=TOY_PYTHONPATH, OMP_NUM_THREADS='1', **env_overrides)
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train(config, work_dir, *extra):
    cmd = [sys.executable, osp.join(REPO_ROOT, 'tools/train.py'), str(config),
           '--work-dir', str(work_dir)]
    return run_tool(cmd + list(extra), cwd=config.parent)


def weights(checkpoint):
    return torch.load(checkpoint, weights_only=True)['state_dict']['linear.weight']


def test_resume_from_cli_matches_uninterrupted_run(toy_config, full_run, tmp_path):
    train(toy_config, tmp_path / 'part', '--cfg-options', 'train_cfg.max_iters=4')
    train(toy_config, tmp_path / 'part', '--resume')
    torch.testing.assert_close(
        weights(tmp_path / 'part/iter_6.pth'), weights(full_run / 'iter_6.pth'), rtol=0, atol=0)


def test_test_tool_evaluates_a_checkpoint(toy_config, full_run, tmp_path):
    metrics_file = tmp_path / 'metrics.json'
    cmd = [sys.executable, osp.join(REPO_ROOT, 'tools/test.py'), str(toy_config),
           str(full_run / 'iter_6.pth'), '--work-dir', str(tmp_path / 'eval'),
           '--metrics-json', str(metrics_file)]
    run_tool(cmd, cwd=toy_config.parent)
    untrained_mse = json.loads(metrics_file.read_text())['mse']

    cmd[3] = str(full_run / 'iter_2.pth')
    run_tool(cmd, cwd=toy_config.parent)
    assert json.loads(metrics_file.read_text())['mse'] > untrained_mse > 0


def test_missing_checkpoint_names_the_path(toy_config, tmp_path):
    cmd = [sys.executable, osp.join(REPO_ROOT, 'tools/test.py'), str(toy_config), 'nowhere.pth']
    result = run_tool(cmd, cwd=toy_config.parent, check=False)
    assert result.returncode != 0
    assert 'error: checkpoint not found: nowhere.pth' in result.stderr
    assert 'Traceback' not in result.stderr


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_runs_two_cpu_processes_with_gloo(toy_config, tmp_path):
    cmd = ['bash', osp.join(REPO_ROOT, 'tools/dist_train.sh'), str(toy_config), '2',
           '--work-dir', str(tmp_path / 'ddp')]
    run_tool(cmd, cwd=toy_config.parent, PYTHON=sys.executable, PORT=str(free_port()))
    log = '\n'.join(p.read_text() for p in (tmp_path / 'ddp').rglob('*.log'))
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert (tmp_path / 'ddp/iter_6.pth').is_file()
    dumped = (tmp_path / 'ddp' / 'toy_config.py').read_text()
    assert "backend='gloo'" in dumped and 'nccl' not in dumped  # the config says what ran
