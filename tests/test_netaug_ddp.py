"""NetAug under DDP: 2 CPU processes (gloo, torchrun) against a single-process reference.

Run by pytest, this file launches itself once under ``torch.distributed.run`` (``--standalone``:
the rendezvous takes a free port itself, so two launches at once cannot collide); each rank then
trains the tiny detector of ``test_netaug_hook`` with NetAugHook for two iterations on its half
of the data (DefaultSampler) and saves its parameters, once per variant: one augmented model per
rank (official NetAug, the default), one shared by all ranks, and the first with the base graph
released early. One launch for the three variants saves two start-ups of three processes each.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from collections import Counter

import torch
import torch.distributed as torch_dist
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner.checkpoint import _load_checkpoint
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.utils.data import DataLoader

import pytest
from test_netaug_hook import (SGD_ARGS, RandomDetDataset, assert_same_state,
                              build_detector, make_runner, netaug, total_loss)

from netaug_det.engine.hooks.netaug_hook import step_seed
from netaug_det.models.netaug import NetAugSupernet

# the three variants share one launch (a module fixture): one pytest-xdist worker runs them all,
# and no other test that launches processes on ports at the same time
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('processes')]

ALPHA, SEED, NUM_SAMPLES = 0.5, 11, 4
# Every backbone layer feeds the neck, so DDP runs with find_unused_parameters=False: NetAug's
# single forward/backward must leave no parameter without a gradient.
OUT_INDICES = (2, 4, 7)
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VARIANTS = {'per-rank': (False, False), 'synced': (True, False), 'released': (False, True)}


def run_rank(out_dir: str, sync_sampling: bool, release_base_graph: bool) -> None:
    """One DDP rank of one variant: two NetAug iterations (checkpoint after each); saves its
    parameters and the gradient buckets all-reduced in each iteration."""
    dataset = RandomDetDataset(NUM_SAMPLES)
    loader = DataLoader(dataset, batch_size=2, collate_fn=pseudo_collate,
                        sampler=DefaultSampler(dataset, shuffle=False))
    runner = make_runner(
        out_dir, build_detector(out_indices=OUT_INDICES),
        hooks=[netaug(alpha=ALPHA, sort_channels=False, seed=SEED, sync_sampling=sync_sampling,
                      release_base_graph=release_base_graph)],
        train_cfg=dict(by_epoch=False, max_iters=2), checkpoint_interval=1,
        train_dataloader=loader, launcher='pytorch',
        # CPU DDP: no device_ids (mmengine's default passes LOCAL_RANK, which DDP refuses on CPU)
        cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None,
                                        broadcast_buffers=False, find_unused_parameters=False)))
    reduced = []

    def counting_allreduce(process_group, bucket):
        reduced.append([runner.iter, bucket.index()])
        return allreduce_hook(process_group, bucket)

    runner.model.register_comm_hook(None, counting_allreduce)
    runner.train()
    params = {name: param.detach() for name, param in runner.model.module.named_parameters()}
    torch.save(params, osp.join(out_dir, f'rank{runner.rank}.pth'))
    with open(osp.join(out_dir, f'reduced{runner.rank}.json'), 'w') as f:
        json.dump(reduced, f)


def reference_step(sync_sampling: bool) -> dict:
    """Both ranks' base + alpha * aux gradients (each rank's own sampled widths, or rank 0's for
    all with ``sync_sampling``), averaged, one SGD step."""
    model = build_detector(out_indices=OUT_INDICES)
    supernet = NetAugSupernet(model)
    rank_batches = [[0, 2], [1, 3]]  # DefaultSampler(shuffle=False): rank r gets r, r + 2, ...
    for rank, indices in enumerate(rank_batches):
        data = model.data_preprocessor(
            pseudo_collate([RandomDetDataset(NUM_SAMPLES)[i] for i in indices]), training=True)
        base_loss = total_loss(model, data)
        generator = torch.Generator().manual_seed(step_seed(SEED, 0 if sync_sampling else rank, 0))
        with supernet.augmented('random', generator):
            aux_loss = total_loss(model, data)
        ((base_loss + ALPHA * aux_loss) / len(rank_batches)).backward()
    torch.optim.SGD(model.parameters(), **SGD_ARGS).step()
    return dict(model.named_parameters())


def run_ranks(out_dir: str) -> None:
    """One DDP rank's runs of every variant, each in its own folder under ``out_dir``."""
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo')  # env:// from torchrun; mmengine's init needs CUDA
    for name, (sync_sampling, release_base_graph) in VARIANTS.items():
        run_rank(osp.join(out_dir, name), sync_sampling, release_base_graph)
    torch_dist.destroy_process_group()


@pytest.fixture(scope='module')
def ddp_runs(tmp_path_factory):
    """The folder of the 2-process runs of every variant (one ``torch.distributed.run``)."""
    out_dir = tmp_path_factory.mktemp('ddp')
    python_path = os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')])
    env = dict(os.environ, PYTHONPATH=python_path, OMP_NUM_THREADS='1')
    subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                    '--nproc_per_node', '2', __file__, str(out_dir)],
                   env=env, check=True, timeout=600)
    return out_dir


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_ddp_step_equals_averaged_reference(ddp_runs, variant):
    sync_sampling, _ = VARIANTS[variant]
    run_dir = ddp_runs / variant
    after_first = _load_checkpoint(str(run_dir / 'iter_1.pth'), map_location='cpu')
    reference = reference_step(sync_sampling)
    other_mode = reference_step(not sync_sampling)
    assert any(not torch.equal(reference[name], other_mode[name]) for name in reference)
    assert_same_state({name: after_first['state_dict'][name] for name in reference},
                      {name: param.detach() for name, param in reference.items()})
    rank0, rank1 = (torch.load(run_dir / f'rank{rank}.pth') for rank in (0, 1))
    assert_same_state(rank0, rank1, rtol=0, atol=0)
    assert not torch.equal(rank0['neck.detect1.conv1.conv.weight'],
                           after_first['state_dict']['neck.detect1.conv1.conv.weight'])
    # one backward per step: every gradient bucket is all-reduced exactly once per iteration
    with open(run_dir / 'reduced0.json') as f:
        reduced = Counter(tuple(call) for call in json.load(f))
    assert {iteration for iteration, _ in reduced} == {0, 1}
    assert set(reduced.values()) == {1}


if __name__ == '__main__':
    run_ranks(sys.argv[1])
