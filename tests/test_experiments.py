"""Seeded experiments through the real tools on tiny data: the main job over two seeds, cached
runs read back by compare_runs, and the learning-rate grid picking each method's best point."""
import json
import os
import os.path as osp

import matplotlib.image
import pytest

from conftest import REPO_ROOT
from netaug_det.datasets import read_dataset_meta
from netaug_det.tools import compare_runs, lr_grid, run_demo
from netaug_det.experiments.runs import (RESULT_FILE, RunSpec, split_options, epoch_options,
                                          run_experiment)

BASELINE = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
NETAUG = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')


@pytest.fixture(scope='module')
def tiny_options(demo_data):
    """Overrides that make a demo run one epoch of two iterations on 4 tiny images."""
    data_root = demo_data
    loaders = ('train_dataloader', 'test_dataloader')
    return [f'data_root={data_root}', 'input_size=64', 'train_cfg.max_epochs=1', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None'] + [
        f'{loader}.{key}' for loader in loaders for key in (
            f'dataset.data_root={data_root}', 'batch_size=2', 'num_workers=0',
            'persistent_workers=False')]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # children: no OpenMP contention on small CPUs


@pytest.mark.slow
def test_main_job_over_two_seeds_then_cached_comparison(tmp_path, tiny_options, demo_data,
                                                        capsys):
    work_dir = str(tmp_path / 'demo')
    run_demo.main(['--seeds', '0', '1', '--work-dir', work_dir, '--cfg-options', *tiny_options])
    printed = capsys.readouterr().out
    # the demo dataset it was given is used as it is, not made again at the default size
    assert f"[demo] data in {demo_data}: {{'train': {{'images': 4," in printed
    assert read_dataset_meta(demo_data)['args']['num_train'] == 4
    assert '2 seed(s) [0, 1]' in printed and 'baseline AdamW lr=0.016' in printed
    assert 'netaug AdamW lr=0.004' in printed
    with open(osp.join(work_dir, 'comparison.json')) as f:
        runs = json.load(f)
    assert [run['spec']['seed'] for run in runs['netaug']['runs']] == [0, 1]
    assert all(set(run) >= {'val_ap50', 'train_ap50', 'train_time_s', 'train_peak_mib'}
               for method in runs.values() for run in method['runs'])
    assert runs['netaug']['runs'][0]['checkpoint'].endswith('deploy.pth')
    rows = [line for line in printed.splitlines() if line.startswith('| netaug')]
    assert len(rows) == 1 and '(2)' in rows[0]  # mean ± sd over 2 seeds
    # the baseline once more, for as many epochs as NetAug's time allowed, seed by seed
    for seed, base, netaug in zip((0, 1), runs['baseline']['runs'], runs['netaug']['runs']):
        epochs = round(netaug['train_time_s'] / base['train_time_s'])
        equal = json.load(open(osp.join(work_dir, 'baseline_equal_time', f's{seed}',
                                        'result.json')))
        assert f'train_cfg.max_epochs={max(epochs, 1)}' in equal['spec']['train_options']
    assert any(line.startswith('| baseline, equal time') for line in printed.splitlines())
    assert matplotlib.image.imread(osp.join(work_dir, 'comparison.png')).ndim == 3

    # the same runs by another tool: read back from result.json, nothing trained again
    compare_runs.main(['--run', 'baseline', BASELINE, '--run', 'netaug', NETAUG,
                       '--test-config', BASELINE, '--seeds', '0', '1', '--work-dir', work_dir,
                       '--splits', 'val', 'train', '--cfg-options', *tiny_options])
    printed = capsys.readouterr().out
    assert printed.count('done before') == 4 and 'Epoch(train)' not in printed


