"""NetAugHook through mmengine's Runner: the combined step, the schedule, resume and the export.

A tiny YOLOv3 (NetAugMobileNetV2-w0.35 backbone, stock YOLOV3Neck/YOLOV3Head with 8-16 channels)
trains on 64x64 random images, batch 2, a few iterations on CPU.
"""
import copy
import os
from typing import Tuple

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint
from mmengine.structures import InstanceData
from torch.utils.data import DataLoader, Dataset

import netaug_det  # noqa: F401  registers the backbones and NetAugHook
from netaug_det.engine.hooks import NetAugHook
from netaug_det.models.dynamic_layers import DynamicBatchNorm2d, DynamicConv2d

IMAGE_SIZE = 64
NUM_CLASSES = 3
SGD_ARGS = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
SGD = dict(type='SGD', **SGD_ARGS)


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny convolutions gain nothing from intra-op threads, and one thread cannot spin-wait
    for a busy sibling on a shared CPU (2 threads were 10x slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class RandomDetDataset(Dataset):
    """``length`` fixed random images (3, 64, 64) uint8 with two boxes each, in mmdet's format."""

    metainfo = dict(classes=('a', 'b', 'c'))

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        image = torch.randint(0, 256, (3, IMAGE_SIZE, IMAGE_SIZE), generator=generator,
                              dtype=torch.uint8)
        top_left = torch.rand(2, 2, generator=generator) * IMAGE_SIZE / 2
        size = torch.rand(2, 2, generator=generator) * IMAGE_SIZE / 2 + 8
        data_sample = DetDataSample(metainfo=dict(
            img_shape=(IMAGE_SIZE, IMAGE_SIZE), ori_shape=(IMAGE_SIZE, IMAGE_SIZE),
            scale_factor=(1.0, 1.0)))
        data_sample.gt_instances = InstanceData(
            bboxes=torch.cat([top_left, top_left + size], dim=1),
            labels=torch.randint(0, NUM_CLASSES, (2, ), generator=generator))
        return dict(inputs=image, data_samples=data_sample)


def detector_cfg(backbone_type: str = 'NetAugMobileNetV2',
                 out_indices: Tuple[int, ...] = (2, 4, 6)) -> ConfigDict:
    """A tiny YOLOv3 config; neck in_channels are the backbone's out_channels, deepest first."""
    init_default_scope('mmdet')
    backbone = dict(type=backbone_type, widen_factor=0.35, out_indices=out_indices)
    if backbone_type.startswith('NetAug'):
        backbone.update(aug_expand_list=(1.0, 1.5), aug_width_mult_list=(1.0, 1.5))
    neck_in = list(MODELS.build(backbone).out_channels)[::-1]
    return ConfigDict(
        type='YOLOV3',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255],
                               bgr_to_rgb=True, pad_size_divisor=32),
        backbone=backbone,
        neck=dict(type='YOLOV3Neck', num_scales=3, in_channels=neck_in, out_channels=[16, 8, 8]),
        bbox_head=dict(type='YOLOV3Head', num_classes=NUM_CLASSES, in_channels=[16, 8, 8],
                       out_channels=[16, 8, 8]),
        train_cfg=dict(assigner=dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0)),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.0, conf_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.45), max_per_img=50))


def build_detector(backbone_type: str = 'NetAugMobileNetV2', seed: int = 0,
                   out_indices: Tuple[int, ...] = (2, 4, 6)) -> torch.nn.Module:
    """The tiny detector, initialized (so the Runner does not re-initialize it)."""
    cfg = detector_cfg(backbone_type, out_indices)
    torch.manual_seed(seed)
    detector = MODELS.build(cfg)
    detector.init_weights()
    return detector


