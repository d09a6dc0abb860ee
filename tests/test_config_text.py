"""The runner's config text is mmengine's formatted text, formatted once per content."""
import copy
import os.path as osp

import mmengine.config.config as mmengine_config
from mmengine.config import Config

from conftest import REPO_ROOT
from netaug_det.utils.config_text import CachedTextConfig, with_cached_text


def test_the_text_is_mmengines_formatted_once_per_content(monkeypatch):
    calls = []
    format_code = mmengine_config.FormatCode
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        lambda *args, **kwargs: calls.append(1) or format_code(*args, **kwargs))
    plain = Config(dict(model=dict(type='YOLOV3', widths=[1.0, 1.8]), input_size=64))
    cached = with_cached_text(copy.deepcopy(plain))
    expected = plain.pretty_text
    assert len(calls) == 1
    assert cached.pretty_text == expected and len(calls) == 2
    copies = [copy.deepcopy(cached), copy.copy(cached)]  # as the runner copies it
    assert all(type(c) is CachedTextConfig and c.pretty_text == expected for c in copies)
    assert len(calls) == 2  # no yapf run for the same content
    cached.merge_from_dict(dict(input_size=96))  # an edit: formatted anew, mmengine's text
    assert cached.pretty_text != expected and len(calls) == 3
    assert 'input_size = 96' in cached.pretty_text and len(calls) == 3


def test_runner_from_cfg_formats_its_config_once(monkeypatch, demo_data, tmp_path):
    from mmengine.registry import RUNNERS

    from conftest import tiny_cfg
    calls = []
    format_code = mmengine_config.FormatCode
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        lambda *args, **kwargs: calls.append(1) or format_code(*args, **kwargs))
    runner = RUNNERS.build(tiny_cfg(osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py'),
                                    demo_data, tmp_path))
    runner.dump_config()
    assert isinstance(runner.cfg, CachedTextConfig) and len(calls) == 1
    with open(osp.join(tmp_path, 'yolov3_mbv2_demo.py')) as dumped:
        assert dumped.read() == runner.cfg.pretty_text
