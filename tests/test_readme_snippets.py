"""The config snippets of the README and docs/usage.md, read from those files and built as a
user would write them: a NetAug variant of a project config, mmdet's own YOLOv3-MobileNetV2 with
NetAug, and a team's downstream config that moves the data (``/opt/netaug_det`` in it stands for
the checkout)."""
import os
import os.path as osp
import re
from pathlib import Path
from typing import List

import pytest
from mmdet.models.backbones import MobileNetV2
from mmengine.config import Config

from conftest import REPO_ROOT
from netaug_det.models.builders import build_detector
from netaug_det.models.netaug import export_plain_model
from netaug_det.utils.config import apply_config_variables, backbone_checkpoint


def python_blocks(doc: str) -> List[str]:
    """The ```python blocks of ``doc`` (a path relative to the checkout)."""
    text = Path(REPO_ROOT, doc).read_text()
    return re.findall(r'^```python\n(.*?)^```$', text, flags=re.S | re.M)


def snippet(doc: str, marker: str) -> str:
    """The one python block of ``doc`` that contains ``marker``."""
    found = [block for block in python_blocks(doc) if marker in block]
    assert len(found) == 1, f'{doc}: {len(found)} python blocks contain {marker!r}'
    return found[0]


def load(path: Path) -> Config:
    cfg = Config.fromfile(str(path))
    apply_config_variables(cfg)
    return cfg


def hooks(cfg: Config) -> List[str]:
    return [hook['type'] for hook in cfg.get('custom_hooks', [])]


def test_readme_netaug_variant_of_a_project_config(tmp_path):
    """The README's two lines beside the project's configs (its relative bases resolve as in
    configs/): the NetAug backbone and hook, and a deployable model that is the baseline's."""
    for entry in os.listdir(osp.join(REPO_ROOT, 'configs')):
        (tmp_path / entry).symlink_to(osp.join(REPO_ROOT, 'configs', entry))
    path = tmp_path / 'my_netaug_variant.py'
    path.write_text(snippet('README.md', "'./yolov3_mbv2_voc.py'"))
    cfg = load(path)
    assert cfg.model.backbone.type == 'NetAugMobileNetV2' and 'NetAugHook' in hooks(cfg)
    baseline = build_detector(load(tmp_path / 'yolov3_mbv2_voc.py'))
    baseline.load_state_dict(export_plain_model(build_detector(cfg)).state_dict(), strict=True)


def test_readme_mmdet_config_with_netaug(tmp_path):
    """mmdet's own YOLOv3-MobileNetV2 with the README's lines: NetAug's exported backbone loads
    strictly into mmdet's MobileNetV2 of that config (same arguments and defaults)."""
    path = tmp_path / 'yolov3_mobilenetv2_netaug.py'
    path.write_text(snippet('README.md', 'mmdet::'))
    cfg = load(path)
    assert cfg.model.backbone.type == 'NetAugMobileNetV2' and 'NetAugHook' in hooks(cfg)
    plain_args = {key: value for key, value in cfg.model.backbone.items()
                  if key not in ('type', 'init_cfg')}
    mmdet_backbone = MobileNetV2(**plain_args)
    exported = export_plain_model(build_detector(cfg).backbone)
    mmdet_backbone.load_state_dict(exported.state_dict(), strict=True)


def test_usage_downstream_config_moves_data_and_loads_its_backbone(tmp_path):
    """docs/usage.md's team config: every dataset and evaluator under its data_root, and the
    backbone initialised from the ImageNet checkpoint it names."""
    text = snippet('docs/usage.md', '/opt/netaug_det').replace('/opt/netaug_det', REPO_ROOT)
    path = tmp_path / 'my_netaug_detector.py'
    path.write_text(text)
    cfg = load(path)
    root = '/datasets/VOCdevkit/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        datasets = dataset.get('datasets', [dataset])
        assert {d.data_root for d in datasets} == {root}, loader
    assert 'data/VOCdevkit' not in cfg.pretty_text
    checkpoint = '/checkpoints/mbv2_w035_netaug_in1k/deploy.pth'
    assert backbone_checkpoint(cfg) == checkpoint
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=checkpoint)


@pytest.mark.parametrize('doc', ['README.md', 'docs/usage.md'])
def test_every_config_snippet_is_tested(doc):
    """A new config snippet (a block with ``_base_``) needs a test here."""
    markers = {'README.md': ("'./yolov3_mbv2_voc.py'", 'mmdet::'),
               'docs/usage.md': ("'./yolov3_mbv2_voc.py'", '/opt/netaug_det')}[doc]
    configs = [block for block in python_blocks(doc) if '_base_' in block]
    assert len(configs) == len(markers)
    assert all(any(marker in block for marker in markers) for block in configs)
