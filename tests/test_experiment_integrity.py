"""Every result the experiment tools report comes from a run that finished with exactly the
settings and seed it is reported under (issue 21): a run dir belongs to one spec, a changed spec
never resumes or scores another run's checkpoint or ``deploy.pth``, repeated seeds, learning-rate
multiples or run names are refused, ``--collect`` reads only finished runs, and one run dir is
run by one process at a time.

Most tests stand the train and test tools in with :func:`fake_tool`, which writes checkpoints
as mmengine does (``epoch_N.pth`` with meta, ``last_checkpoint``) and scores the model tag the
tested checkpoint carries, so the run-dir logic is tested without training.
"""
import fcntl
import glob
import json
import os
import os.path as osp

import pytest
import torch

from conftest import REPO_ROOT
from netaug_det.experiments import runs
from netaug_det.experiments.compare import Method, run_methods
from netaug_det.experiments.launch import START_ENV
from netaug_det.experiments.runs import (RESULT_FILE, IncompleteRunError, RunDirBusy, RunSpec,
                                          checkpoint_to_evaluate, claim_run_dir, load_merged,
                                          run_experiment, trained_state)
from netaug_det.experiments.sweep import collect_cells, run_dir
from netaug_det.tools import compare_runs, distill_ablation, lr_grid, resolution_sweep, run_demo

BASELINE = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_demo.py')
NETAUG = osp.join(REPO_ROOT, 'configs', 'demo', 'yolov3_mbv2_netaug_demo.py')
VOC_KEY = 'pascal_voc/AP50'
ITERS_PER_EPOCH = 2
TWO_EPOCHS = ('train_cfg.max_epochs=2', )


def fake_checkpoint(path: str, epoch: int, max_epochs: int, seed: int = 0, input_size: int = 64,
                    **meta) -> None:
    """A checkpoint with the meta mmengine's Runner writes (epoch, iter, seed, config text)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg = f'train_cfg = dict(max_epochs={max_epochs})\ninput_size = {input_size}\n'
    torch.save({'meta': dict(epoch=epoch, iter=epoch * ITERS_PER_EPOCH, seed=seed, cfg=cfg,
                             **meta)}, path)


def fake_training(work_dir: str, epochs: int, max_epochs: int, first: int = 1, **meta) -> str:
    """What an mmengine training of ``max_epochs`` stopped after ``epochs`` leaves: one
    checkpoint per epoch from ``first`` and ``last_checkpoint`` naming the newest."""
    path = None
    for epoch in range(first, epochs + 1):
        path = osp.join(work_dir, f'epoch_{epoch}.pth')
        fake_checkpoint(path, epoch, max_epochs, **meta)
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(osp.abspath(path))
    return path


class FakeTools:
    """Stands in for :func:`netaug_det.experiments.runs.run_tool`.

    'train' trains the config's ``max_epochs`` from the ``--resume`` checkpoint's epoch on,
    saving every epoch, and writes ``deploy.pth`` for NetAug configs; its model tag (config, lr,
    seed) is its score. ``kill_after`` epochs, it fails like a killed training. 'test' writes
    the score of the checkpoint it is given.
    """

    def __init__(self):
        self.kill_after = None
        self.trained = []  # (work_dir, first epoch, resumed from)

    def __call__(self, tool, args, log_file, prefix='', env=None, launcher=()):
        if tool == 'test':
            score = torch.load(args[1], weights_only=True)['meta']['score']
            with open(args[args.index('--metrics-json') + 1], 'w') as f:
                json.dump({VOC_KEY: score}, f)
            return 1.0
        config, work_dir = args[0], args[args.index('--work-dir') + 1]
        cfg = load_merged(config, args[args.index('--cfg-options') + 1:])
        resume = self.resume_from(args, work_dir)
        first = 1 if resume is None else torch.load(resume, weights_only=True)['meta']['epoch'] + 1
        self.trained.append((work_dir, first, resume))
        last = cfg.train_cfg.max_epochs if self.kill_after is None else self.kill_after
        score = self.score(config, cfg.optim_wrapper.optimizer.lr, cfg.randomness.seed)
        meta = dict(seed=cfg.randomness.seed, input_size=cfg.input_size, score=score)
        fake_training(work_dir, last, cfg.train_cfg.max_epochs, first, **meta)
        if self.kill_after is not None:
            raise RuntimeError('train failed (exit -9)')
        if 'netaug' in osp.basename(config):
            fake_checkpoint(osp.join(work_dir, 'deploy.pth'), last, last, **meta)
        return 1.0

    @staticmethod
    def resume_from(args, work_dir):
        """The checkpoint of ``--resume CKPT``, or of ``--resume`` alone: the file
        ``last_checkpoint`` names, as mmengine's ``find_latest_checkpoint`` reads it."""
        if '--resume' not in args:
            return None
        path = args[args.index('--resume') + 1]
        if path.startswith('--'):
            with open(osp.join(work_dir, 'last_checkpoint')) as f:
                path = f.read().strip()
        return path

    @staticmethod
    def score(config, lr, seed):
        """A different AP for every (method, learning rate, seed)."""
        return round(('netaug' in osp.basename(config)) * 0.5 + lr + seed / 1000, 6)


