"""eval_submodels: the base and augmented models of trained runs, BatchNorm recalibrated on a copy.

Uses the session's ``trained_runs`` (a baseline and a NetAug run on tiny demo data); nothing new
is trained.
"""
import hashlib
import json
import pickle
import shutil

import pytest
import torch
from mmengine.registry import DefaultScope

from netaug_det.analysis.submodels import (evaluate, preprocessed_inputs, recalibrate_bn,
                                           training_bn_layers, with_widths)
from netaug_det.models.netaug import export_plain_model
from netaug_det.models.netaug.supernet import netaug_modules
from netaug_det.tools import eval_submodels, test as test_tool

NETAUG_CONFIG = 'yolov3_mbv2_netaug_demo.py'
BASELINE_CONFIG = 'yolov3_mbv2_demo.py'
# every box kept, so that comparing predictions is never vacuous (the tiny runs score low)
KEEP_ALL = ('model.test_cfg.score_thr=0.0', 'model.test_cfg.conf_thr=0.0')


def sha256(path) -> str:
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def deployed_scores(config, checkpoint, out_dir) -> tuple:
    """What ``tools/test.py CONFIG CHECKPOINT`` reports: (metrics, dumped predictions)."""
    test_tool.main([str(config), str(checkpoint), '--work-dir', str(out_dir / 'work'),
                    '--out', str(out_dir / 'test.pkl'), '--metrics-json',
                    str(out_dir / 'metrics.json'), '--cfg-options', *KEEP_ALL])
    with open(out_dir / 'metrics.json') as f, open(out_dir / 'test.pkl', 'rb') as g:
        return json.load(f), pickle.load(g)


def flat(outputs) -> list:
    """The tensors of nested tuples and lists."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [tensor for item in outputs for tensor in flat(item)]


@pytest.fixture(scope='module')
def netaug_run(trained_runs):
    """The NetAug run's model (from its training checkpoint), its test split and one
    preprocessed training batch."""
    run = eval_submodels.RunToScore('netaug', str(trained_runs / 'netaug' / NETAUG_CONFIG),
                                    KEEP_ALL,
                                    str(trained_runs / 'netaug' / 'epoch_1.pth'))
    cfg = eval_submodels.split_cfg(run, 'val')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = eval_submodels.load_model(cfg, run.config, run.checkpoint)
        split = eval_submodels.eval_split(cfg, 0)
        batches = eval_submodels.recalibration_batches(cfg, 1, 0)
    return model, split, preprocessed_inputs(model, batches)


def experiment_args(root) -> list:
    """The tool's arguments for the runs under ``root/exp``, its report in ``root/out``."""
    return ['--runs', str(root / 'exp'), '--out', str(root / 'out'), '--samples', '2',
            '--recalib-batches', '1', '--splits', 'val', 'train']


@pytest.fixture(scope='module')
def experiment(trained_runs, tmp_path_factory):
    """Both runs laid out as an experiment tool's run dirs (``<method>/s0/result.json`` with the
    AP50 tools/test.py gives their deployable models), scored by the tool with ``--runs``."""
    root = tmp_path_factory.mktemp('submodels')
    records = {}
    for method, config, deployable in (('baseline', BASELINE_CONFIG, 'epoch_10.pth'),
                                       ('netaug', NETAUG_CONFIG, 'deploy.pth')):
        run_dir = root / 'exp' / method / 's0'
        shutil.copytree(trained_runs / method, run_dir)
        metrics, predictions = deployed_scores(trained_runs / 'baseline' / BASELINE_CONFIG,
                                               run_dir / deployable, run_dir)
        spec = dict(config=str(run_dir / config), cfg_options=list(KEEP_ALL), train_options=[],
                    seed=0, splits=['val'])
        with open(run_dir / 'result.json', 'w') as f:
            json.dump(dict(spec=spec, val_ap50=round(100 * metrics['pascal_voc/AP50'], 2)), f)
        records[method] = dict(run_dir=run_dir, metrics=metrics, predictions=predictions,
                               sha=sha256(run_dir / ('epoch_1.pth' if method == 'netaug'
                                                     else 'epoch_10.pth')))
    eval_submodels.main(experiment_args(root))
    with open(root / 'out' / 'submodels.json') as f, open(root / 'out' / 'submodels.md') as g:
        return records, json.load(f), g.read()


