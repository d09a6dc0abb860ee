"""Checkpoint I/O on torch>=2.6: mmengine checkpoints load under weights_only, writes are atomic."""
import io
import os
import pickle

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner import Runner
from toy_task import ToyDataset, ToyRegressor

import netaug_det  # noqa: F401  installs the checkpoint I/O
from netaug_det.utils.checkpoint import AtomicLocalBackend


def build_runner(work_dir, max_iters, resume=False, load_from=None):
    torch.manual_seed(0)  # the model is built before the Runner seeds everything
    return Runner(
        model=ToyRegressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=7),
        resume=resume,
        load_from=load_from,
        experiment_name=f'toy_{max_iters}_{resume}_{os.path.basename(str(work_dir))}')


@pytest.mark.slow
def test_resume_reproduces_uninterrupted_run(tmp_path):
    reference = build_runner(tmp_path / 'full', max_iters=6)
    reference.train()

    interrupted = build_runner(tmp_path / 'part', max_iters=4)
    interrupted.train()
    resumed = build_runner(tmp_path / 'part', max_iters=6, resume=True)
    resumed.train()

    assert resumed.iter == 6
    for expected, actual in zip(reference.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@pytest.mark.slow
def test_runner_checkpoint_loads_with_weights_only(tmp_path):
    runner = build_runner(tmp_path, max_iters=2)
    runner.train()
    checkpoint = torch.load(tmp_path / 'iter_2.pth', weights_only=True)
    assert checkpoint['meta']['iter'] == 2
    assert 'train/loss' in checkpoint['message_hub']['log_scalars']

    fresh = build_runner(tmp_path / 'fresh', max_iters=2, load_from=str(tmp_path / 'iter_2.pth'))
    fresh.load_or_resume()
    torch.testing.assert_close(fresh.model.linear.weight, runner.model.linear.weight)


class Payload:
    """Any class that is not on the allow-list."""


def test_unknown_globals_are_still_refused():
    buffer = io.BytesIO()
    torch.save({'payload': Payload()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        torch.load(buffer, weights_only=True)


def test_local_backend_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    backend = get_file_backend(str(target))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'complete old checkpoint', str(target))
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask

    def crash(_fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='disk full'):
        backend.put(b'half-written new checkpoint', str(target))
    assert target.read_bytes() == b'complete old checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']
