"""Executors: local runs at once, dependencies, failures and resume, and the SLURM path against the
stand-in sbatch/sacct/squeue/scancel/srun of tests/fake_slurm/ (they run the submitted scripts
on this machine). The scheduling tests replace the training by ``stand_in_work``; one slow test
trains the demo detector two runs at a time and compares it with the sequential runs."""
import json
import os
import os.path as osp
import sys
import threading
import time

import cloudpickle
import pytest
import torch

from conftest import REPO_ROOT
from netaug_det.datasets import generate_demo_dataset
from netaug_det.experiments.executors import (Run, RunsFailed, _Scheduler, default_executor_args,
                                              execute, run_many)
from netaug_det.experiments.runs import (RESULT_FILE, RUN_FORMAT, RunSpec, _write_json, spec_record,
                                         start_fresh)

FAKE_SLURM = osp.join(osp.dirname(osp.abspath(__file__)), 'fake_slurm')
# the job processes unpickle stand_in_work by value: this test file is not importable there
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def stand_in_work(run, gpus, nodes, threads):
    """A job that records when it ran, checks that its parents finished, fails for runs named
    'fail*', with ``rendezvous=DIR`` waits (up to 60 s) for a second run to reach DIR, and with
    ``release=FILE`` waits (up to 120 s) for FILE."""
    start = time.time()
    together = None
    for option in run.spec.cfg_options:
        key, folder = option.split('=', 1)
        if key == 'release':
            while not osp.isfile(folder) and time.time() - start < 120:
                time.sleep(0.1)
            continue
        os.makedirs(folder, exist_ok=True)
        open(osp.join(folder, run.name), 'w').close()
        while len(os.listdir(folder)) < 2 and time.time() - start < 60:
            time.sleep(0.1)
        together = len(os.listdir(folder)) == 2
    for option in run.spec.train_options:
        parent_dir = option.split('=', 1)[1]
        if not osp.isfile(osp.join(parent_dir, RESULT_FILE)):
            raise RuntimeError(f'parent {parent_dir} had not finished')
    if run.name.startswith('fail'):
        os.makedirs(run.spec.work_dir, exist_ok=True)
        with open(osp.join(run.spec.work_dir, 'train_stdout.log'), 'w') as f:
            f.write('boom\n')
        raise RuntimeError(f'training failed; full log: {run.spec.work_dir}/train_stdout.log')
    time.sleep(0.5)
    record = spec_record(run.spec)
    os.makedirs(run.spec.work_dir, exist_ok=True)
    start_fresh(run.spec.work_dir, record)  # the run dir's manifest, as run_experiment writes it
    result = dict(format=RUN_FORMAT, spec=record, val_ap50=float(run.spec.seed), start=start,
                  end=time.time(), threads=threads, together=together)
    _write_json(result, osp.join(run.spec.work_dir, RESULT_FILE))
    return result


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'config.py'
    path.write_text('x = 1\n')
    return str(path)


def make_run(config, root, name, seed=0, after=(), rendezvous=None, release=None):
    """A stand-in run; its parents' work dirs travel as its train_options."""
    parents = tuple(f'parents.{parent}={root / parent}' for parent in after)
    meet = (f'rendezvous={rendezvous}', ) if rendezvous else ()
    meet += (f'release={release}', ) if release else ()
    return Run(name, RunSpec(config, config, str(root / name), seed, meet, parents), tuple(after))


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """The stand-in SLURM commands on PATH, with their state in a fresh folder."""
    monkeypatch.setenv('PATH', FAKE_SLURM + os.pathsep + os.environ['PATH'])
    monkeypatch.setenv('FAKE_SLURM_DIR', str(tmp_path / 'slurm_state'))
    return default_executor_args(executor='slurm', partition='debug', account='team',
                                 time_limit=10, sbatch_option=['qos=high'])


