"""Comparing methods over seeds: named runs -> table (mean ± sd, range, cost) and bar chart.

Shared by the main job (``run_demo``), ``compare_runs`` (ablations: distillation, cost knobs,
pretrained starts) and ``lr_grid``. Each method is a config plus training overrides; each is
trained once per seed with :func:`netaug_det.experiments.runs.run_experiment` into
``<work_dir>/<name>/s<seed>/`` and evaluated through its deployable checkpoint.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence

from .executors import Run, default_executor_args, run_many
from .runs import RunSpec, require_unique
from .stats import Summary, markdown_table, summarize


class Method(NamedTuple):
    """A compared method: its name, training config and training-only overrides."""

    name: str
    config: str
    options: tuple = ()


class MethodResult(NamedTuple):
    """A method's runs, one per seed (the dicts of ``run_experiment``)."""

    method: Method
    runs: List[dict]

    def summary(self, key: str) -> Optional[Summary]:
        """The summary over seeds of ``key`` (e.g. 'val_ap50'), None when no run has it."""
        values = [run[key] for run in self.runs if run.get(key) is not None]
        return summarize(values) if values else None

    def first_validation(self) -> Optional[Summary]:
        """AP50 of the first validation during training (e.g. after epoch 1), over seeds."""
        values = [run['val_curve'][0] for run in self.runs if run.get('val_curve')]
        return summarize(values) if values else None


def run_methods(methods: Sequence[Method], test_config: str, seeds: Sequence[int],
                work_dir: str, cfg_options: Sequence[str] = (),
                splits: Sequence[str] = ('val', ),
                executor: Optional[argparse.Namespace] = None) -> List[MethodResult]:
    """Trains and evaluates every method with every seed (seed-major, so that an interrupted
    experiment holds complete seeds) with the ``executor`` options
    (:mod:`~netaug_det.experiments.executors`; default: one local run at a time); finished runs
    are read back, not run again.

    Raises:
        ValueError: when seeds or method names repeat (one run would be counted twice, or two
            methods would share one row and one folder).
    """
    require_unique(seeds, 'seeds')
    require_unique([method.name for method in methods], 'method names')
    runs = [Run(f'{method.name}/s{seed}',
                RunSpec(method.config, test_config, osp.join(work_dir, method.name, f's{seed}'),
                        seed, tuple(cfg_options), tuple(method.options), tuple(splits)))
            for seed in seeds for method in methods]
    results = dict(zip((run.name for run in runs),
                       run_many(runs, executor or default_executor_args(), work_dir)))
    return [MethodResult(method, [results[f'{method.name}/s{seed}'] for seed in seeds])
            for method in methods]


def _cell(summary: Optional[Summary], digits: int = 1) -> str:
    return '–' if summary is None else summary.format(digits)


def comparison_table(results: Sequence[MethodResult],
                     extra_columns: Optional[Dict[str, Dict[str, str]]] = None) -> str:
    """Markdown: per method val and train AP50 (mean ± sd (n), range), AP50 at the first
    validation when there was one, training time (min) and peak training memory (MiB), then
    ``extra_columns`` (column -> method name -> text)."""
    has_train = any(result.summary('train_ap50') for result in results)
    has_first = any(result.first_validation() for result in results)
    header = ['method', 'val AP50', 'val range']
    if has_train:
        header.append('train AP50')
    if has_first:
        header.append('val AP50 after the first validation')
    header += ['train time (min)', 'peak memory (MiB)', *(extra_columns or {})]
    rows = []
    for result in results:
        val = result.summary('val_ap50')
        row = [result.method.name, _cell(val), '–' if val is None else val.format_range()]
        if has_train:
            row.append(_cell(result.summary('train_ap50')))
        if has_first:
            row.append(_cell(result.first_validation()))
        time, memory = result.summary('train_time_s'), result.summary('train_peak_mib')
        row += [f'{time.mean / 60:.1f}', f'{memory.mean:.0f}']
        row += [columns[result.method.name] for columns in (extra_columns or {}).values()]
        rows.append(row)
    return markdown_table(header, rows)


def write_comparison(results: Sequence[MethodResult], out_dir: str, title: str,
                     notes: str = '', extra_columns: Optional[Dict[str, Dict[str, str]]] = None
                     ) -> Dict[str, str]:
    """Writes ``comparison.md`` (title, table, notes), ``comparison.json`` (every run) and
    ``comparison.png`` (val, and train when measured, AP50 per method: mean bars, sd error bars,
    each seed's value as a dot); returns their paths by suffix."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'comparison.{ext}') for ext in ('md', 'json', 'png')}
    table = comparison_table(results, extra_columns)
    with open(paths['md'], 'w') as f:
        f.write(f'## {title}\n\n{table}\n{notes}\n')
    with open(paths['json'], 'w') as f:
        json.dump({result.method.name: dict(config=result.method.config,
                                            options=list(result.method.options),
                                            runs=result.runs) for result in results}, f, indent=2)

    splits = [key for key in ('val_ap50', 'train_ap50') if any(r.summary(key) for r in results)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(results) + 1), 4))
    width = 0.8 / len(splits)
    for offset, key in enumerate(splits):
        xs = [i + (offset - (len(splits) - 1) / 2) * width for i in range(len(results))]
        summaries = [result.summary(key) for result in results]
        bars = ax.bar(xs, [s.mean for s in summaries], width, yerr=[s.sd for s in summaries],
                      capsize=3, label=key.replace('_ap50', ' AP50'), alpha=0.8)
        for x, result in zip(xs, results):
            values = [run[key] for run in result.runs]
            ax.scatter([x] * len(values), values, color='black', s=10, zorder=3)
        ax.bar_label(bars, fmt='%.1f', fontsize=8, padding=2)
    ax.set_xticks(range(len(results)), [result.method.name for result in results],
                  rotation=20, ha='right')
    ax.set(ylabel='AP50 (%)', title=title)
    ax.legend()
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths['png'], dpi=120)
    plt.close(fig)
    return paths
