"""The main job: baseline vs NetAug YOLOv3-MobileNetV2-w0.35 on the demo data, over seeds, on CPU.

``python -m netaug_det.tools.run_demo [--seeds 0 1 2] [--work-dir work_dirs/demo]
[--no-equal-time] [--configs BASELINE NETAUG] [--cfg-options KEY=VALUE ...]``

Generates ``data/demo/`` when it is missing, then for every seed trains
``configs/demo/yolov3_mbv2_demo.py`` and ``configs/demo/yolov3_mbv2_netaug_demo.py`` (each at the
learning rate its config sets, tuned per method by ``lr_grid``: docs/demo.md) and the baseline
once more for as long as NetAug took on this machine in this run (proportionally more epochs,
the same schedule shape: "baseline, equal time"). Each deployable model (the baseline's final
checkpoint, NetAug's ``deploy.pth``, both in the baseline architecture) is evaluated on the val and
train splits, and a table of mean ± sd over seeds is printed with the seeds and learning rates
used. Runs, logs and ``comparison.{md,json,png}`` land in the work dir; finished runs are read
back, not trained again. ``--configs`` runs the same job with another pair of configs, on data
that is already in place (e.g. ``configs/real/``, after ``netaug_det.tools.fetch_dataset``).
"""
import argparse
from typing import List, Optional

from netaug_det.experiments.cli import UniqueValues
from netaug_det.experiments.executors import add_executor_args

BASELINE_CONFIG = 'configs/demo/yolov3_mbv2_demo.py'
NETAUG_CONFIG = 'configs/demo/yolov3_mbv2_netaug_demo.py'
# One compute thread per child (plus one dataloader worker) unless the caller sets it: on a 2-core
# CPU, OpenMP's second thread contends with the worker and makes small convolutions and
# BatchNorms several times slower.
CHILD_THREADS = '1'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train and compare baseline and NetAug on the '
                                     'demo data (CPU), over seeds')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], action=UniqueValues,
                        help='randomness.seed of the runs (default: 0, to fit the time budget)')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs, logs and the table')
    parser.add_argument('--configs', nargs=2, default=[BASELINE_CONFIG, NETAUG_CONFIG],
                        metavar=('BASELINE', 'NETAUG'),
                        help='baseline and NetAug configs (default: the demo\'s, whose data is '
                        'generated when missing; other data must be in place, docs/real_data.md)')
    parser.add_argument('--no-equal-time', action='store_true',
                        help='skip the baseline trained for as long as NetAug took')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides for both configs, training and testing '
        '(e.g. train_cfg.max_epochs=2 for a quick look)')
    add_executor_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import os
    import os.path as osp
    import time

    from netaug_det.datasets import demo_dataset_at
    from netaug_det.experiments.compare import Method, MethodResult, run_methods, write_comparison
    from netaug_det.models.builders import build_detector
    from netaug_det.analysis.complexity import get_detector_complexity
    from netaug_det.experiments.executors import Run, run_many
    from netaug_det.experiments.runs import RunSpec, epoch_options, load_merged
    from netaug_det.utils.paths import project_path

    start = time.perf_counter()
    os.environ.setdefault('OMP_NUM_THREADS', CHILD_THREADS)
    demo = args.configs == [BASELINE_CONFIG, NETAUG_CONFIG]
    baseline, netaug = map(project_path, args.configs) if demo else args.configs
    cfg = load_merged(baseline, args.cfg_options)
    if demo:
        data = demo_dataset_at(cfg.data_root)['splits']
        print(f'[demo] data in {cfg.data_root}: {data}', flush=True)
    methods = [Method('baseline', baseline), Method('netaug', netaug)]
    results = run_methods(methods, baseline, args.seeds, args.work_dir, args.cfg_options,
                          ('val', 'train'), executor=args)
    epochs = {method.name: [load_merged(method.config, args.cfg_options).train_cfg.max_epochs]
              * len(args.seeds) for method in methods}
    if not args.no_equal_time:
        equal = Method('baseline, equal time', baseline)
        runs = []
        for seed, base_run, netaug_run in zip(args.seeds, *(r.runs for r in results)):
            ratio = netaug_run['train_time_s'] / base_run['train_time_s']
            seed_epochs = max(1, round(cfg.train_cfg.max_epochs * ratio))
            epochs.setdefault(equal.name, []).append(seed_epochs)
            runs.append(Run(f'baseline_equal_time/s{seed}', RunSpec(
                baseline, baseline, osp.join(args.work_dir, 'baseline_equal_time', f's{seed}'),
                seed, tuple(args.cfg_options), tuple(epoch_options(cfg, seed_epochs)),
                ('val', 'train'))))
        results.append(MethodResult(equal, run_many(runs, args, args.work_dir)))
    lrs = {method.name: load_merged(method.config, args.cfg_options).optim_wrapper.optimizer
           for method in methods}
    complexity = get_detector_complexity(build_detector(cfg), cfg.input_size)
    optimizers = ', '.join(f"{name} {optimizer['type']} lr={optimizer['lr']:g}"
                           for name, optimizer in lrs.items())
    notes = (f'{len(args.seeds)} seed(s) {args.seeds}; {optimizers}; AP50 in % at '
             f'{cfg.input_size}x{cfg.input_size}, mean ± sd (n) over seeds, each deployable '
             f'model evaluated in the baseline architecture ({complexity["params"] / 1e6:.3f} M '
             f'params, {complexity["macs"] / 1e6:.1f} M MACs for all); train time and peak '
             'memory of the training process; "baseline, equal time": the baseline config '
             'trained for as many epochs as fit in the time NetAug took (same seed, same '
             'schedule shape).')
    column = {name: ', '.join(str(e) for e in sorted(set(values)))
              for name, values in epochs.items()}
    paths = write_comparison(results, args.work_dir,
                             'Baseline vs NetAug, YOLOv3-MobileNetV2-w0.35, demo data' if demo
                             else f'Baseline vs NetAug, {baseline} on {cfg.data_root}', notes,
                             extra_columns={'epochs': column})
    with open(paths['md']) as f:
        print(f.read())
    print(f'saved to {", ".join(paths.values())}; '
          f'{(time.perf_counter() - start) / 60:.1f} min in all')


if __name__ == '__main__':
    main()
