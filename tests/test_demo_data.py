"""The demo data generator: valid VOC and COCO files mmdet loads, deterministic, as configured."""
import filecmp
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from mmdet.datasets import CocoDataset, VOCDataset
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import DefaultScope

from netaug_det.datasets import DEMO_CLASSES, generate_demo_dataset
from netaug_det.datasets.demo_data import VOC_SUBDIR
from netaug_det.tools import make_demo_data

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'demo')
SMALL = dict(num_train=6, num_val=3, seed=3, img_size=(64, 96), max_objects=5, min_object_size=6)
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='mmdet.LoadAnnotations', with_bbox=True)]


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    generate_demo_dataset(root, **SMALL)
    return root


def voc_dataset(root: str, split: str) -> VOCDataset:
    return VOCDataset(
        data_root=osp.join(root, 'VOCdevkit'),
        ann_file=f'{VOC_SUBDIR}/ImageSets/Main/{split}.txt',
        data_prefix=dict(sub_data_root=f'{VOC_SUBDIR}/'),
        metainfo=dict(classes=DEMO_CLASSES),
        pipeline=PIPELINE,
        test_mode=True)


def coco_dataset(root: str, split: str) -> CocoDataset:
    return CocoDataset(
        data_root=root,
        ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'VOCdevkit/{VOC_SUBDIR}/JPEGImages/'),
        metainfo=dict(classes=DEMO_CLASSES),
        pipeline=PIPELINE,
        test_mode=True)


