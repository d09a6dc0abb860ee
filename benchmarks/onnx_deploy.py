"""Zero inference overhead, measured where users deploy: ONNX graphs and onnxruntime latency of the
baseline detector and NetAug's deployable detector, and (``--int8``) their accuracy after static
int8 quantization.

``python benchmarks/onnx_deploy.py CONFIG BASELINE_CKPT NETAUG_DEPLOY [--input-size N]
[--threads 1] [--warmup 50] [--runs 1000] [--int8 [--calib-images 64]] [--work-dir DIR]``

1. Exports both checkpoints with the same (baseline) CONFIG, raw outputs, batch 1, and compares
   their graph signatures (every node's type, attributes and tensor shapes, every initializer's
   name and shape; ``netaug_det.deployment.checks.graph_signature``).
2. Times onnxruntime (CPU) inference of both in one process on one preprocessed test image: same
   session options and thread count, ``--warmup`` untimed runs each, then ``--runs`` rounds
   that run each model once, alternating which goes first, so load changes on a shared machine
   hit both alike. Reports median, interquartile range, min and max per model and the ratio of
   the medians.
3. With ``--int8``: quantizes both graphs (``netaug_det.deployment.quantize``, the same
   calibration images) and reports AP50 on the config's test split before and after, through the
   config's metric as ``tools/test.py`` reports it, and times the int8 graphs with the others.
"""
import argparse
import json
import os.path as osp
import time
from typing import Dict, List, Optional

import numpy as np

MODELS = ('baseline', 'netaug')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='ONNX graphs, latency and int8 accuracy of the '
                                     'baseline and NetAug deployable detectors')
    parser.add_argument('config', help='the baseline config (NetAug deploy.pth loads into it)')
    parser.add_argument('baseline', help="the baseline run's final checkpoint")
    parser.add_argument('netaug', help="the NetAug run's deploy.pth")
    parser.add_argument('--input-size', type=int, help="input side N (default: the config's)")
    parser.add_argument('--threads', type=int, default=1, help='onnxruntime threads (default 1)')
    parser.add_argument('--warmup', type=int, default=50, help='untimed runs per model first')
    parser.add_argument('--runs', type=int, default=1000, help='timed runs per model')
    parser.add_argument('--int8', action='store_true', help='also quantize and evaluate AP50')
    parser.add_argument('--calib-images', type=int, default=64,
                        help='training images for int8 calibration (default 64)')
    parser.add_argument('--work-dir', default='work_dirs/onnx_deploy',
                        help='where the .onnx files and results.json go')
    return parser.parse_args(argv)


def time_sessions(sessions: Dict[str, object], image: np.ndarray, warmup: int,
                  runs: int) -> Dict[str, np.ndarray]:
    """Seconds per run of each onnxruntime session on ``image``, interleaved (see module doc)."""
    feeds = {name: {session.get_inputs()[0].name: image} for name, session in sessions.items()}
    for name, session in sessions.items():
        for _ in range(warmup):
            session.run(None, feeds[name])
    times = {name: [] for name in sessions}
    names = list(sessions)
    for round_index in range(runs):
        for name in names if round_index % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            sessions[name].run(None, feeds[name])
            times[name].append(time.perf_counter() - start)
    return {name: np.array(values) for name, values in times.items()}


