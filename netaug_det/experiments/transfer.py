"""The transfer experiment (docs/transfer.md): classifiers pretrained on out-of-domain data,
without and with NetAug, each at its tuned learning rate, then plain detectors from every
classifier, each pretraining at its tuned detection learning rate; a plan of ``type =
'transfer'`` (``configs/plans/transfer_demo.py``) run by ``netaug_det.tools.run_plan``.

Stages (each a list of executor :class:`~.executors.Run`\\ s, finished runs read back, so the
same command resumes anywhere; a stage needs the picks of the one before):

1. classifier grid: both classifier configs at every ``lr_mults`` multiple of their own
   learning rate, seeds ``grid_seeds``;
2. the detection grid: the detector from each pretraining's classifier of seed
   ``grid_classifier_seed`` at every detection ``lr_mults`` multiple, seeds ``grid_seeds``;
   then the classifiers at their best learning rate (val top-1) with every seed, the baseline
   also trained longer (``long_train_options``, at the baseline's best learning rate: the
   paper's "Baseline (600)" row; its grid classifier comes before its detection grid);
3. detectors from every classifier seed, each pretraining at its best detection learning rate
   (val AP50), detection seeds ``seeds``, ordered so that the arms stay balanced while it runs;
   with ``detection.scratch=True`` also the detector from random initialisation at its config's
   own learning rate, the same detection seeds: whether any pretraining helps at all.

Work dirs: ``<work_dir>/cls/<arm>/lr<lr>/s<seed>`` and
``<work_dir>/det/<arm>/c<classifier seed>/lr<lr>/s<seed>`` (random init:
``<work_dir>/det/scratch/lr<lr>/s<seed>``); ``classifier.work_dir``, when given, puts the
classifiers under that folder instead, so that plans detecting on other data share one set of
classifiers (a finished one is read back only with exactly its settings). The report compares
the pretrainings by their detectors' val AP50: mean over classifier seeds of the mean over
detection seeds, with a hierarchical bootstrap interval (both seed levels resampled).
"""
import functools
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config

from .executors import Outcome, Run, execute, execute_run
from .plan import config_path, final_checkpoint
from .runs import RunSpec, finished_result, load_merged
from .stats import (best_of_grid, hierarchical_bootstrap_interval, markdown_table, summarize,
                    two_level_mean)

# pretraining arms: the classifier config each trains (method) and its schedule
ARMS = ('baseline', 'baseline_long', 'netaug')
ARM_METHOD = dict(baseline='baseline', baseline_long='baseline', netaug='netaug')
# detectors from random initialisation (``detection.scratch=True``): no classifier level
SCRATCH = 'scratch'
# the comparisons the report states, (arm, against); those with SCRATCH only when it ran
CONTRASTS = (('netaug', 'baseline_long'), ('netaug', 'baseline'), ('netaug', SCRATCH),
             ('baseline', SCRATCH), ('baseline_long', SCRATCH))
# an interval (and a verdict) needs at least this many classifier seeds in every group
MIN_CLASSIFIER_SEEDS = 2
PLAN_KEYS = dict(classifier=('baseline', 'netaug', 'train_options', 'long_train_options',
                             'lr_mults', 'grid_seeds', 'seeds'),
                 detection=('config', 'lr_mults', 'grid_classifier_seed', 'grid_seeds', 'seeds'))


class Picks(NamedTuple):
    """The learning rates chosen so far: per classifier method and per pretraining arm."""

    classifier: Dict[str, float]
    detection: Dict[str, float]


def check_transfer_plan(plan: Config, path: str) -> None:
    """Refuses a transfer plan without a key the stages need, naming the file and the key."""
    for section, keys in PLAN_KEYS.items():
        missing = [key for key in keys if key not in plan.get(section, {})]
        if 'work_dir' not in plan or missing:
            raise KeyError(f'{path}: a transfer plan needs work_dir and {section}.'
                           f'{{{", ".join(keys)}}}; missing: {missing or ["work_dir"]} (see '
                           'configs/plans/transfer_demo.py)')
    if plan.detection.grid_classifier_seed not in plan.classifier.seeds:
        raise ValueError(f'{path}: detection.grid_classifier_seed '
                         f'{plan.detection.grid_classifier_seed} is not one of classifier.seeds '
                         f'{list(plan.classifier.seeds)}')


