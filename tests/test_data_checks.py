"""What makes a label wrong is caught by check_dataset and by the runner's start-up checks, with
the file and the fix: COCO categories that differ from metainfo.classes, duplicate image ids
and file names, EXIF orientations that load images turned against their boxes, truncated
images, and a head whose num_classes is not the data's."""
import json
import os.path as osp
import re

import mmcv
import pytest
from mmengine.registry import RUNNERS
from PIL import Image

from conftest import REPO_ROOT
from netaug_det.datasets.checks import DataError
from netaug_det.tools import check_dataset
from conftest import tiny_cfg
from test_bad_input import data  # noqa: F401 (fixture: a writable copy of the tiny demo data)

VOC_CONFIG = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
COCO_CONFIG = osp.join(REPO_ROOT, 'configs', 'demo', 'ssdlite_mbv2_demo.py')
TRAIN_JSON = osp.join('annotations', 'instances_train.json')
IMAGES = osp.join('VOCdevkit', 'VOCdemo', 'JPEGImages')


def runner_error(config: str, data: str, tmp_path, **options) -> str:
    """The runner's error when it builds the train dataloader (what training does first)."""
    runner = RUNNERS.build(tiny_cfg(config, data, tmp_path / 'work', **options))
    with pytest.raises(DataError) as error:
        runner.build_dataloader(runner.cfg.train_dataloader)
    return str(error.value)


def check_dataset_output(config: str, data: str, capsys, *args: str) -> str:
    """check_dataset's report and exit message; it must exit with a problem count."""
    with pytest.raises(SystemExit, match='problem') as error:
        check_dataset.main([config, *args, '--cfg-options', f'data_root={data}'])
    return capsys.readouterr().out + str(error.value)


def edit_json(path: str, change) -> None:
    with open(path) as f:
        coco = json.load(f)
    change(coco)
    with open(path, 'w') as f:
        json.dump(coco, f)


def rename_category(coco: dict) -> None:
    coco['categories'][1]['name'] = 'Ring'


def swap_categories(coco: dict) -> None:
    coco['categories'][0], coco['categories'][1] = coco['categories'][1], coco['categories'][0]


def duplicate_image_id(coco: dict) -> None:
    coco['images'][1]['id'] = coco['images'][0]['id']


def duplicate_file_name(coco: dict) -> None:
    coco['images'][1]['file_name'] = coco['images'][0]['file_name']


@pytest.mark.slow
@pytest.mark.parametrize('change, expected', [
    (rename_category, r"category names differ.*\['ring'\] are not in the file.*'Ring'"),
    (swap_categories, r'category names differ.*another order.*\[.ring., .disc.'),
    (duplicate_image_id, r'image id \d+ is used by 2 images.*own id'),
    (duplicate_file_name, r'listed under image ids \[\d+, \d+\].*merge'),
])
def test_coco_label_problems_are_caught(change, expected, data, tmp_path, capsys):
    """Each of these silently trained wrong labels and check_dataset said 'no problems found'."""
    ann_file = osp.join(data, TRAIN_JSON)
    edit_json(ann_file, change)
    message = runner_error(COCO_CONFIG, data, tmp_path)
    assert ann_file in message and re.search(expected, message, re.S), message
    output = check_dataset_output(COCO_CONFIG, data, capsys, '--fast')
    assert ann_file in output
    assert re.search(expected, output, re.S), output


def first_image(data: str) -> str:
    return osp.join(data, IMAGES, '000000.jpg')


def add_orientation(path: str, orientation: int) -> None:
    with Image.open(path) as image:
        image.load()
        exif = image.getexif()
        exif[0x0112] = orientation
        image.save(path, exif=exif, quality=95)


