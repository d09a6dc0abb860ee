"""Bad input ends in an error that names the file and the fix, and nothing is lost: data,
checkpoints, configs and the runner's own checks, through the demo configs on tiny data."""
import os
import os.path as osp
import re
import shutil
import time

import pytest
from mmengine.registry import RUNNERS

from conftest import REPO_ROOT, tiny_cfg
from netaug_det.datasets.checks import DataError
from netaug_det.tools import check_dataset, export_deployable
from netaug_det.experiments.sweep import collect_cells, run_dir

BASELINE = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
NETAUG = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')
VOC = 'VOCdevkit/VOCdemo'


@pytest.fixture
def data(demo_data, tmp_path):
    """A private copy of the shared tiny demo data, to be broken by a test; its root ends
    with '/'."""
    root = tmp_path / 'demo'
    shutil.copytree(demo_data, root)
    return f'{root}/'


@pytest.fixture(scope='module')
def netaug_run(trained_runs):
    """A one-epoch NetAug run at input_size 64: epoch_1.pth (a training checkpoint) and
    deploy.pth (the session's, tests/conftest.py)."""
    return trained_runs / 'netaug'


def first_annotation(root: str) -> str:
    with open(osp.join(root, VOC, 'ImageSets', 'Main', 'train.txt')) as f:
        image_id = f.readline().strip()
    return osp.join(root, VOC, 'Annotations', f'{image_id}.xml')


def edit(path: str, tag: str, value: str) -> None:
    """Sets the first ``<tag>`` of an annotation file to ``value``."""
    with open(path) as f:
        text = f.read()
    text, count = re.subn(f'<{tag}>[^<]*</{tag}>', f'<{tag}>{value}</{tag}>', text, count=1)
    assert count == 1
    with open(path, 'w') as f:
        f.write(text)


def train_loader_error(data: str, tmp_path, **options) -> str:
    runner = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'work', **options))
    with pytest.raises(DataError) as error:
        runner.build_dataloader(runner.cfg.train_dataloader)
    return str(error.value)


@pytest.mark.slow
def test_missing_data_names_the_generator(tmp_path):
    runner = RUNNERS.build(tiny_cfg(BASELINE, str(tmp_path / 'nowhere') + '/', tmp_path / 'work'))
    with pytest.raises(DataError, match='(?s)data not found.*nowhere/VOCdevkit.*make_demo_data'):
        runner.train()


def truncate_first_annotation(data: str) -> str:
    xml = first_annotation(data)
    with open(xml) as f:
        text = f.read()
    with open(xml, 'w') as f:
        f.write(text[:len(text) // 2])
    return xml


def test_truncated_annotation_is_named(data, tmp_path):
    xml = truncate_first_annotation(data)
    message = train_loader_error(data, tmp_path)
    assert xml in message and 'unreadable annotation' in message


def test_truncated_annotation_inside_a_concat_dataset_is_named(data, tmp_path):
    """The VOC 07+12 configs train on a ConcatDataset: its inner datasets are checked too."""
    xml = truncate_first_annotation(data)
    runner = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'work'))
    loader = runner.cfg.train_dataloader
    loader.dataset = dict(type='ConcatDataset', datasets=[loader.dataset, loader.dataset])
    with pytest.raises(DataError, match='unreadable annotation') as error:
        runner.build_dataloader(loader)
    assert xml in str(error.value)


def test_bad_data_inside_a_concat_dataset_names_its_annotation_file(data, tmp_path):
    image = first_annotation(data).replace('Annotations', 'JPEGImages').replace('.xml', '.jpg')
    open(image, 'w').close()
    runner = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'work'))
    loader = runner.cfg.train_dataloader
    ann_file = loader.dataset.ann_file
    loader.dataset = dict(type='ConcatDataset', datasets=[loader.dataset, loader.dataset])
    with pytest.raises(DataError, match='empty \\(0 bytes\\)') as error:
        runner.build_dataloader(loader)
    assert f'bad data in {ann_file}, {ann_file}:' in str(error.value)
    assert image in str(error.value)


def test_empty_image_is_named(data, tmp_path):
    image = first_annotation(data).replace('Annotations', 'JPEGImages').replace('.xml', '.jpg')
    open(image, 'w').close()
    message = train_loader_error(data, tmp_path)
    assert image in message and 'empty (0 bytes)' in message


def test_box_without_area_is_named(data, tmp_path):
    xml = first_annotation(data)
    with open(xml) as f:
        xmin = int(re.search('<xmin>([0-9]+)</xmin>', f.read()).group(1))
    edit(xml, 'xmax', str(xmin - 5))
    message = train_loader_error(data, tmp_path)
    assert xml in message and 'no area (xmin >= xmax' in message


def test_metainfo_without_matching_class_lists_the_classes_there(data, tmp_path):
    cat_dog = dict(dataset=dict(metainfo=dict(classes=('cat', 'dog'))))
    message = train_loader_error(data, tmp_path, train_dataloader=cat_dog,
                                 test_dataloader=cat_dog, model=dict(bbox_head=dict(num_classes=2)))
    assert "no object of the metainfo classes ('cat', 'dog')" in message
    assert 'disc' in message and 'set metainfo.classes' in message


