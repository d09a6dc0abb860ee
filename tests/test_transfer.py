"""The transfer experiment (docs/transfer.md): the out-of-domain classification data (seeded,
ImageFolder layout, classes disjoint from the detection demo's) and its configs; the staged
plan (classifier grid -> classifiers, longer baseline and detection grid -> detectors from every
classifier), run against a stand-in executor, picks each learning rate from its own grid,
starts every detector from its own classifier and reports the two-level comparison."""
import filecmp
import os
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT
from netaug_det.datasets import DEMO_CLASSES
from netaug_det.datasets.ood_imagefolder import OOD_CLASSES, generate_ood_imagefolder
from netaug_det.experiments import transfer
from netaug_det.experiments.executors import Outcome, default_executor_args
from netaug_det.tools import make_ood_imagefolder, run_plan

PLAN = osp.join(REPO_ROOT, 'configs', 'plans', 'transfer_demo.py')
CONFIGS = osp.join(REPO_ROOT, 'configs', 'transfer')


def test_ood_classes_are_not_the_detection_demos():
    assert len(OOD_CLASSES) == len(set(OOD_CLASSES)) == 12
    assert not set(OOD_CLASSES) & set(DEMO_CLASSES)
    for name in ('mbv2_cls_ood.py', 'mbv2_cls_netaug_ood.py'):
        cfg = Config.fromfile(osp.join(CONFIGS, name))
        assert cfg.model.head.num_classes == len(OOD_CLASSES)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            dataset = cfg[loader].dataset
            assert tuple(dataset.metainfo.classes) == OOD_CLASSES, (name, loader)
            assert dataset.data_root == 'data/transfer_cls/'
    assert Config.fromfile(osp.join(CONFIGS, 'mbv2_cls_netaug_ood.py')).model.backbone.type \
        == 'NetAugMobileNetV2'


def test_ood_imagefolder_is_seeded_balanced_and_in_imagefolder_layout(tmp_path):
    first = generate_ood_imagefolder(str(tmp_path / 'a'), 24, 12, seed=3, img_size=32)
    again = generate_ood_imagefolder(str(tmp_path / 'b'), 24, 12, seed=3, img_size=32)
    generate_ood_imagefolder(str(tmp_path / 'c'), 24, 12, seed=4, img_size=32)
    assert first == again and first['classes'] == list(OOD_CLASSES)
    assert first['splits'] == {'train': dict.fromkeys(OOD_CLASSES, 2),
                               'val': dict.fromkeys(OOD_CLASSES, 1)}
    for split in ('train', 'val'):
        assert sorted(os.listdir(tmp_path / 'a' / split)) == sorted(OOD_CLASSES)
    files = sorted(osp.relpath(osp.join(root, name), tmp_path / 'a')
                   for root, _, names in os.walk(tmp_path / 'a') for name in names)
    assert len(files) == 24 + 12 + 1  # the images and meta.json
    same = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', files, shallow=False)[0]
    assert same == files
    assert filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'c', files, shallow=False)[0] == []
    # kept as it is with the same arguments; other arguments are refused
    assert generate_ood_imagefolder(str(tmp_path / 'a'), 24, 12, seed=3, img_size=32) == first
    with pytest.raises(ValueError, match='holds a dataset made with'):
        generate_ood_imagefolder(str(tmp_path / 'a'), 24, 12, seed=5, img_size=32)
    with pytest.raises(ValueError, match='at least the 12 classes'):
        generate_ood_imagefolder(str(tmp_path / 'd'), 11, 12)


def test_make_ood_imagefolder_tool_writes_the_dataset(tmp_path, capsys):
    make_ood_imagefolder.main(['--out-dir', str(tmp_path), '--num-train', '12', '--num-val',
                               '12', '--img-size', '32', '--seed', '1'])
    assert 'train: 12 images' in capsys.readouterr().out
    assert len(os.listdir(tmp_path / 'val' / 'heart')) == 1
    assert generate_ood_imagefolder(str(tmp_path), 12, 12, seed=1, img_size=32)['args'] == dict(
        num_train=12, num_val=12, seed=1, img_size=32)


def _score(run):
    """Made-up val scores: classifiers best at lr 0.02 (NetAug's 5 higher), detectors best at
    the config's lr for the baseline and at half of it for NetAug; seeds add a little."""
    lr = float(run.name.split('/lr')[1].split('/')[0])
    if run.name.startswith('cls/'):
        best, bonus = 0.02, 5 * ('/netaug/' in run.name)
    else:
        best, bonus = (0.008, 8) if '/netaug/' in run.name else (0.016, 0)
    return 50 - 1000 * abs(lr - best) + bonus + run.spec.seed


