"""Training overhead of NetAug: time per step, images/s and peak memory, baseline vs NetAug.

``python benchmarks/netaug_overhead.py [--quick] [--json OUT.json] [--profile] [--device cpu|cuda]
[--amp] [--batch-size 8] [--input-size 320] [--iters 10] [--threads 1]``

For MobileNetV2-w0.35 and MobileNetV3-w0.35 YOLOv3 (``configs/yolov3_mbv{2,3}_voc.py`` and their
``_netaug`` twins) it times ``model.train_step`` (forward, backward, optimizer step; the configs'
optimizer wrapper, ``AmpOptimWrapper`` with ``--amp``) on one fixed synthetic batch: the
baseline; NetAug in the width phase ('random') and in the expand-only phase ('random_expand');
and the width phase with ``release_base_graph`` (the base gradient taken before the augmented
pass: the same update, lower peak memory). Data loading is not included (the paper's +16.7%
wall-clock overhead on ImageNet GPUs is smaller than the compute ratio because data loading and
communication dominate there).

Time: the four settings of a backbone are built in one fresh process and, after ``--warmup``
steps each, timed in ``--iters`` rounds of one step per setting, the order rotating from round
to round, so that a change in the machine's load reaches every setting alike (a shared 2-core
machine drifts by tens of percent within a minute). The time ratio is NetAug's mean step time
over the baseline's from the same rounds.

MACs: a NetAug step runs the base detector and one sampled augmented detector, so it is
predicted to cost (MACs_base + mean MACs_aug) / MACs_base times a baseline step. ``macs_ratio``
takes mean MACs_aug over the very models sampled in the timed steps (the draws of the seeded
NetAug term replayed); ``expected_macs_ratio`` over ``--mac-samples`` draws, the long-run mean.
MACs are those of convolutions and linear layers (``torch.utils.flop_counter``).

Memory: "peak" is the peak over a setting's warm-up steps (CUDA: the allocator's peak,
read in the timing process) or, on a CPU, over ``--warmup`` + 1 steps in a process of its own
(peak resident set, Linux ``VmHWM``); "step" is that peak minus the memory in use once the
model, optimizer and batch exist, before the first step (activations, gradients, optimizer
state, workspaces); the memory ratio compares step memory. A CUDA run is one process per
detector.

``--glibc-defaults`` measures without the config's ``env_cfg.malloc_cfg`` (which every setting
gets otherwise, as a training run does).

``--quick`` (batch 4, 192x192, 2 warm-up steps and 20 timed rounds, 20 MAC samples, one
thread) runs in under 3 minutes on 2 CPU cores; ``--json`` writes, per backbone and phase,
``time_ratio``, ``macs_ratio``, ``memory_ratio`` and the absolute figures (with every timed
step's seconds and its sampled model's MACs). ``--profile`` prints instead where the CPU time
of a step goes (convolutions, BatchNorm, weight slicing, gradient accumulation, optimizer,
other), per step, for the baseline and both NetAug phases.
"""
import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Dict, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTORS = {
    'MobileNetV2-w0.35': ('configs/yolov3_mbv2_voc.py', 'configs/yolov3_mbv2_netaug_voc.py'),
    'MobileNetV3-w0.35': ('configs/yolov3_mbv3_voc.py', 'configs/yolov3_mbv3_netaug_voc.py'),
}
# (name, NetAug mode, release_base_graph); None: the baseline
SETTINGS = (('width phase', 'random', False), ('expand phase', 'random_expand', False),
            ('width phase, base graph released', 'random', True))