# reading a config takes a while; a plan asks for the same few many times
_checkpoint_of = functools.lru_cache(maxsize=None)(final_checkpoint)


@functools.lru_cache(maxsize=None)
def _base_lr(config: str) -> float:
    return load_merged(config).optim_wrapper.optimizer.lr


def lr_grid(config: str, mults: Sequence[float]) -> List[float]:
    """The learning rates ``mults`` times ``config``'s own (``optim_wrapper.optimizer.lr``)."""
    base = _base_lr(config)
    return [float(f'{base * mult:.6g}') for mult in mults]


def classifier_run(plan: Config, arm: str, lr: float, seed: int) -> Run:
    """The classifier run of ``arm`` at learning rate ``lr``, tested under the baseline
    classifier config (NetAug's ``deploy.pth`` in the plain architecture), in
    ``classifier.work_dir`` when the plan gives one, else in its ``work_dir``."""
    cls = plan.classifier
    schedule = cls.long_train_options if arm == 'baseline_long' else cls.train_options
    name = f'cls/{arm}/lr{lr:g}/s{seed}'
    spec = RunSpec(config_path(cls[ARM_METHOD[arm]]), config_path(cls.baseline),
                   osp.join(cls.get('work_dir', plan.work_dir), name), seed,
                   train_options=(*schedule, f'optim_wrapper.optimizer.lr={lr}'))
    return Run(name, spec)


def detection_run(plan: Config, arm: str, parent: Run, lr: float, seed: int) -> Run:
    """The plain detector started from ``parent``'s classifier (its last epoch, or NetAug's
    ``deploy.pth``), at detection learning rate ``lr``, waiting for ``parent``."""
    checkpoint = _checkpoint_of(parent.spec, 'deploy' if arm == 'netaug' else 'final')
    name = f'det/{arm}/c{parent.spec.seed}/lr{lr:g}/s{seed}'
    config = config_path(plan.detection.config)
    spec = RunSpec(config, config, osp.join(plan.work_dir, name), seed,
                   train_options=(f'backbone_checkpoint={checkpoint}',
                                  f'optim_wrapper.optimizer.lr={lr}'))
    return Run(name, spec, after=(parent.name, ))


def scratch_lr(plan: Config) -> float:
    """Random init's detection learning rate: its config's own (tuned from random init)."""
    return _base_lr(config_path(plan.detection.config))


def scratch_run(plan: Config, seed: int) -> Run:
    """The plain detector from random initialisation at :func:`scratch_lr`, detection seed
    ``seed``."""
    config = config_path(plan.detection.config)
    name = f'det/{SCRATCH}/lr{scratch_lr(plan):g}/s{seed}'
    return Run(name, RunSpec(config, config, osp.join(plan.work_dir, name), seed))


def detector_arms(plan: Config) -> tuple:
    """The arms of the detector table: the pretrainings, then random init when it runs."""
    return (*ARMS, SCRATCH) if plan.detection.get('scratch', False) else ARMS


def stage_grid(plan: Config) -> List[Run]:
    """Stage 1: both classifier methods over their learning-rate grid and the grid seeds."""
    cls = plan.classifier
    return [classifier_run(plan, method, lr, seed) for method in ('baseline', 'netaug')
            for lr in lr_grid(config_path(cls[method]), cls.lr_mults) for seed in cls.grid_seeds]


def classifier_runs(plan: Config, picks: Picks) -> Dict[str, Dict[int, Run]]:
    """Every arm's classifier per seed, at its method's picked learning rate."""
    return {arm: {seed: classifier_run(plan, arm, picks.classifier[ARM_METHOD[arm]], seed)
                  for seed in plan.classifier.seeds} for arm in ARMS}


