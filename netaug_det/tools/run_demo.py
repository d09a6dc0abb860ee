"""The main job: baseline vs NetAug YOLOv3-MobileNetV2-w0.35 on the demo data, over seeds, on CPU.

``python -m netaug_det.tools.run_demo [--seeds 0 1 2] [--work-dir work_dirs/demo]
[--cfg-options KEY=VALUE ...]``

Generates ``data/demo/`` when it is missing, trains ``configs/demo/yolov3_mbv2_demo.py`` and
``configs/demo/yolov3_mbv2_netaug_demo.py`` (each at the learning rate its config sets, tuned per
method by ``lr_grid``: docs/demo.md) once per seed, evaluates each deployable model (the
baseline's final checkpoint, NetAug's ``deploy.pth``, both in the baseline architecture) on the
val and train splits, and prints a table of mean ± sd over seeds with the seeds and learning
rates used. Runs, logs and ``comparison.{md,json,png}`` land in the work dir; finished runs are
read back, not trained again.
"""
import argparse
from typing import List, Optional

BASELINE_CONFIG = 'configs/demo/yolov3_mbv2_demo.py'
NETAUG_CONFIG = 'configs/demo/yolov3_mbv2_netaug_demo.py'
# One compute thread per child (plus one dataloader worker): on a 2-core CPU, OpenMP's second
# thread contends with the worker and makes small convolutions and BatchNorms several times slower.
CHILD_ENV = dict(OMP_NUM_THREADS='1')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train and compare baseline and NetAug on the '
                                     'demo data (CPU), over seeds')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='randomness.seed of the runs (default: 0, to fit the time budget)')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs, logs and the table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides for both configs, training and testing '
        '(e.g. train_cfg.max_epochs=2 for a quick look)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import os
    import time

    from netaug_det.datasets import ensure_demo_dataset
    from netaug_det.utils.compare import Method, run_methods, write_comparison
    from netaug_det.utils.complexity import build_detector, get_detector_complexity
    from netaug_det.utils.experiments import load_merged
    from netaug_det.utils.paths import project_path

    start = time.perf_counter()
    os.environ.update(CHILD_ENV)
    baseline, netaug = project_path(BASELINE_CONFIG), project_path(NETAUG_CONFIG)
    cfg = load_merged(baseline, args.cfg_options)
    data = ensure_demo_dataset(cfg.data_root)['splits']
    print(f'[demo] data in {cfg.data_root}: {data}', flush=True)
    methods = [Method('baseline', baseline), Method('netaug', netaug)]
    lrs = {method.name: load_merged(method.config, args.cfg_options).optim_wrapper.optimizer
           for method in methods}
    results = run_methods(methods, baseline, args.seeds, args.work_dir, args.cfg_options,
                          ('val', 'train'))
    complexity = get_detector_complexity(build_detector(cfg), cfg.input_size)
    optimizers = ', '.join(f"{name} {optimizer['type']} lr={optimizer['lr']:g}"
                           for name, optimizer in lrs.items())
    notes = (f'{len(args.seeds)} seed(s) {args.seeds}; {optimizers}; AP50 in % at '
             f'{cfg.input_size}x{cfg.input_size}, mean ± sd (n) over seeds, each deployable '
             f'model evaluated in the baseline architecture ({complexity["params"] / 1e6:.3f} M '
             f'params, {complexity["macs"] / 1e6:.1f} M MACs for both); train time and peak '
             'memory of the training process.')
    paths = write_comparison(results, args.work_dir,
                             'Baseline vs NetAug, YOLOv3-MobileNetV2-w0.35, demo data', notes)
    with open(paths['md']) as f:
        print(f.read())
    print(f'saved to {", ".join(paths.values())}; '
          f'{(time.perf_counter() - start) / 60:.1f} min in all')


if __name__ == '__main__':
    main()
