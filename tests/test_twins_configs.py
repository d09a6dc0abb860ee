"""The demo configs inherit their shared schedule and data blocks from configs/_base_/ (defined
once), keep the merged values they were tuned with, and scale lr from the batch it was tuned at."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_DIR = osp.join(REPO_ROOT, 'configs', 'demo')
# demo detector -> (its lr, whether the recipe's optimizer wrapper stays: YOLOv3 keeps the VOC
# recipe's gradient clipping, SSDLite and YOLOX replace mmdet's wrapper)
DETECTOR_DEMOS = {
    'yolov3_mbv2_demo.py': (0.016, True),
    'yolov3_mbv2_netaug_demo.py': (0.004, True),
    'ssdlite_mbv2_demo.py': (0.002, False),
    'ssdlite_mbv2_netaug_demo.py': (0.002, False),
    'yolox_mbv2_demo.py': (0.002, False),
    'yolox_mbv2_netaug_demo.py': (0.002, False),
}
DEMO_SCHEDULER = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=12, milestones=[9, 10], gamma=0.1)
]


def demo_cfg(name: str) -> Config:
    return Config.fromfile(osp.join(DEMO_DIR, name))


def test_the_demo_schedule_is_written_once():
    """Only configs/_base_/demo_schedule.py spells the schedule out; the demo configs inherit it."""
    for name in ('yolov3_mbv2_demo.py', 'ssdlite_mbv2_demo.py', 'yolox_mbv2_demo.py'):
        with open(osp.join(DEMO_DIR, name)) as f:
            text = f.read()
        assert '_base_/demo_schedule.py' in text, name
        for literal in ('MultiStepLR', 'LinearLR', 'weight_decay=0.05', 'deterministic=True'):
            assert literal not in text, (name, literal)


@pytest.mark.parametrize('name', sorted(DETECTOR_DEMOS))
def test_demo_detectors_keep_the_demo_schedule(name):
    lr, keeps_wrapper = DETECTOR_DEMOS[name]
    cfg = demo_cfg(name)
    assert cfg.max_epochs == 12 and cfg.batch_size == 16 and cfg.input_size == 128
    assert cfg.train_cfg.max_epochs == 12 and cfg.train_cfg.val_interval == 12
    assert cfg.param_scheduler == DEMO_SCHEDULER
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=lr, weight_decay=0.05)
    assert ('clip_grad' in cfg.optim_wrapper) == keeps_wrapper
    assert cfg.default_hooks.logger.interval == 10
    assert cfg.randomness == dict(seed=0, deterministic=True)
    assert cfg.auto_scale_lr.enable is False
    assert cfg.train_dataloader.batch_size == cfg.val_dataloader.batch_size == 16


@pytest.mark.parametrize('name', ['ssdlite_mbv2_demo.py', 'yolox_mbv2_demo.py'])
def test_coco_demos_read_the_shared_demo_sets(name):
    cfg = demo_cfg(name)
    for loader, split, pipeline in ((cfg.train_dataloader, 'train', cfg.train_pipeline),
                                    (cfg.val_dataloader, 'val', cfg.test_pipeline)):
        dataset = loader.dataset
        assert dataset.type == 'CocoDataset'  # the recipe's wrapper dataset is gone
        assert dataset.ann_file == f'annotations/instances_{split}.json'
        assert dataset.data_root == cfg.demo_root and dataset.metainfo == cfg.demo_metainfo
        assert dataset.pipeline == pipeline
        assert loader.num_workers == 1
    assert cfg.val_evaluator == cfg.test_evaluator
    assert cfg.val_evaluator.items() >= cfg.demo_evaluator.items()  # merged into the recipe's


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(DEMO_DIR, '*.py'))),
                         ids=osp.basename)
def test_demo_lr_scales_from_the_batch_it_was_tuned_at(path):
    """The demo learning rates were tuned on one process: --auto-scale-lr must leave them as
    they are at the demo batch (base_batch_size = total batch), not divide them by 4 or 12."""
    cfg = Config.fromfile(path)
    assert cfg.auto_scale_lr.base_batch_size == 1 * cfg.train_dataloader.batch_size