def latency_stats(seconds: np.ndarray) -> Dict[str, float]:
    """Median, quartiles, min and max in milliseconds."""
    q25, median, q75 = np.percentile(seconds * 1e3, [25, 50, 75])
    return dict(median_ms=median, q25_ms=q25, q75_ms=q75, min_ms=seconds.min() * 1e3,
                max_ms=seconds.max() * 1e3)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from netaug_det.deployment import exit_without_onnx_packages, user_errors
    exit_without_onnx_packages()

    from mmengine.logging import MMLogger

    import netaug_det  # noqa: F401  registers modules and checkpoint handling
    from netaug_det.deployment.checks import (graph_signature, op_counts,
                                              signature_differences)
    from netaug_det.deployment.export import export_onnx, load_config, load_detector
    from netaug_det.deployment.quantize import calibration_batches, quantize_int8
    from netaug_det.deployment.runtime import (build_dataset, create_session, evaluate_onnx,
                                               preprocessed_batches)

    MMLogger.get_instance('onnx_deploy', log_level='WARNING')  # no per-class AP tables
    with user_errors():
        cfg = load_config(args.config, args.input_size)
        detectors = {name: load_detector(cfg, getattr(args, name)) for name in MODELS}
    size = cfg.input_size
    paths = {name: osp.join(args.work_dir, f'{name}_{size}.onnx') for name in MODELS}
    for name in MODELS:
        export_onnx(detectors[name], paths[name], size)
    signatures = {name: graph_signature(paths[name]) for name in MODELS}
    differences = signature_differences(signatures['baseline'], signatures['netaug'])
    counts = op_counts(paths['baseline'])
    results = dict(config=args.config, checkpoints={name: getattr(args, name) for name in MODELS},
                   input_size=size, threads=args.threads, warmup=args.warmup, runs=args.runs,
                   graphs_identical=not differences, differences=differences,
                   nodes=sum(counts.values()), op_counts=dict(counts),
                   signature_entries=len(signatures['baseline']))
    print(f'## ONNX graphs ({size}x{size}, batch 1)\n')
    print(f"baseline vs netaug graph signatures: {'identical' if not differences else 'DIFFER'} "
          f"({len(signatures['baseline'])} entries: inputs, initializers, nodes, outputs)")
    print(f"{results['nodes']} nodes: " + ', '.join(f'{op} {n}' for op, n in counts.most_common()))
    for difference in differences:
        print(f'  {difference}')

    if args.int8:
        results['int8'] = {}
        for name in MODELS:
            paths[f'{name} int8'] = osp.join(args.work_dir, f'{name}_{size}_int8.onnx')
            with user_errors():
                quantize_int8(paths[name], paths[f'{name} int8'],
                              calibration_batches(cfg, args.calib_images))
            fp32, int8 = (evaluate_onnx(cfg, paths[key], args.threads)
                          for key in (name, f'{name} int8'))
            results['int8'][name] = {'fp32': fp32, 'int8': int8}

    sessions = {name: create_session(path, args.threads) for name, path in paths.items()}
    image, _ = next(preprocessed_batches(detectors['baseline'].data_preprocessor,
                                         build_dataset(cfg, 'test', 1), 1))
    times = time_sessions(sessions, image.numpy(), args.warmup, args.runs)
    results['latency'] = {name: latency_stats(seconds) for name, seconds in times.items()}
    ratio = results['latency']['netaug']['median_ms'] / results['latency']['baseline']['median_ms']
    results['latency_ratio'] = ratio
    print(f'\n## onnxruntime CPU latency ({args.threads} thread(s), {args.warmup} warm-up + '
          f'{args.runs} interleaved runs each)\n')
    print('| model | median (ms) | IQR (ms) | min (ms) | max (ms) |\n| --- | ---: | ---: | ---: '
          '| ---: |')
    for name, stats in results['latency'].items():
        print(f"| {name} | {stats['median_ms']:.3f} | {stats['q25_ms']:.3f}-{stats['q75_ms']:.3f} "
              f"| {stats['min_ms']:.3f} | {stats['max_ms']:.3f} |")
    print(f'\nnetaug / baseline median latency: {ratio:.3f}')

    if args.int8:
        key = next(k for k in results['int8']['baseline']['fp32']
                   if k.endswith(('AP50', 'mAP_50')))
        print(f'\n## int8 ({key}, test split, {args.calib_images} calibration images)\n')
        print('| model | fp32 | int8 | change |\n| --- | ---: | ---: | ---: |')
        ap = {name: {precision: 100 * results['int8'][name][precision][key]
                     for precision in ('fp32', 'int8')} for name in MODELS}
        for name in MODELS:
            print(f"| {name} | {ap[name]['fp32']:.1f} | {ap[name]['int8']:.1f} | "
                  f"{ap[name]['int8'] - ap[name]['fp32']:+.1f} |")
        gains = {precision: ap['netaug'][precision] - ap['baseline'][precision]
                 for precision in ('fp32', 'int8')}
        print(f"\nNetAug gain: {gains['fp32']:+.1f} AP50 in fp32, {gains['int8']:+.1f} in int8")
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2, default=float)
    print(f"\nresults: {osp.join(args.work_dir, 'results.json')}")


if __name__ == '__main__':
    main()