def _stand_in_executor(calls):
    """An ``execute`` that runs nothing: checks that every run's parents are listed and
    returns a made-up result for each."""
    def execute(runs, args, log_dir, work):
        names = [run.name for run in runs]
        assert all(parent in names for run in runs for parent in run.after)
        calls.append(names)
        return {run.name: Outcome(dict(val_ap50=_score(run), train_time_s=60.0,
                                       trained=dict(total=8), spec=dict(seed=run.spec.seed)))
                for run in runs}
    return execute


def test_transfer_stages_pick_each_rate_and_start_each_detector_from_its_classifier(
        monkeypatch, tmp_path):
    plan = Config.fromfile(PLAN)
    plan.work_dir = str(tmp_path)
    calls = []
    monkeypatch.setattr(transfer, 'execute', _stand_in_executor(calls))
    stages = transfer.run_transfer(plan, default_executor_args())
    assert len(calls) == 3
    # classifier grid: 2 methods x 3 rates x 1 grid seed
    assert len(stages.grid) == 6 and all(name.endswith('/s0') for name in calls[0])
    assert stages.picks.classifier == dict(baseline=0.02, netaug=0.02)
    assert stages.picks.detection == dict(baseline=0.016, baseline_long=0.016, netaug=0.008)
    # stage 2: 3 arms x 3 seeds and 3 arms x 3 detection rates from classifier seed 0, each
    # arm's seed-0 classifier and detection grid first
    assert len(stages.classifiers) == 9 + 9
    assert calls[1][:5] == ['cls/baseline/lr0.02/s0', 'det/baseline/c0/lr0.008/s0',
                            'det/baseline/c0/lr0.016/s0', 'det/baseline/c0/lr0.032/s0',
                            'cls/netaug/lr0.02/s0']
    assert calls[1][8:10] == ['cls/baseline_long/lr0.02/s0', 'det/baseline_long/c0/lr0.008/s0']
    long_run = next(run for run in stages.classifiers if run.name == 'cls/baseline_long/lr0.02/s1')
    assert 'train_cfg.max_epochs=24' in long_run.spec.train_options
    assert 'optim_wrapper.optimizer.lr=0.02' in long_run.spec.train_options
    # stage 3: every classifier seed x every detection seed x every arm, at the picked rates,
    # and random init at its config's rate, detection seed by detection seed
    assert len(stages.detectors) == 3 * 3 * 3 + 3
    assert calls[2][9:12] == ['det/baseline/c0/lr0.016/s0', 'det/baseline_long/c0/lr0.016/s0',
                              'det/netaug/c0/lr0.008/s0']
    assert calls[2][17:19] == ['det/netaug/c2/lr0.008/s0', 'det/scratch/lr0.016/s0']
    scratch = next(run for run in stages.detectors if run.name == 'det/scratch/lr0.016/s2')
    assert scratch.after == () and scratch.spec.train_options == () and scratch.spec.seed == 2
    checkpoints = {run.name: run.spec.train_options[0] for run in stages.detectors
                   if '/scratch/' not in run.name}
    work = str(tmp_path)
    assert checkpoints['det/netaug/c2/lr0.008/s1'] == \
        f'backbone_checkpoint={work}/cls/netaug/lr0.02/s2/deploy.pth'
    assert checkpoints['det/baseline/c1/lr0.016/s2'] == \
        f'backbone_checkpoint={work}/cls/baseline/lr0.02/s1/epoch_8.pth'
    assert checkpoints['det/baseline_long/c0/lr0.016/s0'] == \
        f'backbone_checkpoint={work}/cls/baseline_long/lr0.02/s0/epoch_24.pth'
    for run in stages.detectors:
        _, arm, cls_seed = run.name.split('/')[:3]
        if arm == 'scratch':
            continue
        assert run.after == (f'cls/{arm}/lr0.02/s{cls_seed[1:]}', )
    report = transfer.transfer_report(plan, stages)
    # NetAug's detectors are 8 higher than either baseline's (same seeds): resolved
    assert 'netaug pretraining beats baseline_long pretraining: +8.0 AP50' in report
    assert 'netaug pretraining beats baseline pretraining: +8.0 AP50' in report
    assert '| netaug | 0.008 | ' in report and 'Runs listed so far: 49, finished: 49.' in report
    # random init scores as the baseline's detectors here: NetAug beats it, the baseline does not
    assert '| scratch | 0.016 | 51.0 ± 1.0 (3) | none: 3 | 51.0 [50.0, 52.0] |' in report
    assert 'netaug pretraining beats random initialisation: +8.0 AP50' in report
    assert 'baseline pretraining is not resolved from random initialisation: +0.0 AP50' in report
    # a plan without scratch: no random-init runs, rows or contrasts
    plan.detection.scratch = False
    assert not any('scratch' in run.name
                   for run in transfer.stage_detectors(plan, stages.picks))
    report = transfer.transfer_report(plan, stages)
    assert 'scratch' not in report and 'random initialisation' not in report
    plan.detection.scratch = True
    # with one classifier seed finished there is no interval and no verdict
    partial = {name: outcome for name, outcome in stages.outcomes.items()
               if '/c1/' not in name and '/c2/' not in name}
    report = transfer.transfer_report(plan, stages._replace(outcomes=partial))
    assert 'beats' not in report and 'no interval, no verdict yet' in report
    assert 'no interval: one classifier seed' in report


