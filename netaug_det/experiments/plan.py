"""Plans: a whole pipeline of runs (pretraining -> detection -> resolution sweeps, over seeds)
declared in one config file (``configs/plans/*.py``), expanded here into executor runs with
their dependencies and GPU-hour estimates, and collected into the paper's tables.

A plan config holds (see ``configs/plans/paper.py`` for every key):

- ``work_dir``; ``seeds`` (of the detection runs); ``datasets`` to make first (demo data
  generated, real data fetched);
- ``pretraining``: runs by name, each a classifier ``config`` (and the ``test_config`` its
  deployable checkpoint is tested under), the ``checkpoint`` it leaves for detection ('final':
  ``epoch_<max_epochs>.pth``; 'deploy': NetAug's ``deploy.pth``), its GPUs and nodes, and the
  cost model: ``train_images`` and ``images_per_s_per_gpu``;
- ``detection``: entries of a dataset and a backbone, each with a ``baseline`` and a ``netaug``
  config, the pretraining run each starts from (``pretrained``), the ``resolutions`` of its
  sweep (Figure 5), the resolution of ``table`` 4, the same cost keys, and the paper's figures.

Work dirs: ``<work_dir>/pretraining/<name>`` and ``<work_dir>/<entry>/<method>/r<R>/s<seed>``
(the layout of :mod:`netaug_det.experiments.sweep`). GPU-hours are estimated as
``train_images * max_epochs / images_per_s_per_gpu / 3600`` (NetAug runs times
``netaug_cost``), i.e. a per-GPU throughput that does not change with the GPU count, the input
resolution or the evaluation; the plan file states where its throughputs come from.
"""
import os.path as osp
import shlex
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config

from ..utils.paths import project_path
from .executors import Outcome, Run, torchrun_launcher
from .launch import tool_command
from .runs import RunSpec, epoch_options, load_merged, train_args
from .stats import markdown_table, summarize

METHODS = ('baseline', 'netaug')


class PlannedRun(NamedTuple):
    """A run of a plan: the executor's :class:`Run` and what the report needs to place it."""

    run: Run
    stage: str
    group: str
    method: str
    resolution: Optional[int]
    gpu_hours: float


def config_path(path: str) -> str:
    """A config named in a plan: as given when it exists, else in the project's configs."""
    return osp.abspath(path) if osp.exists(path) else project_path(path)


def load_plan(path: str) -> Config:
    """Reads a plan config and checks its keys, naming the file and the missing key."""
    plan = Config.fromfile(path)
    for key in ('work_dir', 'seeds', 'pretraining', 'detection'):
        if key not in plan:
            raise KeyError(f'{path} has no {key!r}; every plan declares work_dir, seeds, '
                           'pretraining and detection (see configs/plans/paper.py)')
    names = set(plan.pretraining)
    for entry in plan.detection:
        for method in METHODS:
            parent = entry.get('pretrained', {}).get(method)
            if parent is not None and parent not in names:
                raise KeyError(f'{path}: detection {entry.name!r} starts {method} from '
                               f'{parent!r}, which is not in pretraining ({sorted(names)})')
    return plan


def run_options(config: str, item: dict) -> tuple:
    """The training overrides of a plan item: its ``train_options`` and, with ``epochs``, the
    overrides that train it that long with the same schedule shape."""
    options = list(item.get('train_options', ()))
    if item.get('epochs'):
        options += epoch_options(load_merged(config, options), item['epochs'])
    return tuple(options)


def gpu_hours(config: str, options: Sequence[str], item: dict, cost: float) -> float:
    """Estimated GPU-hours of one training (module docstring)."""
    epochs = load_merged(config, options).train_cfg.max_epochs
    return item['train_images'] * epochs / item['images_per_s_per_gpu'] / 3600 * cost


def final_checkpoint(spec: RunSpec, kind: str) -> str:
    """The checkpoint a pretraining run leaves: 'deploy' or 'final' (the last epoch's)."""
    if kind == 'deploy':
        return osp.join(spec.work_dir, 'deploy.pth')
    if kind != 'final':
        raise ValueError(f"pretraining checkpoint is 'deploy' or 'final', got {kind!r}")
    epochs = load_merged(spec.config, spec.train_options).train_cfg.max_epochs
    return osp.join(spec.work_dir, f'epoch_{epochs}.pth')


