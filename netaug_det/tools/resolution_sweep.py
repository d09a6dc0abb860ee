"""AP50 vs MACs of a baseline and a NetAug config over square input resolutions and seeds.

Launch mode (default) trains each config at each resolution with each seed
(``python -m netaug_det.tools.train``) and tests its deployable model (NetAug's ``deploy.pth``
under the baseline config); finished runs are not run again::

    python -m netaug_det.tools.resolution_sweep configs/yolov3_mbv2_voc.py \\
        configs/yolov3_mbv2_netaug_voc.py --seeds 0 1 2 --work-dir work_dirs/sweep_voc \\
        --netaug-options optim_wrapper.optimizer.lr=0.004

``--collect`` only reads runs made elsewhere, e.g. on a cluster with ``tools/dist_train.sh
CONFIG 8 --work-dir WORK_DIR/<baseline|netaug>/r<R>/s<seed> --cfg-options input_size=R
randomness.seed=<seed>`` (layout: ``netaug_det/experiments/sweep.py``); a run counts only when
its final checkpoint reached the end of its schedule with the seed and input size of its folder,
and it was tested after that or validated at its end. Both modes write
``resolution_sweep.{csv,md,png}``: per method and resolution n, mean, sd, min and max AP50, the
iso-AP50 MAC reduction of the mean curves with a bootstrap interval over seeds, and the plot.
"""
import argparse
from typing import List, Optional

from netaug_det.experiments.cli import UniqueValues
from netaug_det.experiments.executors import add_executor_args

METHODS = ('baseline', 'netaug')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Resolution sweep: AP50 vs MACs, baseline vs NetAug, over seeds')
    parser.add_argument('baseline', help='baseline config (also tests the NetAug deploy.pth)')
    parser.add_argument('netaug', help='NetAug config')
    parser.add_argument(
        '--resolutions',
        type=int,
        nargs='+',
        action=UniqueValues,
        help='square input sizes (multiples of 32); default: the paper grid, '
        '256..416 for VOC and 288..448 for COCO, step 32')
    parser.add_argument(
        '--seeds', type=int, nargs='+', action=UniqueValues,
        help='randomness.seed of the runs (default: launch seed 0; collect whatever is there)')
    parser.add_argument('--work-dir', default='work_dirs/resolution_sweep',
                        help='root of the runs: WORK_DIR/<method>/r<resolution>/s<seed>')
    parser.add_argument('--out-dir', help='where the outputs go; default: WORK_DIR')
    parser.add_argument(
        '--collect', action='store_true', help='only read existing runs, launch nothing')
    parser.add_argument('--metric-key', help='AP50 metric name; default from the evaluator')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides for both configs, passed on to training and testing (and applied to the '
        'model whose MACs are counted)')
    for method in METHODS:
        parser.add_argument(
            f'--{method}-options', nargs='+', default=[], metavar='KEY=VALUE',
            help=f'training overrides for the {method} runs only, e.g. its tuned learning rate '
            '(optim_wrapper.optimizer.lr=...) or its ImageNet weights (backbone_checkpoint=...)')
    add_executor_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import os.path as osp

    from netaug_det.models.builders import build_detector
    from netaug_det.analysis.complexity import get_detector_complexity
    from netaug_det.experiments.executors import Run, run_many
    from netaug_det.experiments.runs import METRIC_KEYS, RunSpec, evaluator_type, load_merged
    from netaug_det.experiments.sweep import (DEFAULT_RESOLUTIONS, collect_cells, run_dir,
                                        sweep_result, write_sweep_outputs)

    cfg = load_merged(args.baseline, args.cfg_options)
    metric = evaluator_type(cfg)
    resolutions = args.resolutions or DEFAULT_RESOLUTIONS[metric]
    seeds = args.seeds
    if not args.collect:
        seeds = seeds or [0]
        configs = dict(baseline=args.baseline, netaug=args.netaug)
        run_many([Run(f'{method}/r{resolution}/s{seed}', RunSpec(
            configs[method], args.baseline, run_dir(args.work_dir, method, resolution, seed),
            seed, cfg_options=(f'input_size={resolution}', *args.cfg_options),
            train_options=tuple(getattr(args, f'{method}_options'))))
                  for seed in seeds for method in METHODS for resolution in resolutions],
                 args, args.work_dir)
    model = build_detector(cfg)
    macs = {r: get_detector_complexity(model, r)['macs'] / 1e6 for r in resolutions}
    cells = collect_cells(args.work_dir, resolutions, macs,
                          args.metric_key or METRIC_KEYS[metric], seeds)
    paths = write_sweep_outputs(sweep_result(cells), args.out_dir or args.work_dir,
                                title=f'{osp.basename(args.baseline)}: AP50 vs MACs')
    with open(paths['md']) as f:
        print(f.read())
    print('written: ' + ', '.join(paths.values()))


if __name__ == '__main__':
    main()
