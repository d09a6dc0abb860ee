"""Training overhead of NetAug: seconds per iteration and peak memory, baseline vs NetAug.

``python benchmarks/netaug_overhead.py [--batch-size 8] [--input-size 320] [--iters 5]``

For MobileNetV2-w0.35 and MobileNetV3-w0.35 YOLOv3 (``configs/yolov3_mbv{2,3}_voc.py`` and their
``_netaug`` twins) it times ``model.train_step`` (forward, backward, optimizer step; the configs'
optimizer wrapper) on one fixed synthetic batch, each setting in a fresh process on the same
machine: the baseline, NetAug in the width phase ('random') and in the expand-only phase
('random_expand'). Data loading is not included (the paper's 16.7% wall-clock overhead on GPUs
is smaller than the compute ratio because data loading and communication dominate there).

Next to the measured ratio it prints the ratio predicted by MACs: a NetAug step runs the base
detector and one sampled augmented detector, so it costs (MACs_base + mean MACs_aug) / MACs_base
times a baseline step, with mean MACs_aug averaged over ``--mac-samples`` sampled models.

Memory: "peak" is the process's peak (CUDA: peak allocated; CPU: peak resident set, Linux
``VmHWM``) over warm-up and timed iterations; "step" is that peak minus the memory in use once
the model, optimizer and batch exist, before the first step (activations, gradients, optimizer
state, workspaces).
"""
import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Dict, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch.utils.flop_counter import FlopCounterMode

import netaug_det  # noqa: F401  registers the project's modules
from netaug_det.models.netaug import NetAugAuxLoss, NetAugSupernet
from netaug_det.models.train_loss import TrainLoss

AUG_MODES = ('random', 'random_expand')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTORS = {
    'MobileNetV2-w0.35': ('configs/yolov3_mbv2_voc.py', 'configs/yolov3_mbv2_netaug_voc.py'),
    'MobileNetV3-w0.35': ('configs/yolov3_mbv3_voc.py', 'configs/yolov3_mbv3_netaug_voc.py'),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Training overhead of NetAug')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--input-size', type=int, default=320)
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per setting')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations first')
    parser.add_argument('--mac-samples', type=int, default=50,
                        help='augmented models sampled for the mean augmented MACs')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='also write the results to this json file')
    return parser.parse_args()


def build_model(config: str, device: str) -> Tuple[torch.nn.Module, Config]:
    cfg = Config.fromfile(os.path.join(REPO_ROOT, config))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    MMLogger.get_instance('netaug_overhead', log_level='WARNING')  # no per-tensor init log
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device).train(), cfg


def synthetic_batch(batch_size: int, size: int, num_classes: int) -> dict:
    """``batch_size`` random uint8 images (3, size, size), three random boxes each."""
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


def time_training(config: str, aug_mode: Optional[str], args: argparse.Namespace) -> Dict:
    """Seconds per ``train_step`` and peak memory (MiB) of one setting, in this process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    model, cfg = build_model(config, args.device)
    if aug_mode is not None:
        term = NetAugAuxLoss(NetAugSupernet(model), alpha=1.0)
        term.aug_mode = aug_mode
        term.generator.manual_seed(0)
        TrainLoss.attach(model).add('netaug', term)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = synthetic_batch(args.batch_size, args.input_size, cfg.model.bbox_head.num_classes)
    on_gpu = args.device.startswith('cuda')

    def step() -> None:
        model.train_step(batch, optim_wrapper)
        if on_gpu:
            torch.cuda.synchronize()

    resting = torch.cuda.memory_allocated() if on_gpu else resident_kib('VmRSS') * 1024
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    seconds = (time.perf_counter() - start) / args.iters
    peak = torch.cuda.max_memory_allocated() if on_gpu else resident_kib('VmHWM') * 1024
    return dict(seconds_per_iter=seconds, peak_mib=peak / 2**20,
                step_mib=(peak - resting) / 2**20)


def forward_macs(model: torch.nn.Module, size: int) -> float:
    """MACs (multiply-accumulates) of one forward pass on a (1, 3, size, size) image."""
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model._forward(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops() / 2


def mac_ratios(netaug_config: str, args: argparse.Namespace) -> Dict:
    """Base MACs and the predicted NetAug/baseline step-cost ratio for each augmented mode."""
    model, _ = build_model(netaug_config, args.device)
    model.eval()
    base = forward_macs(model, args.input_size)
    generator = torch.Generator().manual_seed(0)
    supernet = NetAugSupernet(model)
    result = dict(base_mmacs=base / 1e6)
    for mode in AUG_MODES:
        samples = []
        for _ in range(args.mac_samples):
            supernet.set_mode(mode, generator)
            samples.append(forward_macs(model, args.input_size))
        supernet.set_mode('base')
        mean_aug = sum(samples) / len(samples)
        result[mode] = dict(mean_aug_mmacs=mean_aug / 1e6, predicted_ratio=1 + mean_aug / base)
    return result


def run_isolated(fn, *fn_args):
    """``fn(*fn_args)`` in a fresh process, so peak memory and caches start clean."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context('spawn')) as pool:
        return pool.submit(fn, *fn_args).result()


def main() -> None:
    args = parse_args()
    results = dict(device=args.device, batch_size=args.batch_size, input_size=args.input_size,
                   threads=args.threads or torch.get_num_threads(), detectors={})
    for name, (baseline_config, netaug_config) in DETECTORS.items():
        macs = run_isolated(mac_ratios, netaug_config, args)
        baseline = run_isolated(time_training, baseline_config, None, args)
        entry = dict(base_mmacs=macs['base_mmacs'], baseline=baseline)
        for mode in AUG_MODES:
            measured = run_isolated(time_training, netaug_config, mode, args)
            entry[f'netaug_{mode}'] = dict(
                measured, **macs[mode],
                measured_ratio=measured['seconds_per_iter'] / baseline['seconds_per_iter'],
                memory_ratio=measured['step_mib'] / baseline['step_mib'])
        results['detectors'][name] = entry
    results['load_average'] = os.getloadavg()

    print(f"device={results['device']} threads={results['threads']} batch={args.batch_size} "
          f"input={args.input_size} load average after run={results['load_average']}")
    print('| detector | setting | s/iter | step memory (MiB) | peak (MiB) | time ratio | '
          'memory ratio | MACs ratio (predicted) |')
    print('|---|---|---|---|---|---|---|---|')
    for name, entry in results['detectors'].items():
        base = entry['baseline']
        print(f"| {name} | baseline ({entry['base_mmacs']:.0f} MMACs) | "
              f"{base['seconds_per_iter']:.3f} | {base['step_mib']:.0f} | {base['peak_mib']:.0f} "
              '| 1.00 | 1.00 | 1.00 |')
        for mode in AUG_MODES:
            row = entry[f'netaug_{mode}']
            print(f"| {name} | NetAug {mode} | {row['seconds_per_iter']:.3f} | "
                  f"{row['step_mib']:.0f} | {row['peak_mib']:.0f} | {row['measured_ratio']:.2f} | "
                  f"{row['memory_ratio']:.2f} | {row['predicted_ratio']:.2f} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
