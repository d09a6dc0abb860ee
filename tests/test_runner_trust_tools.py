"""The training and test tools end user errors with ``error: ...`` and exit status 2, without a
traceback or the pkg_resources warning; a CPU DDP run's config names the backend it uses, and
its end releases the DDP wrapper before the process group."""
import os
import subprocess
import sys
import weakref
from types import SimpleNamespace

import pytest
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from torch import nn

from netaug_det.tools import test as test_tool
from netaug_det.tools import train as train_tool
from netaug_det.utils.distributed import finish_distributed, setup_cpu_distributed

DEMO = 'configs/demo/yolov3_mbv2_demo.py'


@pytest.mark.parametrize('main,argv,message', [
    (train_tool.main, ['missing.py'], 'config file not found: missing.py'),
    (train_tool.main, [DEMO, '--cfg-options', 'input_size=100'], 'input_size must be'),
    pytest.param(train_tool.main, [DEMO, '--cfg-options', 'data_root=/nonexistent/'],
                 'data not found', marks=pytest.mark.slow),
    (test_tool.main, [DEMO, 'missing.pth'], 'checkpoint not found: missing.pth')])
def test_user_errors_end_with_error_line_and_status_2(tmp_path, capsys, main, argv, message):
    with pytest.raises(SystemExit) as end:
        main(argv + ['--work-dir', str(tmp_path)])
    assert end.value.code == 2
    assert capsys.readouterr().err.startswith(f'error: {message}')


@pytest.mark.slow
def test_refusal_in_a_child_process_has_no_traceback_and_no_pkg_resources_warning(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONWARNINGS'}
    result = subprocess.run(
        [sys.executable, '-m', 'netaug_det.tools.train', DEMO, '--work-dir', str(tmp_path),
         '--cfg-options', 'train_cfg.max_epochs=0'], capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1].startswith('error: train_cfg.max_epochs=0')
    assert 'Traceback' not in result.stderr
    assert 'pkg_resources' not in result.stdout + result.stderr


def test_cpu_ddp_config_names_gloo(monkeypatch):
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    monkeypatch.setattr(torch_dist, 'is_initialized', lambda: True)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_cpu_distributed(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_finish_distributed_frees_the_ddp_wrapper_before_the_group(tmp_path):
    # a wrapper left alive is freed at interpreter exit, after the group: gloo then aborts
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                                  world_size=1)
    try:
        model = nn.Linear(2, 2)
        runner = SimpleNamespace(model=MMDistributedDataParallel(model, device_ids=None))
        wrapper = weakref.ref(runner.model)
        finish_distributed(runner)
        assert not torch_dist.is_initialized()
        assert runner.model is model and wrapper() is None
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    finish_distributed(runner)  # nothing to leave: a no-op
