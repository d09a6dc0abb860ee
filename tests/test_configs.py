"""The paper's eight configs, the input_size / backbone_checkpoint variables, and a downstream
config outside the repo that inherits a NetAug config and trains."""
import glob
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import netaug_det  # noqa: F401
from netaug_det.datasets import DEMO_CLASSES, generate_demo_dataset
from netaug_det.models.backbones import TinyMobileNetV2
from netaug_det.utils.complexity import build_detector
from netaug_det.utils.config import apply_config_variables, apply_input_size

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO_ROOT, 'configs', '*.py')))
DATASETS = {
    'voc': dict(num_classes=20, metric='VOCMetric', max_epochs=200, gpus=8, total_batch=64),
    'coco': dict(num_classes=80, metric='CocoMetric', max_epochs=120, gpus=16, total_batch=128),
}


def load(name: str, **options) -> Config:
    """A config as the tools load it: file, then --cfg-options, then the config variables."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    original_size = cfg.get('input_size')
    cfg.merge_from_dict(options)
    apply_config_variables(cfg, original_size)
    return cfg


def square_sizes(cfg: Config) -> list:
    """Every Resize scale and Pad size of the dataloaders and the top-level pipelines."""
    pipelines = [cfg.train_pipeline, cfg.test_pipeline, cfg.val_dataloader.dataset.pipeline,
                 cfg.test_dataloader.dataset.pipeline]
    train_set = cfg.train_dataloader.dataset
    pipelines += [d.pipeline for d in train_set.get('datasets', [train_set])]
    return [tuple(t.get('scale', t.get('size'))) for pipeline in pipelines for t in pipeline
            if t.type in ('Resize', 'Pad')]


def test_the_eight_configs_exist():
    assert CONFIGS == sorted(f'yolov3_{arch}{netaug}_{data}.py' for arch in ('mbv2', 'mbv3')
                             for netaug in ('', '_netaug') for data in DATASETS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = load(name)
    expected = DATASETS[name[:-3].split('_')[-1]]
    assert cfg.custom_imports == dict(imports=['netaug_det'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    assert cfg.input_size == 416 and set(square_sizes(cfg)) == {(416, 416)}
    assert cfg.val_evaluator.type == expected['metric']
    assert cfg.train_cfg.max_epochs == expected['max_epochs']
    assert cfg.train_dataloader.batch_size * expected['gpus'] == expected['total_batch']
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=expected['total_batch'])
    assert cfg.backbone_checkpoint is None and cfg.model.backbone.get('init_cfg') is None

    model = build_detector(cfg)
    netaug = '_netaug_' in name
    arch = 'MobileNetV2' if 'mbv2' in name else 'MobileNetV3'
    assert type(model.backbone).__name__ == ('NetAug' if netaug else 'Tiny') + arch
    assert cfg.get('custom_hooks') == ([dict(type='NetAugHook')] if netaug else None)
    outs = model(torch.rand(1, 3, 64, 64))[0]
    assert [tuple(o.shape[1:]) for o in outs] == [
        (3 * (5 + expected['num_classes']), 64 // s, 64 // s) for s in (32, 16, 8)]


@pytest.mark.parametrize('name', [n for n in CONFIGS if '_netaug_' in n])
def test_netaug_config_only_adds_netaug(name):
    netaug = load(name).to_dict()
    baseline = load(name.replace('_netaug', '')).to_dict()
    assert netaug.pop('custom_hooks') == [dict(type='NetAugHook')]
    assert netaug['model']['backbone'].pop('type') == 'NetAug' + baseline['model'][
        'backbone'].pop('type')[len('Tiny'):]
    assert netaug == baseline


def test_input_size_reaches_every_pipeline():
    cfg = load('yolov3_mbv2_voc.py', input_size=320)
    assert len(square_sizes(cfg)) == 12  # Resize + Pad in 6 pipelines
    assert set(square_sizes(cfg)) == {(320, 320)}
    assert '416' not in cfg.pretty_text
    # the pipelines really produce 320x320 inputs from a 150x100 image with one box
    rng = np.random.default_rng(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
            results = Compose(pipeline[1:])(dict(
                img=rng.integers(0, 256, (100, 150, 3), dtype=np.uint8), img_shape=(100, 150),
                ori_shape=(100, 150), img_id=0, img_path='demo.jpg',
                instances=[dict(bbox=[20, 10, 120, 90], bbox_label=1, ignore_flag=0)]))
            assert tuple(results['inputs'].shape) == (3, 320, 320)


def test_input_size_errors_name_the_fix():
    with pytest.raises(ValueError, match='multiple of 32.*input_size=320'):
        load('yolov3_mbv2_voc.py', input_size=300)
    # sizes that do not follow input_size would silently stay: refused
    cfg = Config(dict(input_size=320, test_pipeline=[dict(type='Resize', scale=(640, 640))]))
    with pytest.raises(ValueError, match='no \\(416, 416\\) size'):
        apply_input_size(cfg, 416)
    # a child config file that sets input_size = 320 but keeps the inherited (416, 416)
    cfg = Config(dict(input_size=320, test_pipeline=[dict(type='Pad', size=(416, 416))]))
    with pytest.raises(ValueError, match='still resize or pad to \\[\\(416, 416\\)\\]'):
        apply_input_size(cfg, 320)


@pytest.mark.parametrize('name', ['yolov3_mbv2_voc.py', 'yolov3_mbv2_netaug_voc.py'])
def test_backbone_checkpoint_initialises_the_backbone(name, tmp_path):
    pretrained = TinyMobileNetV2().state_dict()
    path = str(tmp_path / 'mbv2_w035.pth')
    torch.save(dict(state_dict=pretrained), path)
    model = build_detector(load(name, backbone_checkpoint=path))
    model.init_weights()
    backbone = model.backbone.export() if hasattr(model.backbone, 'export') else model.backbone
    loaded = backbone.state_dict()
    assert loaded.keys() == pretrained.keys()
    assert all(torch.equal(loaded[k], pretrained[k]) for k in pretrained)

    random_init = build_detector(load(name))
    random_init.init_weights()
    assert not torch.equal(random_init.backbone.conv1.conv.weight[:16],
                           pretrained['conv1.conv.weight'])


DOWNSTREAM_CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['netaug_det'], allow_failed_imports=False)

model = dict(bbox_head=dict(num_classes={num_classes}))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        _delete_=True, type='VOCDataset', data_root='{data_root}',
        ann_file='VOCdemo/ImageSets/Main/train.txt', data_prefix=dict(sub_data_root='VOCdemo/'),
        metainfo=dict(classes={classes}), pipeline=_base_.train_pipeline))
train_cfg = dict(max_epochs=1)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
"""


def test_downstream_netaug_config_trains(tmp_path):
    data_root = tmp_path / 'demo'
    generate_demo_dataset(str(data_root), num_train=2, num_val=1, img_size=(64, 80),
                          max_objects=2, min_object_size=12)
    config_file = tmp_path / 'team' / 'my_netaug_detector.py'
    config_file.parent.mkdir()
    config_file.write_text(DOWNSTREAM_CONFIG.format(
        base=osp.join(REPO_ROOT, 'configs', 'yolov3_mbv2_netaug_voc.py'),
        num_classes=len(DEMO_CLASSES), data_root=str(data_root / 'VOCdevkit') + '/',
        classes=tuple(DEMO_CLASSES)))

    cfg = Config.fromfile(str(config_file))
    original_size = cfg.input_size
    cfg.merge_from_dict(dict(input_size=64, work_dir=str(tmp_path / 'work')))
    apply_config_variables(cfg, original_size)
    runner = Runner.from_cfg(cfg)
    runner.train()

    assert runner.iter == 1
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss', 'train/loss_conf', 'train/aux_loss_conf'):
        assert math.isfinite(scalars[key].current()), key
    assert runner.model.backbone.active_arch == runner.model.backbone.base_arch