@pytest.mark.slow
def test_lr_grid_reports_every_cell_and_each_best(tmp_path, tiny_options):
    work_dir = str(tmp_path / 'grid')
    lr_grid.main([BASELINE, NETAUG, '--lr-mults', '1', '4', '--seeds', '0', '--work-dir',
                  work_dir, '--cfg-options', *tiny_options])
    with open(osp.join(work_dir, 'lr_grid.json')) as f:
        grid = json.load(f)
    assert grid['grid'] == {'baseline': [0.016, 0.064], 'netaug': [0.004, 0.016]}
    for method in ('baseline', 'netaug'):
        cells = grid['cells'][method]
        assert len(cells) == 2 and all(len(v) == 1 for v in cells.values())
        best = max(cells, key=lambda lr: (cells[lr][0], -float(lr)))
        assert grid['best_lr'][method] == float(best)
    with open(osp.join(work_dir, 'lr_grid.md')) as f:
        report = f.read()
    assert '| x4 | 0.064 |' in report and 'NetAug at its best minus baseline at its best' in report
    assert osp.isfile(osp.join(work_dir, 'netaug', 'lr0.016', 's0', 'deploy.pth'))


def test_epoch_options_keep_the_schedule_shape():
    from mmengine.config import Config
    cfg = Config.fromfile(BASELINE)  # 12 epochs, x0.1 at epochs 9 and 10, 40 warm-up iterations
    assert epoch_options(cfg, 27) == [
        'train_cfg.max_epochs=27', 'train_cfg.val_interval=27', 'param_scheduler.1.end=27',
        'param_scheduler.1.milestones=[20,23]']  # 20.25 and 22.5 rounded half up
    cfg.param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=12,
                               T_max=12)
    assert epoch_options(cfg, 6)[-2:] == ['param_scheduler.end=6', 'param_scheduler.T_max=6']
    # max_epochs shortened by an override: the scheduler still runs past the end, scaled alike
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, end=12,
                                milestones=[9, 10])]
    assert epoch_options(cfg, 4)[-2:] == ['param_scheduler.0.end=24',
                                          'param_scheduler.0.milestones=[18,20]']
    cfg.train_cfg.max_epochs = 12
    cfg.param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, end=10,
                                milestones=[8])]
    with pytest.raises(ValueError, match='param_scheduler.0 ends at epoch 10, before the end'):
        epoch_options(cfg, 24)


def test_train_split_of_a_coco_config_is_read_with_its_own_annotations():
    """AP50 on the training images of a COCO-layout config: the test loader reads the train
    annotation file, image folder and root, and CocoMetric its ground truth from the same file."""
    config = osp.join(REPO_ROOT, 'configs', 'demo', 'ssdlite_mbv2_demo.py')
    options = split_options(RunSpec(config, config, 'unused', 0, splits=('train', )), 'train')
    assert options == [
        'test_dataloader.dataset.ann_file=annotations/instances_train.json',
        'test_dataloader.dataset.data_root=data/demo/',
        'test_dataloader.dataset.data_prefix.img=VOCdevkit/VOCdemo/JPEGImages/',
        'test_evaluator.ann_file=data/demo/annotations/instances_train.json']


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_an_edited_config_runs_again(tmp_path, tiny_options,
                                                                    capsys):
    spec = RunSpec(BASELINE, BASELINE, str(tmp_path / 'run'), 0, tuple(tiny_options))
    first = run_experiment(spec)
    assert not first['resumed'] and first['spec']['config_fingerprint']
    os.remove(osp.join(spec.work_dir, RESULT_FILE))  # interrupted after training, before testing
    capsys.readouterr()
    again = run_experiment(spec)
    assert again['resumed'] and again['val_ap50'] == first['val_ap50']
    assert 'Epoch(train)' not in capsys.readouterr().out  # resumed at its end: nothing to train
    edited = spec._replace(train_options=('optim_wrapper.optimizer.lr=0.001', ))
    rerun = run_experiment(edited)
    assert not rerun['resumed']
    assert rerun['spec']['config_fingerprint'] != first['spec']['config_fingerprint']
