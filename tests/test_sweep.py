"""The resolution sweep: iso-AP50 interpolation, seeds and their interval, metric collection,
outputs, a tiny real sweep over two seeds."""
import csv
import json
import os
import os.path as osp

import matplotlib.image
import pytest
from mmengine.config import Config

from conftest import REPO_ROOT
from test_experiment_integrity import fake_training
from netaug_det.datasets import generate_demo_dataset
from netaug_det.tools import resolution_sweep
from netaug_det.experiments.runs import IncompleteRunError, evaluator_type, finished_run
from netaug_det.experiments.sweep import (DEFAULT_RESOLUTIONS, SweepCell, SweepPoint, collect_cells,
                                    iso_ap50_reduction, run_dir, sweep_result,
                                    write_sweep_outputs)

VOC_KEY = 'pascal_voc/AP50'


def curve(*points):
    return [SweepPoint(*p) for p in points]


BASELINE = curve((256, 100.0, 50.0), (320, 150.0, 60.0), (416, 250.0, 65.0))


def test_reduction_interpolates_between_the_points_around_the_crossing():
    netaug = curve((256, 100.0, 55.0), (320, 150.0, 63.0), (416, 250.0, 70.0))
    iso = iso_ap50_reduction(BASELINE, netaug)
    # target 65 (baseline at 416, 250M); NetAug crosses 65 between 63 @150M and 70 @250M
    assert iso.status == 'interpolated' and iso.target_ap50 == 65.0
    assert iso.netaug_macs == pytest.approx(150 + 2 / 7 * 100)
    assert iso.reduction == pytest.approx(1 - (150 + 2 / 7 * 100) / 250)
    assert '29% fewer MACs' in iso.describe()


def test_reduction_takes_the_first_crossing_and_the_cheapest_best_baseline():
    baseline = curve((256, 100.0, 50.0), (320, 150.0, 65.0), (416, 250.0, 65.0))
    netaug = curve((416, 250.0, 80.0), (256, 100.0, 60.0), (320, 150.0, 70.0), (288, 120.0, 66))
    iso = iso_ap50_reduction(baseline, netaug)
    assert iso.baseline.resolution == 320
    assert iso.netaug_macs == pytest.approx(100 + 5 / 6 * 20)
    assert iso.reduction == pytest.approx(1 - (100 + 5 / 6 * 20) / 150)


def test_never_reaching_the_baseline_is_said_plainly():
    netaug = curve((256, 100.0, 40.0), (320, 150.0, 64.9), (416, 250.0, 50.0))
    iso = iso_ap50_reduction(BASELINE, netaug)
    assert iso.status == 'never' and iso.netaug_macs is None and iso.reduction is None
    assert 'never reaches' in iso.describe() and '64.9 at 320px' in iso.describe()


def test_reaching_it_below_the_grid_gives_a_bound():
    netaug = curve((256, 100.0, 66.0), (320, 150.0, 70.0))
    iso = iso_ap50_reduction(BASELINE, netaug)
    assert iso.status == 'at_most' and iso.netaug_macs == 100.0
    assert iso.reduction == pytest.approx(0.6) and 'at least 60% fewer' in iso.describe()
    exact = iso_ap50_reduction(BASELINE, curve((256, 100.0, 65.0), (320, 150.0, 70.0)))
    assert exact.status == 'interpolated' and exact.netaug_macs == 100.0


def test_needing_more_macs_is_a_negative_reduction():
    netaug = curve((256, 100.0, 50.0), (416, 250.0, 60.0), (448, 300.0, 70.0))
    iso = iso_ap50_reduction(BASELINE, netaug)
    assert iso.netaug_macs == pytest.approx(275.0) and iso.reduction == pytest.approx(-0.1)
    assert '10% more MACs' in iso.describe()


def write_json(path, data, lines=False):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(json.dumps(d) for d in data) if lines else json.dumps(data))


