"""Training overhead of NetAug: time per step, images/s and peak memory, baseline vs NetAug.

``python benchmarks/netaug_overhead.py [--quick] [--json OUT.json] [--device cpu|cuda] [--amp]
[--batch-size 8] [--input-size 320] [--iters 5] [--threads 1]``

For MobileNetV2-w0.35 and MobileNetV3-w0.35 YOLOv3 (``configs/yolov3_mbv{2,3}_voc.py`` and their
``_netaug`` twins) it times ``model.train_step`` (forward, backward, optimizer step; the configs'
optimizer wrapper, ``AmpOptimWrapper`` with ``--amp``) on one fixed synthetic batch, each setting
in a fresh process on the same machine: the baseline; NetAug in the width phase ('random') and in
the expand-only phase ('random_expand'); and the width phase with ``release_base_graph`` (the
base gradient taken before the augmented pass: the same update, lower peak memory). Data loading
is not included (the paper's +16.7% wall-clock overhead on ImageNet GPUs is smaller than the
compute ratio because data loading and communication dominate there).

Next to each measured ratio it prints the ratio predicted by MACs: a NetAug step runs the base
detector and one sampled augmented detector, so it costs (MACs_base + mean MACs_aug) / MACs_base
times a baseline step, with mean MACs_aug averaged over ``--mac-samples`` sampled models (drawn as
training draws them, seeded).

Memory: "peak" is the process's peak (CUDA: peak allocated; CPU: peak resident set, Linux
``VmHWM``) over warm-up and timed iterations; "step" is that peak minus the memory in use once the
model, optimizer and batch exist, before the first step (activations, gradients, optimizer state,
workspaces); the memory ratio compares step memory.

``--quick`` (batch 4, 192x192, 1 warm-up and 3 timed steps, 20 MAC samples, one thread) runs in
under 3 minutes on 2 CPU cores; ``--json`` writes, per backbone and phase, ``time_ratio``,
``macs_ratio``, ``memory_ratio`` and the absolute figures.
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
QUICK = dict(batch_size=4, input_size=192, iters=3, warmup=1, mac_samples=20, threads=1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Training overhead of NetAug')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--input-size', type=int, default=320)
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per setting')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations first')
    parser.add_argument('--mac-samples', type=int, default=50,
                        help='augmented models sampled for the mean augmented MACs')
    parser.add_argument('--threads', type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if present)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (mmengine AmpOptimWrapper; CUDA only)')
    parser.add_argument('--quick', action='store_true',
                        help=f'small settings for a check in under 3 minutes: {QUICK}')
    parser.add_argument('--json', help='also write the results to this json file')
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


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


def time_training(config: str, aug_mode: Optional[str], release: bool,
                  args: argparse.Namespace) -> Dict:
    """Seconds per ``train_step``, images/s and peak memory (MiB) of one setting, here."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from netaug_det.models.netaug import NetAugAuxLoss, NetAugSupernet
    from netaug_det.models.train_loss import TrainLoss

    if args.threads:
        torch.set_num_threads(args.threads)
    model, cfg = build_model(config, args.device)
    if aug_mode is not None:
        term = NetAugAuxLoss(NetAugSupernet(model), alpha=1.0)
        term.aug_mode = aug_mode
        term.generator.manual_seed(0)
        loss = TrainLoss.attach(model)
        loss.add('netaug', term)
        loss.release_base_graph = release
    wrapper_cfg = cfg.optim_wrapper.to_dict()
    if args.amp:
        wrapper_cfg.update(type='AmpOptimWrapper', loss_scale='dynamic')
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    batch = synthetic_batch(args.batch_size, args.input_size, cfg.model.bbox_head.num_classes)
    on_gpu = args.device.startswith('cuda')

    def step() -> None:
        model.train_step(batch, optim_wrapper)
        if on_gpu:
            torch.cuda.synchronize()

    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    resting = torch.cuda.memory_allocated() if on_gpu else resident_kib('VmRSS') * 1024
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    seconds = (time.perf_counter() - start) / args.iters
    peak = torch.cuda.max_memory_allocated() if on_gpu else resident_kib('VmHWM') * 1024
    return dict(seconds_per_iter=seconds, images_per_s=args.batch_size / seconds,
                peak_mib=peak / 2**20, step_mib=(peak - resting) / 2**20)


