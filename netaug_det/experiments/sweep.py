"""Resolution sweeps: per-resolution runs over seeds, their mean curves and the iso-AP50 MAC
reduction with a seed-resampling interval.

Work-dir layout (what ``python -m netaug_det.tools.resolution_sweep`` launches and what its
collect mode reads; a cluster user produces the same with ``tools/dist_train.sh``)::

    <work_root>/<method>/r<resolution>/s<seed>/   e.g. work_dirs/sweep/netaug/r320/s0/
        <timestamp>/<timestamp>.json              metrics of a ``tools/test.py`` run (newest wins)
        <timestamp>/vis_data/scalars.json         metrics of the validations during training
        deploy.pth                                NetAug's deployable checkpoint (``NetAugHook``)

A run laid out without ``s<seed>`` (``<method>/r<resolution>/`` holding the run itself) reads as
one seed. A run counts only when it finished: its ``result.json`` (launch mode), or its final
checkpoint (``last_checkpoint``) reached the end of its schedule. Its AP50 is the metric
(``pascal_voc/AP50`` for VOC, ``coco/bbox_mAP_50`` for COCO) of its newest test run of the final
model, or, when there is none, of the validation at the end of training, in percent
(:func:`netaug_det.experiments.runs.finished_run`); its seed and input size, as its checkpoint
records them, must be those of its folder.
"""
import csv
import glob
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .runs import IncompleteRunError, finished_run, require_unique
from .stats import Summary, bootstrap_interval, markdown_table, summarize

METHODS = ('baseline', 'netaug')
# the paper's grids (Figure 5): 256..416 on Pascal VOC, 288..448 on COCO, step 32
DEFAULT_RESOLUTIONS = {
    'VOCMetric': tuple(range(256, 417, 32)),
    'CocoMetric': tuple(range(288, 449, 32)),
}
CONFIDENCE = 0.95


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
                    f'{self.netaug_best.ap50:.1f} at {self.netaug_best.resolution}px), so there '
                    'is no iso-AP50 MAC reduction.')
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


class SweepCell(NamedTuple):
    """One method at one resolution: MACs in millions and the AP50 (percent) of each seed."""

    resolution: int
    macs: float
    ap50s: Tuple[float, ...]

    @property
    def summary(self) -> Summary:
        return summarize(self.ap50s)

    def mean_point(self) -> SweepPoint:
        return SweepPoint(self.resolution, self.macs, self.summary.mean)


class SweepResult(NamedTuple):
    """Both methods' cells, the iso-AP50 reduction of the mean curves, and its interval.

    ``interval`` is the 95% percentile bootstrap interval of the reduction over seeds resampled
    with replacement within each (method, resolution) (None when even its upper end is a
    resample where NetAug never reaches the target, or with a single seed per cell). A resample
    where NetAug never reaches the target ranks below every reduction, so when more than 2.5% of
    them do the lower end is None ("no reduction"). ``undefined`` counts those resamples,
    ``bounded`` those where NetAug's cheapest point was already above the target, whose
    reduction is only a lower bound (taken as its value in the interval).
    """

    cells: Dict[str, List[SweepCell]]
    iso: IsoAP50
    interval: Optional[Tuple[Optional[float], float]]
    undefined: int
    resamples: int
    bounded: int = 0

    def describe(self) -> str:
        """The iso-AP50 sentence, its interval and whether the interval includes zero."""
        text = self.iso.describe()
        seeds = sorted({len(cell.ap50s) for cells in self.cells.values() for cell in cells})
        if max(seeds) < 2:
            return text + ' One seed per point: no interval (run more seeds).'
        if self.interval is None:
            return text + (f' Over {self.resamples} seed resamples NetAug never reached the '
                           "baseline's best mean AP50.")
        low, high = self.interval
        zero = 'includes zero (no reliable MAC reduction)' if low is None or low <= 0 <= high \
            else 'excludes zero'
        never = (f'; in {self.undefined} of {self.resamples} resamples NetAug never reached it'
                 if self.undefined else '')
        lower = 'no reduction (NetAug never reaches it)' if low is None else f'{low:+.0%}'
        bounded = (f'; in {self.bounded} of {self.resamples} resamples NetAug\'s cheapest point '
                   'was already above the target, so their reductions (lower bounds) pull the '
                   'interval down: extend the grid to lower resolutions' if self.bounded else '')
        return text + (f' {CONFIDENCE:.0%} bootstrap interval over seeds: {lower} to '
                       f'{high:+.0%} fewer MACs, which {zero}{never}{bounded}.')


def mean_curves(cells: Dict[str, List[SweepCell]]) -> Dict[str, List[SweepPoint]]:
    """Each method's curve of mean AP50 per resolution."""
    return {method: [cell.mean_point() for cell in method_cells]
            for method, method_cells in cells.items()}


def sweep_result(cells: Dict[str, List[SweepCell]], resamples: int = 2000) -> SweepResult:
    """The iso-AP50 reduction of the mean curves and its bootstrap interval over seeds."""
    curves = mean_curves(cells)
    iso = iso_ap50_reduction(curves['baseline'], curves['netaug'])
    macs = {(method, cell.resolution): cell.macs for method in cells for cell in cells[method]}
    groups = {(method, cell.resolution): cell.ap50s
              for method in cells for cell in cells[method]}

    bounded = 0

    def reduction(redrawn: Dict[Tuple[str, int], List[float]]) -> Optional[float]:
        nonlocal bounded
        redrawn_curves = {
            method: [SweepPoint(resolution, macs[(m, resolution)], sum(v) / len(v))
                     for (m, resolution), v in sorted(redrawn.items()) if m == method]
            for method in METHODS
        }
        redrawn_iso = iso_ap50_reduction(redrawn_curves['baseline'], redrawn_curves['netaug'])
        bounded += redrawn_iso.status == 'at_most'
        return redrawn_iso.reduction

    low, high, undefined = bootstrap_interval(groups, reduction, CONFIDENCE, resamples,
                                              undefined_lowest=True)
    interval = None if high is None else (low, high)
    return SweepResult(cells, iso, interval, undefined, resamples, bounded)