def expand_plan(plan: Config) -> List[PlannedRun]:
    """Every run of ``plan``: the pretraining runs, then each detection entry's runs per seed,
    method and resolution, each waiting for the pretraining run its backbone starts from."""
    planned, checkpoints = [], {}
    netaug_cost = plan.get('netaug_cost', 1.0)
    for name, item in plan.pretraining.items():
        config = config_path(item.config)
        options = run_options(config, item)
        spec = RunSpec(config, config_path(item.get('test_config', item.config)),
                       osp.join(plan.work_dir, 'pretraining', name), item.get('seed', 0),
                       tuple(item.get('cfg_options', ())), options)
        checkpoints[name] = final_checkpoint(spec, item.checkpoint)
        cost = netaug_cost if item.get('netaug') else 1.0
        planned.append(PlannedRun(Run(name, spec, (), item.get('gpus'), item.get('nodes')),
                                  'pretraining', name, 'netaug' if item.get('netaug') else
                                  'baseline', None, gpu_hours(config, options, item, cost)))
    for entry in plan.detection:
        test_config = config_path(entry.baseline)
        configs = {method: config_path(entry[method]) for method in METHODS}
        parents = {method: entry.get('pretrained', {}).get(method) for method in METHODS}
        options = {method: run_options(configs[method], entry) + (
            (f'backbone_checkpoint={checkpoints[parents[method]]}', ) if parents[method] else ())
            for method in METHODS}
        hours = {method: gpu_hours(configs[method], options[method], entry,
                                   netaug_cost if method == 'netaug' else 1.0)
                 for method in METHODS}
        for seed in entry.get('seeds', plan.seeds):
            for method in METHODS:
                for resolution in entry.resolutions:
                    cfg_options = (f'input_size={resolution}', *entry.get('cfg_options', ()))
                    name = f'{entry.name}/{method}/r{resolution}/s{seed}'
                    spec = RunSpec(configs[method], test_config, osp.join(plan.work_dir, name),
                                   seed, cfg_options, options[method])
                    after = (parents[method], ) if parents[method] else ()
                    planned.append(PlannedRun(
                        Run(name, spec, after, entry.get('gpus'), entry.get('nodes')),
                        'detection', entry.name, method, resolution, hours[method]))
    return planned


def train_command(run: Run) -> str:
    """The training command line of ``run`` (torchrun's when it has several GPUs)."""
    gpus, nodes = run.gpus or 0, run.nodes or 1
    launcher = torchrun_launcher(gpus, nodes, '$FIRST_NODE:29500', '$SLURM_JOB_ID')
    command = tool_command('train', train_args(run.spec), launcher)
    return ' '.join(token if token.startswith('--rdzv') else shlex.quote(token)
                    for token in command)


def hours(value: float) -> str:
    """GPU-hours for reading: whole hours from 10 on, three significant digits below."""
    return f'{value:,.0f}' if value >= 10 else f'{value:.3g}'


def dry_run_text(planned: Sequence[PlannedRun]) -> str:
    """Every run with its resources, estimate, parents and command, then the totals."""
    lines = []
    for item in planned:
        run = item.run
        gpus, nodes = run.gpus or 0, run.nodes or 1
        after = ', '.join(run.after) or 'nothing'
        lines += [f'[{run.name}] {gpus} GPU(s) x {nodes} node(s), ~{hours(item.gpu_hours)} '
                  f'GPU-h, waits for: {after}', f'    {train_command(run)}']
    lines.append('')
    for stage in ('pretraining', 'detection'):
        runs = [item for item in planned if item.stage == stage]
        lines.append(f'{stage}: {len(runs)} runs, ~{hours(sum(i.gpu_hours for i in runs))} '
                     'GPU-hours')
    lines.append(f'total: {len(planned)} runs, ~{hours(sum(i.gpu_hours for i in planned))} '
                 'GPU-hours (estimate; see the plan file for the assumed throughputs)')
    return '\n'.join(lines)


def fetch_real_dataset(name: str, out_dir: str) -> dict:
    """Fetches the real dataset ``name`` (``REAL_DATASETS``) into ``out_dir`` through the
    package cache, as ``netaug_det.tools.fetch_dataset`` does."""
    from ..datasets.fetch import default_cache_dir, fetch_dataset
    from ..datasets.real_data import REAL_DATASETS
    if name not in REAL_DATASETS:
        raise KeyError(f'plan datasets: real dataset {name!r} is not one of '
                       f'{sorted(REAL_DATASETS)}')
    return fetch_dataset(REAL_DATASETS[name], out_dir, default_cache_dir())


def prepare_datasets(plan: Config) -> None:
    """Makes the datasets a plan names (``datasets``): generates the demo ones, fetches the real
    ones (``type='real_detection', name=...``); one made before with the same arguments is kept,
    one made with other arguments refused (never written over)."""
    from ..datasets import generate_demo_dataset
    from ..datasets.demo_imagefolder import generate_demo_imagefolder
    from ..datasets.ood_imagefolder import generate_ood_imagefolder
    makers = dict(demo_detection=generate_demo_dataset,
                  demo_classification=generate_demo_imagefolder,
                  ood_classification=generate_ood_imagefolder,
                  real_detection=fetch_real_dataset)
    for item in plan.get('datasets', []):
        item = dict(item)
        kind = item.pop('type')
        if kind not in makers:
            raise KeyError(f'plan datasets: type {kind!r} is not one of {sorted(makers)}')
        makers[kind](**item)


