"""Shared test set-up: the repo root on sys.path (tools are imported as modules) and fixed seeds."""
import os.path as osp
import sys

import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
