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
