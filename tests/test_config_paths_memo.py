"""Resolving ``mmdet::`` bases reads mmdet's metafiles once per process, with mmengine's result."""
import mmengine.config.utils as config_utils
import mmengine.fileio
from mmengine.config import Config
from mmengine.fileio.handlers import YamlHandler

import netaug_det.utils  # noqa: F401 (installs the memo)
from conftest import DEMO_NETAUG


def test_metafiles_are_read_once_and_configs_load_as_without_the_memo(monkeypatch):
    reads = []
    read = YamlHandler.load_from_fileobj
    monkeypatch.setattr(YamlHandler, 'load_from_fileobj',
                        lambda self, file, **kwargs: reads.append(1) or read(self, file, **kwargs))
    Config.fromfile(DEMO_NETAUG)  # the metafiles read here, unless an earlier test did
    reads.clear()
    memoized = Config.fromfile(DEMO_NETAUG).to_dict()
    assert reads == []
    monkeypatch.setattr(config_utils, 'load', mmengine.fileio.load)  # mmengine's own lookup
    assert Config.fromfile(DEMO_NETAUG).to_dict() == memoized
    assert len(reads) > 100  # mmdet's model index and metafiles, at each mmdet:: base