def stage_classifiers(plan: Config, picks: Picks) -> List[Run]:
    """Stage 2: each arm's classifier of the grid classifier seed and the detection grid from
    it, then the other classifier seeds (the detection grid, whose picks stage 3 needs, runs
    first; the baseline's and NetAug's grid classifiers finished in stage 1)."""
    parents = classifier_runs(plan, picks)
    det = plan.detection
    first, rest = [], []
    for arm in ('baseline', 'netaug', 'baseline_long'):  # grid classifiers finished first
        parent = parents[arm][det.grid_classifier_seed]
        first += [parent] + [detection_run(plan, arm, parent, lr, seed)
                             for lr in lr_grid(config_path(det.config), det.lr_mults)
                             for seed in det.grid_seeds]
        rest += [run for run in parents[arm].values() if run is not parent]
    return first + rest


def stage_detectors(plan: Config, picks: Picks) -> List[Run]:
    """Stage 3: detectors from every classifier at each arm's picked detection learning rate,
    and from random init when the plan asks, detection seed by detection seed (the arms stay
    balanced while it runs); the classifiers they wait for are listed too (finished, read
    back)."""
    parents = classifier_runs(plan, picks)
    with_scratch = SCRATCH in detector_arms(plan)
    detectors = []
    for seed in plan.detection.seeds:
        detectors += [detection_run(plan, arm, parents[arm][cls_seed], picks.detection[arm], seed)
                      for cls_seed in plan.classifier.seeds for arm in ARMS]
        if with_scratch:
            detectors.append(scratch_run(plan, seed))
    return [run for arm in ARMS for run in parents[arm].values()] + detectors


def _grid_cells(runs: Sequence[Run], outcomes: Dict[str, Outcome], prefix: str
                ) -> Dict[float, List[float]]:
    """Learning rate -> val scores of the finished runs whose names start with ``prefix``."""
    cells: Dict[float, List[float]] = {}
    for run in runs:
        result = outcomes.get(run.name) and outcomes[run.name].result
        if run.name.startswith(prefix) and result:
            lr = float(run.name.split('/lr')[1].split('/')[0])
            cells.setdefault(lr, []).append(result['val_ap50'])
    return cells


def pick(runs: Sequence[Run], outcomes: Dict[str, Outcome], prefixes: Dict[str, str]
         ) -> Optional[Dict[str, float]]:
    """Each key's best learning rate among the runs named ``prefix...`` (None until every one
    of those runs finished)."""
    if any(not (outcomes.get(run.name) and outcomes[run.name].result) for run in runs
           if any(run.name.startswith(prefix) for prefix in prefixes.values())):
        return None
    return {key: best_of_grid(_grid_cells(runs, outcomes, prefix))[0]
            for key, prefix in prefixes.items()}


class Stages(NamedTuple):
    """What :func:`run_transfer` got to: the runs of each stage it listed (empty when it did not
    get there), the learning rates picked, and every listed run's outcome by name."""

    grid: List[Run]
    classifiers: List[Run]
    detectors: List[Run]
    picks: Picks
    outcomes: Dict[str, Outcome]


def run_transfer(plan: Config, executor_args, collect: bool = False,
                 work: Callable = execute_run) -> Stages:
    """Runs (or, with ``collect``, only reads) the stages in order, as far as they go: a stage
    whose picks are not all finished (collect, or a failed run) stops there."""
    outcomes: Dict[str, Outcome] = {}

    def stage(runs: List[Run]) -> List[Run]:
        if collect:
            outcomes.update((run.name, Outcome(finished_result(run.spec))) for run in runs)
        else:
            outcomes.update(execute(runs, executor_args, plan.work_dir, work))
        return runs

    grid = stage(stage_grid(plan))
    classifier = pick(grid, outcomes, dict(baseline='cls/baseline/', netaug='cls/netaug/'))
    if classifier is None:
        return Stages(grid, [], [], Picks({}, {}), outcomes)
    second = stage(stage_classifiers(plan, Picks(classifier, {})))
    seed = plan.detection.grid_classifier_seed
    detection = pick(second, outcomes, {arm: f'det/{arm}/c{seed}/' for arm in ARMS})
    if detection is None:
        return Stages(grid, second, [], Picks(classifier, {}), outcomes)
    picks = Picks(classifier, detection)
    third = stage(stage_detectors(plan, picks))
    return Stages(grid, second, [run for run in third if run.name.startswith('det/')], picks,
                  outcomes)


