"""Running experiments: one training + evaluation per (configuration, seed), cached on disk.

Every comparison the project reports (the demo, the learning-rate grid, the resolution sweep,
ablations) is a set of runs. :func:`run_experiment` trains one config with one seed through
``netaug_det.tools.train``, evaluates the deployable checkpoint (NetAug's ``deploy.pth``, else
the final checkpoint) under a test config with ``netaug_det.tools.test`` on the requested splits
(each tool in a child process, :mod:`netaug_det.experiments.launch`), and writes
``result.json`` into the run's work dir.

A run dir belongs to exactly one spec (the arguments and a fingerprint of both merged configs):

- :func:`claim_run_dir` locks it (``experiment.lock``, ``flock``) for the whole run, so two
  processes given one spec, whichever executor started them, never train into one dir;
- ``manifest.json`` names the spec the dir belongs to; it is written before training, into a dir
  emptied of everything else: whatever an earlier run (another spec, an older netaug_det, a
  training killed before its first checkpoint) left there is moved aside to
  ``<work_dir>.replaced-<time>`` first, so no checkpoint or ``deploy.pth`` of another run can be
  resumed or scored;
- a training interrupted with the same spec resumes from its own last checkpoint;
- ``result.json`` is written last, once the final checkpoint shows the whole schedule trained
  with the spec's seed and the tests ran; it records the trained epochs/iterations and the
  fingerprint, and only such a result is read back instead of running again.

:func:`finished_run` applies the same rule to runs made elsewhere (``--collect``): a run counts
only when its final checkpoint reached the end of its schedule. Code changes are not
fingerprinted: after changing the code, use a new work dir.
"""
import contextlib
import glob
import hashlib
import json
import math
import os
import os.path as osp
import socket
import time
from typing import Dict, Hashable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction

from ..utils.locks import exclusive_lock, lock_holder
from .launch import run_tool

METRIC_KEYS = {'VOCMetric': 'pascal_voc/AP50', 'CocoMetric': 'coco/bbox_mAP_50',
               'TopKAccuracy': 'accuracy/top1'}
# metrics already in percent (the others are fractions)
PERCENT_METRICS = ('accuracy/top1', )
RESULT_FILE = 'result.json'
MANIFEST_FILE = 'manifest.json'
LOCK_FILE = 'experiment.lock'
DEPLOY_FILE = 'deploy.pth'
# written into manifest.json and result.json; run dirs of another format are not trusted
RUN_FORMAT = 2


class RunDirBusy(RuntimeError):
    """Another process is running the same run dir."""


class IncompleteRunError(RuntimeError):
    """A run that did not finish, or whose files do not show that it did."""


def require_unique(values: Sequence[Hashable], what: str) -> None:
    """Refuses repeated ``values`` (seeds, learning-rate multiples, run names, ...): each value
    is one run, and a repeated one would be counted twice in a mean and its sd.

    Raises:
        ValueError: naming ``what`` and the repeated values.
    """
    seen, repeated = set(), []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    if repeated:
        raise ValueError(f'{what} repeat {", ".join(map(str, repeated))}: each value is one run '
                         'and would be counted twice; give each value once')


def parse_cfg_options(options: Sequence[str]) -> dict:
    """``KEY=VALUE`` strings (as given to the tools' ``--cfg-options``) parsed like they do."""
    import argparse
    parsed = argparse.Namespace(cfg_options={})
    DictAction(option_strings=[], dest='cfg_options')(None, parsed, options)
    return parsed.cfg_options


def load_merged(config: str, options: Sequence[str] = ()) -> Config:
    """``config`` read from file with ``options`` (``KEY=VALUE`` strings) merged in."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(parse_cfg_options(options))
    return cfg


def evaluator_type(cfg: Config) -> str:
    """The type of the config's test evaluator (its first metric), checked to be supported."""
    evaluator = cfg.test_evaluator
    metric = evaluator[0] if isinstance(evaluator, (list, tuple)) else evaluator
    if metric.get('type') not in METRIC_KEYS:
        raise ValueError(f"test_evaluator type {metric.get('type')!r} is not supported; AP50 is "
                         f'read from one of {sorted(METRIC_KEYS)}')
    return metric['type']


