"""The paper's eight configs, the config variables (input_size, data_root, ImageNet checkpoints)
under any entry point (mmdet's own train script included), and a downstream config outside the
repo that inherits a NetAug config and trains."""
import glob
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import RUNNERS, DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import netaug_det  # noqa: F401
from netaug_det.datasets import DEMO_CLASSES, generate_demo_dataset
from netaug_det.models.backbones import TinyMobileNetV2
from netaug_det.models.builders import build_detector
from netaug_det.utils.config import apply_config_variables, apply_input_size, backbone_checkpoint

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(osp.basename(p)
                 for p in glob.glob(osp.join(REPO_ROOT, 'configs', 'yolov3_*.py')))
DATASETS = {
    'voc': dict(num_classes=20, metric='VOCMetric', max_epochs=200, gpus=8, total_batch=64),
    'coco': dict(num_classes=80, metric='CocoMetric', max_epochs=120, gpus=16, total_batch=128),
}


def load(name: str, **options) -> Config:
    """A config as the runner sees it: file, then --cfg-options, then the config variables."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    cfg.merge_from_dict(options)
    apply_config_variables(cfg)
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
    assert cfg.default_scope == 'mmdet' and cfg.runner_type == 'NetAugDetRunner'
    assert cfg.input_size == 416 and set(square_sizes(cfg)) == {(416, 416)}
    assert cfg.val_evaluator.type == expected['metric']
    assert cfg.train_cfg.max_epochs == expected['max_epochs']
    assert cfg.train_dataloader.batch_size * expected['gpus'] == expected['total_batch']
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=expected['total_batch'])
    assert cfg.backbone_checkpoint is None and cfg.model.backbone.get('init_cfg') is None
    assert cfg.backbone_pretrain == ('netaug' if '_netaug_' in name else 'baseline')

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
    assert (netaug.pop('backbone_pretrain'), baseline.pop('backbone_pretrain')) == (
        'netaug', 'baseline')
    assert netaug['model']['backbone'].pop('type') == 'NetAug' + baseline['model'][
        'backbone'].pop('type')[len('Tiny'):]
    assert netaug == baseline


@pytest.mark.parametrize('name', ['ssdlite_mbv2', 'yolox_mbv2'])
def test_more_detectors_netaug_twin_only_adds_netaug(name):
    """mmdet's SSDLite and YOLOX-nano recipes with a MobileNetV2-w0.35 backbone; the NetAug twin
    differs in the backbone type and the added hook only, and both build."""
    baseline, netaug = load(f'{name}_coco.py'), load(f'{name}_netaug_coco.py')
    assert baseline.runner_type == 'NetAugDetRunner'
    netaug_dict, baseline_dict = netaug.to_dict(), baseline.to_dict()
    assert netaug_dict.pop('custom_hooks') == baseline_dict.pop('custom_hooks') + [
        dict(type='NetAugHook')]
    assert netaug_dict['model']['backbone'].pop('type') == 'NetAugMobileNetV2'
    assert baseline_dict['model']['backbone'].pop('type') == 'TinyMobileNetV2'
    assert netaug_dict == baseline_dict
    model = build_detector(netaug)
    assert type(model.backbone).__name__ == 'NetAugMobileNetV2'
    assert model.backbone.out_channels == tuple(baseline.model.neck.in_channels)


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


def test_input_size_moves_pipeline_sizes_only():
    """Model widths that happen to equal the input size, e.g. a two-scale neck with
    out_channels=[128, 128] at input_size=128, are not sizes."""
    cfg = Config(dict(input_size=128, model=dict(neck=dict(out_channels=[416, 416])),
                      test_pipeline=[dict(type='Resize', scale=(416, 416)),
                                     dict(type='Pad', size=[416, 416])]))
    apply_input_size(cfg, [416])
    assert cfg.model.neck.out_channels == [416, 416]
    assert cfg.test_pipeline[0].scale == (128, 128) and cfg.test_pipeline[1].size == [128, 128]
    apply_input_size(cfg, [416])  # applying twice changes nothing more
    assert cfg.test_pipeline[0].scale == (128, 128)


def test_input_size_errors_name_the_fix():
    with pytest.raises(ValueError, match='multiple of 32.*input_size=320'):
        load('yolov3_mbv2_voc.py', input_size=300)
    # sizes that do not follow input_size would silently stay: refused
    cfg = Config(dict(input_size=320, test_dataloader=dict(dataset=dict(
        pipeline=[dict(type='Resize', scale=(640, 640))]))))
    with pytest.raises(ValueError, match='still resize or pad to \\[\\(640, 640\\)\\]'):
        apply_input_size(cfg, [416])
    # a size derived from no earlier input_size (an in-memory config knows none)
    cfg = Config(dict(input_size=320, test_dataloader=dict(dataset=dict(
        pipeline=[dict(type='Pad', size=(416, 416))]))))
    with pytest.raises(ValueError, match='still resize or pad to \\[\\(416, 416\\)\\]'):
        apply_input_size(cfg, [320])


def test_data_root_reaches_every_dataset_and_evaluator():
    cfg = load('yolov3_mbv2_coco.py', data_root='/datasets/coco/')
    assert cfg.train_dataloader.dataset.data_root == '/datasets/coco/'
    assert cfg.test_dataloader.dataset.data_root == '/datasets/coco/'
    assert cfg.val_evaluator.ann_file == '/datasets/coco/annotations/instances_val2017.json'
    voc = load('yolov3_mbv2_voc.py', data_root='/datasets/voc/')
    assert [d.data_root for d in voc.train_dataloader.dataset.datasets] == ['/datasets/voc/'] * 2
    assert 'data/VOCdevkit' not in voc.pretty_text


def test_the_four_pretraining_combinations():
    """{baseline, NetAug} ImageNet weights x {plain, NetAug} detection training, by config."""
    weights = dict(imagenet_checkpoints=dict(baseline='in1k_baseline.pth',
                                             netaug='in1k_netaug.pth'))
    assert backbone_checkpoint(load('yolov3_mbv2_voc.py', **weights)) == 'in1k_baseline.pth'
    assert backbone_checkpoint(load('yolov3_mbv2_netaug_voc.py', **weights)) == 'in1k_netaug.pth'
    swapped = [load('yolov3_mbv2_voc.py', backbone_pretrain='netaug', **weights),
               load('yolov3_mbv2_netaug_voc.py', backbone_pretrain='baseline', **weights)]
    assert [backbone_checkpoint(cfg) for cfg in swapped] == ['in1k_netaug.pth',
                                                             'in1k_baseline.pth']
    assert swapped[0].model.backbone.init_cfg == dict(type='Pretrained',
                                                      checkpoint='in1k_netaug.pth')
    explicit = load('yolov3_mbv2_netaug_voc.py', backbone_checkpoint='mine.pth', **weights)
    assert backbone_checkpoint(explicit) == 'mine.pth'
    with pytest.raises(ValueError, match="backbone_pretrain='mcunet' is not a key"):
        load('yolov3_mbv2_voc.py', backbone_pretrain='mcunet', **weights)


@pytest.mark.parametrize('name', ['yolov3_mbv2_voc.py', 'yolov3_mbv2_netaug_voc.py'])
def test_backbone_checkpoint_initialises_the_backbone(name, tmp_path):
    pretrained = TinyMobileNetV2(widen_factor=0.35, out_indices=(2, 4, 6)).state_dict()
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
allow_random_init = True  # no ImageNet checkpoint here

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


@pytest.mark.slow
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
    cfg.merge_from_dict(dict(input_size=64, work_dir=str(tmp_path / 'work')))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()

    assert runner.iter == 1
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss', 'train/loss_conf', 'train/aux_loss_conf'):
        assert math.isfinite(scalars[key].current()), key
    assert runner.model.backbone.active_arch == runner.model.backbone.base_arch


def train_tiny(script: str, config: str, work_dir, data_root: str, *extra: str) -> dict:
    """Trains ``config`` two iterations at input_size 64 on tiny data with ``script`` (more
    ``--cfg-options`` in ``extra``, which win); returns the final checkpoint's state dict."""
    options = [f'data_root={data_root}', 'input_size=64', 'train_cfg.max_epochs=1',
               'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False', 'val_cfg=None',
               'val_dataloader=None', 'val_evaluator=None', 'randomness.seed=0',
               'randomness.deterministic=True', *extra]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, script, config, '--work-dir', str(work_dir),
                             '--cfg-options', *options], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return _load_checkpoint(f.read().strip(), map_location='cpu')['state_dict']