QUICK = dict(batch_size=4, input_size=192, iters=20, warmup=2, mac_samples=20, threads=1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Training overhead of NetAug')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--input-size', type=int, default=320)
    parser.add_argument('--iters', type=int, default=10,
                        help='timed rounds (one step per setting each)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps per setting first')
    parser.add_argument('--mac-samples', type=int, default=50,
                        help='augmented models sampled for the mean augmented MACs')
    parser.add_argument('--threads', type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if present)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (mmengine AmpOptimWrapper; CUDA only)')
    parser.add_argument('--quick', action='store_true',
                        help=f'small settings for a check in under 3 minutes: {QUICK}')
    parser.add_argument('--json', help='also write the results to this json file')
    parser.add_argument('--glibc-defaults', action='store_true',
                        help="leave glibc's allocator settings as they are instead of applying "
                        "the config's env_cfg.malloc_cfg, as a training run does")
    parser.add_argument('--profile', action='store_true',
                        help='instead of the timing table, where the time of a step goes '
                        '(torch.profiler, CPU time by kind of work) for the baseline and both '
                        'phases')
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.warmup < 1 or args.iters < 1:
        parser.error('--warmup and --iters must be at least 1 (memory is read over the warm-up '
                     'steps)')
    return args


def setup_process(config: str, args: argparse.Namespace) -> None:
    """This process as a training run of ``config`` would have it: ``--threads`` and the config's
    ``env_cfg.malloc_cfg`` (``netaug_det/utils/allocator.py``; not with ``--glibc-defaults``)."""
    import torch
    from mmengine.config import Config

    from netaug_det.utils.allocator import apply_malloc_cfg

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.glibc_defaults:
        not_applied = apply_malloc_cfg(Config.fromfile(os.path.join(REPO_ROOT, config)).env_cfg)
        if not_applied:
            print(f'malloc_cfg not applied: {not_applied}')


def build_model(config: str, device: str):
    """The detector of ``config`` (initialised, seed 0) and its config."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import netaug_det  # noqa: F401  registers the project's modules

    cfg = Config.fromfile(os.path.join(REPO_ROOT, config))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    MMLogger.get_instance('netaug_overhead', log_level='WARNING')  # no per-tensor init log
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device).train(), cfg


def synthetic_batch(batch_size: int, size: int, num_classes: int) -> dict:
    """``batch_size`` random uint8 images (3, size, size), three random boxes each."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.dataset import pseudo_collate
    from mmengine.structures import InstanceData

    generator = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(batch_size):
        data_sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                                  scale_factor=(1.0, 1.0)))
        corner = torch.rand(3, 2, generator=generator) * size * 0.6
        extent = torch.rand(3, 2, generator=generator) * size * 0.4 + 8
        data_sample.gt_instances = InstanceData(
            bboxes=torch.cat([corner, corner + extent], dim=1),
            labels=torch.randint(0, num_classes, (3, ), generator=generator))
        image = torch.randint(0, 256, (3, size, size), generator=generator, dtype=torch.uint8)
        samples.append(dict(inputs=image, data_samples=data_sample))
    return pseudo_collate(samples)


def resident_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))


def build_setting(config: str, aug_mode: Optional[str], release: bool,
                  args: argparse.Namespace):
    """The detector of one setting (NetAug's term attached for ``aug_mode``), its optimizer
    wrapper (``AmpOptimWrapper`` with ``--amp``), the synthetic batch and the supernet (None for
    the baseline)."""
    from mmengine.optim import build_optim_wrapper

    from netaug_det.models.netaug import NetAugAuxLoss, NetAugSupernet
    from netaug_det.models.train_loss import TrainLoss

    model, cfg = build_model(config, args.device)
    supernet = None
    if aug_mode is not None:
        supernet = NetAugSupernet(model)
        term = NetAugAuxLoss(supernet, alpha=1.0)
        term.prepare_step(aug_mode, 1.0, seed=0)
        loss = TrainLoss.attach(model)
        loss.add('netaug', term)
        loss.release_base_graph = release
    wrapper_cfg = cfg.optim_wrapper.to_dict()
    if args.amp:
        wrapper_cfg.update(type='AmpOptimWrapper', loss_scale='dynamic')
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    batch = synthetic_batch(args.batch_size, args.input_size, cfg.model.bbox_head.num_classes)
    return model, optim_wrapper, batch, supernet