def all_files(root: str) -> list:
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_layout_and_sizes_follow_the_arguments(demo_root):
    voc = osp.join(demo_root, 'VOCdevkit', VOC_SUBDIR)
    ids = {}
    for split in ('train', 'val'):
        with open(osp.join(voc, 'ImageSets', 'Main', f'{split}.txt')) as f:
            ids[split] = f.read().split()
    assert len(ids['train']) == SMALL['num_train'] and len(ids['val']) == SMALL['num_val']
    assert not set(ids['train']) & set(ids['val'])
    low, high = SMALL['img_size']
    num_objects = 0
    for img_id in ids['train'] + ids['val']:
        image = cv2.imread(osp.join(voc, 'JPEGImages', f'{img_id}.jpg'))
        root = ET.parse(osp.join(voc, 'Annotations', f'{img_id}.xml')).getroot()
        height, width = image.shape[:2]
        assert low <= height <= high and low <= width <= high
        assert (int(root.find('size/width').text), int(root.find('size/height').text)) == \
            (width, height)
        objects = root.findall('object')
        assert 1 <= len(objects) <= SMALL['max_objects']
        for obj in objects:
            assert obj.find('name').text in DEMO_CLASSES
            x0, y0, x1, y1 = (int(obj.find(f'bndbox/{k}').text)
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            assert 1 <= x0 <= x1 <= width and 1 <= y0 <= y1 <= height
        num_objects += len(objects)
    with open(osp.join(demo_root, 'meta.json')) as f:
        meta = json.load(f)
    assert sum(split['objects'] for split in meta['splits'].values()) == num_objects


@pytest.mark.parametrize('split', ['train', 'val'])
def test_mmdet_loads_voc_and_coco_files_with_the_same_boxes(demo_root, split):
    voc, coco = voc_dataset(demo_root, split), coco_dataset(demo_root, split)
    assert len(voc) == len(coco) == SMALL[f'num_{split}']
    for index in range(len(voc)):
        voc_item, coco_item = voc[index], coco[index]
        assert voc_item['img_path'] == coco_item['img_path']
        assert voc_item['img'].shape == coco_item['img'].shape
        np.testing.assert_array_equal(voc_item['gt_bboxes_labels'],
                                      coco_item['gt_bboxes_labels'])
        # VOC boxes are inclusive pixel indices, COCO boxes pixel edges: same pixels, +1 at x2/y2
        np.testing.assert_array_equal(voc_item['gt_bboxes'].tensor.numpy() + [0, 0, 1, 1],
                                      coco_item['gt_bboxes'].tensor.numpy())
        assert not voc_item['gt_ignore_flags'].any()


def test_small_objects_of_every_class_are_present(tmp_path):
    meta = generate_demo_dataset(str(tmp_path), num_train=40, num_val=1, seed=0)
    with open(tmp_path / 'annotations' / 'instances_train.json') as f:
        annotations = json.load(f)['annotations']
    assert meta['splits']['train']['objects'] == len(annotations)
    assert {a['category_id'] for a in annotations} == set(range(1, len(DEMO_CLASSES) + 1))
    sides = np.array([max(a['bbox'][2:]) for a in annotations])
    assert sides.min() < 16 and sides.max() > 64


def test_same_seed_same_files_other_seed_other_images(demo_root, tmp_path):
    again, other = str(tmp_path / 'again'), str(tmp_path / 'other')
    generate_demo_dataset(again, **SMALL)
    generate_demo_dataset(other, **dict(SMALL, seed=SMALL['seed'] + 1))
    files = all_files(demo_root)
    assert files == all_files(again) == all_files(other)
    _, mismatch, errors = filecmp.cmpfiles(demo_root, again, files, shallow=False)
    assert mismatch == [] and errors == []
    images = [f for f in files if f.endswith('.jpg')]
    _, mismatch, _ = filecmp.cmpfiles(demo_root, other, images, shallow=False)
    assert mismatch == images


def test_a_dataset_made_before_is_kept_and_one_of_other_arguments_refused(tmp_path, capsys):
    """Same arguments: the files are kept as they are (not written again); other arguments
    (here a plan's or the tool's defaults over a user's own dataset): refused, nothing written."""
    root = str(tmp_path)
    generate_demo_dataset(root, **SMALL)
    files = sorted(p for p in tmp_path.rglob('*') if p.is_file())
    for path in files:
        os.utime(path, (0, 0))
    assert generate_demo_dataset(root, **SMALL)['args']['num_val'] == SMALL['num_val']
    assert all(path.stat().st_mtime == 0 for path in files)
    with pytest.raises(ValueError, match=f'{root} holds a dataset made with .*nothing was '
                       'written over it. Remove the folder'):
        generate_demo_dataset(root, **dict(SMALL, num_val=2))
    with pytest.raises(SystemExit) as error:
        make_demo_data.main(['--out-dir', root])
    assert error.value.code == 2 and 'choose another output folder' in capsys.readouterr().err
    assert sorted(p for p in tmp_path.rglob('*') if p.is_file()) == files
    assert all(path.stat().st_mtime == 0 for path in files)


def test_bad_sizes_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match='min_object_size < 0.45'):
        generate_demo_dataset(str(tmp_path), img_size=(32, 64), min_object_size=16)


def test_demo_configs_read_the_demo_data_at_their_input_size(demo_root):
    baseline = Config.fromfile(osp.join(CONFIG_DIR, 'yolov3_mbv2_demo.py'))
    netaug = Config.fromfile(osp.join(CONFIG_DIR, 'yolov3_mbv2_netaug_demo.py'))
    assert netaug.model.backbone.type == 'NetAugMobileNetV2'
    assert netaug.custom_hooks == [dict(type='NetAugHook')]
    assert netaug.model.neck == baseline.model.neck
    assert netaug.model.bbox_head == baseline.model.bbox_head
    assert baseline.model.bbox_head.num_classes == len(DEMO_CLASSES)
    size = baseline.input_size
    with DefaultScope.overwrite_default_scope('mmdet'):
        for loader, split in (('train_dataloader', 'train'), ('test_dataloader', 'val')):
            dataset = DATASETS.build(dict(baseline[loader].dataset, data_root=demo_root))
            assert len(dataset) == SMALL[f'num_{split}']
            assert dataset.metainfo['classes'] == DEMO_CLASSES
            assert dataset[0]['inputs'].shape == (3, size, size)
