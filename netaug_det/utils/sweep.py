"""Resolution sweeps: launch or collect per-resolution runs, and the iso-AP50 MAC reduction.

Work-dir layout (what ``tools/analysis/resolution_sweep.py`` launches and what its collect mode
reads; a cluster user produces the same with ``tools/dist_train.sh``)::

    <work_root>/<method>/r<resolution>/     e.g. work_dirs/sweep/netaug/r320/
        <timestamp>/<timestamp>.json        metrics of a ``tools/test.py`` run (newest wins)
        <timestamp>/vis_data/scalars.json   metrics of the validations during training
        deploy.pth                          NetAug's deployable checkpoint (``NetAugHook``)
        last_checkpoint                     path of the final checkpoint (mmengine)

A run's AP50 is the metric (``pascal_voc/AP50`` for VOC, ``coco/bbox_mAP_50`` for COCO) of its
newest test run, or, when it was never tested, of its last validation during training. AP50 is
reported in percent.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from collections import deque
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config, DictAction

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = ('baseline', 'netaug')
METRIC_KEYS = {'VOCMetric': 'pascal_voc/AP50', 'CocoMetric': 'coco/bbox_mAP_50'}
# the paper's grids (Figure 5): 256..416 on Pascal VOC, 288..448 on COCO, step 32
DEFAULT_RESOLUTIONS = {
    'VOCMetric': tuple(range(256, 417, 32)),
    'CocoMetric': tuple(range(288, 449, 32)),
}


class SweepPoint(NamedTuple):
    """One trained-and-evaluated resolution of one method: MACs in millions, AP50 in percent."""

    resolution: int
    macs: float
    ap50: float


class IsoAP50(NamedTuple):
    """The MACs NetAug needs to match the baseline's best AP50, as the paper reports it.

    ``status`` is 'interpolated' (linear interpolation between the two sweep points around the
    crossing, or an exact hit), 'at_most' (NetAug's smallest swept point already exceeds the
    target, so ``netaug_macs`` is an upper bound and ``reduction`` a lower bound) or 'never'
    (NetAug never reaches the target on this grid; ``netaug_macs`` and ``reduction`` are None).
    """

    target_ap50: float
    baseline: SweepPoint
    netaug_best: SweepPoint
    netaug_macs: Optional[float]
    status: str

    @property
    def reduction(self) -> Optional[float]:
        """``1 - netaug_macs / baseline MACs`` (negative when NetAug needs more MACs)."""
        if self.netaug_macs is None:
            return None
        return 1 - self.netaug_macs / self.baseline.macs

    def describe(self) -> str:
        """One sentence for reports."""
        target = (f"the baseline's best AP50 ({self.target_ap50:.1f}, at "
                  f'{self.baseline.resolution}px, {self.baseline.macs:.1f}M MACs)')
        if self.status == 'never':
            return (f'NetAug never reaches {target} on this grid (its best: '
                  f'{self.netaug_best.ap50:.1f} at {self.netaug_best.resolution}px), so there is '
                  'no iso-AP50 MAC reduction.')
        change = f"{abs(self.reduction):.0%} {'fewer' if self.reduction >= 0 else 'more'}"
        if self.status == 'at_most':
            return (f'NetAug already exceeds {target} at its smallest swept point '
                    f'({self.netaug_macs:.1f}M MACs): at least {change} MACs; extend the grid '
                    'downwards for the exact figure.')
        return (f'NetAug reaches {target} at {self.netaug_macs:.1f}M MACs (linear '
                f'interpolation): {change} MACs.')


def iso_ap50_reduction(baseline: Sequence[SweepPoint], netaug: Sequence[SweepPoint]) -> IsoAP50:
    """Where the NetAug curve reaches the baseline's best AP50, and the MAC reduction there.

    The target is the baseline's best AP50 (the cheapest point on ties). Going up NetAug's
    points in MACs, the first one at or above the target ends the search; the MACs of the
    crossing are interpolated linearly between it and the point before it.
    """
    if not baseline or not netaug:
        raise ValueError('iso_ap50_reduction needs at least one sweep point per method')
    best = min(baseline, key=lambda p: (-p.ap50, p.macs))
    points = sorted(netaug, key=lambda p: p.macs)
    netaug_best = max(points, key=lambda p: p.ap50)
    for index, point in enumerate(points):
        if point.ap50 < best.ap50:
            continue
        if index == 0:
            status = 'interpolated' if point.ap50 == best.ap50 else 'at_most'
            return IsoAP50(best.ap50, best, netaug_best, point.macs, status)
        low = points[index - 1]
        fraction = (best.ap50 - low.ap50) / (point.ap50 - low.ap50)
        macs = low.macs + fraction * (point.macs - low.macs)
        return IsoAP50(best.ap50, best, netaug_best, macs, 'interpolated')
    return IsoAP50(best.ap50, best, netaug_best, None, 'never')


def evaluator_type(cfg: Config) -> str:
    """The type of the config's test evaluator (its first metric), checked to be supported."""
    evaluator = cfg.test_evaluator
    metric = evaluator[0] if isinstance(evaluator, (list, tuple)) else evaluator
    if metric.get('type') not in METRIC_KEYS:
        raise ValueError(f"test_evaluator type {metric.get('type')!r} is not supported; the "
                         f'sweep reads AP50 from one of {sorted(METRIC_KEYS)}')
    return metric['type']


