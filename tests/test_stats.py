"""The one aggregation module: summaries, best grid point, bootstrap intervals, tables."""
import pytest

from netaug_det.experiments.stats import (Summary, best_of_grid, bootstrap_interval, markdown_table,
                                    summarize)


def test_summary_of_made_up_numbers():
    summary = summarize([1.0, 2.0, 6.0])
    assert summary == Summary(3, 3.0, pytest.approx(2.6457513), 1.0, 6.0)
    assert summary.format() == '3.0 ± 2.6 (3)' and summary.format_range() == '1.0–6.0'
    assert summarize([4.25]).format(2) == '4.25 (1)' and summarize([4.25]).sd == 0.0
    with pytest.raises(ValueError, match='at least one'):
        summarize([])


def test_best_of_grid_takes_the_highest_mean_and_the_smallest_key_on_ties():
    assert best_of_grid({0.001: [1, 3], 0.002: [4, 4], 0.004: [9, -1]})[0] == 0.002
    key, summary = best_of_grid({0.004: [2.0], 0.002: [2.0]})
    assert key == 0.002 and summary.mean == 2.0


def test_bootstrap_interval_of_a_difference_of_means():
    groups = {'a': [1.0, 2.0, 3.0, 4.0], 'b': [11.0, 12.0, 13.0, 14.0]}

    def gap(redrawn):
        return sum(redrawn['b']) / 4 - sum(redrawn['a']) / 4

    low, high, undefined = bootstrap_interval(groups, gap, samples=1000)
    assert undefined == 0 and 8.0 < low < 10.0 < high < 12.0
    assert bootstrap_interval(groups, gap, samples=1000) == (low, high, 0)  # seeded
    constant = bootstrap_interval({'a': [5.0], 'b': [7.0]}, gap, samples=10)
    assert constant[:2] == (7 / 4 - 5 / 4, 7 / 4 - 5 / 4)


def test_bootstrap_counts_undefined_samples():
    low, high, undefined = bootstrap_interval({'a': [0.0, 1.0]},
                                              lambda g: None if sum(g['a']) == 0 else 1.0,
                                              samples=400)
    assert (low, high) == (1.0, 1.0) and 50 < undefined < 150  # P(both 0) = 1/4
    assert bootstrap_interval({'a': [0.0]}, lambda g: None, samples=5) == (None, None, 5)
    # ranked lowest, the undefined quarter holds the lower percentile: no lower bound
    low, high, undefined = bootstrap_interval({'a': [0.0, 1.0]},
                                              lambda g: None if sum(g['a']) == 0 else 1.0,
                                              samples=400, undefined_lowest=True)
    assert (low, high) == (None, 1.0) and 50 < undefined < 150


def test_markdown_table():
    assert markdown_table(['a', 'b'], [['x', '1.0']]) == '| a | b |\n| --- | ---: |\n| x | 1.0 |\n'