@pytest.mark.slow
def test_exif_orientation_against_the_boxes_is_caught(data, tmp_path, capsys):
    image = first_image(data)
    add_orientation(image, 6)
    stored = mmcv.imread(image, flag='color_ignore_orientation').shape[:2]
    assert stored[0] != stored[1], 'the test needs a non-square image'
    # the fault: mmcv's default decoding turns the image, the VOC/COCO boxes are not
    assert mmcv.imread(image).shape[:2] == stored[::-1]
    expected = r'EXIF orientation 6 .*stored frame.*color_ignore_orientation'
    assert re.search(expected, runner_error(VOC_CONFIG, data, tmp_path), re.S)
    output = check_dataset_output(VOC_CONFIG, data, capsys, '--fast')
    assert image in output and re.search(expected, output, re.S), output

    # a pipeline that decodes the stored pixels, the annotations' frame: nothing to report
    runner = RUNNERS.build(tiny_cfg(VOC_CONFIG, data, tmp_path / 'work2'))
    loader_cfg = runner.cfg.train_dataloader
    loader_cfg.dataset.pipeline[0].color_type = 'color_ignore_orientation'
    loader = runner.build_dataloader(loader_cfg)
    assert tuple(loader.dataset[0]['data_samples'].ori_shape) == stored


def test_annotations_in_the_turned_frame_are_accepted(data, capsys):
    """An annotation whose width and height are the turned image's (a tool that applied the
    orientation) matches mmcv's default decoding: no problem."""
    image = first_image(data)
    add_orientation(image, 6)
    xml = osp.join(data, 'VOCdevkit', 'VOCdemo', 'Annotations', '000000.xml')
    with open(xml) as f:
        text = f.read()
    width, height = (re.search(f'<{key}>(\\d+)</{key}>', text).group(1)
                     for key in ('width', 'height'))
    text = text.replace(f'<width>{width}</width>', f'<width>{height}</width>', 1)
    text = text.replace(f'<height>{height}</height>', f'<height>{width}</height>', 1)
    with open(xml, 'w') as f:
        f.write(text)
    check_dataset.main([VOC_CONFIG, '--fast', '--cfg-options', f'data_root={data}'])
    assert 'no problems found' in capsys.readouterr().out


@pytest.mark.slow
def test_truncated_jpeg_is_caught(data, tmp_path, capsys):
    """A JPEG cut in half passed check_dataset and failed (or trained grey pixels) later."""
    image = first_image(data)
    with open(image, 'rb') as f:
        content = f.read()
    with open(image, 'wb') as f:
        f.write(content[:len(content) // 2])
    output = check_dataset_output(VOC_CONFIG, data, capsys)
    assert image in output and 'cannot be decoded' in output and 'every image decoded' in output
    assert 'cannot be decoded' in runner_error(VOC_CONFIG, data, tmp_path)


def test_bytes_after_a_whole_jpeg_are_not_a_problem(data, capsys):
    """Data appended after the end marker (e.g. a phone's motion photo) decodes: accepted."""
    with open(first_image(data), 'ab') as f:
        f.write(b'\0' * 4096)
    check_dataset.main([VOC_CONFIG, '--cfg-options', f'data_root={data}'])
    assert 'no problems found (every image decoded)' in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize('num_classes', [5, 20])
def test_num_classes_other_than_the_data_is_refused_at_start(num_classes, demo_data,
                                                             tmp_path):
    """5 ended in a raw 'Class values must be smaller than num_classes' deep in the loss, 20
    trained without a word."""
    cfg = tiny_cfg(VOC_CONFIG, demo_data, tmp_path / 'work',
                   model=dict(bbox_head=dict(num_classes=num_classes)))
    expected = (f'model.bbox_head.num_classes is {num_classes}, but train_dataloader.dataset '
                r'.*has 6 classes.*model.bbox_head.num_classes=6')
    with pytest.raises(ValueError, match=expected):
        RUNNERS.build(cfg)
    with pytest.raises(SystemExit, match=expected):
        check_dataset.main([VOC_CONFIG, '--cfg-options', f'data_root={demo_data}',
                            f'model.bbox_head.num_classes={num_classes}'])