def run_dir(work_root: str, method: str, resolution: int, seed: Optional[int] = None) -> str:
    """The work dir of one run: ``<work_root>/<method>/r<resolution>[/s<seed>]``."""
    folder = osp.join(work_root, method, f'r{resolution}')
    return folder if seed is None else osp.join(folder, f's{seed}')


def seed_dirs(folder: str, seeds: Optional[Sequence[int]]) -> List[Tuple[Optional[int], str]]:
    """The runs of one (method, resolution) as (seed, folder): ``s<seed>`` for the given
    ``seeds``, else every ``s<seed>`` folder present, else the folder itself (a run laid out
    without seeds, seed None).

    Raises:
        ValueError: when two folders or given seeds are one seed (``s0`` and ``s00``).
    """
    if seeds is not None:
        require_unique(seeds, 'seeds')
        return [(seed, osp.join(folder, f's{seed}')) for seed in seeds]
    found = sorted((int(osp.basename(path)[1:]), path) for path in glob.glob(osp.join(folder, 's*'))
                   if osp.isdir(path) and osp.basename(path)[1:].isdigit())
    require_unique([seed for seed, _ in found], f'the seed folders in {folder}')
    return found or [(None, folder)]


def collect_cells(work_root: str, resolutions: Sequence[int], macs: Dict[int, float],
                  metric_key: str, seeds: Optional[Sequence[int]] = None
                  ) -> Dict[str, List[SweepCell]]:
    """Reads every method's AP50 at every resolution and seed from ``work_root`` (layout above).

    ``macs`` maps each resolution to the deployed model's MACs (millions), which the methods
    share; ``seeds`` None reads whatever seeds each folder holds.

    Raises:
        FileNotFoundError: naming every run that is missing, unfinished or has no metric of its
            final model.
        ValueError: repeated resolutions or seeds, or a run trained at another input size or
            with another seed than its folder says.
    """
    require_unique(resolutions, 'resolutions')
    cells: Dict[str, List[SweepCell]] = {method: [] for method in METHODS}
    missing = []
    for method in METHODS:
        for resolution in resolutions:
            ap50s = []
            for seed, folder in seed_dirs(run_dir(work_root, method, resolution), seeds):
                try:
                    ap50s.append(finished_run(folder, metric_key, seed, resolution).ap50)
                except (FileNotFoundError, IncompleteRunError) as error:
                    missing.append(str(error))
            if ap50s:
                cells[method].append(SweepCell(resolution, macs[resolution], tuple(ap50s)))
    if missing:
        raise FileNotFoundError(f'{len(missing)} run(s) incomplete:\n'
                                + '\n'.join(missing))
    return cells


def write_sweep_outputs(result: SweepResult, out_dir: str,
                        title: str = 'AP50 vs MACs') -> Dict[str, str]:
    """Writes ``resolution_sweep.{csv,md,png}`` into ``out_dir``; returns their paths by suffix.

    The CSV has one row per method and resolution (n, mean, sd, min, max of AP50 over seeds);
    the markdown table one row per resolution with each method's ``mean ± sd (n)`` and range,
    then :meth:`SweepResult.describe`; the plot the mean curves with sd error bars and every
    seed's point.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'resolution_sweep.{ext}') for ext in ('csv', 'md', 'png')}
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'resolution', 'MACs (M)', 'n', 'mean AP50', 'sd', 'min',
                         'max'])
        for method in METHODS:
            for cell in result.cells[method]:
                summary = cell.summary
                writer.writerow([method, cell.resolution, f'{cell.macs:.1f}', summary.n,
                                 f'{summary.mean:.2f}', f'{summary.sd:.2f}', f'{summary.min:.2f}',
                                 f'{summary.max:.2f}'])
    header = ['resolution', 'MACs (M)'] + [f'{method} AP50 {part}' for method in METHODS
                                           for part in ('mean ± sd (n)', 'range')]
    rows = [[str(same[0].resolution), f'{same[0].macs:.1f}'] + [
        text for cell in same for text in (cell.summary.format(), cell.summary.format_range())]
            for same in zip(*(result.cells[method] for method in METHODS))]
    with open(paths['md'], 'w') as f:
        f.write(markdown_table(header, rows) + f'\n{result.describe()}\n')

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, marker in zip(METHODS, 'os'):
        cells = result.cells[method]
        line = ax.errorbar([c.macs for c in cells], [c.summary.mean for c in cells],
                           yerr=[c.summary.sd for c in cells], marker=marker, capsize=3,
                           label=f'{method} (mean ± sd)')
        ax.scatter([c.macs for c in cells for _ in c.ap50s], [v for c in cells for v in c.ap50s],
                   color=line[0].get_color(), alpha=0.3, s=12)
        for cell in cells:
            ax.annotate(f'{cell.resolution}', (cell.macs, cell.summary.mean),
                        textcoords='offset points', xytext=(4, 4), fontsize=8)
    ax.axhline(result.iso.target_ap50, color='grey', linestyle=':', linewidth=1,
               label="baseline's best mean AP50")
    ax.set(xlabel='MACs (M)', ylabel='AP50 (%)', title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths['png'], dpi=120)
    plt.close(fig)
    return paths