def make_runner(work_dir, model, *, hooks=(), train_cfg=None, optim_wrapper=None,
                num_samples=4, checkpoint_interval=None, train_dataloader=None,
                **kwargs) -> Runner:
    """A CPU Runner over RandomDetDataset (batch 2, fixed order), no validation."""
    checkpoint = None if checkpoint_interval is None else dict(
        type='CheckpointHook', interval=checkpoint_interval, by_epoch=False)
    return Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=os.path.basename(str(work_dir)),
        train_dataloader=train_dataloader or DataLoader(
            RandomDetDataset(num_samples), batch_size=2, collate_fn=pseudo_collate),
        train_cfg=train_cfg or dict(by_epoch=False, max_iters=1),
        optim_wrapper=optim_wrapper or dict(optimizer=SGD),
        custom_hooks=list(hooks),
        default_hooks=dict(checkpoint=checkpoint),
        default_scope='mmdet',
        randomness=dict(seed=0),
        log_level='WARNING',
        **kwargs)


def netaug(**kwargs) -> dict:
    """A NetAugHook config; no deploy file unless asked for."""
    return dict(dict(type='NetAugHook', deploy_filename=None), **kwargs)


def netaug_hook(runner: Runner) -> NetAugHook:
    return next(hook for hook in runner.hooks if isinstance(hook, NetAugHook))


def unwrapped_state(runner: Runner) -> dict:
    return {name: tensor.clone() for name, tensor in runner.model.state_dict().items()}


def assert_same_state(actual: dict, expected: dict, **tolerance) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], msg=name, **tolerance)


def first_batch(model: torch.nn.Module) -> dict:
    batch = pseudo_collate([RandomDetDataset(2)[i] for i in range(2)])
    return model.data_preprocessor(batch, training=True)


def total_loss(model: torch.nn.Module, data: dict) -> torch.Tensor:
    return model.parse_losses(model.loss(data['inputs'], data['data_samples']))[0]


def test_one_step_equals_base_plus_alpha_aux(tmp_path):
    """One NetAug step (clipping on) == manual grad of base + alpha * aux, clip, one SGD step."""
    alpha, max_norm, seed = 0.5, 0.5, 7
    detector = build_detector()
    reference = copy.deepcopy(detector)
    runner = make_runner(
        tmp_path, detector, hooks=[netaug(alpha=alpha, sort_channels=False, seed=seed)],
        optim_wrapper=dict(optimizer=SGD, clip_grad=dict(max_norm=max_norm)))
    runner.train()

    data = first_batch(reference)
    base_loss = total_loss(reference, data)
    base_buffers = {name: buffer.clone() for name, buffer in reference.named_buffers()}
    reference.backbone.set_mode('random', torch.Generator().manual_seed(seed))
    aux_loss = total_loss(reference, data)
    reference.backbone.set_mode('base')
    (base_loss + alpha * aux_loss).backward()
    reference.load_state_dict(base_buffers, strict=False)  # the aux pass keeps no BN statistics
    grad_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
    assert grad_norm > max_norm, 'the step must exercise gradient clipping'
    torch.optim.SGD(reference.parameters(), **SGD_ARGS).step()

    assert_same_state(unwrapped_state(runner), reference.state_dict())
    hub = runner.message_hub
    torch.testing.assert_close(hub.get_scalar('train/loss').current(),
                               (base_loss + alpha * aux_loss).item())
    for name in ('loss_cls', 'loss_conf', 'loss_xy', 'loss_wh'):
        assert f'train/aux_{name}' in hub.log_scalars
    assert 'loss' not in detector.__dict__, 'after_train restores the detector\'s own loss'
    assert detector.backbone.mode == 'base'