@pytest.mark.slow
def test_local_jobs_run_at_once_and_children_wait_for_parents(tmp_path, config):
    root = tmp_path / 'runs'
    meet = tmp_path / 'rendezvous'
    runs = [make_run(config, root, 'a', 1, rendezvous=meet),
            make_run(config, root, 'b', 2, rendezvous=meet),
            make_run(config, root, 'child', 3, after=('a', 'b'))]
    outcomes = execute(runs, default_executor_args(jobs=2), str(root), stand_in_work)
    a, b, child = (outcomes[name].result for name in ('a', 'b', 'child'))
    assert a['together'] and b['together']  # both ran at the same time
    assert a['threads'] == b['threads'] == 1  # OMP_NUM_THREADS=1 caps cores // 2
    assert child['start'] >= max(a['end'], b['end'])
    assert [a['val_ap50'], b['val_ap50'], child['val_ap50']] == [1.0, 2.0, 3.0]
    # finished runs are read back, not submitted again
    again = execute(runs, default_executor_args(jobs=2), str(root), stand_in_work)
    assert all(outcome.cached for outcome in again.values())


@pytest.mark.slow
def test_a_failed_parent_fails_its_children_naming_its_log(tmp_path, config):
    root = tmp_path / 'runs'
    runs = [make_run(config, root, 'fail_parent'), make_run(config, root, 'ok'),
            make_run(config, root, 'child', after=('fail_parent', )),
            make_run(config, root, 'grandchild', after=('child', ))]
    outcomes = execute(runs, default_executor_args(jobs=2), str(root), stand_in_work)
    assert outcomes['ok'].result is not None
    log = osp.join(str(root), 'fail_parent', 'train_stdout.log')
    assert log in outcomes['fail_parent'].error
    assert "waits for 'fail_parent', which failed" in outcomes['child'].error
    assert log in outcomes['child'].error and log in outcomes['grandchild'].error
    assert '3 of 4 run(s) failed' in str(RunsFailed(outcomes))


def test_bad_run_lists_and_options_are_refused(tmp_path, config):
    root = tmp_path / 'runs'
    args = default_executor_args()
    with pytest.raises(ValueError, match='not in the list'):
        execute([make_run(config, root, 'a', after=('nobody', ))], args, str(root))
    circle = [make_run(config, root, 'a', after=('b', )),
              make_run(config, root, 'b', after=('a', ))]
    with pytest.raises(ValueError, match='circle'):
        execute(circle, args, str(root))
    with pytest.raises(ValueError, match='--jobs'):
        execute([], default_executor_args(jobs=0), str(root))
    with pytest.raises(ValueError, match='--executor slurm'):
        execute([], default_executor_args(nodes_per_run=2), str(root))
    with pytest.raises(ValueError, match='KEY=VALUE'):
        execute([], default_executor_args(executor='slurm', sbatch_option=['qos']), str(root))


@pytest.mark.slow
def test_slurm_submit_dependency_failure_and_resume(tmp_path, config, slurm):
    root = tmp_path / 'runs'
    runs = [make_run(config, root, 'pretrain', 1), make_run(config, root, 'fail_other', 2),
            make_run(config, root, 'detect', 3, after=('pretrain', )),
            make_run(config, root, 'after_failure', 4, after=('fail_other', ))]
    outcomes = execute(runs, slurm, str(root), stand_in_work)
    # submitted as SLURM jobs with the options and afterok dependencies
    jobs = [json.load(open(osp.join(os.environ['FAKE_SLURM_DIR'], name)))
            for name in sorted(os.listdir(os.environ['FAKE_SLURM_DIR']))
            if name.endswith('.json')]
    by_name = {job['name']: job for job in jobs}
    assert by_name['detect']['parents'] == [by_name['pretrain']['id']]
    assert by_name['pretrain']['options']['partition'] == 'debug'
    assert by_name['pretrain']['options']['account'] == 'team'
    assert by_name['pretrain']['options']['qos'] == 'high'
    assert outcomes['pretrain'].result['val_ap50'] == 1.0
    assert outcomes['detect'].result['start'] >= outcomes['pretrain'].result['end']
    assert 'train_stdout.log' in outcomes['fail_other'].error
    assert "waits for 'fail_other'" in outcomes['after_failure'].error
    assert by_name['after_failure']['state'] == 'CANCELLED'  # never left pending

    # resume: the finished half is read back, only the rest is submitted
    fixed = [run._replace(name=run.name.replace('fail_', 'fixed_'), after=tuple(
        p.replace('fail_', 'fixed_') for p in run.after)) for run in runs]
    outcomes = execute(fixed, slurm, str(root), stand_in_work)
    assert outcomes['pretrain'].cached and outcomes['detect'].cached
    assert not outcomes['fixed_other'].cached and outcomes['after_failure'].result is not None
    assert len([n for n in os.listdir(os.environ['FAKE_SLURM_DIR']) if n.endswith('.json')]) == 6