def percent(metric_key: str, value: float) -> float:
    """``value`` of the metric ``metric_key`` in percent."""
    return float(value) if metric_key in PERCENT_METRICS else 100 * float(value)


def final_checkpoint(work_dir: str) -> str:
    """The last checkpoint saved in ``work_dir``: the file ``last_checkpoint`` names (mmengine's
    ``CheckpointHook`` writes the path it saved to), looked up in ``work_dir`` by its name, so a
    moved run dir still finds its own file and never another dir's.

    Raises:
        IncompleteRunError: when ``work_dir`` has no saved checkpoint.
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            path = osp.join(work_dir, osp.basename(f.read().strip()))
        if osp.isfile(path):
            return path
    raise IncompleteRunError(f'{work_dir} holds no saved checkpoint (no last_checkpoint, or the '
                             'file it names is missing): its training never saved one; train it '
                             '(tools/train.py CONFIG --work-dir ...)')


def checkpoint_meta(path: str) -> dict:
    """The ``meta`` of a checkpoint (mmengine writes epoch, iter, seed and the config text)."""
    import torch
    try:
        return torch.load(path, map_location='cpu', mmap=True, weights_only=True)['meta']
    except Exception as error:
        raise IncompleteRunError(f'{path} cannot be read as a checkpoint with meta ({error}); '
                                 'move it away and train the run again') from None


class TrainedState(NamedTuple):
    """What the final checkpoint of a work dir says about the training that wrote it.

    ``unit`` is 'epoch' or 'iter' (how its config's ``train_cfg`` counts), ``done`` the epochs or
    iterations trained, ``total`` the end of its schedule (``max_epochs``/``max_iters``),
    ``iter`` the iterations trained; ``seed`` and ``input_size`` are those it trained with.
    """

    checkpoint: str
    unit: str
    done: int
    total: int
    iter: int
    seed: Optional[int]
    input_size: Optional[int]

    @property
    def finished(self) -> bool:
        """Whether the training reached the end of its schedule."""
        return self.done >= self.total

    def require_finished(self, work_dir: str) -> None:
        """Raises :class:`IncompleteRunError` unless the training reached its end."""
        if not self.finished:
            raise IncompleteRunError(
                f'{work_dir}: its training stopped after {self.unit} {self.done} of {self.total} '
                f'(killed, failed or still running; last checkpoint {self.checkpoint}): resume it '
                '(tools/train.py CONFIG --work-dir ... --resume) or run it again')


def trained_state(work_dir: str) -> TrainedState:
    """The :class:`TrainedState` of the newest training in ``work_dir``, from its final
    checkpoint's meta and the config text mmengine stores in it."""
    path = final_checkpoint(work_dir)
    meta = checkpoint_meta(path)
    try:
        cfg = Config.fromstring(meta['cfg'], '.py')
        unit = 'epoch' if 'max_epochs' in cfg.train_cfg else 'iter'
        total = cfg.train_cfg[f'max_{unit}s']
    except Exception as error:
        raise IncompleteRunError(f'{path}: the config stored in its meta does not say how long '
                                 f'it trains ({error!r}); it was not written by an mmengine '
                                 'training run') from None
    return TrainedState(path, unit, meta[unit], total, meta['iter'], meta.get('seed'),
                        cfg.get('input_size'))


def checkpoint_to_evaluate(work_dir: str, state: TrainedState) -> str:
    """The checkpoint to evaluate: NetAug's ``deploy.pth`` when the training of ``state`` wrote
    it (same iteration and seed in its meta, saved after the final checkpoint), else the final
    checkpoint.

    Raises:
        IncompleteRunError: when a ``deploy.pth`` in ``work_dir`` was left by another training.
    """
    deploy = osp.join(work_dir, DEPLOY_FILE)
    if not osp.isfile(deploy):
        return state.checkpoint
    meta = checkpoint_meta(deploy)
    if (meta.get('iter'), meta.get('seed')) != (state.iter, state.seed) \
            or osp.getmtime(deploy) < osp.getmtime(state.checkpoint):
        raise IncompleteRunError(
            f'{deploy} was not written by the training that saved {state.checkpoint} (its meta: '
            f'iter {meta.get("iter")}, seed {meta.get("seed")}; the training: iter {state.iter}, '
            f'seed {state.seed}; or it is older): it is left from another run; move it away')
    return deploy


class FinishedRun(NamedTuple):
    """A finished run's val AP50 (percent) and the seed and input size it trained with."""

    ap50: float
    seed: Optional[int]
    input_size: Optional[int]


def finished_run(work_dir: str, metric_key: str, seed: Optional[int] = None,
                 input_size: Optional[int] = None) -> FinishedRun:
    """AP50 of a finished run: its ``result.json`` (:func:`run_experiment`), else, for a run made
    elsewhere, the newest ``tools/test.py`` metrics of its final model, else the validation at
    the end of its training.

    A run made elsewhere counts only when its final checkpoint reached the end of its schedule;
    a test counts only when it is newer than that checkpoint and (when its config was saved)
    tested it or the ``deploy.pth`` of the same training. ``seed`` and ``input_size``, when
    given, are what the run is reported under: a run trained otherwise is refused.

    Raises:
        FileNotFoundError: when ``work_dir`` does not exist.
        ValueError: when the run trained with another seed or input size than it is reported
            under.
        IncompleteRunError: when the run did not finish or has no metric of its final model.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir} does not exist: train it (launch mode) first')
    result = _read_json(osp.join(work_dir, RESULT_FILE))
    if result is not None and result.get('format') == RUN_FORMAT:
        trained = result['trained']
        _check_identity(work_dir, trained['seed'], trained['input_size'], seed, input_size)
        return FinishedRun(result['val_ap50'], trained['seed'], trained['input_size'])
    state = trained_state(work_dir)
    _check_identity(work_dir, state.seed, state.input_size, seed, input_size)
    state.require_finished(work_dir)
    for path in sorted(glob.glob(osp.join(work_dir, '*', '*.json')), reverse=True):
        if osp.basename(path) == osp.basename(osp.dirname(path)) + '.json' \
                and _tested_final_model(path, work_dir, state):
            metrics = _read_json(path)
            if metric_key in metrics:
                return FinishedRun(percent(metric_key, metrics[metric_key]), state.seed,
                                   state.input_size)
    records = validation_records(work_dir, metric_key)
    if records and records[-1][0] == state.done:
        return FinishedRun(records[-1][1], state.seed, state.input_size)
    raise IncompleteRunError(
        f'no {metric_key!r} of the final model in {work_dir}: expected {RESULT_FILE}, a '
        '<timestamp>/<timestamp>.json from tools/test.py on its final checkpoint or deploy.pth, '
        'or a validation at the end of training in <timestamp>/vis_data/scalars.json (see '
        'netaug_det/experiments/sweep.py for the layout); test it, or use launch mode')


def _check_identity(work_dir: str, seed: Optional[int], input_size: Optional[int],
                    expected_seed: Optional[int], expected_input_size: Optional[int]) -> None:
    """Refuses a run trained with another seed or input size than it is reported under."""
    if expected_input_size is not None and input_size not in (None, expected_input_size):
        raise ValueError(f'{work_dir} is reported at resolution {expected_input_size} but was '
                         f'trained at input_size={input_size}; move it to the folder of that '
                         f'resolution or train it with --cfg-options '
                         f'input_size={expected_input_size}')
    if expected_seed is not None and seed != expected_seed:
        raise ValueError(f'{work_dir} is reported under seed {expected_seed} but was trained '
                         f'with seed {seed}; move it to the folder of that seed or train it with '
                         f'--cfg-options randomness.seed={expected_seed}')


def _tested_final_model(metrics_path: str, work_dir: str, state: TrainedState) -> bool:
    """Whether the test run that wrote ``metrics_path`` ran after the training of ``state``
    ended and, when its config is saved, loaded that training's final or deployable model."""
    if osp.getmtime(metrics_path) < osp.getmtime(state.checkpoint):
        return False
    config = osp.join(osp.dirname(metrics_path), 'vis_data', 'config.py')
    if not osp.isfile(config):
        return True
    tested = osp.basename(str(Config.fromfile(config).get('load_from')))
    if tested == DEPLOY_FILE:
        checkpoint_to_evaluate(work_dir, state)  # refuses a deploy.pth of another run
        return True
    return tested == osp.basename(state.checkpoint)


def validation_records(work_dir: str,
                       metric_key: str) -> List[Tuple[Optional[int], float]]:
    """(step, AP50 in percent) of every validation during the newest training run in
    ``work_dir`` that validated; the step is mmengine's (the epoch for epoch-based loops)."""
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in reversed(scalars):
        with open(path) as f:
            records = [json.loads(line) for line in f if metric_key in line]
        if records:
            return [(record.get('step'), percent(metric_key, record[metric_key])) for record in records]
    return []


def validation_curve(work_dir: str, metric_key: str) -> List[float]:
    """AP50 (percent) of every validation during the newest training run in ``work_dir``."""
    return [ap50 for _, ap50 in validation_records(work_dir, metric_key)]


class RunSpec(NamedTuple):
    """One run of an experiment.

    Args:
        config: the training config.
        test_config: the config whose model loads the deployable checkpoint (the baseline's).
        work_dir: where the run writes everything.
        seed: ``randomness.seed`` of the run.
        cfg_options: ``KEY=VALUE`` overrides for training and testing (e.g. ``input_size``).
        train_options: overrides for training only (e.g. the learning rate).
        splits: where AP50 is measured: 'val' (the test dataloader) and/or 'train' (the test
            pipeline on the training images).
    """

    config: str
    test_config: str
    work_dir: str
    seed: int
    cfg_options: tuple = ()
    train_options: tuple = ()
    splits: tuple = ('val', )


def split_options(spec: RunSpec, split: str) -> List[str]:
    """``KEY=VALUE`` overrides that make the test dataloader and evaluator of ``spec`` read
    ``split``: none for 'val'; for 'train' the training dataset's annotations and images under
    the test pipeline (and a ``CocoMetric``'s ground truth)."""
    if split == 'val':
        return []
    if split != 'train':
        raise ValueError(f"splits are 'val' and 'train', got {split!r}")
    cfg = load_merged(spec.config, spec.cfg_options)
    dataset = cfg.train_dataloader.dataset
    if 'ann_file' not in dataset:
        raise ValueError(f'{spec.config}: train AP50 needs a single training dataset with an '
                         'ann_file (not a ConcatDataset)')
    options = [f'test_dataloader.dataset.ann_file={dataset.ann_file}']
    if 'data_root' in dataset:
        options.append(f'test_dataloader.dataset.data_root={dataset.data_root}')
    options += [f'test_dataloader.dataset.data_prefix.{key}={value}'
                for key, value in (dataset.get('data_prefix') or {}).items()]
    if evaluator_type(load_merged(spec.test_config, spec.cfg_options)) == 'CocoMetric':
        # CocoMetric reads the ground truth from its own ann_file
        options.append('test_evaluator.ann_file='
                       + osp.join(dataset.get('data_root') or '', dataset.ann_file))
    return options


def config_fingerprint(spec: RunSpec) -> str:
    """A short hash of the merged training and test configs of ``spec`` and of the content of
    every file an override names (e.g. a teacher's or ImageNet checkpoint retrained in place)."""
    configs = [load_merged(spec.config, [*spec.cfg_options, *spec.train_options]),
               load_merged(spec.test_config, spec.cfg_options)]
    files = {}
    for option in (*spec.cfg_options, *spec.train_options):
        value = option.partition('=')[2]
        if osp.isfile(value):
            with open(value, 'rb') as f:
                files[value] = hashlib.file_digest(f, 'sha256').hexdigest()
    text = json.dumps([[cfg.to_dict() for cfg in configs], files], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_json(data: dict, path: str) -> None:
    """Writes ``data`` to ``path`` atomically."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.part', 'w') as f:
        json.dump(data, f, indent=2)
    os.replace(path + '.part', path)


def spec_record(spec: RunSpec) -> dict:
    """``spec`` as stored in ``manifest.json`` and ``result.json``: its fields (tuples as lists)
    and ``config_fingerprint``."""
    record = {key: list(value) if isinstance(value, tuple) else value
              for key, value in spec._asdict().items()}
    record['config_fingerprint'] = config_fingerprint(spec)
    return record


@contextlib.contextmanager
def claim_run_dir(work_dir: str) -> Iterator[None]:
    """Holds ``<work_dir>/experiment.lock`` (:func:`netaug_det.utils.locks.exclusive_lock`,
    released when the holder ends, however it ends) for the duration of the block.

    Raises:
        RunDirBusy: when another process (or another claim in this one) holds it.
    """
    os.makedirs(work_dir, exist_ok=True)

    def busy(holder: str) -> RunDirBusy:
        return RunDirBusy(f'{work_dir} is being run by {holder}: one run dir, one run at a time; '
                          'wait for it to end (then run again to read its result), or give this '
                          'run another work dir')

    with exclusive_lock(osp.join(work_dir, LOCK_FILE), busy):
        yield


def _refuse_if_locked(work_dir: str, entries: Sequence[str]) -> None:
    """Raises :class:`RunDirBusy` when a ``*.lock`` file among ``entries`` is held (e.g. the
    lock of a training started by hand into ``work_dir``): its files are in use."""
    for entry in entries:
        holder = lock_holder(osp.join(work_dir, entry)) if entry.endswith('.lock') else None
        if holder is not None:
            raise RunDirBusy(f'{work_dir} is in use: {entry} is held ({holder}); wait for that '
                             'process to end or give this run another work dir')


def _owner(work_dir: str) -> Optional[dict]:
    """The spec record in ``manifest.json`` (None: none, or of another format)."""
    manifest = _read_json(osp.join(work_dir, MANIFEST_FILE))
    if manifest is None or manifest.get('format') != RUN_FORMAT:
        return None
    return manifest['spec']


def finished_result(spec: RunSpec, record: Optional[dict] = None) -> Optional[dict]:
    """The ``result.json`` of ``spec``'s work dir when it finished with this very spec (None
    when not finished, another spec's, or of an older format); ``record``: ``spec``'s
    :func:`spec_record`, when already computed."""
    record = record or spec_record(spec)
    result = _read_json(osp.join(spec.work_dir, RESULT_FILE))
    if (result is None or result.get('format') != RUN_FORMAT or result.get('spec') != record
            or _owner(spec.work_dir) != record):
        return None
    return result


def train_args(spec: RunSpec, resume: Optional[str] = None) -> List[str]:
    """The arguments of ``netaug_det.tools.train`` for ``spec``, resuming from the checkpoint
    ``resume`` when given."""
    return [spec.config, '--work-dir', spec.work_dir, *(['--resume', resume] if resume else []),
            '--cfg-options', f'randomness.seed={spec.seed}', *spec.cfg_options,
            *spec.train_options]


def resume_checkpoint(work_dir: str, record: dict) -> Optional[str]:
    """The checkpoint to resume a run of ``record`` from: the last one saved in ``work_dir``
    when the dir belongs to ``record`` (None otherwise, or when none was saved)."""
    if _owner(work_dir) != record:
        return None
    with contextlib.suppress(IncompleteRunError):
        return final_checkpoint(work_dir)
    return None


def _describe_owner(work_dir: str, record: dict) -> str:
    manifest = _read_json(osp.join(work_dir, MANIFEST_FILE))
    if manifest is None:
        return 'files without a manifest (a run made elsewhere or by an older netaug_det)'
    if manifest.get('format') != RUN_FORMAT:
        return 'a run of an older netaug_det (another manifest format)'
    old = manifest['spec']
    if old == record:
        return 'an attempt of this spec that saved no checkpoint (its logs)'
    changed = ', '.join(key for key in record if old.get(key) != record[key])
    return f'a run of other settings (differing in {changed})'


def start_fresh(work_dir: str, record: dict, prefix: str = '') -> None:
    """Makes ``work_dir`` hold nothing but the lock and a new ``manifest.json`` of ``record``:
    whatever else is there is moved to ``<work_dir>.replaced-<time>`` (never deleted)."""
    entries = sorted(set(os.listdir(work_dir)) - {LOCK_FILE})
    if entries == [MANIFEST_FILE] and _owner(work_dir) == record:
        entries = []  # an attempt of this spec that stopped before writing anything
    if entries:
        _refuse_if_locked(work_dir, entries)
        reason = _describe_owner(work_dir, record)
        stamp = time.strftime('%Y%m%d_%H%M%S')
        aside = f'{osp.normpath(work_dir)}.replaced-{stamp}'
        for suffix in range(1, 1000):
            if not osp.exists(aside):
                break
            aside = f'{osp.normpath(work_dir)}.replaced-{stamp}-{suffix}'
        os.makedirs(aside)
        for entry in entries:
            os.replace(osp.join(work_dir, entry), osp.join(aside, entry))
        print(f'{prefix}{work_dir} held {reason}; moved to {aside}, training from scratch',
              flush=True)
    _write_json(dict(format=RUN_FORMAT, spec=record, started=time.strftime('%Y-%m-%d %H:%M:%S'),
                     host=socket.gethostname(), pid=os.getpid()),
                osp.join(work_dir, MANIFEST_FILE))


def run_experiment(spec: RunSpec, prefix: str = '', env: Optional[Dict[str, str]] = None,
                   launcher: Sequence[str] = ()) -> dict:
    """Trains and evaluates one run (or returns its finished result); see the module docstring.
    ``launcher`` starts the training (e.g. torchrun on several GPUs; :func:`tool_command`).

    Returns:
        dict: ``format``, ``spec`` (with ``config_fingerprint``), ``trained`` (what the final
        checkpoint says: ``unit`` 'epoch' or 'iter', ``done`` of ``total`` trained, ``iter``,
        ``seed``, ``input_size``), ``train_time_s`` (wall clock of the training process),
        ``train_peak_mib`` (the peak resident memory of its largest process), ``resumed`` (the
        training continued an interrupted one: its time is the continuation's),
        ``checkpoint``, ``metric`` (the metric key), ``<split>_ap50`` (that metric in percent:
        AP50, or top-1 for a classifier) per split, and ``val_curve`` (its values at the
        validations during training, if any).

    Raises:
        RunDirBusy: when another process runs ``spec.work_dir``.
        IncompleteRunError: when the training ended (exit 0) before its schedule's end, with
            another seed, or beside a ``deploy.pth`` of another run.
        RuntimeError: when training or testing fails.
    """
    record = spec_record(spec)
    with claim_run_dir(spec.work_dir):
        cached = finished_result(spec, record)
        if cached is not None:
            print(f'{prefix}done before: {osp.join(spec.work_dir, RESULT_FILE)}', flush=True)
            return cached
        resume = resume_checkpoint(spec.work_dir, record)
        if resume is None:
            start_fresh(spec.work_dir, record, prefix)
        return _train_and_test(spec, record, resume, prefix, env, launcher)


def _train_and_test(spec: RunSpec, record: dict, resume: Optional[str], prefix: str,
                    env: Optional[Dict[str, str]], launcher: Sequence[str] = ()) -> dict:
    """Trains ``spec`` (from ``resume`` when given), checks the training finished with its seed,
    tests its deployable model and writes ``result.json``."""
    metric_key = METRIC_KEYS[evaluator_type(load_merged(spec.test_config, spec.cfg_options))]
    start = time.perf_counter()
    peak = run_tool('train', train_args(spec, resume), osp.join(spec.work_dir, 'train_stdout.log'),
                    prefix, env, launcher)
    train_time = time.perf_counter() - start
    state = trained_state(spec.work_dir)
    state.require_finished(spec.work_dir)
    if state.seed != spec.seed:
        raise IncompleteRunError(f'{state.checkpoint} was trained with seed {state.seed}, not '
                                 f'the run\'s {spec.seed}; train it again in a new work dir')
    result = dict(format=RUN_FORMAT, spec=record,
                  trained={key: value for key, value in state._asdict().items()
                           if key != 'checkpoint'},
                  train_time_s=round(train_time, 1), train_peak_mib=round(peak, 1),
                  resumed=resume is not None,
                  checkpoint=checkpoint_to_evaluate(spec.work_dir, state), metric=metric_key,
                  val_curve=validation_curve(spec.work_dir, metric_key))
    for split in spec.splits:
        metrics_file = osp.join(spec.work_dir, f'{split}_metrics.json')
        options = [*spec.cfg_options, *split_options(spec, split)]
        run_tool('test', [spec.test_config, result['checkpoint'], '--work-dir',
                          osp.join(spec.work_dir, f'test_{split}'), '--metrics-json', metrics_file,
                          *(['--cfg-options', *options] if options else [])],
                 osp.join(spec.work_dir, f'test_{split}.log'), prefix, env)
        result[f'{split}_ap50'] = round(percent(metric_key, _read_json(metrics_file)[metric_key]),
                                        2)
    _write_json(result, osp.join(spec.work_dir, RESULT_FILE))
    return result


def epoch_options(cfg: Config, epochs: int) -> List[str]:
    """``KEY=VALUE`` overrides that train ``cfg`` for ``epochs`` epochs with the same schedule
    shape: ``train_cfg.max_epochs`` (and a ``val_interval`` equal to it), and every epoch-based
    parameter scheduler that runs to the end of training (``end`` at or after the last epoch, as
    when ``max_epochs`` was shortened by an override) has its ``end``, ``milestones`` and
    ``T_max`` scaled by the same factor (rounded half up), so what happened within the trained
    epochs happens at the same fractions of the new ones. Epoch-based schedulers without an
    ``end`` run to the end of training anyway; one ending before the last epoch is refused, as
    its place in a longer schedule is a choice this function cannot make."""
    old = cfg.train_cfg.max_epochs
    scale = epochs / old

    def scaled(value: float) -> int:
        return max(1, math.floor(value * scale + 0.5))

    options = [f'train_cfg.max_epochs={epochs}']
    if cfg.train_cfg.get('val_interval') == old:
        options.append(f'train_cfg.val_interval={epochs}')
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers, keys = [schedulers], ['param_scheduler']
    else:
        keys = [f'param_scheduler.{index}' for index in range(len(schedulers))]
    for key, scheduler in zip(keys, schedulers):
        if not scheduler.get('by_epoch', True) or scheduler.get('end') is None:
            continue
        if scheduler['end'] < old:
            raise ValueError(f'{key} ends at epoch {scheduler["end"]}, before the end of '
                             f'training ({old}); set the schedule for {epochs} epochs yourself')
        options.append(f'{key}.end={scaled(scheduler["end"])}')
        if 'milestones' in scheduler:
            milestones = [scaled(m) for m in scheduler.milestones]
            options.append(f'{key}.milestones={milestones}'.replace(' ', ''))
        if 'T_max' in scheduler:
            options.append(f'{key}.T_max={scaled(scheduler.T_max)}')
    return options