@pytest.mark.slow
def test_mmdet_own_train_script_trains_like_ours(tmp_path):
    """mmdet's tools/train.py (shipped in the mmdet package, what mim runs) honours input_size
    and data_root overrides through the config's runner: same weights as tools/train.py."""
    import mmdet
    data_root = tmp_path / 'demo'
    generate_demo_dataset(str(data_root), num_train=4, num_val=1, img_size=(64, 80))
    config = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')
    mmdet_train = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    ours = train_tiny(osp.join(REPO_ROOT, 'tools', 'train.py'), config, tmp_path / 'ours',
                      f'{data_root}/')
    theirs = train_tiny(mmdet_train, config, tmp_path / 'mmdet', f'{data_root}/')
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    dumped = Config.fromfile(str(tmp_path / 'mmdet' / 'yolov3_mbv2_netaug_demo.py'))
    sizes = {tuple(t.get('scale', t.get('size'))) for t in dumped.train_dataloader.dataset.pipeline
             if t.type in ('Resize', 'Pad')}
    assert sizes == {(64, 64)}
    assert dumped.train_dataloader.dataset.data_root == f'{data_root}/'


@pytest.mark.slow
def test_pretrained_backbone_survives_netaug_at_lr_0_through_tools_train(tmp_path):
    """tools/train.py, the NetAug demo config, backbone_checkpoint=a baseline detector's
    checkpoint, lr=0, two epochs with channel sorts: deploy.pth holds exactly the loaded
    backbone parameters (nothing a user loaded is replaced by untrained wide channels)."""
    data_root = tmp_path / 'demo'
    generate_demo_dataset(str(data_root), num_train=4, num_val=1, img_size=(64, 80))
    torch.manual_seed(3)
    pretrained = build_detector(osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py'))
    pretrained.init_weights()
    checkpoint = str(tmp_path / 'baseline_detector.pth')
    torch.save(dict(state_dict=pretrained.state_dict()), checkpoint)
    config = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')
    train_tiny(osp.join(REPO_ROOT, 'tools', 'train.py'), config, tmp_path / 'run',
               f'{data_root}/', f'backbone_checkpoint={checkpoint}', 'train_cfg.max_epochs=2',
               'optim_wrapper.optimizer.lr=0.0')
    deploy = _load_checkpoint(str(tmp_path / 'run' / 'deploy.pth'), map_location='cpu')
    for name, tensor in pretrained.backbone.named_parameters():
        assert torch.equal(deploy['state_dict'][f'backbone.{name}'], tensor), name
