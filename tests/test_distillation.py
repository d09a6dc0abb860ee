"""Distillation in the training step: a fixed teacher (soft targets + feature imitation through
adapters) and NetAug's online self-distillation (RKD), alone and with NetAug, through the
runner on tiny data."""
import copy
import logging
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmdet.visualization import DetLocalVisualizer
from mmengine.logging import MMLogger
from mmengine.registry import RUNNERS
from mmengine.runner.checkpoint import _load_checkpoint

from conftest import REPO_ROOT
from netaug_det.models.distillation import NetAugSelfDistillation, TeacherDistiller
from netaug_det.models.netaug import NetAugAuxLoss, NetAugSupernet, export_plain_model
from netaug_det.models.train_loss import TrainLoss, loss_total
from netaug_det.tools import loss_terms
from netaug_det.tools.export_deployable import export
from netaug_det.models.builders import build_detector
from mmengine.dataset import pseudo_collate
from test_netaug_hook import RandomDetDataset, first_batch

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')


@pytest.fixture(scope='module')
def teacher_checkpoint(tmp_path_factory):
    """The demo teacher's architecture with seeded random weights."""
    torch.manual_seed(1)
    teacher = build_detector(Config.fromfile(osp.join(DEMO, 'yolov3_mbv2_teacher_demo.py')))
    teacher.init_weights()
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return str(path)


def student_with_distiller(config: str, teacher_checkpoint: str):
    cfg = Config.fromfile(osp.join(DEMO, config))
    torch.manual_seed(0)
    student = build_detector(cfg)
    student.init_weights()
    distiller_cfg = copy.deepcopy(cfg.distiller.to_dict())
    distiller_cfg.pop('type')
    distiller_cfg['teacher']['checkpoint'] = teacher_checkpoint
    student.distiller = TeacherDistiller(student=student, **distiller_cfg)
    return student


def test_netaug_kd_step_is_base_plus_alpha_aux_plus_kd(teacher_checkpoint):
    """One NetAug + KD loss equals base + alpha * aux + the KD terms computed by hand; the
    teacher gets no gradient and keeps its BatchNorm statistics; adapters learn."""
    model = student_with_distiller('yolov3_mbv2_netaug_kd_demo.py', teacher_checkpoint)
    data = first_batch(model)
    inputs, samples = data['inputs'].float(), data['data_samples']
    teacher = model.distiller.teacher
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    term = NetAugAuxLoss(NetAugSupernet(model), alpha=0.5)
    loss_fn = TrainLoss.attach(model)
    loss_fn.add('netaug', term)
    loss_fn.add('distill', model.distiller)
    term.prepare_step('random', 1.0, seed=4)
    total = model.parse_losses(model.loss(inputs, samples))[0]
    total.backward()

    reference = copy.deepcopy(model)  # the same weights, computed by hand below
    reference.__dict__.pop('loss')
    reference.zero_grad()
    base = reference.parse_losses(type(reference).loss(reference, inputs, samples))[0]
    with NetAugSupernet(reference).augmented('random', torch.Generator().manual_seed(4)):
        aux = reference.parse_losses(type(reference).loss(reference, inputs, samples))[0]
    feats = reference.extract_feat(inputs)
    maps = reference.bbox_head(feats)[0]
    with torch.no_grad():
        teacher_feats = teacher.extract_feat(inputs)
        teacher_maps = teacher.bbox_head(teacher_feats)[0]
    distiller = reference.distiller
    kd = sum(distiller.output_loss(s, t) for s, t in zip(maps, teacher_maps)) + sum(
        loss(s, t) for loss, s, t in zip(distiller.feature_losses, feats, teacher_feats))
    torch.testing.assert_close(total, base + 0.5 * aux + kd, rtol=1e-5, atol=1e-4)
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())
    adapter = model.distiller.feature_losses[0].adapter
    assert isinstance(adapter, torch.nn.Conv2d) and adapter.weight.grad.abs().sum() > 0
    assert 'distiller' not in dict(export_plain_model(model).named_children())


