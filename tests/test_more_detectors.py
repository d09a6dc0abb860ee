"""NetAug by config on more detectors: NetAug on all operators of the depthwise YOLOv3, SSDLite
(mmdet's recipe) and YOLOX (anchor-free) with NetAug backbones. Each NetAug demo config trains a
few iterations on tiny data, and its deploy.pth loads strictly into, and is tested by, its
baseline twin."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import RUNNERS

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test trains

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')
PAIRS = [('yolov3_mbv2_netaug_all_demo.py', 'yolov3_mbv2_demo.py', 'pascal_voc/AP50'),
         ('ssdlite_mbv2_netaug_demo.py', 'ssdlite_mbv2_demo.py', 'coco/bbox_mAP_50'),
         ('yolox_mbv2_netaug_demo.py', 'yolox_mbv2_demo.py', 'coco/bbox_mAP_50')]


def tiny(config: str, data_root: str, work_dir, **options) -> Config:
    cfg = Config.fromfile(osp.join(DEMO, config))
    loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.merge_from_dict(dict(data_root=data_root, input_size=64, work_dir=str(work_dir),
                             train_dataloader=loader, val_dataloader=loader,
                             test_dataloader=loader, train_cfg=dict(max_epochs=1)))
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.parametrize('netaug, baseline, metric', PAIRS, ids=[p[0][:-8] for p in PAIRS])
def test_netaug_config_trains_and_its_baseline_tests_deploy_pth(
        netaug, baseline, metric, demo_data, tmp_path):
    runner = RUNNERS.build(tiny(netaug, demo_data, tmp_path / 'train', val_cfg=None,
                                val_dataloader=None, val_evaluator=None))
    runner.train()
    deploy = tmp_path / 'train' / 'deploy.pth'
    assert deploy.is_file()
    tester = RUNNERS.build(tiny(baseline, demo_data, tmp_path / 'test', load_from=str(deploy)))
    metrics = tester.test()  # the runner loads strictly: a single wrong key would fail here
    # CocoMetric reports nothing when a barely trained detector predicts no box at all
    assert 0.0 <= metrics.get(metric, 0.0) <= 1.0