@pytest.fixture
def tools(monkeypatch):
    fake = FakeTools()
    monkeypatch.setattr(runs, 'run_tool', fake)
    return fake


@pytest.fixture
def configs(tmp_path):
    """Two tiny stand-in configs (quick to parse) with what the runs read from them."""
    paths = {}
    for method, lr in (('baseline', 0.016), ('netaug', 0.004)):
        paths[method] = str(tmp_path / f'{method}.py')
        with open(paths[method], 'w') as f:
            f.write(f'train_cfg = dict(max_epochs=12)\ninput_size = 64\nrandomness = dict()\n'
                    f'optim_wrapper = dict(optimizer=dict(lr={lr}))\n'
                    "test_evaluator = dict(type='VOCMetric')\n")
    return paths


def spec(work_dir, config, seed=0, train_options=TWO_EPOCHS, test_config=None):
    return RunSpec(config, test_config or config, str(work_dir), seed,
                   train_options=tuple(train_options))


def test_a_changed_run_killed_before_its_first_checkpoint_trains_from_scratch(tmp_path, tools,
                                                                             configs):
    """(a) After a settings change, the new training is killed before its first checkpoint;
    the next attempt must not resume the old run's final checkpoint and report its model."""
    baseline = configs['baseline']
    old = spec(tmp_path / 's0', baseline)
    assert run_experiment(old)['val_ap50'] == pytest.approx(100 * tools.score(baseline, 0.016, 0))
    new = spec(tmp_path / 's0', baseline,
               train_options=(*TWO_EPOCHS, 'optim_wrapper.optimizer.lr=0.001'))
    tools.kill_after = 0
    with pytest.raises(RuntimeError, match='exit -9'):
        run_experiment(new)
    tools.kill_after = None
    result = run_experiment(new)
    assert not result['resumed'] and tools.trained[-1] == (new.work_dir, 1, None)
    assert result['val_ap50'] == pytest.approx(100 * tools.score(baseline, 0.001, 0))
    assert result['trained'] == dict(unit='epoch', done=2, total=2, iter=4, seed=0,
                                     input_size=64)
    # the old run is kept aside, whole, never deleted
    aside = glob.glob(str(tmp_path / 's0.replaced-*'))
    assert any(osp.isfile(osp.join(path, RESULT_FILE)) for path in aside)


def test_an_interrupted_run_resumes_from_its_own_checkpoint(tmp_path, tools, configs):
    run = spec(tmp_path / 's0', configs['baseline'])
    tools.kill_after = 1
    with pytest.raises(RuntimeError):
        run_experiment(run)
    tools.kill_after = None
    result = run_experiment(run)
    assert result['resumed'] and tools.trained[-1][1] == 2
    assert result['trained']['done'] == 2
    assert run_experiment(run) == result and len(tools.trained) == 2  # read back