def parse_cfg_options(options: Sequence[str]) -> dict:
    """``KEY=VALUE`` strings (as given to the tools' ``--cfg-options``) parsed like they do."""
    parsed = argparse.Namespace(cfg_options={})
    DictAction(option_strings=[], dest='cfg_options')(None, parsed, options)
    return parsed.cfg_options


def run_dir(work_root: str, method: str, resolution: int) -> str:
    """The work dir of one run: ``<work_root>/<method>/r<resolution>``."""
    return osp.join(work_root, method, f'r{resolution}')


def read_ap50(work_dir: str, metric_key: str) -> float:
    """AP50 (percent) of a run: its newest test metrics, else its last validation during training.

    Raises:
        FileNotFoundError: when ``work_dir`` holds neither.
    """
    tests = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), reverse=True)
    for path in tests:
        if osp.basename(path) == osp.basename(osp.dirname(path)) + '.json':
            with open(path) as f:
                metrics = json.load(f)
            if metric_key in metrics:
                return 100 * float(metrics[metric_key])
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in reversed(scalars):
        with open(path) as f:
            records = [json.loads(line) for line in f if metric_key in line]
        if records:
            return 100 * float(records[-1][metric_key])
    raise FileNotFoundError(
        f'no {metric_key!r} in {work_dir}: expected <timestamp>/<timestamp>.json from '
        'tools/test.py or <timestamp>/vis_data/scalars.json from a training run with validation '
        '(see netaug_det/utils/sweep.py for the layout); train and test it, or use launch mode')


def checkpoint_to_evaluate(work_dir: str) -> str:
    """The checkpoint to evaluate: NetAug's ``deploy.pth`` if present, else the final one."""
    deploy = osp.join(work_dir, 'deploy.pth')
    if osp.isfile(deploy):
        return deploy
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise FileNotFoundError(f'{work_dir} has neither deploy.pth nor last_checkpoint; '
                                'train it first (tools/train.py CONFIG --work-dir ...)')
    with open(last) as f:
        return f.read().strip()


def run_tool(tool: str,
             args: Sequence[str],
             log_file: str,
             prefix: str = '',
             env: Optional[Dict[str, str]] = None) -> None:
    """Runs ``tools/<tool>.py args`` in a child process, logging everything to ``log_file``.

    Progress (mmengine's ``Epoch(...)`` lines) is echoed, prefixed with ``prefix``. ``env``
    adds environment variables for the child.

    Raises:
        RuntimeError: when the tool fails; the message ends with the log's last lines.
    """
    env = dict(os.environ, **(env or {}))
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')]))
    command = [sys.executable, osp.join(REPO_ROOT, 'tools', f'{tool}.py'), *args]
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    tail: deque = deque(maxlen=30)
    with open(log_file, 'w') as log, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env) as process:
        for line in process.stdout:
            log.write(line)
            tail.append(line)
            if 'Epoch(' in line:
                print(prefix + line.split(' - INFO - ')[-1].rstrip(), flush=True)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {process.returncode}); full log: "
                           f"{log_file}; last lines:\n{''.join(tail)}")