def test_finished_run_prefers_the_newest_test_then_the_last_validation(tmp_path):
    work_dir = str(tmp_path / 'run')
    train_scalars = osp.join(work_dir, '20260101_000000', 'vis_data', 'scalars.json')
    write_json(train_scalars, [{'loss': 3.0, 'step': 1}, {VOC_KEY: 0.2, 'step': 1},
                               {'loss': 2.0, 'step': 2}, {VOC_KEY: 0.25, 'step': 2}], lines=True)
    fake_training(work_dir, 2, 2)
    assert finished_run(work_dir, VOC_KEY).ap50 == pytest.approx(25.0)
    write_json(osp.join(work_dir, '20260101_010000', '20260101_010000.json'), {VOC_KEY: 0.3})
    write_json(osp.join(work_dir, '20260101_020000', '20260101_020000.json'), {VOC_KEY: 0.35})
    write_json(osp.join(work_dir, '20260101_030000', '20260101_030000.json'), {'coco/x': 1.0})
    assert finished_run(work_dir, VOC_KEY) == (pytest.approx(35.0), 0, 64)
    with pytest.raises(IncompleteRunError, match='coco/bbox_mAP_50'):
        finished_run(work_dir, 'coco/bbox_mAP_50')


def test_collect_seeds_and_outputs_from_hand_made_work_dirs(tmp_path):
    """Two seeds per point (``s<seed>`` folders) and one run laid out without seeds."""
    aps = {'baseline': {64: (0.5, 0.6), 96: (0.625, 0.675)},
           'netaug': {64: (0.5625, 0.6625), 96: (0.75, 0.7)}}
    stamp = '20260101_000000'
    for method, per_resolution in aps.items():
        for resolution, values in per_resolution.items():
            for seed, ap in enumerate(values):
                folder = run_dir(str(tmp_path), method, resolution, seed)
                fake_training(folder, 1, 1, seed=seed, input_size=resolution)
                write_json(osp.join(folder, stamp, f'{stamp}.json'), {VOC_KEY: ap})
    cells = collect_cells(str(tmp_path), (64, 96), {64: 10.0, 96: 22.5}, VOC_KEY)
    assert cells['netaug'] == [SweepCell(64, 10.0, (56.25, 66.25)),
                               SweepCell(96, 22.5, (75.0, 70.0))]
    result = sweep_result(cells, resamples=500)
    # mean curves: baseline best 65.0 at 96; NetAug reaches it between 61.25 @10 and 72.5 @22.5
    assert result.iso.netaug_macs == pytest.approx(10 + (65 - 61.25) / (72.5 - 61.25) * 12.5)
    low, high = result.interval
    assert low <= result.iso.reduction <= high
    paths = write_sweep_outputs(result, str(tmp_path / 'out'))
    with open(paths['csv']) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['method', 'resolution', 'MACs (M)', 'n', 'mean AP50', 'sd', 'min', 'max']
    assert rows[3] == ['netaug', '64', '10.0', '2', '61.25', '7.07', '56.25', '66.25']
    with open(paths['md']) as f:
        markdown = f.read()
    assert '| 96 | 22.5 | 65.0 ± 3.5 (2) | 62.5–67.5 | 72.5 ± 3.5 (2) | 70.0–75.0 |' in markdown
    assert '95% bootstrap interval over seeds' in markdown
    assert matplotlib.image.imread(paths['png']).shape[2] in (3, 4)

    single = collect_cells(str(tmp_path), (64, 96), {64: 10.0, 96: 22.5}, VOC_KEY, seeds=[1])
    assert single['baseline'][0].ap50s == (60.0, )
    assert 'no interval' in sweep_result(single).describe()
    legacy = tmp_path / 'legacy'
    for method, ap in (('baseline', 0.5), ('netaug', 0.625)):
        fake_training(run_dir(str(legacy), method, 64), 1, 1)
        write_json(osp.join(run_dir(str(legacy), method, 64), stamp, f'{stamp}.json'),
                   {VOC_KEY: ap})
    assert collect_cells(str(legacy), (64, ), {64: 1.0}, VOC_KEY)['netaug'][0].ap50s == (62.5, )
    missing = r'4 run\(s\) incomplete:\n.*baseline/r128/s0.*\n.*baseline/r128/s1'
    with pytest.raises(FileNotFoundError, match=missing):
        collect_cells(str(tmp_path), (64, 96, 128), {64: 1, 96: 2, 128: 3}, VOC_KEY, [0, 1])


def test_interval_says_when_it_includes_zero():
    cells = {'baseline': [SweepCell(64, 10.0, (50.0, 60.0)), SweepCell(96, 20.0, (55.0, 65.0))],
             'netaug': [SweepCell(64, 10.0, (45.0, 66.0)), SweepCell(96, 20.0, (52.0, 70.0))]}
    result = sweep_result(cells, resamples=500)
    low, high = result.interval
    assert (low is None or low <= 0 <= high) and 'includes zero' in result.describe()


