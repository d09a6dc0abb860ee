"""Values that make a useless model are refused: non-finite NetAugHook arguments, a training
length of zero, and a deploy.pth of non-finite weights."""
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from torch import nn

from netaug_det.engine.hooks import NetAugHook
from netaug_det.engine.hooks.netaug_hook import save_deployable
from netaug_det.utils.cli import RunRefusedError

DEMO = 'configs/demo/yolov3_mbv2_demo.py'


@pytest.mark.parametrize('arguments,name', [
    (dict(alpha=math.nan), 'alpha'), (dict(alpha=math.inf), 'alpha'),
    (dict(width_aug_ratio=math.nan), 'width_aug_ratio'),
    (dict(self_distill=dict(rkd_distance=math.nan)), 'self_distill.rkd_distance')])
def test_non_finite_netaug_arguments_are_refused(arguments, name):
    with pytest.raises(ValueError, match=f'NetAugHook.*{name}.* finite number'):
        NetAugHook(**arguments)


@pytest.mark.slow
@pytest.mark.parametrize('train_cfg,key', [
    (dict(max_epochs=0), 'train_cfg.max_epochs=0'),
    (dict(_delete_=True, type='IterBasedTrainLoop', max_iters=0), 'train_cfg.max_iters=0')])
def test_a_training_of_zero_length_is_refused(tmp_path, train_cfg, key):
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(dict(work_dir=str(tmp_path), train_cfg=train_cfg))
    with pytest.raises(RunRefusedError, match=f'{key}: .*>= 1.*--cfg-options'):
        RUNNERS.build(cfg).train()
    assert not osp.exists(tmp_path / 'deploy.pth')


def test_no_deploy_checkpoint_of_non_finite_weights(tmp_path):
    model = nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    runner = SimpleNamespace(model=model, hooks=[], epoch=1, iter=2, seed=0,
                             work_dir=str(tmp_path), train_dataloader=SimpleNamespace(
                                 dataset=None), logger=None)
    with pytest.raises(RunRefusedError, match=r"NaN or infinite.*\['weight'\].*not written"):
        save_deployable(runner, 'deploy.pth', 'NetAugHook')
    assert not osp.exists(tmp_path / 'deploy.pth')
