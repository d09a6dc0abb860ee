"""Compare methods over seeds: one table (mean ± sd, range, cost) and one bar chart.

``python -m netaug_det.tools.compare_runs --run NAME CONFIG [KEY=VALUE ...] [--run ...]
--test-config BASELINE_CONFIG --seeds 0 1 2 --work-dir DIR [--splits val train]
[--cfg-options KEY=VALUE ...] [--title TEXT]``

Each ``--run`` is a method: a name, its training config and training-only overrides (e.g. its own
learning rate). Every method is trained with every seed into ``DIR/<name>/s<seed>/`` and its
deployable checkpoint evaluated under ``--test-config``; finished runs are read back, so an
interrupted comparison continues where it stopped, and comparisons sharing a work dir share
their runs. Writes ``comparison.{md,json,png}`` into ``--out-dir`` (default: the work dir).
Used for the ablations in docs/ (distillation, training-cost knobs, pretrained starts).
"""
import argparse
from typing import List, Optional

from netaug_det.experiments.cli import UniqueValues
from netaug_det.experiments.executors import add_executor_args
from netaug_det.experiments.runs import require_unique


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Compare methods over seeds')
    parser.add_argument('--run', nargs='+', action='append', required=True,
                        metavar='NAME CONFIG [KEY=VALUE ...]',
                        help='a method: name, training config, training-only overrides')
    parser.add_argument('--test-config', required=True,
                        help='config that evaluates every deployable checkpoint (the baseline)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], action=UniqueValues)
    parser.add_argument('--work-dir', required=True, help='runs: WORK_DIR/<name>/s<seed>/')
    parser.add_argument('--out-dir', help='where the report goes (default: WORK_DIR); runs '
                        'shared by several comparisons stay in one WORK_DIR')
    parser.add_argument('--splits', nargs='+', default=['val'], choices=['val', 'train'])
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides for every method, training and testing')
    parser.add_argument('--title', default='Comparison over seeds')
    add_executor_args(parser)
    args = parser.parse_args(argv)
    for run in args.run:
        if len(run) < 2:
            parser.error(f'--run needs a name and a config, got {run}')
    try:
        require_unique([run[0] for run in args.run], '--run names')
    except ValueError as error:
        parser.error(f'{error} (each name is one row and one folder)')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from netaug_det.experiments.compare import Method, run_methods, write_comparison

    methods = [Method(run[0], run[1], tuple(run[2:])) for run in args.run]
    results = run_methods(methods, args.test_config, args.seeds, args.work_dir,
                          args.cfg_options, args.splits, executor=args)
    paths = write_comparison(results, args.out_dir or args.work_dir, args.title,
                             notes=f'Seeds {args.seeds}; AP50 in %, mean ± sd (n).')
    with open(paths['md']) as f:
        print(f.read())
    print('written: ' + ', '.join(paths.values()))


if __name__ == '__main__':
    main()
