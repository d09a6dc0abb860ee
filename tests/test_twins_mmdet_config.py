"""mmdet's own YOLOv3-MobileNetV2 config takes NetAug in two lines: the NetAug backbone (same
arguments and defaults as mmdet's MobileNetV2) and the NetAug hook. It builds, trains, and its
deploy.pth loads strictly into the model of mmdet's unchanged config and predicts the same."""
import inspect
import os.path as osp

import mmdet
import pytest
import torch
from mmdet.models.backbones import MobileNetV2
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from netaug_det.datasets import generate_demo_dataset
from netaug_det.models.backbones import NetAugMobileNetV2, TinyMobileNetV2

MMDET_CONFIG = 'mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py'
MMDET_CONFIG_FILE = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                             MMDET_CONFIG.removeprefix('mmdet::'))
# The downstream config of the README, as a user writes it.
DOWNSTREAM = f"""_base_ = '{MMDET_CONFIG}'
model = dict(backbone=dict(type='NetAugMobileNetV2'))
custom_hooks = [dict(type='NetAugHook')]
"""
DEMO_CLASSES = ('disc', 'ring', 'triangle', 'square', 'star', 'cross')


def test_backbone_defaults_are_mmdets():
    """The plain and NetAug backbones take every argument of mmdet's MobileNetV2, with its
    defaults."""
    mmdet_defaults = {name: param.default
                      for name, param in inspect.signature(MobileNetV2).parameters.items()}
    assert {name: param.default for name, param in inspect.signature(
        TinyMobileNetV2).parameters.items()} == mmdet_defaults
    assert NetAugMobileNetV2.bind_plain_args((), {}) == mmdet_defaults


def tiny_run_cfg(cfg: Config, data_root: str, work_dir: str, pretrained: str) -> Config:
    """``cfg`` on 2 demo images in COCO layout, one iteration, no validation, the backbone
    initialised from a local mmdet MobileNetV2 checkpoint instead of the download; the model
    is left as the config builds it (80 classes)."""
    train = cfg.train_dataloader
    train.dataset.times = 1
    dataset = train.dataset.dataset
    dataset.update(data_root=data_root, ann_file='annotations/instances_train.json',
                   data_prefix=dict(img='VOCdevkit/VOCdemo/JPEGImages/'),
                   metainfo=dict(classes=DEMO_CLASSES), filter_cfg=dict(filter_empty_gt=True))
    for step in dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (64, 64)
    train.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.model.backbone.init_cfg.checkpoint = pretrained
    cfg.merge_from_dict(dict(
        work_dir=work_dir, train_cfg=dict(max_epochs=1), val_cfg=None, val_dataloader=None,
        val_evaluator=None, test_cfg=None, test_dataloader=None, test_evaluator=None))
    return cfg


@pytest.mark.slow
def test_mmdet_yolov3_mobilenetv2_config_trains_with_netaug_in_two_lines(tmp_path):
    data_root = str(tmp_path / 'demo')
    generate_demo_dataset(data_root, num_train=2, num_val=1, img_size=(64, 64))
    stock_cfg = Config.fromfile(MMDET_CONFIG_FILE)
    stock_backbone = {k: v for k, v in stock_cfg.model.backbone.items() if k != 'type'}
    pretrained = str(tmp_path / 'mobilenet_v2.pth')
    torch.save(MODELS.build(dict(stock_backbone, type='MobileNetV2', init_cfg=None)).state_dict(),
               pretrained)
    config = tmp_path / 'yolov3_mobilenetv2_netaug.py'
    config.write_text(DOWNSTREAM)
    cfg = tiny_run_cfg(Config.fromfile(str(config)), data_root, str(tmp_path / 'work'),
                       pretrained)

    runner = Runner.from_cfg(cfg)
    runner.train()

    model = runner.model
    assert isinstance(model.backbone, NetAugMobileNetV2)
    assert model.backbone.base_checkpoint == pretrained
    deploy = torch.load(osp.join(cfg.work_dir, 'deploy.pth'), map_location='cpu')
    stock = MODELS.build(stock_cfg.model)  # mmdet's model: MobileNetV2, YOLOV3Neck, YOLOV3Head
    stock.load_state_dict(deploy['state_dict'], strict=True)
    stock_backbone = MobileNetV2(**{k: v for k, v in stock_backbone.items() if k != 'init_cfg'})
    stock_backbone.load_state_dict(model.backbone.export().state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    stock.eval()
    with torch.no_grad():
        for ours, theirs in zip(model._forward(x)[0], stock._forward(x)[0]):
            assert torch.equal(ours, theirs)
