"""Shared test set-up: the repo root on sys.path (tools are imported as modules), fixed seeds,
and the session's shared tiny data and trained runs.

The shared folders are built once per test session, also when pytest-xdist runs the tests in
several processes (``scripts/test.sh``): the first process that asks builds the folder while
the others wait for it. They are read-only: a test that breaks data or writes into a run
copies it first (``shutil.copytree``). See docs/testing.md.
"""
import fcntl
import logging
import os
import os.path as osp
import shutil
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

DEMO_BASELINE = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
DEMO_NETAUG = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


def _mmengine_managers() -> list:
    """The classes whose instances mmengine keeps for the process by name: loggers,
    visualizers (each subclass has its own) and default scopes."""
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    classes, pending = [MMLogger, DefaultScope], [Visualizer]
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending.extend(cls.__subclasses__())
    return classes


@pytest.fixture(autouse=True)
def _forget_mmengine_instances():
    """Each test forgets the loggers, visualizers and default scopes it created (a runner's):
    mmengine keeps them current, so the next test in the process would log into this test's
    work dir or a closed file, or build in its scope. A logger still kept whose log file was
    closed (a run released by a tool, say) loses that handler first: mmengine writes to the
    current logger's files directly (``BaseModule._dump_init_info``) and fails on a closed one."""
    from mmengine.logging import MMLogger
    for logger in MMLogger._instance_dict.values():
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and handler.stream is None:
                logger.removeHandler(handler)
    before = {cls: set(cls._instance_dict) for cls in _mmengine_managers()}
    yield
    from netaug_det.utils.cli import forget_instance
    for cls in _mmengine_managers():
        for name in set(cls._instance_dict) - before.get(cls, set()):
            forget_instance(cls._instance_dict[name])


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list) -> None:
    """Under pytest-xdist (``--dist loadgroup``): the tests that use ``trained_runs`` form one
    group that one worker runs (it trains them while the others test, nobody waits), handed
    out first; then the other slow tests, so that no worker is left with a long test while the
    others have finished (a stable sort, the same in every worker)."""
    if not os.environ.get('PYTEST_XDIST_WORKER'):
        return
    for item in items:
        if 'trained_runs' in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group('trained_runs'))
    items.sort(key=lambda item: ('trained_runs' not in item.fixturenames,
                                 item.get_closest_marker('slow') is None))


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str,
                  build: Callable[[Path], None]) -> Path:
    """The session folder ``name``, filled by ``build(folder)`` in the first test process that
    asks for it and reused by all others (pytest-xdist workers have their own temp folders
    under one shared parent). A build that raised is retried by the next process that asks."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent
    folder, complete = base / name, base / f'{name}.complete'
    with open(base / f'{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not complete.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            complete.touch()
    return folder


def tiny_cfg(config: str, data_root: str, work_dir, **options) -> Config:
    """``config`` on tiny data: one epoch of 2 images per iteration at 64 px, no validation
    (``options`` are merged last and win)."""
    cfg = Config.fromfile(config)
    loaders = dict(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.merge_from_dict(dict(
        data_root=data_root, input_size=64, work_dir=str(work_dir),
        train_dataloader=loaders, test_dataloader=loaders, val_cfg=None, val_dataloader=None,
        val_evaluator=None, train_cfg=dict(max_epochs=1)))
    cfg.merge_from_dict(options)
    return cfg


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> str:
    """Tiny demo data shared by the session: 4 training and 2 validation images of 64-80 px
    (``generate_demo_dataset``); its root, ending with '/'."""
    from netaug_det.datasets import generate_demo_dataset

    def build(folder: Path) -> None:
        generate_demo_dataset(str(folder), num_train=4, num_val=2, img_size=(64, 80))

    return f'{shared_folder(tmp_path_factory, "demo_data", build)}/'


@pytest.fixture(scope='session')
def trained_runs(tmp_path_factory) -> Path:
    """Two tiny trained runs of the demo YOLOv3 configs, shared by the session (ONNX export,
    checkpoint and export-tool errors, the sweep's checks). The folder holds:

    - ``data/demo/``: 16 training and 4 validation images of 64-96 px (the demo configs read
      ``data/demo/`` when this folder is the working directory);
    - ``baseline/epoch_10.pth``: the baseline, 20 iterations of 8 images at 64 px and 10x the
      demo's learning rate, so that its class scores spread (an untrained head scores many
      (box, class) pairs exactly alike, and mmdet's sort breaks such ties in no set order);
    - ``netaug/epoch_1.pth`` and ``netaug/deploy.pth``: NetAug, 2 iterations of 8 images at
      64 px; its work dir also holds the dumped config (``input_size=64``).
    """
    from mmengine.registry import RUNNERS

    from netaug_det.datasets import generate_demo_dataset

    def build(folder: Path) -> None:
        data_root = folder / 'data' / 'demo'
        generate_demo_dataset(str(data_root), num_train=16, num_val=4, img_size=(64, 96))
        options = dict(train_dataloader=dict(batch_size=8), optim_wrapper=dict(
            optimizer=dict(lr=0.02)))
        for name, config, epochs in (('baseline', DEMO_BASELINE, 10),
                                     ('netaug', DEMO_NETAUG, 1)):
            RUNNERS.build(tiny_cfg(config, f'{data_root}/', folder / name,
                                   train_cfg=dict(max_epochs=epochs), **options)).train()

    return shared_folder(tmp_path_factory, 'trained_runs', build)