@pytest.mark.parametrize('optim_wrapper', [
    dict(optimizer=SGD),
    dict(optimizer=SGD, clip_grad=dict(max_norm=0.1), accumulative_counts=2),
], ids=['sgd', 'clip+accumulate'])
def test_alpha_zero_follows_baseline_trajectory(tmp_path, optim_wrapper):
    """alpha=0 without sorting: parameters and BN statistics equal the baseline's, bit for bit.

    The auxiliary passes run (zero-weighted), so this also shows they leave BatchNorm running
    statistics alone and that clipping and gradient accumulation behave as without NetAug.
    """
    train_cfg = dict(by_epoch=False, max_iters=4)
    states = []
    for name, hooks in (('netaug', [netaug(alpha=0.0, sort_channels=False)]), ('base', [])):
        runner = make_runner(tmp_path / name, build_detector(), hooks=hooks, train_cfg=train_cfg,
                             optim_wrapper=copy.deepcopy(optim_wrapper))
        runner.train()
        states.append(unwrapped_state(runner))
    assert_same_state(*states, rtol=0, atol=0)
    initial = build_detector().state_dict()
    assert not torch.equal(states[0]['neck.detect1.conv1.conv.weight'],
                           initial['neck.detect1.conv1.conv.weight'])


def test_resume_continues_like_uninterrupted_run(tmp_path):
    """Resuming at iteration 2 of 6 reproduces the uninterrupted run: sampler state, channel
    sorts (every 2 iterations while widths are augmented) and the phase switch at iteration 3."""
    hooks = [netaug(alpha=1.0, sort_channels=True, sort_interval=2, width_aug_ratio=0.5, seed=3)]
    train_cfg = dict(by_epoch=False, max_iters=6)
    full = make_runner(tmp_path / 'full', build_detector(), hooks=hooks, train_cfg=train_cfg,
                       checkpoint_interval=2)
    full.train()
    checkpoint = _load_checkpoint(str(tmp_path / 'full' / 'iter_2.pth'), map_location='cpu')
    assert checkpoint['netaug']['generator_state'].dtype == torch.uint8

    resumed = make_runner(tmp_path / 'resumed', build_detector(seed=1), hooks=hooks,
                          train_cfg=train_cfg, checkpoint_interval=2, resume=True,
                          load_from=str(tmp_path / 'full' / 'iter_2.pth'))
    resumed.train()
    assert_same_state(unwrapped_state(resumed), unwrapped_state(full))
    assert torch.equal(netaug_hook(resumed).generator.get_state(),
                       netaug_hook(full).generator.get_state())


def test_schedule_epoch_based(tmp_path):
    """Epoch loop, 4 epochs: 'random' + sorting for 2, 'random_expand' for 1, none for the last."""
    detector = build_detector()
    backbone = detector.backbone
    calls = []
    set_mode, sort_channels = backbone.set_mode, backbone.sort_channels
    backbone.set_mode = lambda mode, generator=None: (calls.append(mode), set_mode(mode, generator))
    backbone.sort_channels = lambda: (calls.append('sort'), sort_channels())
    runner = make_runner(tmp_path, detector, num_samples=2,
                         hooks=[netaug(width_aug_ratio=0.5, stop_aug_before_end=1)],
                         train_cfg=dict(by_epoch=True, max_epochs=4))
    runner.train()
    assert [call for call in calls if call != 'base'] == [
        'sort', 'random', 'sort', 'random', 'random_expand']
    assert backbone.mode == 'base'
    backbone.set_mode('max')
    netaug_hook(runner).before_val(runner)
    assert backbone.mode == 'base'


def test_sorting_restarts_optimizer_state_of_reordered_parameters(tmp_path):
    """Momentum kept in the old channel order must not survive a sort (sorts at iterations 0
    and 2): the step after the second sort finds no state exactly for the reordered tensors."""
    detector = build_detector()
    optimizer = torch.optim.SGD(detector.parameters(), **SGD_ARGS)
    names = {param: name for name, param in detector.named_parameters()}
    stateless = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: stateless.append(
        {name for param, name in names.items() if param not in opt.state}))
    runner = make_runner(tmp_path, detector, hooks=[netaug(width_aug_ratio=1.0, sort_interval=2)],
                         train_cfg=dict(by_epoch=False, max_iters=3),
                         optim_wrapper=OptimWrapper(optimizer))
    runner.train()
    never_trained = stateless[1]  # parameters after the deepest out_indices get no gradient
    assert stateless[0] == set(names.values()) and not any('neck' in n for n in never_trained)
    reordered = stateless[2] - never_trained
    assert any('expand_conv.conv' in name for name in reordered)
    assert all(name.startswith('backbone.') for name in reordered)