def test_a_deploy_pth_of_another_run_is_never_scored(tmp_path, tools, configs):
    """(b) A NetAug run's deploy.pth left in the dir is not the baseline's model."""
    netaug = run_experiment(spec(tmp_path / 'run', configs['netaug'], test_config=configs[
        'baseline']))
    assert netaug['checkpoint'].endswith('deploy.pth')
    baseline = run_experiment(spec(tmp_path / 'run', configs['baseline']))
    assert baseline['checkpoint'].endswith('epoch_2.pth')
    assert baseline['val_ap50'] == pytest.approx(100 * tools.score(configs['baseline'], 0.016, 0))
    assert not osp.exists(tmp_path / 'run' / 'deploy.pth')
    # the same dir made by hand: a deploy.pth older than, or of another training than, the
    # final checkpoint is refused
    work_dir = str(tmp_path / 'by_hand')
    fake_checkpoint(osp.join(work_dir, 'deploy.pth'), 2, 2, seed=1)
    fake_training(work_dir, 2, 2)
    with pytest.raises(IncompleteRunError, match='left from another run'):
        checkpoint_to_evaluate(work_dir, trained_state(work_dir))


def test_repeated_run_names_are_refused(capsys):
    """(b) Two --run entries of one name would share one row and one folder."""
    with pytest.raises(SystemExit):
        compare_runs.parse_args(['--run', 'a', BASELINE, '--run', 'a', NETAUG, '--test-config',
                                 BASELINE, '--work-dir', 'unused'])
    assert '--run names repeat a' in capsys.readouterr().err
    with pytest.raises(ValueError, match='method names repeat a'):
        run_methods([Method('a', BASELINE), Method('a', NETAUG)], BASELINE, [0], 'unused')


@pytest.mark.parametrize('tool, argv', [
    (run_demo, ['--seeds', '0', '0']),
    (lr_grid, [BASELINE, NETAUG, '--lr-mults', '1', '1.0']),
    (lr_grid, [BASELINE, NETAUG, '--seeds', '2', '02']),
    (compare_runs, ['--run', 'a', BASELINE, '--test-config', BASELINE, '--work-dir', 'unused',
                    '--seeds', '1', '1']),
    (resolution_sweep, [BASELINE, NETAUG, '--resolutions', '64', '64']),
    (resolution_sweep, [BASELINE, NETAUG, '--seeds', '0', '1', '0', '--collect']),
    (distill_ablation, ['--methods', 'kd', 'kd']),
])
def test_repeated_seeds_and_grid_points_are_refused(tool, argv, capsys):
    """(c) ``--seeds 0 0`` or ``--lr-mults 1 1`` would count one run twice as '± 0.0 (2)'."""
    with pytest.raises(SystemExit):
        tool.parse_args(argv)
    assert 'the values repeat' in capsys.readouterr().err


def test_repeated_seeds_are_refused_by_the_library_too(tmp_path):
    with pytest.raises(ValueError, match='seeds repeat 0'):
        run_methods([Method('a', BASELINE)], BASELINE, [0, 0], str(tmp_path))
    with pytest.raises(ValueError, match='seeds repeat 3'):
        collect_cells(str(tmp_path), [64], {64: 1.0}, VOC_KEY, seeds=[3, 3])
    for name in ('s1', 's01'):  # two folders of one seed
        os.makedirs(run_dir(str(tmp_path), 'baseline', 64, name[1:]))
    with pytest.raises(ValueError, match='seed folders .* repeat 1'):
        collect_cells(str(tmp_path), [64], {64: 1.0}, VOC_KEY)