def _results(runs: Sequence[Run], outcomes: Dict[str, Outcome], prefix: str) -> List[dict]:
    return [outcomes[run.name].result for run in runs
            if run.name.startswith(prefix) and outcomes.get(run.name)
            and outcomes[run.name].result]


def _lr_of(name: str) -> float:
    return float(name.split('/lr')[1].split('/')[0])


def grid_table(runs: Sequence[Run], outcomes: Dict[str, Outcome], prefixes: Dict[str, str],
               what: str) -> str:
    """One row per key (classifier method or pretraining arm) and learning rate: the val score
    of its grid runs, mean ± sd (n), and their training time; the best learning rate in bold,
    flagged at the grid's edge."""
    rows = []
    for key, prefix in prefixes.items():
        lrs = sorted({_lr_of(run.name) for run in runs if run.name.startswith(prefix)})
        cells = _grid_cells(runs, outcomes, prefix)
        best = best_of_grid(cells)[0] if cells else None
        for lr in lrs:
            text = summarize(cells[lr]).format() if lr in cells else 'not finished'
            mark = ''
            if lr == best:
                text = f'**{text}**'
                mark = ' best' + (' (edge of the grid)' if lr in (lrs[0], lrs[-1]) else '')
            results = _results([run for run in runs if _lr_of(run.name) == lr], outcomes, prefix)
            rows.append([key, f'{lr:g}{mark}', text, _minutes(results)])
    return markdown_table([what, 'learning rate', 'val score', 'train min/run'], rows)


def arm_units(runs: Sequence[Run], outcomes: Dict[str, Outcome], arm: str
              ) -> Dict[int, List[float]]:
    """Classifier seed -> the val AP50 of the finished stage-3 detectors of ``arm`` (random
    init: one unit, ``None``, holding every detection seed)."""
    units: Dict[Optional[int], List[float]] = {}
    for run in runs:
        result = outcomes.get(run.name) and outcomes[run.name].result
        if run.name.startswith(f'det/{arm}/') and result:
            unit = None if arm == SCRATCH else int(run.name.split('/')[2][1:])
            units.setdefault(unit, []).append(result['val_ap50'])
    return units


def _enough_for_an_interval(arm: str, units: Dict[Optional[int], List[float]]) -> bool:
    """At least :data:`MIN_CLASSIFIER_SEEDS` classifier seeds; random init: two detectors."""
    if arm == SCRATCH:
        return sum(len(unit) for unit in units.values()) >= 2
    return len(units) >= MIN_CLASSIFIER_SEEDS


def _label(arm: str) -> str:
    return 'random initialisation' if arm == SCRATCH else f'{arm} pretraining'


def _minutes(results: Sequence[dict]) -> str:
    if not results:
        return '–'
    return f"{summarize([r['train_time_s'] / 60 for r in results]).mean:.1f}"


def classifier_table(stages: Stages) -> str:
    """Top-1 per classifier arm at its picked learning rate, over the classifier seeds."""
    rows = []
    for arm in ARMS:
        lr = stages.picks.classifier.get(ARM_METHOD[arm])
        results = _results(stages.classifiers, stages.outcomes, f'cls/{arm}/')
        if not results:
            rows.append([arm, '–' if lr is None else f'{lr:g}', '–', '–', '–', '–'])
            continue
        cell = summarize([r['val_ap50'] for r in results])
        rows.append([arm, f'{lr:g}', str(results[0]['trained']['total']), cell.format(),
                     cell.format_range(), _minutes(results)])
    return markdown_table(['classifier', 'lr', 'epochs', 'val top-1', 'range', 'train min/run'],
                          rows)