@pytest.fixture(scope='module')
def tiny_options(tmp_path_factory):
    """Overrides that make a demo run one epoch of two iterations on 4 tiny images."""
    data_root = str(tmp_path_factory.mktemp('data') / 'demo') + '/'
    generate_demo_dataset(data_root, num_train=4, num_val=2, img_size=(64, 80))
    loaders = ('train_dataloader', 'test_dataloader')
    return tuple([f'data_root={data_root}', 'input_size=64', 'train_cfg.max_epochs=1',
                  'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None'] + [
        f'{loader}.{key}' for loader in loaders for key in (
            f'dataset.data_root={data_root}', 'batch_size=2', 'num_workers=0',
            'persistent_workers=False')])


@pytest.mark.slow
def test_two_local_jobs_give_the_sequential_numbers(tmp_path, tiny_options, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    baseline = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
    netaug = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')

    def runs(root):
        return [Run(f'{name}/s{seed}', RunSpec(config, baseline, str(tmp_path / root / name),
                                               seed, tiny_options))
                for name, config, seed in (('baseline', baseline, 0), ('netaug', netaug, 1))]

    parallel = run_many(runs('parallel'), default_executor_args(jobs=2), str(tmp_path))
    sequential = run_many(runs('sequential'), default_executor_args(jobs=1), str(tmp_path))
    for one, other in zip(parallel, sequential):
        assert one['val_ap50'] == other['val_ap50']
        weights = [torch.load(run['checkpoint'], map_location='cpu')['state_dict']
                   for run in (one, other)]
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
        accounting = one['accounting']
        assert accounting['device'] == 'cpu' and accounting['devices'] == 1
        assert accounting['wall_time_s'] >= one['train_time_s'] > 0
        assert accounting['device_hours'] == pytest.approx(accounting['wall_time_s'] / 3600,
                                                            abs=1e-4)


@pytest.mark.slow
def test_slurm_resume_takes_over_jobs_still_queued(tmp_path, config, slurm):
    root = tmp_path / 'runs'
    release = tmp_path / 'release'
    runs = [make_run(config, root, 'pretrain', 1, release=release),
            make_run(config, root, 'detect', 2, after=('pretrain', ))]
    # an invocation that submitted the pretraining, then was interrupted
    _Scheduler(runs, slurm, str(root / 'jobs'), stand_in_work).submit(runs[0], 0)
    threading.Timer(5, release.touch).start()
    outcomes = execute(runs, slurm, str(root), stand_in_work)
    jobs = [json.load(open(osp.join(os.environ['FAKE_SLURM_DIR'], name)))
            for name in os.listdir(os.environ['FAKE_SLURM_DIR']) if name.endswith('.json')]
    assert sorted(job['name'] for job in jobs) == ['detect', 'pretrain']  # not submitted twice
    pretrain = next(job for job in jobs if job['name'] == 'pretrain')
    assert next(job for job in jobs if job['name'] == 'detect')['parents'] == [pretrain['id']]
    assert outcomes['pretrain'].result['val_ap50'] == 1.0
    assert outcomes['detect'].result['val_ap50'] == 2.0
