"""mmdet's tools/test.py --tta on the letterboxed YOLOv3 pipelines: the configs' tta_pipeline
puts a flipped image's boxes back where the objects are (mmdet's default, which flips after Pad,
does not: it gave AP50 0.2 instead of 9.9), and a TTA pipeline that flips after Pad is refused
with the reason."""
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from conftest import REPO_ROOT
from netaug_det.engine.runner import NetAugDetRunner
from netaug_det.utils.config import apply_config_variables

CONFIG = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
BOX = (12, 30, 40, 70)  # x1, y1, x2, y2 of the white object in a 50 wide, 100 high image


def mmdet_default_tta_pipeline(test_pipeline: list) -> list:
    """What mmdet's tools/test.py --tta builds when a config has no tta_pipeline: the test
    pipeline with its last step replaced by a flip and the packing."""
    pack = dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                 'scale_factor', 'flip', 'flip_direction'))
    flips = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)]
    return test_pipeline[:-1] + [dict(type='TestTimeAug', transforms=[flips, [pack]])]


def recovered_boxes(pipeline: list, image_path: str) -> list:
    """Runs ``pipeline`` on the image, finds the object in each network input (what a perfect
    detector predicts there), rescales it to the image as the head does and merges the
    augmented boxes as DetTTAModel does: the box it reports for each augmentation."""
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        results = Compose(pipeline)(dict(
            img_path=image_path, img_id=0, instances=[
                dict(bbox=list(BOX), bbox_label=0, ignore_flag=0)]))
    boxes = []
    for inputs, sample in zip(results['inputs'], results['data_samples']):
        ys, xs = np.nonzero(inputs.float().mean(0).numpy() > 200)
        found = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float)
        scale_x, scale_y = sample.scale_factor
        found /= torch.tensor([scale_x, scale_y, scale_x, scale_y])
        merged = DetTTAModel.merge_aug_bboxes(None, [found], None, [sample.metainfo])
        boxes.append(merged[0].tolist())
    return boxes


def test_config_tta_pipeline_puts_flipped_boxes_back(tmp_path):
    image = np.zeros((100, 50, 3), np.uint8)  # letterboxing pads it on the right
    x1, y1, x2, y2 = BOX
    image[y1:y2, x1:x2] = 255
    image_path = str(tmp_path / 'tall.png')
    cv2.imwrite(image_path, image)
    cfg = Config.fromfile(CONFIG)
    apply_config_variables(cfg)

    for box in recovered_boxes(cfg.tta_pipeline, image_path):
        assert np.allclose(box, BOX, atol=1.5), box
    flipped, plain = recovered_boxes(mmdet_default_tta_pipeline(cfg.test_pipeline), image_path)
    assert np.allclose(plain, BOX, atol=1.5)
    assert abs(flipped[0] - BOX[0]) > 20, flipped  # mmdet's default: off by the padding


def mmdet_test_tta(config: str, work_dir, monkeypatch, drop_tta_keys: bool) -> Config:
    """Runs mmdet's own tools/test.py --tta on ``config`` (without its tta_model and
    tta_pipeline if ``drop_tta_keys``), testing replaced by a no-op: the config tested."""
    import mmdet
    seen = {}
    monkeypatch.setattr(NetAugDetRunner, 'test', lambda runner: seen.setdefault('cfg',
                                                                                   runner.cfg))
    if drop_tta_keys:
        fromfile = Config.fromfile

        def without_tta(*args, **kwargs):
            cfg = fromfile(*args, **kwargs)
            for key in ('tta_model', 'tta_pipeline'):
                cfg.pop(key)
            return cfg

        monkeypatch.setattr(Config, 'fromfile', without_tta)
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
    monkeypatch.setattr(sys, 'argv', [script, config, 'no_checkpoint.pth', '--tta',
                                      '--work-dir', str(work_dir)])
    runpy.run_path(script, run_name='__main__')
    return seen['cfg']


@pytest.mark.slow
def test_mmdet_test_tta_uses_the_config_tta_pipeline_at_the_input_size(tmp_path, monkeypatch):
    cfg = mmdet_test_tta(CONFIG, tmp_path, monkeypatch, drop_tta_keys=False)
    assert cfg.model.type == 'DetTTAModel'
    pipeline = cfg.test_dataloader.dataset.pipeline
    stages = pipeline[1].transforms
    assert [stage[0].type for stage in stages[:3]] == ['RandomFlip', 'Resize', 'Pad']
    assert stages[1][0].scale == (128, 128) and stages[2][0].size == (128, 128)


@pytest.mark.slow
def test_mmdet_default_tta_on_a_letterboxed_pipeline_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match='(?s)flips after Pad and LoadAnnotations.*land off '
                                         'the objects.*Set tta_pipeline'):
        mmdet_test_tta(CONFIG, tmp_path, monkeypatch, drop_tta_keys=True)