def transfer_report(plan: Config, stages: Stages) -> str:
    """The report (markdown): the two learning-rate grids, top-1 per classifier arm, AP50 per
    pretraining arm with the two-level interval, the contrasts, and the runs left."""
    seed = plan.detection.grid_classifier_seed
    runs = {run.name: run for run in (*stages.grid, *stages.classifiers, *stages.detectors)}
    finished = [name for name in runs if stages.outcomes.get(name)
                and stages.outcomes[name].result]
    parts = [f'## {plan.get("title", "Transfer")}', '',
             f'### Classifier learning-rate grid (val top-1, %, seeds '
             f'{list(plan.classifier.grid_seeds)})', '',
             grid_table(stages.grid, stages.outcomes,
                        dict(baseline='cls/baseline/', netaug='cls/netaug/'), 'classifier'),
             '### Classifiers at their tuned learning rate (val top-1, %)', '',
             classifier_table(stages),
             f'### Detection learning-rate grid (val AP50, %, classifier seed {seed}, '
             f'detection seeds {list(plan.detection.grid_seeds)})', '',
             grid_table(stages.classifiers, stages.outcomes,
                        {arm: f'det/{arm}/c{seed}/' for arm in ARMS}, 'pretraining'),
             '### Plain detectors from each pretraining (val AP50, %)', '',
             detector_table(plan, stages), *contrast_lines(plan, stages), '',
             f'Runs listed so far: {len(runs)}, finished: {len(finished)}.']
    failed = [f'- {name}: {o.error}' for name, o in stages.outcomes.items() if o.error]
    if failed:
        parts += ['', '### Failed runs', '', *failed]
    return '\n'.join(parts) + '\n'


def detector_table(plan: Config, stages: Stages) -> str:
    """AP50 per pretraining arm at its picked detection learning rate (random init: its config's
    own): every detector as mean ± sd (n), the two-level mean with its hierarchical bootstrap
    interval, the time per run."""
    rows = []
    for arm in detector_arms(plan):
        units = arm_units(stages.detectors, stages.outcomes, arm)
        lr = scratch_lr(plan) if arm == SCRATCH else stages.picks.detection.get(arm)
        if not units:
            rows.append([arm, '–' if lr is None else f'{lr:g}', '–', '–', '–', '–'])
            continue
        values = [v for unit in units.values() for v in unit]
        interval = 'no interval: one classifier seed'
        if _enough_for_an_interval(arm, units):
            interval = '[{:.1f}, {:.1f}]'.format(*hierarchical_bootstrap_interval({arm: units}))
        shape = ' + '.join(str(len(unit)) for unit in units.values())
        seeds = f'none: {shape}' if arm == SCRATCH else f'{len(units)}: {shape}'
        rows.append([arm, f'{lr:g}', summarize(values).format(), seeds,
                     f'{two_level_mean(units):.1f} {interval}',
                     _minutes(_results(stages.detectors, stages.outcomes, f'det/{arm}/'))])
    return markdown_table(['pretraining', 'det lr', 'val AP50, all detectors',
                           'classifier seeds: detectors each', 'two-level mean [95% interval]',
                           'train min/run'], rows)


def contrast_lines(plan: Config, stages: Stages) -> List[str]:
    """Each contrast of :data:`CONTRASTS` with its hierarchical bootstrap interval and what it
    says, in words."""
    lines = []
    arms = detector_arms(plan)
    for arm, other in (pair for pair in CONTRASTS if set(pair) <= set(arms)):
        groups = {key: arm_units(stages.detectors, stages.outcomes, key) for key in (arm, other)}
        if not all(groups.values()):
            lines.append(f'- {arm} vs {other}: no finished detectors yet')
            continue
        gap = two_level_mean(groups[arm]) - two_level_mean(groups[other])
        if not all(_enough_for_an_interval(key, units) for key, units in groups.items()):
            lines.append(f'- {arm} vs {other}: {gap:+.1f} AP50 so far, from one classifier seed '
                         'of one of them: no interval, no verdict yet')
            continue
        low, high = hierarchical_bootstrap_interval(
            groups, lambda means, a=arm, b=other: means[a] - means[b])
        verdict = ('beats' if low > 0 else 'is worse than' if high < 0 else
                   'is not resolved from')
        lines.append(f'- {_label(arm)} {verdict} {_label(other)}: {gap:+.1f} AP50, 95% '
                     f'interval [{low:+.1f}, {high:+.1f}] (two-level means; hierarchical '
                     'bootstrap over classifier and detection seeds)')
    return lines