def mac_ratios(netaug_config: str, args: argparse.Namespace) -> Dict:
    """Base MACs and the predicted NetAug/baseline step-cost ratio for each augmented mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from netaug_det.models.netaug import NetAugSupernet

    model, _ = build_model(netaug_config, args.device)
    model.eval()
    device = next(model.parameters()).device

    def forward_macs() -> float:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model._forward(torch.zeros(1, 3, args.input_size, args.input_size, device=device))
        return counter.get_total_flops() / 2

    base = forward_macs()
    supernet = NetAugSupernet(model)
    result = dict(base_mmacs=base / 1e6)
    for mode in ('random', 'random_expand'):
        generator = torch.Generator().manual_seed(0)
        samples = []
        for _ in range(args.mac_samples):
            supernet.set_mode(mode, generator)
            samples.append(forward_macs())
        supernet.set_mode('base')
        mean_aug = sum(samples) / len(samples)
        result[mode] = dict(mean_aug_mmacs=mean_aug / 1e6, macs_ratio=1 + mean_aug / base)
    return result


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
    gpu = torch.cuda.get_device_name() if args.device.startswith('cuda') else None
    results = dict(device=args.device, gpu=gpu, amp=args.amp, batch_size=args.batch_size,
                   input_size=args.input_size, iters=args.iters, warmup=args.warmup,
                   threads=args.threads or torch.get_num_threads(), detectors={})
    for name, (baseline_config, netaug_config) in DETECTORS.items():
        macs = run_isolated(mac_ratios, netaug_config, args)
        baseline = run_isolated(time_training, baseline_config, None, False, args)
        entry = dict(base_mmacs=macs['base_mmacs'], baseline=baseline)
        for setting, mode, release in SETTINGS:
            measured = run_isolated(time_training, netaug_config, mode, release, args)
            entry[setting] = dict(
                measured, **macs[mode], mode=mode, release_base_graph=release,
                time_ratio=measured['seconds_per_iter'] / baseline['seconds_per_iter'],
                memory_ratio=measured['step_mib'] / baseline['step_mib'])
        results['detectors'][name] = entry
    results['load_average'] = os.getloadavg()
    results['wall_s'] = time.perf_counter() - started

    print(f"device={results['device']}{' (' + gpu + ')' if gpu else ''} amp={args.amp} "
          f"threads={results['threads']} batch={args.batch_size} input={args.input_size} "
          f"iters={args.iters} load average after run={results['load_average']} "
          f"wall={results['wall_s']:.0f}s")
    print('| detector | setting | s/iter | images/s | step memory (MiB) | time ratio | '
          'MACs ratio | time / MACs ratio | memory ratio |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, entry in results['detectors'].items():
        base = entry['baseline']
        print(f"| {name} | baseline ({entry['base_mmacs']:.0f} MMACs) | "
              f"{base['seconds_per_iter']:.3f} | {base['images_per_s']:.1f} | "
              f"{base['step_mib']:.0f} | 1.00 | 1.00 | 1.00 | 1.00 |")
        for setting, _, _ in SETTINGS:
            row = entry[setting]
            print(f"| {name} | NetAug, {setting} | {row['seconds_per_iter']:.3f} | "
                  f"{row['images_per_s']:.1f} | {row['step_mib']:.0f} | "
                  f"{row['time_ratio']:.2f} | {row['macs_ratio']:.2f} | "
                  f"{row['time_ratio'] / row['macs_ratio']:.2f} | {row['memory_ratio']:.2f} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
