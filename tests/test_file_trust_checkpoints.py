"""Checkpoints load safely: a user's existing mmengine / mmdet checkpoints (written where
netaug_det was not imported, with an ``argparse.Namespace`` in their meta) load through the
project's loaders under ``weights_only=True``; what is still refused, and a truncated file or one
of random bytes, end in an error that names the file and the fix (never ``weights_only=False``)."""
import io
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

import netaug_det  # noqa: F401  installs the checkpoint I/O
from conftest import REPO_ROOT
from netaug_det.deployment.export import load_config, load_detector
from netaug_det.models.builders import build_detector
from netaug_det.utils.checkpoint import CheckpointFileError, load_checkpoint_file
from test_checkpoint_io import build_runner

BASELINE = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_demo.py')
TESTS = osp.join(REPO_ROOT, 'tests')

# Runs where netaug_det is not imported, as a plain mmengine / mmdet run writes checkpoints:
# the Runner's own checkpoint of the toy task, and mmengine's save_checkpoint of a detector's
# weights with a message hub and a meta holding the run's argparse arguments and numpy values.
PLAIN_RUN = '''
import argparse, sys
import numpy as np
import torch
from mmengine.logging import MessageHub
from mmengine.runner import Runner
from mmengine.runner.checkpoint import save_checkpoint
from toy_task import ToyDataset, ToyRegressor

work_dir, weights, out = sys.argv[1:]
runner = Runner(
    model=ToyRegressor(), work_dir=work_dir,
    train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=True),
                          collate_fn=dict(type='default_collate'), batch_size=4, num_workers=0),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
    train_cfg=dict(by_epoch=False, max_iters=2),
    default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2)),
    randomness=dict(seed=0))
runner.train()

hub = MessageHub.get_instance('plain_mmdet_run')
hub.update_scalar('train/loss', np.float64(1.5))
meta = dict(args=argparse.Namespace(config='yolov3.py', seed=0, cfg_options=None),
            epoch=12, iter=np.int64(300), seed=np.int32(0),
            dataset_meta=dict(classes=('a', 'b'), palette=[(220, 20, 60), (0, 0, 142)]))
state_dict = torch.load(weights, weights_only=True)
save_checkpoint(dict(state_dict=state_dict, meta=meta, message_hub=hub.state_dict()), out)
assert not any(name.startswith('netaug_det') for name in sys.modules), 'netaug_det imported'
'''


@pytest.fixture(scope='module')
def plain_checkpoints(tmp_path_factory):
    """(the toy Runner's iter_2.pth, a detector checkpoint), both written without netaug_det."""
    root = tmp_path_factory.mktemp('plain')
    weights = root / 'weights.pth'
    torch.save(build_detector(load_config(BASELINE, 64)).state_dict(), weights)
    env = dict(os.environ, PYTHONPATH=TESTS, OMP_NUM_THREADS='1')  # the repository not on it
    result = subprocess.run([sys.executable, '-c', PLAIN_RUN, root / 'toy', weights,
                             root / 'detector.pth'], cwd=root, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / 'toy' / 'iter_2.pth', root / 'detector.pth'


@pytest.mark.slow
def test_plain_mmengine_checkpoints_load(plain_checkpoints, tmp_path):
    toy, detector = plain_checkpoints
    checkpoint = load_checkpoint_file(str(detector))
    assert checkpoint['meta']['args'].config == 'yolov3.py'
    assert checkpoint['meta']['iter'] == 300
    hub = checkpoint['message_hub']['log_scalars']['train/loss']
    assert hub.mean() == 1.5
    # the project's loader (export_onnx, export_deployable use it) and mmengine's Runner
    loaded = load_detector(load_config(BASELINE, 64), str(detector))
    expected = torch.load(detector, weights_only=True)['state_dict']
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
    resumed = build_runner(tmp_path / 'resumed', max_iters=4, resume=True, load_from=str(toy))
    resumed.train()
    assert resumed.iter == 4
    assert len(resumed.message_hub.get_scalar('train/loss').data[0]) == 4  # 2 from the plain run


class Payload:
    """A class no allow-list names."""

    def __reduce__(self):
        return os.system, ('echo pwned', )


class MethodOfAllowedClass:
    """Pickles as getattr(np.ndarray, 'tofile'): an allow-listed class, a method that writes."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


def test_other_globals_are_refused_with_the_file_and_fix(tmp_path):
    for name, payload, global_name in (('payload.pth', Payload(), 'system'),
                                       ('method.pth', MethodOfAllowedClass(), 'getattr')):
        path = tmp_path / name
        torch.save({'state_dict': {}, 'meta': payload}, path)
        with pytest.raises(CheckpointFileError, match=global_name) as error:
            load_checkpoint_file(str(path))
        message = str(error.value)
        assert str(path) in message and 're-save it' in message
        assert ('add_safe_globals' in message) == (global_name != 'getattr')  # never getattr
        assert 'weights_only=False' not in message


@pytest.mark.parametrize('damage', ['truncated', 'random', 'empty'])
def test_damaged_files_are_named_with_the_fix(tmp_path, damage):
    good = io.BytesIO()
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, good)
    data = {'truncated': good.getvalue()[:len(good.getvalue()) // 2],
            'random': np.random.default_rng(0).bytes(5000), 'empty': b''}[damage]
    path = tmp_path / 'deploy.pth'
    path.write_bytes(data)
    from mmengine.runner.checkpoint import _load_checkpoint
    for load in (load_checkpoint_file, _load_checkpoint):  # also every mmengine load
        with pytest.raises(CheckpointFileError) as error:
            load(str(path))
        message = str(error.value)
        assert str(path) in message and 'weights_only=False' not in message
        assert 'truncated' in message and 'download it again' in message
        if damage == 'truncated':
            assert 'is a truncated or damaged checkpoint' in message


@pytest.mark.slow
def test_tools_report_a_truncated_checkpoint(tmp_path):
    from netaug_det.tools import export_deployable, export_onnx
    path = tmp_path / 'epoch_12.pth'
    path.write_bytes(b'PK\x03\x04' + bytes(100))
    for tool, argv in ((export_onnx, [BASELINE, str(path), '--out', str(tmp_path / 'x.onnx')]),
                       (export_deployable, [BASELINE.replace('_demo', '_netaug_demo'), str(path),
                                            '--out', str(tmp_path / 'd.pth')])):
        with pytest.raises(SystemExit, match='epoch_12.pth .* is a truncated or damaged'):
            tool.main(argv)
