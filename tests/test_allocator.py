"""env_cfg.malloc_cfg: glibc keeps freed CPU memory for reuse, applied by the runner."""
import platform
import subprocess
import sys

import pytest
from mmengine.runner import Runner

from netaug_det.utils import allocator
from netaug_det.engine.runner import NetAugDetRunner
from netaug_det.utils.allocator import tune_glibc_malloc

REUSE_SCRIPT = '''
import resource
import torch
from netaug_det.utils.allocator import tune_glibc_malloc

def page_faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.ones(16 * 2**20)  # 64 MiB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = page_faults()
assert tune_glibc_malloc() is None
page_faults()  # the heap grows once
print(default, page_faults())
'''


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_tuned_malloc_reuses_freed_memory():
    out = subprocess.run([sys.executable, '-c', REUSE_SCRIPT], capture_output=True, text=True,
                         check=True).stdout
    default, tuned = map(int, out.split())
    pages = 5 * 64 * 2**20 // 4096
    # glibc's defaults map every 64 MiB tensor afresh (a page fault per page); tuned, the
    # freed memory is reused
    assert default > 0.9 * pages
    assert tuned < 0.05 * pages


def test_malloc_cfg_values_are_checked():
    with pytest.raises(ValueError, match='mmap_threshold must be between 0 and 2\\*\\*31 - 1'):
        tune_glibc_malloc(mmap_threshold=1 << 31)


@pytest.mark.parametrize('malloc_cfg', [None, dict(mmap_threshold=1 << 20, trim_threshold=1 << 21)])
def test_runner_applies_env_cfg_malloc_cfg(monkeypatch, malloc_cfg):
    calls = []
    monkeypatch.setattr(Runner, 'setup_env', lambda self, env_cfg: None)
    monkeypatch.setattr(allocator, 'tune_glibc_malloc', lambda **kw: calls.append(kw))
    NetAugDetRunner.__new__(NetAugDetRunner).setup_env(dict(malloc_cfg=malloc_cfg))
    assert calls == ([] if malloc_cfg is None else [malloc_cfg])