@pytest.mark.slow
def test_base_with_tracked_bn_is_the_deployed_model(netaug_run, experiment, tmp_path):
    model, split, _ = netaug_run
    records, report, text = experiment
    dump = tmp_path / 'ours.pkl'
    from mmdet.registry import METRICS
    split.evaluator.metrics.append(METRICS.build(dict(type='DumpDetResults',
                                                      out_file_path=str(dump))))
    try:
        ours = evaluate(export_plain_model(model), split)
    finally:
        split.evaluator.metrics.pop()
    deployed = records['netaug']
    assert ours == deployed['metrics']
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == len(deployed['predictions']) == split.size
    for mine, theirs in zip(predictions, deployed['predictions']):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(mine['pred_instances'][key], theirs['pred_instances'][key])
    assert all(len(p['pred_instances']['scores']) for p in predictions)  # not vacuous
    # the tool's own row, for both runs, equals tools/test.py's AP50 (result.json)
    for run in report['runs']:
        base = run['scores'][0]
        assert (base['name'], base['bn']) == ('base', 'tracked')
        assert base['ap50']['val'] == round(100 * records[run['label']]['metrics'][
            'pascal_voc/AP50'], 2)
    assert "scores exactly what each run's result.json reports" in text


@pytest.mark.slow
def test_report_rows_per_method(experiment):
    _, report, text = experiment
    runs = {run['label']: run for run in report['runs']}
    assert [(s['name'], s['bn']) for s in runs['baseline']['scores']] == [
        ('base', 'tracked'), ('base', 'recalibrated')]
    assert [(s['name'], s['bn']) for s in runs['netaug']['scores']] == [
        ('base', 'tracked'), ('base', 'recalibrated'), ('widest', 'recalibrated'),
        ('random 1', 'recalibrated'), ('random 2', 'recalibrated')]
    widths = [s['width'] for s in runs['netaug']['scores']]
    assert widths[:2] == [1.0, 1.0] and widths[2] > max(widths[3:]) > 1.0
    assert all(set(s['ap50']) == {'train', 'val'} for run in runs.values()
               for s in run['scores'])
    assert '| netaug | random draws (recalibrated BN) |' in text
    assert '| baseline | widest' not in text


@pytest.mark.slow
def test_scored_runs_are_read_back(experiment, capsys):
    records, report, _ = experiment
    root = records['netaug']['run_dir'].parents[2]
    capsys.readouterr()
    eval_submodels.main(experiment_args(root))
    assert capsys.readouterr().out.count('scored before, read back') == 2
    with open(root / 'out' / 'submodels.json') as f:
        assert json.load(f) == report


@pytest.mark.slow
def test_checkpoints_keep_their_bytes(experiment):
    records, _, _ = experiment
    for method, name in (('baseline', 'epoch_10.pth'), ('netaug', 'epoch_1.pth')):
        assert sha256(records[method]['run_dir'] / name) == records[method]['sha']


def test_recalibration_changes_only_the_copy(netaug_run):
    model, _, inputs = netaug_run
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    widest, _ = with_widths(model, 'max')
    recalibrated = recalibrate_bn(widest, inputs)
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    assert all(torch.equal(tensor, before[name]) for name, tensor in widest.state_dict().items())
    unchanged = [name for name, tensor in recalibrated.state_dict().items()
                 if name.endswith(('running_mean', 'running_var'))
                 and torch.equal(tensor, before[name])]
    # every statistic re-estimated but those of the backbone's last conv, which the detector
    # never runs (not in out_indices)
    assert unchanged == ['backbone.conv2.bn.running_mean', 'backbone.conv2.bn.running_var']
    norms = training_bn_layers(model)
    assert len(norms) > 50
    assert not recalibrated.training
    # momentum restored, weights untouched
    assert [m.momentum for m in training_bn_layers(recalibrated)] == [m.momentum for m in norms]
    assert all(torch.equal(tensor, before[name])
               for name, tensor in recalibrated.named_parameters())