def _cell(values: List[float]) -> str:
    return summarize(values).format() if values else '–'


def table4(plan: Config, planned: Sequence[PlannedRun], outcomes: Dict[str, Outcome]) -> str:
    """Table 4's detection columns: val AP50 at each entry's table resolution, mean ± sd (n)
    over seeds, beside the paper's figure."""
    header = ['backbone', 'method', 'dataset', 'AP50 here', 'paper']
    rows = []
    for entry in plan.detection:
        for method in METHODS:
            values = [outcomes[i.run.name].result['val_ap50'] for i in planned
                      if i.group == entry.name and i.method == method
                      and i.resolution == entry.table and outcomes[i.run.name].result]
            paper = entry.get('paper', {}).get(method)
            rows.append([entry.get('backbone', entry.name), method, entry.get('dataset', ''),
                         _cell(values), '–' if paper is None else f'{paper:.1f}'])
    return markdown_table(header, rows)


def figure5(plan: Config, planned: Sequence[PlannedRun], outcomes: Dict[str, Outcome]
            ) -> List[str]:
    """Figure 5 per entry with several resolutions: AP50 vs MACs (``resolution_sweep.*`` in the
    entry's work dir) and the iso-AP50 MAC reduction beside the paper's."""
    from ..analysis.complexity import get_detector_complexity
    from ..models.builders import build_detector
    from .sweep import SweepCell, sweep_result, write_sweep_outputs

    lines = []
    for entry in plan.detection:
        if len(entry.resolutions) < 2:
            continue
        model = build_detector(load_merged(config_path(entry.baseline),
                                           entry.get('cfg_options', ())))
        cells = {method: [] for method in METHODS}
        for method in METHODS:
            for resolution in entry.resolutions:
                values = tuple(outcomes[i.run.name].result['val_ap50'] for i in planned
                               if i.group == entry.name and i.method == method
                               and i.resolution == resolution and outcomes[i.run.name].result)
                if values:
                    macs = get_detector_complexity(model, resolution)['macs'] / 1e6
                    cells[method].append(SweepCell(resolution, macs, values))
        paper = entry.get('paper_mac_reduction')
        paper_text = '' if paper is None else f' Paper: {paper:.0%} fewer MACs.'
        if not all(cells.values()) or len(cells['baseline']) != len(cells['netaug']):
            lines.append(f'- {entry.name}: incomplete sweep, no curve yet.{paper_text}')
            continue
        out_dir = osp.join(plan.work_dir, entry.name)
        result = sweep_result(cells)
        write_sweep_outputs(result, out_dir, f'{entry.name}: AP50 vs MACs')
        lines.append(f'- {entry.name} ({out_dir}/resolution_sweep.png): {result.describe()}'
                     f'{paper_text}')
    return lines


def accounting(planned: Sequence[PlannedRun], outcomes: Dict[str, Outcome]) -> List[str]:
    """Totals of what the runs cost (from their ``accounting``) beside the estimate."""
    recorded = [outcomes[i.run.name].result.get('accounting') for i in planned
                if outcomes[i.run.name].result]
    recorded = [a for a in recorded if a]
    by_kind: Dict[str, float] = {}
    for item in recorded:
        by_kind[item['device_kind']] = by_kind.get(item['device_kind'], 0) + item['device_hours']
    finished = sum(1 for o in outcomes.values() if o.result)
    failed = sum(1 for o in outcomes.values() if o.error)
    wall = sum(item['wall_time_s'] for item in recorded) / 3600
    costs = ', '.join(f'{hours:.3f} {kind}-hours' for kind, hours in by_kind.items()) or 'none'
    estimate = hours(sum(i.gpu_hours for i in planned))
    return [f'- runs: {len(planned)} planned, {finished} finished, {failed} failed, '
            f'{len(planned) - finished - failed} not run',
            f'- recorded cost of the {len(recorded)} runs with accounting: {wall:.2f} h of run '
            f'wall time (summed over runs), {costs}',
            f'- estimated for the whole plan: ~{estimate} GPU-hours (the plan\'s cost model)']


def report(plan: Config, planned: Sequence[PlannedRun], outcomes: Dict[str, Outcome]) -> str:
    """The plan's report in the paper's layout (markdown)."""
    failed = [f'- {name}: {o.error}' for name, o in outcomes.items() if o.error]
    parts = [f'## {plan.get("title", "Plan")}', '', '### Table 4 (detection AP50)', '',
             table4(plan, planned, outcomes), '### Figure 5 (AP50 vs MACs)', '',
             *figure5(plan, planned, outcomes), '', '### Cost', '',
             *accounting(planned, outcomes)]
    if failed:
        parts += ['', '### Failed runs', '', *failed]
    return '\n'.join(parts) + '\n'
