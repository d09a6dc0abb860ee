"""Exact ``--resume``: the random numbers of a training epoch are a function of
(seed, epoch, rank, dataloader worker), not of the history of the process.

mmengine seeds ``random``, ``numpy`` and ``torch`` once, when the runner is built, and keeps no
random state in its checkpoints; its dataloader workers reseed themselves with the same
``seed + worker`` whenever they start. A resumed run therefore continues with other random
augmentations than the uninterrupted run (with ``num_workers=0``, and with workers). Here:

- :class:`EpochSeedHook` reseeds ``random``, ``numpy`` and ``torch`` (CPU and CUDA) of the main
  process at the start of every training epoch from (seed, epoch, rank);
- :func:`worker_init_fn` keeps the seeds PyTorch gives each worker of a dataloader iterator
  (drawn from the main process's reseeded ``torch`` generator when the epoch's iterator is
  created, plus the worker id) instead of mmengine's constant ones;
- training dataloaders run without ``persistent_workers``, so that every epoch starts workers
  seeded for it (a persistent worker would carry its random state over from earlier epochs,
  which a resumed run cannot have).

``NetAugDetRunner`` sets all three up (``docs/netaug_training.md``, "Resume").
"""
import warnings

import numpy as np
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.utils import set_random_seed


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A well-mixed 32-bit seed of (seed, epoch, rank) (``numpy.random.seed`` takes 32 bits)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint32)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseeds the main process's ``random``, ``numpy`` and ``torch`` generators at the start of
    every training epoch (iteration-based loops: once, at the start) from (run seed, epoch,
    rank), before any other hook and before the epoch's dataloader iterator is created."""

    priority = 'HIGHEST'

    def before_train_epoch(self, runner: Runner) -> None:
        set_random_seed(epoch_seed(runner.seed, runner.epoch, get_rank()))


def worker_init_fn(worker_id: int, disable_subprocess_warning: bool = False) -> None:
    """Dataloader worker start: keeps PyTorch's seeds of the worker (``random``, ``numpy`` and
    ``torch``, from the iterator's base seed and ``worker_id``); silences warnings in workers
    other than the first when asked (as mmengine's ``worker_init_fn`` does)."""
    if disable_subprocess_warning and worker_id != 0:
        warnings.simplefilter('ignore')