def test_aug_mode_at_follows_official_schedule():
    hook = NetAugHook(width_aug_ratio=0.5, stop_aug_before_end=5)
    modes = [hook.aug_mode_at(epoch, 155) for epoch in range(155)]
    assert modes.count('random') == 78
    assert modes[78:150] == ['random_expand'] * 72
    assert modes[150:] == [None] * 5


def test_export_loads_into_baseline_and_predicts_the_same(tmp_path):
    """deploy.pth (written atomically after training) loads strictly into the baseline detector
    and predicts exactly what the NetAug detector predicts in base mode."""
    runner = make_runner(tmp_path, build_detector(), hooks=[netaug(deploy_filename='deploy.pth')],
                         train_cfg=dict(by_epoch=False, max_iters=2))
    runner.train()
    assert not [name for name in os.listdir(tmp_path) if name.endswith('.part')]
    deploy = _load_checkpoint(str(tmp_path / 'deploy.pth'), map_location='cpu')
    assert deploy.keys() == {'meta', 'state_dict'}
    assert deploy['meta']['dataset_meta'] == RandomDetDataset.metainfo
    assert deploy['meta']['iter'] == 2

    baseline = MODELS.build(detector_cfg('TinyMobileNetV2'))
    load_checkpoint(baseline, str(tmp_path / 'deploy.pth'), map_location='cpu', strict=True)
    assert not any(isinstance(module, (DynamicConv2d, DynamicBatchNorm2d))
                   for module in baseline.modules())
    batch = pseudo_collate([RandomDetDataset(3)[i] for i in range(1, 3)])
    runner.model.eval()
    baseline.eval()
    with torch.no_grad():
        expected, actual = runner.model.test_step(batch), baseline.test_step(batch)
    for netaug_sample, baseline_sample in zip(expected, actual):
        assert len(netaug_sample.pred_instances) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(baseline_sample.pred_instances[key],
                                       netaug_sample.pred_instances[key])


def test_export_tool_matches_hook_export(tmp_path):
    """tools/misc/export_deployable.py on a regular checkpoint gives the hook's deploy weights."""
    from tools.misc.export_deployable import export

    cfg_file = tmp_path / 'netaug_cfg.py'
    cfg_file.write_text(f'model = {detector_cfg().to_dict()!r}\ndefault_scope = "mmdet"\n')
    runner = make_runner(tmp_path, build_detector(), hooks=[netaug(deploy_filename='deploy.pth')],
                         train_cfg=dict(by_epoch=False, max_iters=1), checkpoint_interval=1)
    runner.train()
    exported = export(str(cfg_file), str(tmp_path / 'iter_1.pth'), str(tmp_path / 'tool.pth'))
    hook_export = _load_checkpoint(str(tmp_path / 'deploy.pth'), map_location='cpu')
    assert_same_state(exported['state_dict'], hook_export['state_dict'], rtol=0, atol=0)


def test_plain_backbone_gets_a_clear_error(tmp_path):
    runner = make_runner(tmp_path, build_detector('TinyMobileNetV2'), hooks=[netaug()])
    with pytest.raises(TypeError, match="model.backbone.type to 'NetAugMobileNetV2'"):
        runner.train()


@pytest.mark.parametrize('kwargs, message', [
    (dict(alpha=-1.0), 'alpha'),
    (dict(width_aug_ratio=1.5), 'width_aug_ratio'),
    (dict(stop_aug_before_end=-1), 'stop_aug_before_end'),
    (dict(sort_interval=0), 'sort_interval'),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NetAugHook(**kwargs)