def train_step_fn(model, optim_wrapper, batch, device: str):
    """One ``model.train_step`` on ``batch`` (synchronised on a GPU)."""
    import torch

    on_gpu = device.startswith('cuda')

    def step() -> None:
        model.train_step(batch, optim_wrapper)
        if on_gpu:
            torch.cuda.synchronize()

    return step


def forward_macs(model, input_size: int) -> float:
    """MACs of one (1, 3, input_size, input_size) forward of ``model`` at its current widths."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model._forward(torch.zeros(1, 3, input_size, input_size, device=device))
    return counter.get_total_flops() / 2


def sampled_macs(model, supernet, mode: str, indices: range, input_size: int) -> list:
    """MACs of the augmented models a seed-0 NetAug term samples at steps ``indices``: the
    draws are replayed from a generator seeded as the term's was."""
    import torch

    generator = torch.Generator().manual_seed(0)
    macs = []
    for index in range(indices.stop):
        supernet.set_mode(mode, generator)
        if index in indices:
            macs.append(forward_macs(model, input_size))
    supernet.set_mode('base')
    return macs


def measure_detector(baseline_config: str, netaug_config: str, args: argparse.Namespace) -> Dict:
    """Step times of the baseline and every NetAug setting, timed in rounds, and the MACs.

    All settings live in this one process; after ``args.warmup`` untimed steps each (on a GPU
    also their peak memory, read from the CUDA allocator), every round times one step of each
    setting, in an order that rotates from round to round, so that a change of the machine's
    load during the run reaches all settings alike. The NetAug term of every setting samples from a
    generator seeded 0, and the MACs of the very models timed are counted afterwards
    (``sampled_macs``): the predicted ratio is that of the steps measured.
    """
    import torch

    setup_process(baseline_config, args)
    names = ('baseline', ) + tuple(setting for setting, _, _ in SETTINGS)
    built = [build_setting(baseline_config, None, False, args)] + [
        build_setting(netaug_config, mode, release, args) for _, mode, release in SETTINGS]
    steps = [train_step_fn(model, wrapper, batch, args.device)
             for model, wrapper, batch, _ in built]
    result = {name: {} for name in names}
    on_gpu = args.device.startswith('cuda')
    for name, step in zip(names, steps):
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
            resting = torch.cuda.memory_allocated()
        for _ in range(args.warmup):
            step()
        if on_gpu:
            peak = torch.cuda.max_memory_allocated()
            result[name].update(peak_mib=peak / 2**20, step_mib=(peak - resting) / 2**20)
    seconds = {name: [] for name in names}
    for round_index in range(args.iters):
        shift = round_index % len(steps)
        for name, step in list(zip(names, steps))[shift:] + list(zip(names, steps))[:shift]:
            start = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - start)
    for name in names:
        result[name]['seconds'] = seconds[name]
    timed = range(args.warmup, args.warmup + args.iters)
    for (name, mode, _), (model, _, _, supernet) in zip(SETTINGS, built[1:]):
        model.eval()
        result[name]['timed_aug_macs'] = sampled_macs(model, supernet, mode, timed,
                                                      args.input_size)
    netaug_model, _, _, supernet = built[1]  # any NetAug setting: all hold the same model
    result['base_macs'] = forward_macs(netaug_model, args.input_size)
    result['expected_macs_ratio'] = {
        mode: 1 + sum(sampled_macs(netaug_model, supernet, mode, range(args.mac_samples),
                                   args.input_size)) / args.mac_samples / result['base_macs']
        for mode in ('random', 'random_expand')}
    return result