def test_recalibration_averages_the_batches(netaug_run):
    model, _, inputs = netaug_run
    base = export_plain_model(model)
    first = training_bn_layers(base)[0]
    recalibrated = training_bn_layers(recalibrate_bn(base, inputs * 2))[0]
    once = training_bn_layers(recalibrate_bn(base, inputs))[0]
    # the same batch twice, averaged with equal weights: the statistics of one pass
    assert torch.allclose(recalibrated.running_mean, once.running_mean, atol=1e-6)
    assert not torch.allclose(once.running_mean, first.running_mean)
    with pytest.raises(ValueError, match='at least one training batch'):
        recalibrate_bn(base, [])


@pytest.mark.slow
def test_widest_model_runs_the_augmented_channels(netaug_run):
    model, _, inputs = netaug_run
    widest, width = with_widths(model, 'max')
    assert width > 2
    base_shapes = {name: tensor.shape for name, tensor in
                   export_plain_model(model).named_parameters()}
    perturbed = with_widths(model, 'base')[0]
    with torch.no_grad():  # change only what lies outside the base slices
        for name, param in perturbed.named_parameters():
            outside = torch.ones_like(param, dtype=torch.bool)
            outside[tuple(slice(0, n) for n in base_shapes[name])] = False
            param[outside] += 0.5

    def outputs(net) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([out.flatten() for out in flat(net.eval()(inputs[0], mode='tensor'))])

    assert torch.equal(outputs(export_plain_model(perturbed)), outputs(export_plain_model(model)))
    assert not torch.allclose(outputs(with_widths(perturbed, 'max')[0]), outputs(widest))
    assert not torch.allclose(outputs(widest), outputs(export_plain_model(model)))


@pytest.mark.slow
def test_seeded_draws_are_reproducible(netaug_run, experiment):
    model, _, _ = netaug_run
    _, report, _ = experiment
    generator = torch.Generator().manual_seed(0)
    draws = [with_widths(model, 'random', generator) for _ in range(2)]
    # the tool's draws with --seed 0 (in another process state) are these very models
    netaug = next(run for run in report['runs'] if run['label'] == 'netaug')
    reported = [s for s in netaug['scores'] if s['name'].startswith('random')]
    assert [round(width, 4) for _, width in draws] == [s['width'] for s in reported]
    assert draws[0][1] != draws[1][1]
    other = with_widths(model, 'random', torch.Generator().manual_seed(1))
    assert [m.active_spec for m in netaug_modules(other[0]).values()] != \
        [m.active_spec for m in netaug_modules(draws[0][0]).values()]
    # the model given keeps its base widths
    assert all(module.active_spec == module.base_spec
               for module in netaug_modules(model).values())


@pytest.mark.slow
def test_bad_input_names_the_fix(trained_runs, tmp_path, capsys):
    netaug, baseline = trained_runs / 'netaug', trained_runs / 'baseline'
    with pytest.raises(SystemExit):
        eval_submodels.main([str(netaug / NETAUG_CONFIG), str(netaug / 'deploy.pth'), '--out',
                             str(tmp_path / 'a')])
    err = capsys.readouterr().err
    assert 'deploy.pth holds the plain (deployable) base model' in err and 'epoch_N.pth' in err
    with pytest.raises(SystemExit):
        eval_submodels.main([str(baseline / BASELINE_CONFIG), str(baseline / 'epoch_10.pth'),
                             '--samples', '3', '--out', str(tmp_path / 'b')])
    err = capsys.readouterr().err
    assert 'builds a plain model' in err and 'drop --samples' in err
    with pytest.raises(SystemExit):
        eval_submodels.main(['--runs', str(tmp_path), '--out', str(tmp_path / 'c')])
    assert 'no finished run below it' in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in 'abc')


def test_arguments_are_checked(capsys):
    for argv, message in ((['a.py'], 'give CONFIG CHECKPOINT'),
                          (['a.py', 'b.pth', '--runs', 'x'], 'not both'),
                          (['--runs', 'x'], '--runs needs --out'),
                          (['a.py', 'b.pth', '--samples', '-1'], '--samples must be >= 0')):
        with pytest.raises(SystemExit):
            eval_submodels.parse_args(argv)
        assert message in capsys.readouterr().err
