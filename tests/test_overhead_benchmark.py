"""benchmarks/netaug_overhead.py: its MAC prediction counts the very models it timed."""
import pytest

from benchmarks import netaug_overhead as bench

pytestmark = pytest.mark.slow  # every test times or profiles training steps

MBV3 = bench.DETECTORS['MobileNetV3-w0.35']


@pytest.fixture
def tiny_args():
    args = bench.parse_args(['--batch-size', '1', '--input-size', '64', '--iters', '2',
                             '--warmup', '1', '--threads', '1', '--device', 'cpu'])
    return args


def test_replayed_draws_are_the_models_trained(tiny_args, monkeypatch):
    model, optim_wrapper, batch, supernet = bench.build_setting(MBV3[1], 'random', False,
                                                                tiny_args)
    trained = []
    set_mode = supernet.set_mode

    def recording_set_mode(mode, generator=None):
        set_mode(mode, generator)
        if mode != 'base':
            trained.append(bench.forward_macs(model, tiny_args.input_size))

    monkeypatch.setattr(supernet, 'set_mode', recording_set_mode)
    step = bench.train_step_fn(model, optim_wrapper, batch, tiny_args.device)
    for _ in range(4):
        step()
    monkeypatch.undo()
    assert len(trained) == 4 and len(set(trained)) == 4  # a new model every step
    model.eval()
    assert bench.sampled_macs(model, supernet, 'random', range(1, 4),
                              tiny_args.input_size) == trained[1:]


def test_settings_are_timed_in_the_same_rounds(tiny_args):
    measured = bench.measure_detector(*MBV3, tiny_args)
    settings = [name for name, _, _ in bench.SETTINGS]
    plain_macs = bench.forward_macs(bench.build_model(MBV3[0], 'cpu')[0].eval(),
                                    tiny_args.input_size)
    assert measured['base_macs'] == plain_macs  # the NetAug model in base mode is the plain one
    for name in ['baseline'] + settings:
        assert len(measured[name]['seconds']) == tiny_args.iters
    for name in settings:
        assert len(measured[name]['timed_aug_macs']) == tiny_args.iters
        assert all(macs > plain_macs for macs in measured[name]['timed_aug_macs'])
    assert measured['expected_macs_ratio']['random'] > measured['expected_macs_ratio'][
        'random_expand'] > 1


def test_profile_sorts_the_step_into_kinds_of_work(tiny_args):
    profiles = bench.profile_settings(*MBV3, tiny_args)
    assert list(profiles) == [name for name, _ in bench.PROFILED]
    for row in profiles.values():
        assert sum(row['ms_per_step'].values()) == pytest.approx(row['profiled_ms_per_step'])
        assert row['ms_per_step']['convolutions'] > 0
    slicing = bench.WORK_KINDS[2][0]
    assert profiles['width phase']['ms_per_step'][slicing] > 5 * profiles['baseline'][
        'ms_per_step'][slicing]
