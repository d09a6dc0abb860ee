"""The two-level statistics of the transfer experiment (netaug_det/experiments/stats.py):
units weigh equally, and the hierarchical bootstrap resamples both seed levels."""
import pytest

from netaug_det.experiments.stats import hierarchical_bootstrap_interval, two_level_mean


def test_two_level_mean_weighs_every_unit_equally():
    # one classifier with four detectors at 0, one with a single detector at 10
    assert two_level_mean({0: [0, 0, 0, 0], 1: [10]}) == 5
    assert two_level_mean({0: [1, 3], 1: [], 2: [5]}) == 3.5  # a unit without values is left out
    with pytest.raises(ValueError, match='at least one unit'):
        two_level_mean({0: []})


def test_hierarchical_interval_sees_the_spread_between_units():
    # every detection seed agrees within its classifier; the classifiers differ: resampling
    # only the detection seeds would give a zero-width interval
    units = {0: [1.0, 1.0, 1.0], 1: [5.0, 5.0, 5.0], 2: [9.0, 9.0, 9.0]}
    low, high = hierarchical_bootstrap_interval({'arm': units})
    assert 1.0 <= low < 5.0 < high <= 9.0
    assert high - low > 4
    # no spread at either level: the interval is the value itself
    assert hierarchical_bootstrap_interval({'arm': {0: [3.0, 3.0], 1: [3.0]}}) == (3.0, 3.0)


def test_hierarchical_interval_sees_the_spread_within_units():
    low, high = hierarchical_bootstrap_interval({'arm': {0: [0.0, 10.0], 1: [0.0, 10.0]}})
    assert 0.0 <= low < 5.0 < high <= 10.0


def test_hierarchical_interval_of_a_difference_is_deterministic_and_covers_the_gap():
    base = {0: [10.0, 11.0, 12.0], 1: [12.0, 13.0, 11.0], 2: [9.0, 10.0, 11.0]}
    shifted = {seed: [value + 8 for value in values] for seed, values in base.items()}

    def gap(means):
        return means['netaug'] - means['baseline']

    interval = hierarchical_bootstrap_interval({'netaug': shifted, 'baseline': base}, gap)
    assert interval == hierarchical_bootstrap_interval({'netaug': shifted, 'baseline': base}, gap)
    low, high = interval
    assert 0 < low < 8 < high
    # overlapping groups: the interval includes zero
    low, high = hierarchical_bootstrap_interval({'netaug': base, 'baseline': base}, gap)
    assert low < 0 < high


def test_hierarchical_interval_refuses_what_it_cannot_resample():
    with pytest.raises(ValueError, match='every group needs'):
        hierarchical_bootstrap_interval({'a': {0: [1.0]}, 'b': {0: []}}, lambda m: 0.0)
    with pytest.raises(ValueError, match='give a statistic'):
        hierarchical_bootstrap_interval({'a': {0: [1.0]}, 'b': {0: [2.0]}})
