"""Config variables reach every path derived from them whichever file or override sets them:
the README's downstream config (a child file that sets data_root), built exactly as mmdet's own
tools/train.py and this project's tools/train.py build it, with and without --cfg-options."""
import os.path as osp
import runpy
import sys

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT
from netaug_det.engine.runner import NetAugDetRunner
from netaug_det.tools import train as our_train
from netaug_det.utils.config import apply_config_variables

# The README's downstream config ("A team's own project inherits by path ..."), its base path
# pointed at this checkout.
README_CHILD = """\
# my_project/configs/my_netaug_detector.py
_base_ = '{base}'   # or your own baseline + the two lines
custom_imports = dict(imports=['netaug_det'], allow_failed_imports=False)
data_root = '/datasets/VOCdevkit/'    # VOC elsewhere: every dataset and evaluator path follows
"""


def write_child(tmp_path, base: str, text: str = README_CHILD) -> str:
    path = tmp_path / 'my_project' / 'configs' / 'my_netaug_detector.py'
    path.parent.mkdir(parents=True)
    path.write_text(text.format(base=osp.join(REPO_ROOT, 'configs', base)))
    return str(path)


def built_cfg(tool: str, config: str, work_dir, monkeypatch, *options: str) -> Config:
    """The config the runner trains, as ``tool`` ('mmdet': mmdet's own tools/train.py, run as
    a script; 'ours': netaug_det.tools.train) builds it, training replaced by a no-op."""
    seen = {}
    monkeypatch.setattr(NetAugDetRunner, 'train', lambda runner: seen.setdefault('cfg',
                                                                                    runner.cfg))
    argv = [config, '--work-dir', str(work_dir)] + (['--cfg-options', *options] if options
                                                    else [])
    if tool == 'mmdet':
        import mmdet
        script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
        monkeypatch.setattr(sys, 'argv', [script] + argv)
        runpy.run_path(script, run_name='__main__')
    else:
        our_train.main(argv)
    return seen['cfg']


def assert_voc_under(cfg: Config, root: str) -> None:
    train = cfg.train_dataloader.dataset.datasets  # VOC 2007 + 2012
    assert [d.data_root for d in train] == [root] * 2
    assert [d.ann_file for d in train] == [f'VOC{year}/ImageSets/Main/trainval.txt'
                                           for year in (2007, 2012)]
    assert [d.data_prefix for d in train] == [dict(sub_data_root=f'VOC{year}/')
                                              for year in (2007, 2012)]
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_root == root
        assert loader.dataset.ann_file == 'VOC2007/ImageSets/Main/test.txt'
    assert 'data/VOCdevkit' not in cfg.pretty_text


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['mmdet', 'ours'])
def test_readme_child_config_sets_data_root(tool, tmp_path, monkeypatch):
    """The README's snippet as written, through both train scripts: its data_root reaches
    every dataset (it was ignored: the inherited data/VOCdevkit/ stayed); a --cfg-options
    data_root on top of it wins; input_size=320 from the README's command line too."""
    child = write_child(tmp_path, 'yolov3_mbv2_netaug_voc.py')
    cfg = built_cfg(tool, child, tmp_path / 'a', monkeypatch, 'input_size=320')
    assert_voc_under(cfg, '/datasets/VOCdevkit/')
    sizes = {tuple(t.scale) for t in cfg.train_dataloader.dataset.datasets[0].pipeline
             if t.type == 'Resize'}
    assert sizes == {(320, 320)}

    cfg = built_cfg(tool, child, tmp_path / 'b', monkeypatch, 'data_root=/mnt/voc/')
    assert_voc_under(cfg, '/mnt/voc/')


def load(config: str, **options) -> Config:
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    apply_config_variables(cfg)
    return cfg


def test_child_of_a_coco_config_moves_datasets_and_evaluator(tmp_path):
    child = write_child(tmp_path, 'yolov3_mbv2_coco.py',
                        "_base_ = '{base}'\ndata_root = '/datasets/coco/'\n")
    for cfg, root in ((load(child), '/datasets/coco/'),
                      (load(child, data_root='/mnt/coco/'), '/mnt/coco/')):
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            assert loader.dataset.data_root == root
        assert cfg.train_dataloader.dataset.ann_file == 'annotations/instances_train2017.json'
        assert cfg.train_dataloader.dataset.data_prefix == dict(img='train2017/')
        assert cfg.val_evaluator.ann_file == root + 'annotations/instances_val2017.json'
        assert cfg.test_evaluator.ann_file == root + 'annotations/instances_val2017.json'


def test_child_of_a_demo_config_moves_its_data(tmp_path):
    """A child of a config that itself sets data_root over an inherited one (the demo: data/demo/
    over data/VOCdevkit/) and of one deriving it from another variable (SSDLite: demo_root)."""
    child = write_child(tmp_path, 'demo/yolov3_mbv2_demo.py',
                        "_base_ = '{base}'\ndata_root = '/datasets/demo/'\n")
    cfg = load(child)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_root == '/datasets/demo/'
        assert loader.dataset.data_prefix == dict(sub_data_root='VOCdevkit/VOCdemo/')
    ssdlite = tmp_path / 'ssdlite_child.py'
    ssdlite.write_text(f"_base_ = '{REPO_ROOT}/configs/demo/ssdlite_mbv2_demo.py'\n"
                       "data_root = '/datasets/demo/'\n")
    cfg = load(str(ssdlite))
    assert cfg.train_dataloader.dataset.data_root == '/datasets/demo/'
    assert cfg.test_evaluator.ann_file == '/datasets/demo/annotations/instances_val.json'


def test_child_that_sets_input_size_moves_inherited_pipelines(tmp_path):
    """input_size set in a child file (it used to be refused: the inherited pipelines kept
    416), the TTA pipeline included; a --cfg-options on top of it wins."""
    child = write_child(tmp_path, 'yolov3_mbv2_voc.py', "_base_ = '{base}'\ninput_size = 320\n")
    for cfg, size in ((load(child), 320), (load(child, input_size=256), 256)):
        pipelines = [cfg.val_dataloader.dataset.pipeline, cfg.tta_pipeline[1].transforms[1:3]]
        pipelines += [d.pipeline for d in cfg.train_dataloader.dataset.datasets]
        steps = [t[0] if isinstance(t, list) else t for p in pipelines for t in p]
        sizes = {tuple(t.get('scale', t.get('size'))) for t in steps
                 if t.type in ('Resize', 'Pad')}
        assert sizes == {(size, size)}


def test_mmdet_pair_input_size_is_kept_and_a_new_pair_refused(tmp_path):
    """mmdet's own configs name a (width, height) input_size and build their pipelines from it
    in the file: kept as it is, and a new pair (which would not reach those pipelines) refused."""
    child = tmp_path / 'mmdet_child.py'
    child.write_text("_base_ = 'mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py'\n")
    assert tuple(load(str(child)).input_size) == (320, 320)
    with pytest.raises(ValueError, match=r"input_size=\(416, 416\).*pipelines' scales"):
        load(str(child), input_size=(416, 416))