def test_objects_outside_the_metainfo_are_reported(data, tmp_path, capsys):
    edit(first_annotation(data), 'name', 'unicorn')
    runner = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'work'))
    runner.build_dataloader(runner.cfg.train_dataloader)
    assert "classes outside the metainfo are not used" in capsys.readouterr().out
    with pytest.raises(SystemExit, match='problem'):
        edit(first_annotation(data), 'xmax', '1')
        check_dataset.main([BASELINE, '--cfg-options', f'data_root={data}'])
    report = capsys.readouterr().out
    assert "'unicorn': 1" in report and 'no area' in report


@pytest.mark.slow
def test_checkpoint_mismatches_are_explained(netaug_run, demo_data, tmp_path):
    data = demo_data
    baseline = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'b',
                                      load_from=str(netaug_run / 'epoch_1.pth')))
    with pytest.raises(RuntimeError, match='NetAug training checkpoint.*deploy.pth.*'
                       'export_deployable'):
        baseline.test()
    netaug = RUNNERS.build(tiny_cfg(NETAUG, data, tmp_path / 'n',
                                    load_from=str(netaug_run / 'deploy.pth')))
    with pytest.raises(RuntimeError, match='a plain checkpoint.*baseline config'):
        netaug.test()
    resumed = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'r', resume=True,
                                     load_from=str(netaug_run / 'epoch_1.pth')))
    with pytest.raises(RuntimeError, match='NetAug training checkpoint.*resume the run, use its '
                       'NetAug config'):
        resumed.train()
    partial = RUNNERS.build(tiny_cfg(NETAUG, data, tmp_path / 'p', allow_partial_load=True,
                                     load_from=str(netaug_run / 'deploy.pth')))
    with pytest.raises(RuntimeError, match='a plain checkpoint'):
        partial.test()  # never evaluate a partly loaded model
    partial.train()  # fine-tuning from a partial load is allowed on purpose (mmengine logs it)


@pytest.mark.slow
def test_only_the_data_a_run_uses_is_checked(data, tmp_path):
    """Testing needs the test split only; training checks the training split first."""
    train_list = osp.join(data, VOC, 'ImageSets', 'Main', 'train.txt')
    os.remove(train_list)
    runner = RUNNERS.build(tiny_cfg(BASELINE, data, tmp_path / 'w'))
    runner.test()
    with pytest.raises(DataError, match=f'(?s)data not found.*train_dataloader.*{train_list}'):
        runner.train()


@pytest.mark.slow
def test_sync_bn_with_netaug_is_refused(demo_data, tmp_path):
    cfg = tiny_cfg(NETAUG, demo_data, tmp_path / 'w', sync_bn='torch')
    with pytest.raises(RuntimeError, match='sync_bn.*without sync_bn'):
        RUNNERS.build(cfg).train()


@pytest.mark.slow
def test_export_tool_refuses_wrong_pairs_and_writes_nothing(netaug_run, tmp_path):
    out = str(tmp_path / 'out.pth')
    cases = [
        ([BASELINE, str(netaug_run / 'epoch_1.pth')], 'builds a plain model'),
        ([NETAUG, str(netaug_run / 'deploy.pth')], 'a plain checkpoint'),
        ([NETAUG, str(netaug_run / 'epoch_1.pth'), '--check-config', NETAUG],
         'does not load into .*nothing was written'),
        ([NETAUG, str(tmp_path / 'missing.pth')], 'checkpoint not found'),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit, match=message):
            export_deployable.main(argv + ['--out', out])
        assert not osp.exists(out)
    export_deployable.main([NETAUG, str(netaug_run / 'epoch_1.pth'), '--out', out,
                            '--check-config', BASELINE])
    assert osp.isfile(out)


@pytest.mark.slow
def test_netaug_model_without_hook_is_refused(demo_data, tmp_path):
    cfg = tiny_cfg(NETAUG, demo_data, tmp_path / 'w', custom_hooks=[])
    with pytest.raises(RuntimeError, match="NetAug modules \\['backbone'\\] but no NetAugHook"):
        RUNNERS.build(cfg).train()
    cfg.allow_netaug_without_hook = True
    cfg.work_dir = str(tmp_path / 'allowed')
    RUNNERS.build(cfg).train()


def test_amp_without_gpu_says_what_to_do(demo_data, tmp_path, monkeypatch):
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    cfg = tiny_cfg(BASELINE, demo_data, tmp_path / 'w',
                   optim_wrapper=dict(type='AmpOptimWrapper'))
    with pytest.raises(RuntimeError, match='needs a GPU.*drop --amp'):
        RUNNERS.build(cfg)


def test_stale_checkpoint_parts_are_removed_at_start(demo_data, tmp_path):
    work_dir = tmp_path / 'w'
    work_dir.mkdir()
    stale, fresh = work_dir / '.tmp_abc.part', work_dir / '.tmp_def.part'
    stale.write_bytes(b'half a checkpoint')
    fresh.write_bytes(b'a write in progress')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    RUNNERS.build(tiny_cfg(BASELINE, demo_data, work_dir))
    assert not stale.exists() and fresh.exists()


@pytest.mark.slow
def test_sweep_collect_checks_the_input_size_of_each_run(netaug_run, tmp_path):
    # a run dumped with input_size=64 (its work dir holds the config mmengine dumped) in r96/
    folder = run_dir(str(tmp_path), 'netaug', 96)
    shutil.copytree(netaug_run, folder)
    with pytest.raises(ValueError, match='resolution 96 but was trained at input_size=64'):
        collect_cells(str(tmp_path), (96, ), {96: 1.0}, 'pascal_voc/AP50')