def peak_memory(config: str, aug_mode: Optional[str], release: bool,
                args: argparse.Namespace) -> Dict:
    """CPU memory (MiB) of one setting's training steps, in a process of its own (a process's
    peak resident set never falls back, so each setting needs a fresh one).

    "peak": the process's peak resident set (Linux ``VmHWM``) over ``args.warmup + 1`` steps;
    "step": that peak minus the resident set once the model, optimizer and batch exist, before
    the first step.
    """
    setup_process(config, args)
    model, optim_wrapper, batch, _ = build_setting(config, aug_mode, release, args)
    step = train_step_fn(model, optim_wrapper, batch, args.device)
    resting = resident_kib('VmRSS') * 1024
    for _ in range(args.warmup + 1):
        step()
    peak = resident_kib('VmHWM') * 1024
    return dict(peak_mib=peak / 2**20, step_mib=(peak - resting) / 2**20)


# Kinds of work in a training step, recognised by the names of top-level profiler events
# (operators called from Python, autograd nodes, optimizer calls); the rest is 'other'.
WORK_KINDS = (
    ('convolutions', ('aten::conv2d', 'aten::convolution', 'ConvolutionBackward')),
    ('batch norm', ('aten::batch_norm', 'BatchNormBackward')),
    ('weight slicing (forward views, backward into widest-shape gradients)',
     ('aten::slice', 'aten::narrow', 'SliceBackward')),
    ('gradient accumulation', ('AccumulateGrad', )),
    ('optimizer (gradient clipping, step, zero_grad)', ('Optimizer.', 'aten::_foreach_')),
)
OTHER_WORK = 'other (activations, SE gates, losses, target assignment, ...)'
PROFILED = (('baseline', None), ('width phase', 'random'), ('expand phase', 'random_expand'))


def profile_settings(baseline_config: str, netaug_config: str,
                     args: argparse.Namespace) -> Dict:
    """Milliseconds of CPU time per step by kind of work (``WORK_KINDS``) for the baseline and
    both NetAug phases, from ``torch.profiler`` over ``args.iters`` steps after warm-up."""
    from torch.profiler import ProfilerActivity, profile

    setup_process(baseline_config, args)
    result = {}
    for name, mode in PROFILED:
        config = baseline_config if mode is None else netaug_config
        model, optim_wrapper, batch, _ = build_setting(config, mode, False, args)
        step = train_step_fn(model, optim_wrapper, batch, args.device)
        for _ in range(args.warmup):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(args.iters):
                step()
            wall = time.perf_counter() - start
        kinds = dict.fromkeys([kind for kind, _ in WORK_KINDS] + [OTHER_WORK], 0.0)
        for event in prof.events():
            if event.cpu_parent is not None:
                continue
            kind = next((kind for kind, patterns in WORK_KINDS
                         if any(pattern in event.name for pattern in patterns)), OTHER_WORK)
            kinds[kind] += event.cpu_time_total / 1e3 / args.iters
        result[name] = dict(ms_per_step=kinds, profiled_ms_per_step=sum(kinds.values()),
                            wall_ms_per_step=wall * 1e3 / args.iters)
    return result


def print_profile(profiles: Dict) -> None:
    """The ``profile_settings`` tables, one per detector, with each phase's ratio to the
    baseline."""
    for name, entry in profiles.items():
        base = entry['baseline']
        print(f'\n{name}: CPU ms per step (ratio to the baseline)')
        print('| work | ' + ' | '.join(setting for setting, _ in PROFILED) + ' |')
        print('|---' * (len(PROFILED) + 1) + '|')
        for kind in list(base['ms_per_step']) + ['profiled_ms_per_step', 'wall_ms_per_step']:
            cells = []
            for setting, _ in PROFILED:
                row = entry[setting]
                value = row['ms_per_step'].get(kind, row.get(kind))
                reference = base['ms_per_step'].get(kind, base.get(kind))
                cells.append(f'{value:.1f}' if setting == 'baseline' else
                             f'{value:.1f} ({value / reference:.1f}x)')
            label = dict(profiled_ms_per_step='all profiled work',
                         wall_ms_per_step='wall time (profiler on)').get(kind, kind)
            print(f'| {label} | ' + ' | '.join(cells) + ' |')


