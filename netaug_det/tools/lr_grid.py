"""Each method at its own best learning rate: a learning-rate grid over seeds, in one command.

``python -m netaug_det.tools.lr_grid BASELINE_CONFIG NETAUG_CONFIG --lr-mults 0.5 1 2 4
--seeds 0 1 2 --work-dir DIR [--splits val train] [--cfg-options KEY=VALUE ...]``

Both configs are trained at every multiple of their own ``optim_wrapper.optimizer.lr`` with every
seed (``DIR/<method>/lr<lr>/s<seed>/``; finished runs are read back) and evaluated through their
deployable checkpoints under the baseline config. The report (``DIR/lr_grid.{md,json,png}``)
gives every cell as mean ± sd (n) of val AP50, picks each method's best grid point on val AP50,
and compares the two methods each at its best; a best point at the edge of the grid is flagged.
``lr_grid.json`` holds the chosen learning rates, e.g. for ``resolution_sweep
--baseline-options optim_wrapper.optimizer.lr=...``.
"""
import argparse
from typing import List, Optional

from netaug_det.experiments.cli import UniqueValues
from netaug_det.experiments.executors import add_executor_args

METHODS = ('baseline', 'netaug')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Learning-rate grid of baseline and NetAug')
    parser.add_argument('baseline', help='baseline config (also evaluates NetAug deploy.pth)')
    parser.add_argument('netaug', help='NetAug config')
    parser.add_argument('--lr-mults', type=float, nargs='+', default=[0.5, 1.0, 2.0, 4.0],
                        action=UniqueValues,
                        help="multiples of each config's own learning rate")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        action=UniqueValues)
    parser.add_argument('--work-dir', default='work_dirs/lr_grid')
    parser.add_argument('--splits', nargs='+', default=['val'], choices=['val', 'train'])
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides for both configs, training and testing')
    add_executor_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import json
    import os.path as osp

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from netaug_det.experiments.compare import Method, run_methods
    from netaug_det.experiments.runs import load_merged
    from netaug_det.experiments.stats import best_of_grid, markdown_table

    configs = dict(baseline=args.baseline, netaug=args.netaug)
    base_lrs = {method: load_merged(config, args.cfg_options).optim_wrapper.optimizer.lr
                for method, config in configs.items()}
    grid = {method: {mult: float(f'{base_lrs[method] * mult:.6g}') for mult in args.lr_mults}
            for method in METHODS}
    methods = [Method(f'{method}/lr{lr:g}', configs[method], (f'optim_wrapper.optimizer.lr={lr}', ))
               for mult in args.lr_mults for method in METHODS
               for lr in [grid[method][mult]]]
    results = {result.method.name: result for result in run_methods(
        methods, args.baseline, args.seeds, args.work_dir, args.cfg_options, args.splits,
        executor=args)}

    cells = {method: {lr: [run['val_ap50'] for run in results[f'{method}/lr{lr:g}'].runs]
                      for lr in grid[method].values()} for method in METHODS}
    best = {method: best_of_grid(cells[method]) for method in METHODS}
    header = ['lr multiple'] + [text for method in METHODS for text in (f'{method} lr',
                                                                        f'{method} val AP50')]
    rows = []
    for mult in args.lr_mults:
        row = [f'x{mult:g}']
        for method in METHODS:
            lr = grid[method][mult]
            summary = results[f'{method}/lr{lr:g}'].summary('val_ap50')
            mark = '**' if lr == best[method][0] else ''
            row += [f'{lr:g}', f'{mark}{summary.format()}{mark}']
        rows.append(row)
    lines = []
    for method in METHODS:
        lr, summary = best[method]
        edge = ' (at the edge of the grid: extend it)' if lr in (
            min(grid[method].values()), max(grid[method].values())) else ''
        lines.append(f'- {method}: best at lr={lr:g}{edge}, val AP50 {summary.format()} '
                     f'(range {summary.format_range()})')
    gap = best['netaug'][1].mean - best['baseline'][1].mean
    lines.append(f'- NetAug at its best minus baseline at its best: {gap:+.1f} AP50 (means over '
                 f'{len(args.seeds)} seeds, picked and reported on the val split)')
    report = markdown_table(header, rows) + '\n' + '\n'.join(lines) + '\n'
    with open(osp.join(args.work_dir, 'lr_grid.md'), 'w') as f:
        f.write(report)
    with open(osp.join(args.work_dir, 'lr_grid.json'), 'w') as f:
        json.dump(dict(seeds=args.seeds, grid={m: list(g.values()) for m, g in grid.items()},
                       cells={m: {str(lr): v for lr, v in c.items()} for m, c in cells.items()},
                       best_lr={m: best[m][0] for m in METHODS}), f, indent=2)

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in zip(METHODS, 'os'):
        lrs = sorted(cells[method])
        summaries = [results[f'{method}/lr{lr:g}'].summary('val_ap50') for lr in lrs]
        ax.errorbar(lrs, [s.mean for s in summaries], yerr=[s.sd for s in summaries],
                    marker=marker, capsize=3, label=f'{method} (mean ± sd)')
    ax.set(xscale='log', xlabel='learning rate', ylabel='val AP50 (%)',
           title=f'{osp.basename(args.baseline)}: learning-rate grid')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(args.work_dir, 'lr_grid.png'), dpi=120)
    plt.close(fig)
    print(report)
    print(f'written: {args.work_dir}/lr_grid.md, lr_grid.json, lr_grid.png')


if __name__ == '__main__':
    main()
