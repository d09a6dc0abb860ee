"""``--resume`` reproduces the uninterrupted run on the demo configs, random augmentations
included: a run stopped after its first epoch and resumed ends with bit-identical weights."""
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS

from netaug_det.datasets import generate_demo_dataset

DEMOS = ('configs/demo/yolov3_mbv2_demo.py', 'configs/demo/yolov3_mbv2_netaug_demo.py')


class Interrupted(Exception):
    """Stands for a kill after a checkpoint was written."""


class StopAfterEpoch(Hook):
    """Raises after epoch ``epoch`` once its checkpoint is written (lowest priority)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epoch:
            raise Interrupted


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume') / 'demo'
    generate_demo_dataset(str(root), num_train=4, num_val=2, img_size=(64, 80))
    return f'{root}/'


def train(config: str, data_root: str, work_dir, num_workers: int, stop_after=None,
          resume=False) -> dict:
    """Two epochs of ``config`` (its pipeline and random augmentations) on the tiny data."""
    cfg = Config.fromfile(config)
    loader = dict(batch_size=2, num_workers=num_workers, persistent_workers=num_workers > 0)
    cfg.merge_from_dict(dict(
        data_root=data_root, input_size=64, work_dir=str(work_dir), resume=resume,
        train_dataloader=loader, val_cfg=None, val_dataloader=None, val_evaluator=None,
        train_cfg=dict(max_epochs=2), default_hooks=dict(checkpoint=dict(interval=1),
                                                         logger=dict(interval=1))))
    runner = RUNNERS.build(cfg)
    if stop_after is not None:
        runner.register_hook(StopAfterEpoch(stop_after), 'LOWEST')
    try:
        runner.train()
    except Interrupted:
        pass
    return {key: value.clone() for key, value in runner.model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize('config,num_workers', [(DEMOS[0], 1), (DEMOS[1], 0)])
def test_resume_after_a_kill_ends_bit_identical(demo_data, tmp_path, config, num_workers):
    reference = train(config, demo_data, tmp_path / 'full', num_workers)
    train(config, demo_data, tmp_path / 'killed', num_workers, stop_after=1)
    resumed = train(config, demo_data, tmp_path / 'killed', num_workers, resume=True)
    assert reference.keys() == resumed.keys()
    differ = [key for key in reference if not torch.equal(reference[key], resumed[key])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