def test_a_copy_of_the_student_shares_the_teacher(teacher_checkpoint):
    """EMAHook deep-copies the model: the copy gets its own adapters but the one fixed teacher."""
    model = student_with_distiller('yolov3_mbv2_kd_demo.py', teacher_checkpoint)
    copied = copy.deepcopy(model)
    assert copied.distiller.teacher is model.distiller.teacher
    adapter, copied_adapter = (m.distiller.feature_losses[0].adapter for m in (model, copied))
    assert copied_adapter is not adapter and torch.equal(copied_adapter.weight, adapter.weight)


def rkd_demo_model_and_batch():
    """The NetAug + RKD demo detector (seed 0) and a preprocessed batch of 4 images (relations
    need 3 samples: with 2, normalised distances and angles are constant)."""
    cfg = Config.fromfile(osp.join(DEMO, 'yolov3_mbv2_netaug_rkd_demo.py'))
    torch.manual_seed(0)
    model = build_detector(cfg)
    model.init_weights()
    data = model.data_preprocessor(
        pseudo_collate([RandomDetDataset(4)[i] for i in range(4)]), training=True)
    return model, data


@pytest.mark.parametrize('detach', [True, False])
def test_self_distillation_reaches_the_teacher_only_when_asked(detach):
    """RKD between the base and the sampled augmented pass: with a detached teacher, channels
    that only the augmented model uses get no gradient from it; otherwise they do."""
    model, data = rkd_demo_model_and_batch()
    term = NetAugAuxLoss(NetAugSupernet(model), alpha=0.0, keep_outputs=True)
    term.prepare_step('random', 1.0, seed=0)
    loss_fn = TrainLoss.attach(model)
    loss_fn.add('netaug', term)
    loss_fn.add('self_kd', NetAugSelfDistillation(term, num_classes=model.bbox_head.num_classes,
                                                  rkd_distance=25.0, rkd_angle=50.0,
                                                  teacher='max', detach_teacher=detach))
    losses = model.loss(data['inputs'].float(), data['data_samples'])
    assert {'self_kd_loss_rkd_distance', 'self_kd_loss_rkd_angle', 'self_kd_total'} <= set(losses)
    # alpha=0: only the self-distillation terms can reach the augmented channels
    loss_total({k: v for k, v in losses.items() if k.startswith('self_kd_loss')}).backward()
    wide = model.backbone.layer7[0].expand_conv.conv.weight.grad
    base_mid = model.backbone.base_arch.blocks[-1].mid_channels
    reached = wide[base_mid:].abs().sum() > 0
    assert reached != detach


def test_step_weight_scales_aux_and_self_distillation_alike():
    """aux_interval=k runs the pass every k-th step with step_weight k: the auxiliary losses and
    the self-distillation terms are both k times their every-step values."""
    model, data = rkd_demo_model_and_batch()
    term = NetAugAuxLoss(NetAugSupernet(model), alpha=0.5, keep_outputs=True)
    loss_fn = TrainLoss.attach(model)
    loss_fn.add('netaug', term)
    loss_fn.add('self_kd', NetAugSelfDistillation(term, num_classes=model.bbox_head.num_classes,
                                                  rkd_distance=25.0, rkd_angle=50.0))
    runs = []
    for step_weight in (1, 3):
        term.prepare_step('random', step_weight, seed=5)
        with torch.no_grad():
            runs.append(model.loss(data['inputs'].float(), data['data_samples']))
    for name in ('aux_total', 'self_kd_total', 'base_total'):
        factor = 1 if name == 'base_total' else 3
        torch.testing.assert_close(runs[1][name], factor * runs[0][name])