def _size_options(resolution: int, cfg_options: Sequence[str]) -> List[str]:
    return ['--cfg-options', f'input_size={resolution}', *cfg_options]


def launch_run(config: str, test_config: str, work_dir: str, resolution: int,
               cfg_options: Sequence[str] = ()) -> None:
    """Trains ``config`` at ``resolution`` into ``work_dir``, then tests its deployable model.

    The test uses ``test_config`` (the baseline config, which loads NetAug's ``deploy.pth``).
    ``cfg_options`` are extra ``key=value`` overrides for both tools.
    """
    options = _size_options(resolution, cfg_options)
    name = osp.relpath(work_dir)
    run_tool('train', [config, '--work-dir', work_dir, *options],
             osp.join(work_dir, 'train_stdout.log'), f'[{name} train] ')
    run_tool('test', [test_config, checkpoint_to_evaluate(work_dir), '--work-dir', work_dir,
                      *options], osp.join(work_dir, 'test_stdout.log'), f'[{name} test] ')


def collect_points(work_root: str, resolutions: Sequence[int], macs: Dict[int, float],
                   metric_key: str) -> Dict[str, List[SweepPoint]]:
    """Reads every method's AP50 at every resolution from ``work_root`` (layout above).

    ``macs`` maps each resolution to the deployed model's MACs (millions), which the methods share.

    Raises:
        FileNotFoundError: naming every run that is missing or has no metric.
    """
    points: Dict[str, List[SweepPoint]] = {method: [] for method in METHODS}
    missing = []
    for method in METHODS:
        for resolution in resolutions:
            try:
                ap50 = read_ap50(run_dir(work_root, method, resolution), metric_key)
            except FileNotFoundError as error:
                missing.append(str(error))
                continue
            points[method].append(SweepPoint(resolution, macs[resolution], ap50))
    if missing:
        raise FileNotFoundError(f'{len(missing)} run(s) incomplete:\n' + '\n'.join(missing))
    return points


def write_sweep_outputs(points: Dict[str, List[SweepPoint]], out_dir: str,
                        title: str = 'AP50 vs MACs') -> Dict[str, str]:
    """Writes ``resolution_sweep.{csv,md,png}`` into ``out_dir``; returns their paths by suffix.

    ``points`` (from :func:`collect_points`) holds the same resolutions for every method. The
    markdown table ends with the iso-AP50 sentence (:meth:`IsoAP50.describe`).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    iso = iso_ap50_reduction(points['baseline'], points['netaug'])
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'resolution_sweep.{ext}') for ext in ('csv', 'md', 'png')}
    header = ['resolution', 'MACs (M)'] + [f'{method} AP50' for method in METHODS]
    rows = [[str(same[0].resolution), f'{same[0].macs:.1f}'] + [f'{p.ap50:.1f}' for p in same]
            for same in zip(*(points[method] for method in METHODS))]
    with open(paths['csv'], 'w', newline='') as f:
        csv.writer(f).writerows([header] + rows)
    table = [header, ['---:'] * len(header)] + rows
    with open(paths['md'], 'w') as f:
        f.write(''.join(f"| {' | '.join(row)} |\n" for row in table) + f'\n{iso.describe()}\n')

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, marker in zip(METHODS, 'os'):
        method_points = points[method]
        ax.plot([p.macs for p in method_points], [p.ap50 for p in method_points],
                marker=marker, label=method)
        for p in method_points:
            ax.annotate(f'{p.resolution}', (p.macs, p.ap50), textcoords='offset points',
                        xytext=(4, 4), fontsize=8)
    ax.axhline(iso.target_ap50, color='grey', linestyle=':', linewidth=1,
               label="baseline's best AP50")
    ax.set(xlabel='MACs (M)', ylabel='AP50 (%)', title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths['png'], dpi=120)
    plt.close(fig)
    return paths