def write_scalars(work_dir: str, validations) -> None:
    """``<timestamp>/vis_data/scalars.json`` with one validation per (epoch, AP50 fraction)."""
    path = osp.join(work_dir, '20260101_000000', 'vis_data', 'scalars.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(json.dumps({VOC_KEY: ap, 'step': epoch}) for epoch, ap in validations))


def test_collect_reads_only_finished_runs(tmp_path):
    """(d) A run killed mid-training (validated after epoch 1 of 2) is no finished point."""
    root = str(tmp_path)
    for method, seed in (('baseline', 0), ('baseline', 1), ('netaug', 0)):
        folder = run_dir(root, method, 64, seed)
        write_scalars(folder, [(1, 0.5), (2, 0.6)])
        fake_training(folder, 2, 2, seed=seed)
    assert collect_cells(root, [64], {64: 1.0}, VOC_KEY, [0])['netaug'][0].ap50s == (60.0, )
    killed = run_dir(root, 'netaug', 64, 1)
    write_scalars(killed, [(1, 0.5)])
    fake_training(killed, 1, 2, seed=1)
    with pytest.raises(FileNotFoundError, match=r'netaug/r64/s1: its training stopped after '
                       r'epoch 1 of 2'):
        collect_cells(root, [64], {64: 1.0}, VOC_KEY, [1])
    # resumed to its end but not validated there: its last validation is not the final model's
    fake_training(killed, 2, 2, first=2, seed=1)
    with pytest.raises(FileNotFoundError, match='no .* of the final model'):
        collect_cells(root, [64], {64: 1.0}, VOC_KEY, [1])
    # a test run older than the final checkpoint tested an earlier model
    stale_test = osp.join(killed, '20260101_000001', '20260101_000001.json')
    os.makedirs(osp.dirname(stale_test))
    with open(stale_test, 'w') as f:
        json.dump({VOC_KEY: 0.9}, f)
    os.utime(stale_test, (0, 0))
    with pytest.raises(FileNotFoundError, match='no .* of the final model'):
        collect_cells(root, [64], {64: 1.0}, VOC_KEY, [1])
    os.utime(stale_test)  # tested after the training ended
    assert collect_cells(root, [64], {64: 1.0}, VOC_KEY, [1])['netaug'][0].ap50s == (90.0, )


def test_collect_refuses_a_run_of_another_seed_than_its_folder(tmp_path):
    folder = run_dir(str(tmp_path), 'baseline', 64, 2)
    write_scalars(folder, [(1, 0.5)])
    fake_training(folder, 1, 1, seed=0)
    with pytest.raises(ValueError, match='reported under seed 2 but was trained with seed 0'):
        collect_cells(str(tmp_path), [64], {64: 1.0}, VOC_KEY, [2])


def test_one_run_dir_is_run_by_one_process_at_a_time(tmp_path, tools, configs):
    work_dir = str(tmp_path / 's0')
    with claim_run_dir(work_dir):
        with pytest.raises(RunDirBusy, match=f'being run by pid {os.getpid()} on'):
            run_experiment(spec(work_dir, configs['baseline']))
    assert tools.trained == []
    run_experiment(spec(work_dir, configs['baseline']))  # released when the holder ends
    assert len(tools.trained) == 1
    # a training started by hand into the dir holds its own lock: its files are not moved
    with open(osp.join(work_dir, '.train.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(RunDirBusy, match=r'\.train\.lock is held'):
            run_experiment(spec(work_dir, configs['netaug']))
    assert osp.isfile(osp.join(work_dir, RESULT_FILE))


@pytest.mark.slow
def test_a_real_changed_run_killed_before_its_first_checkpoint(tmp_path, monkeypatch, capsys):
    """(a) through the real tools: a finished tiny run, then a settings change whose training
    dies at start (an invalid PYTHONHASHSEED stops the child Python before anything runs)."""
    from netaug_det.datasets import generate_demo_dataset
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    data_root = str(tmp_path / 'data') + '/'
    generate_demo_dataset(data_root, num_train=4, num_val=2, img_size=(64, 80))
    options = [f'data_root={data_root}', 'input_size=64', 'train_cfg.max_epochs=1',
               'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None'] + [
        f'{loader}.{key}' for loader in ('train_dataloader', 'test_dataloader') for key in (
            f'dataset.data_root={data_root}', 'batch_size=2', 'num_workers=0',
            'persistent_workers=False')]
    old = RunSpec(BASELINE, BASELINE, str(tmp_path / 'run'), 0, tuple(options))
    run_experiment(old)
    new = old._replace(train_options=('optim_wrapper.optimizer.lr=0.001', ))
    monkeypatch.setenv(START_ENV, 'subprocess')  # a fresh Python, which the seed stops
    with pytest.raises(RuntimeError, match='failed'):
        run_experiment(new, env={'PYTHONHASHSEED': 'not-a-seed'})
    monkeypatch.delenv(START_ENV)
    capsys.readouterr()
    result = run_experiment(new)
    assert not result['resumed'] and 'Epoch(train)' in capsys.readouterr().out
    assert result['trained']['done'] == 1 and result['checkpoint'].endswith('epoch_1.pth')