def test_resamples_that_never_reach_the_target_rank_lowest():
    """NetAug never reaches the baseline's best in about a quarter of the resamples (both 96 px
    draws 52): those rank below every reduction, so the interval's lower end is "no reduction"
    and it includes zero, whatever the reaching resamples say."""
    cells = {'baseline': [SweepCell(64, 10.0, (50.0, 60.0)), SweepCell(96, 20.0, (55.0, 65.0))],
             'netaug': [SweepCell(64, 10.0, (45.0, 46.0)), SweepCell(96, 20.0, (52.0, 70.0))]}
    result = sweep_result(cells, resamples=400)
    assert 40 < result.undefined < 200
    low, high = result.interval
    assert low is None and high is not None
    assert 'no reduction (NetAug never reaches it) to' in result.describe()
    assert 'includes zero' in result.describe()


def test_resamples_above_the_grid_are_counted_as_bounds():
    """NetAug's cheapest mean point above the baseline's best in some resamples: those
    reductions are lower bounds, counted and said."""
    cells = {'baseline': [SweepCell(64, 10.0, (50.0, 50.0)), SweepCell(96, 20.0, (60.0, 60.0))],
             'netaug': [SweepCell(64, 10.0, (55.0, 65.0)), SweepCell(96, 20.0, (70.0, 70.0))]}
    result = sweep_result(cells, resamples=400)
    assert 0 < result.bounded < 400  # resamples drawing 65 twice at 64 px
    assert result.iso.status == 'interpolated' and 'lower bounds' in result.describe()


@pytest.mark.parametrize('config, metric, grid', [
    ('configs/yolov3_mbv2_voc.py', 'VOCMetric', (256, 288, 320, 352, 384, 416)),
    ('configs/yolov3_mbv2_coco.py', 'CocoMetric', (288, 320, 352, 384, 416, 448)),
])
def test_the_paper_grids_follow_the_evaluator(config, metric, grid):
    assert evaluator_type(Config.fromfile(osp.join(REPO_ROOT, config))) == metric
    assert DEFAULT_RESOLUTIONS[metric] == grid


@pytest.mark.slow
def test_tiny_sweep_end_to_end_launch_then_collect(tmp_path, monkeypatch):
    """Two resolutions, two seeds, one epoch of two iterations each, through the real tools."""
    data_root = str(tmp_path / 'data')
    generate_demo_dataset(data_root, num_train=4, num_val=2, img_size=(64, 80))
    loaders = ('train_dataloader', 'test_dataloader')
    options = ['train_cfg.max_epochs=1', 'val_cfg=None', 'val_dataloader=None',
               'val_evaluator=None'] + [
        f'{loader}.{key}' for loader in loaders for key in (
            f'dataset.data_root={data_root}', 'batch_size=2', 'num_workers=0',
            'persistent_workers=False')
    ]
    work_dir = str(tmp_path / 'sweep')
    argv = [osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py'),
            osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py'),
            '--resolutions', '64', '96', '--seeds', '0', '1', '--work-dir', work_dir,
            '--netaug-options', 'optim_wrapper.optimizer.lr=0.004', '--cfg-options', *options]
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # children: no OpenMP contention on small CPUs
    monkeypatch.chdir(tmp_path)
    resolution_sweep.main(argv)
    assert osp.isfile(osp.join(run_dir(work_dir, 'netaug', 96, 1), 'deploy.pth'))
    with open(osp.join(run_dir(work_dir, 'netaug', 96, 1), 'result.json')) as f:
        result = json.load(f)
    assert result['spec']['seed'] == 1
    assert result['spec']['train_options'] == ['optim_wrapper.optimizer.lr=0.004']
    with open(osp.join(work_dir, 'resolution_sweep.csv')) as f:
        rows = list(csv.reader(f))
    assert [row[:2] for row in rows[1:]] == [['baseline', '64'], ['baseline', '96'],
                                             ['netaug', '64'], ['netaug', '96']]
    assert all(row[3] == '2' for row in rows[1:])
    assert 0 < float(rows[1][2]) < float(rows[2][2])
    assert all(0 <= float(value) <= 100 for row in rows[1:] for value in row[4:])
    assert osp.isfile(osp.join(work_dir, 'resolution_sweep.png'))

    resolution_sweep.main(argv + ['--collect', '--out-dir', str(tmp_path / 'again')])
    with open(tmp_path / 'again' / 'resolution_sweep.csv') as f:
        assert list(csv.reader(f)) == rows