def test_transfer_collect_stops_at_the_first_unfinished_stage(tmp_path):
    plan = Config.fromfile(PLAN)
    plan.work_dir = str(tmp_path)
    plan.classifier.lr_mults = [1]  # fewer runs to fingerprint
    stages = transfer.run_transfer(plan, default_executor_args(), collect=True)
    assert len(stages.grid) == 2 and stages.classifiers == stages.detectors == []
    report = transfer.transfer_report(plan, stages)
    assert 'not finished' in report and 'no finished detectors yet' in report


def test_transfer_plan_dry_run_and_bad_plans(capsys, tmp_path):
    run_plan.main([PLAN, '--dry-run'])
    printed = capsys.readouterr().out
    assert '[cls/netaug/lr0.04/s0]' in printed and 'mbv2_cls_netaug_ood.py' in printed
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = '{PLAN}'\ndetection = dict(_delete_=True, config='x.py')\n")
    with pytest.raises(KeyError, match=r"missing: \['lr_mults'"):
        run_plan.main([str(bad), '--dry-run'])
    bad.write_text(f"_base_ = '{PLAN}'\ndetection = dict(grid_classifier_seed=7)\n")
    with pytest.raises(ValueError, match='grid_classifier_seed 7 is not one of'):
        run_plan.main([str(bad), '--dry-run'])


def test_real_transfer_plan_shares_the_demo_plans_classifiers(monkeypatch, tmp_path):
    real = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'plans', 'transfer_real.py'))
    assert real.classifier.work_dir == Config.fromfile(PLAN).work_dir
    assert real.detection.config.endswith('yolov3_mbv2_neon_trees.py')
    assert [item.type for item in real.datasets] == ['real_detection', 'ood_classification']
    real.work_dir, real.classifier.work_dir = str(tmp_path / 'real'), str(tmp_path / 'shared')
    calls = []
    monkeypatch.setattr(transfer, 'execute', _stand_in_executor(calls))
    stages = transfer.run_transfer(real, default_executor_args())
    shared = str(tmp_path / 'shared')
    assert all(run.spec.work_dir.startswith(shared + '/cls/')
               for run in stages.grid + stages.classifiers if run.name.startswith('cls/'))
    detectors = [run for run in stages.classifiers + stages.detectors
                 if run.name.startswith('det/')]
    # the grid: 3 arms x 3 rates x 3 detection seeds from classifier seed 0, the picked rate's
    # being stage 3's own; stage 3 adds classifier seeds 1 and 2 and random init
    assert len({run.name for run in detectors}) == 27 + 3 * 2 * 3 + 3
    assert all(run.spec.work_dir.startswith(str(tmp_path / 'real') + '/det/')
               for run in detectors)
    start = next(run for run in detectors if run.name == 'det/netaug/c1/lr0.008/s2')
    assert start.spec.train_options[0] == \
        f'backbone_checkpoint={shared}/cls/netaug/lr0.02/s1/deploy.pth'
    # the trees config's lr 0.008: the grid is 0.004, 0.008, 0.016 and random init runs at 0.008
    assert {run.name for run in detectors if '/c0/' in run.name and run.spec.seed == 0} >= {
        f'det/baseline/c0/lr{lr}/s0' for lr in ('0.004', '0.008', '0.016')}
    assert 'det/scratch/lr0.008/s2' in {run.name for run in detectors}
