"""Aggregation of repeated runs: every table the project reports goes through here.

Tiny detectors trained briefly vary a lot between seeds and with the learning rate, so results
are reported as :class:`Summary` (n, mean, sample standard deviation, min, max) over seeds, a
comparison picks each method at its own best grid point (:func:`best_of_grid`), and derived
figures get an interval from resampling seeds (:func:`bootstrap_interval`).
"""
import math
import random
import statistics
from typing import Callable, Dict, Hashable, List, NamedTuple, Optional, Sequence, Tuple

BOOTSTRAP_SAMPLES = 2000


class Summary(NamedTuple):
    """n, mean, sample standard deviation (0 for n=1), min and max of a set of runs."""

    n: int
    mean: float
    sd: float
    min: float
    max: float

    def format(self, digits: int = 1) -> str:
        """``mean ± sd (n)``, e.g. ``7.9 ± 1.2 (3)``; ``mean (1)`` for a single run."""
        if self.n == 1:
            return f'{self.mean:.{digits}f} (1)'
        return f'{self.mean:.{digits}f} ± {self.sd:.{digits}f} ({self.n})'

    def format_range(self, digits: int = 1) -> str:
        """``min–max``."""
        return f'{self.min:.{digits}f}–{self.max:.{digits}f}'


def summarize(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of ``values`` (at least one)."""
    if not values:
        raise ValueError('summarize needs at least one value')
    values = [float(v) for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Summary(len(values), statistics.fmean(values), sd, min(values), max(values))


def best_of_grid(cells: Dict[Hashable, Sequence[float]]) -> Tuple[Hashable, Summary]:
    """The grid point with the highest mean (the smallest key on ties) and its summary.

    ``cells`` maps grid points (e.g. learning rates) to the validation scores of their seeds.
    """
    if not cells:
        raise ValueError('best_of_grid needs at least one grid point')
    summaries = {key: summarize(values) for key, values in cells.items()}
    best = min(summaries, key=lambda key: (-summaries[key].mean, key))
    return best, summaries[best]


def bootstrap_interval(groups: Dict[Hashable, Sequence[float]],
                       statistic: Callable[[Dict[Hashable, List[float]]], Optional[float]],
                       confidence: float = 0.95, samples: int = BOOTSTRAP_SAMPLES,
                       seed: int = 0, undefined_lowest: bool = False
                       ) -> Tuple[Optional[float], Optional[float], int]:
    """A percentile bootstrap interval of ``statistic`` over seeds resampled within groups.

    Each bootstrap sample redraws, independently in every group (e.g. each method and
    resolution), as many values as the group has, with replacement, and evaluates
    ``statistic`` on the redrawn groups. Samples where ``statistic`` returns None (e.g. NetAug
    never reaches the target) are counted; by default they are left out of the percentiles, and
    with ``undefined_lowest`` they rank below every defined value (a reduction never reached is
    worse than any reduction), so a bound that falls among them is None.

    Returns:
        (low, high, undefined): the ``confidence`` percentile interval (None, None when no
        sample is defined) and how many samples were undefined.
    """
    rng = random.Random(seed)
    results, undefined = [], 0
    for _ in range(samples):
        redrawn = {key: rng.choices(list(values), k=len(values)) for key, values in groups.items()}
        value = statistic(redrawn)
        if value is None:
            undefined += 1
        else:
            results.append(value)
    if not results:
        return None, None, undefined
    results.sort()
    tail = (1 - confidence) / 2
    if not undefined_lowest:
        return (_percentile(results, tail), _percentile(results, 1 - tail), undefined)
    ranked = [None] * undefined + results
    return (_percentile(ranked, tail), _percentile(ranked, 1 - tail), undefined)


def two_level_mean(units: Dict[Hashable, Sequence[float]]) -> float:
    """The mean over outer units (e.g. classifier seeds) of each unit's mean over its inner
    values (e.g. the detection seeds trained from it); units without values are left out."""
    means = [statistics.fmean(values) for values in units.values() if values]
    if not means:
        raise ValueError('two_level_mean needs at least one unit with a value')
    return statistics.fmean(means)


def hierarchical_bootstrap_interval(
        groups: Dict[Hashable, Dict[Hashable, Sequence[float]]],
        statistic: Optional[Callable[[Dict[Hashable, float]], float]] = None,
        confidence: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> Tuple[float, float]:
    """A percentile bootstrap interval over two seed levels (a hierarchical bootstrap).

    ``groups`` maps each group (e.g. a pretraining method) to its outer units (e.g. classifier
    seeds), each holding its inner values (e.g. the AP50 of the detection seeds trained from
    that classifier). Each bootstrap sample redraws, independently in every group, as many
    outer units as the group has, with replacement, then within every drawn unit as many inner
    values as it has, with replacement, and takes the group's :func:`two_level_mean` of the
    redrawn values; ``statistic`` maps these group means to the figure of interest (default:
    the mean of the only group; e.g. ``lambda m: m['netaug'] - m['baseline']``). Resampling
    only the inner level would ignore how much the classifiers themselves differ.

    Returns:
        (low, high): the ``confidence`` percentile interval.
    """
    groups = {key: {unit: list(values) for unit, values in units.items() if values}
              for key, units in groups.items()}
    if any(not units for units in groups.values()):
        raise ValueError('hierarchical_bootstrap_interval: every group needs a unit with values')
    if statistic is None:
        if len(groups) != 1:
            raise ValueError('give a statistic for more than one group')
        statistic = lambda means: next(iter(means.values()))  # noqa: E731
    rng = random.Random(seed)
    results = []
    for _ in range(samples):
        means = {}
        for key, units in groups.items():
            drawn = rng.choices(list(units.values()), k=len(units))
            means[key] = statistics.fmean(
                statistics.fmean(rng.choices(values, k=len(values))) for values in drawn)
        results.append(statistic(means))
    results.sort()
    tail = (1 - confidence) / 2
    return _percentile(results, tail), _percentile(results, 1 - tail)


def _percentile(ordered: List[Optional[float]], fraction: float) -> Optional[float]:
    """Linear-interpolation percentile of sorted values (numpy's default method); None when it
    falls on or next to a None, which sorts below every value."""
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if ordered[low] is None or ordered[high] is None:
        return None
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                   align: Optional[Sequence[str]] = None) -> str:
    """A markdown table; ``align`` holds one of '---', '---:' per column (text left, the rest
    right-aligned by default)."""
    align = align or ['---'] + ['---:'] * (len(header) - 1)
    lines = [header, align, *rows]
    return ''.join(f"| {' | '.join(str(cell) for cell in line)} |\n" for line in lines)