def run_isolated(fn, *fn_args):
    """``fn(*fn_args)`` in a fresh process, so peak memory and caches start clean."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context('spawn')) as pool:
        return pool.submit(fn, *fn_args).result()


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.amp and not args.device.startswith('cuda'):
        raise SystemExit('--amp needs --device cuda (mmengine runs fp16 AMP on GPUs only)')
    started = time.perf_counter()
    on_gpu = args.device.startswith('cuda')
    gpu = torch.cuda.get_device_name() if on_gpu else None
    if args.profile:
        profiles = {name: run_isolated(profile_settings, *configs, args)
                    for name, configs in DETECTORS.items()}
        print_profile(profiles)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(profiles, f, indent=2)
        return
    results = dict(device=args.device, gpu=gpu, amp=args.amp,
                   glibc_defaults=args.glibc_defaults, batch_size=args.batch_size,
                   input_size=args.input_size, iters=args.iters, warmup=args.warmup,
                   threads=args.threads or torch.get_num_threads(), detectors={})
    for name, (baseline_config, netaug_config) in DETECTORS.items():
        measured = run_isolated(measure_detector, baseline_config, netaug_config, args)
        base_seconds = sum(measured['baseline']['seconds']) / args.iters
        baseline = dict(measured['baseline'], seconds_per_iter=base_seconds,
                        images_per_s=args.batch_size / base_seconds)
        if not on_gpu:
            baseline.update(run_isolated(peak_memory, baseline_config, None, False, args))
        entry = dict(base_mmacs=measured['base_macs'] / 1e6, baseline=baseline)
        for setting, mode, release in SETTINGS:
            row = dict(measured[setting])
            if not on_gpu:
                row.update(run_isolated(peak_memory, netaug_config, mode, release, args))
            seconds = sum(row['seconds']) / args.iters
            row.update(mode=mode, release_base_graph=release, seconds_per_iter=seconds,
                       images_per_s=args.batch_size / seconds, time_ratio=seconds / base_seconds,
                       macs_ratio=1 + sum(row['timed_aug_macs']) / args.iters
                       / measured['base_macs'],
                       expected_macs_ratio=measured['expected_macs_ratio'][mode],
                       memory_ratio=row['step_mib'] / baseline['step_mib'])
            entry[setting] = row
        results['detectors'][name] = entry
    results['load_average'] = os.getloadavg()
    results['wall_s'] = time.perf_counter() - started

    print(f"device={results['device']}{' (' + gpu + ')' if gpu else ''} amp={args.amp} "
          f"malloc={'glibc defaults' if args.glibc_defaults else 'env_cfg.malloc_cfg'} "
          f"threads={results['threads']} batch={args.batch_size} input={args.input_size} "
          f"iters={args.iters} load average after run={results['load_average']} "
          f"wall={results['wall_s']:.0f}s")
    print('| detector | setting | s/iter | images/s | step memory (MiB) | time ratio | '
          'MACs ratio (timed steps) | time / MACs ratio | MACs ratio (expected) | '
          'memory ratio |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for name, entry in results['detectors'].items():
        base = entry['baseline']
        print(f"| {name} | baseline ({entry['base_mmacs']:.0f} MMACs) | "
              f"{base['seconds_per_iter']:.3f} | {base['images_per_s']:.1f} | "
              f"{base['step_mib']:.0f} | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 |")
        for setting, _, _ in SETTINGS:
            row = entry[setting]
            print(f"| {name} | NetAug, {setting} | {row['seconds_per_iter']:.3f} | "
                  f"{row['images_per_s']:.1f} | {row['step_mib']:.0f} | "
                  f"{row['time_ratio']:.2f} | {row['macs_ratio']:.2f} | "
                  f"{row['time_ratio'] / row['macs_ratio']:.2f} | "
                  f"{row['expected_macs_ratio']:.2f} | {row['memory_ratio']:.2f} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