@pytest.mark.slow
@pytest.mark.parametrize('config, teacher_kd, self_kd', [
    ('yolov3_mbv2_kd_demo.py', True, False),
    ('yolov3_mbv2_netaug_kd_demo.py', True, False),
    ('yolov3_mbv2_netaug_rkd_demo.py', False, True),
])
def test_distilled_run_deploys_the_baseline_detector(
        config, teacher_kd, self_kd, demo_data, teacher_checkpoint, tmp_path):
    loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
    cfg = Config.fromfile(osp.join(DEMO, config))
    cfg.merge_from_dict(dict(data_root=demo_data, input_size=64, work_dir=str(tmp_path / 'w'),
                             train_dataloader=loader, test_dataloader=loader, val_cfg=None,
                             val_dataloader=None, val_evaluator=None,
                             train_cfg=dict(max_epochs=1)))
    if 'distiller' in cfg:
        cfg.distiller.teacher.checkpoint = teacher_checkpoint
    runner = RUNNERS.build(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    assert ('train/kd_total' in scalars) == teacher_kd
    assert ('train/self_kd_total' in scalars) == self_kd
    deploy = tmp_path / 'w' / 'deploy.pth'
    assert not any('distiller' in k for k in _load_checkpoint(str(deploy))['state_dict'])
    baseline = Config.fromfile(osp.join(DEMO, 'yolov3_mbv2_demo.py'))
    baseline.merge_from_dict(dict(data_root=demo_data, input_size=64, load_from=str(deploy),
                                  work_dir=str(tmp_path / 't'), test_dataloader=loader))
    RUNNERS.build(baseline).test()
    # the export tool gives the same file from the training checkpoint (distiller.* left out)
    cfg.dump(str(tmp_path / 'run_config.py'))
    exported = export(str(tmp_path / 'run_config.py'), str(tmp_path / 'w' / 'epoch_1.pth'),
                      str(tmp_path / 'exported.pth'))
    for name, tensor in _load_checkpoint(str(deploy))['state_dict'].items():
        assert torch.equal(exported['state_dict'][name], tensor), name
    assert exported['state_dict'].keys() == _load_checkpoint(str(deploy))['state_dict'].keys()


@pytest.mark.slow
def test_distiller_without_hook_is_refused(demo_data, teacher_checkpoint, tmp_path):
    cfg = Config.fromfile(osp.join(DEMO, 'yolov3_mbv2_kd_demo.py'))
    cfg.merge_from_dict(dict(data_root=demo_data, work_dir=str(tmp_path), custom_hooks=[]))
    cfg.distiller.teacher.checkpoint = teacher_checkpoint
    with pytest.raises(RuntimeError, match='distillation needs both'):
        RUNNERS.build(cfg).train()


@pytest.mark.slow
def test_loss_terms_tool_prints_every_term_of_the_step(demo_data, teacher_checkpoint, capsys):
    """The tool attaches the terms through the config's own hooks: NetAug's auxiliary pass and
    the teacher's terms, each with its share of the detection loss."""
    loss_terms.main([osp.join(DEMO, 'yolov3_mbv2_netaug_kd_demo.py'), '--cfg-options',
                     f'data_root={demo_data}', 'input_size=64',
                     f'distiller.teacher.checkpoint={teacher_checkpoint}',
                     'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                     'train_dataloader.batch_size=2'])
    rows = {line.split()[0]: [float(value) for value in line.split()[1:]]
            for line in capsys.readouterr().out.splitlines() if line.split()
            and line.split()[0] in ('base_total', 'aux_total', 'kd_total', 'kd_loss_output')}
    assert set(rows) == {'base_total', 'aux_total', 'kd_total', 'kd_loss_output'}
    assert rows['base_total'][1] == 1.0
    assert all(value > 0 for value, _ in rows.values())
    # its run's work dir was temporary: no logger or visualizer may still write there
    assert not [handler for logger in MMLogger._instance_dict.values()
                for handler in logger.handlers if isinstance(handler, logging.FileHandler)
                and not osp.isdir(osp.dirname(handler.baseFilename))]
    assert not [name for name, visualizer in DetLocalVisualizer._instance_dict.items()
                if any(not osp.isdir(osp.dirname(backend._save_dir))
                       for backend in visualizer._vis_backends.values())]
