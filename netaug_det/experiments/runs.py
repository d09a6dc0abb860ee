"""Running experiments: one training + evaluation per (configuration, seed), cached on disk.

Every comparison the project reports (the demo, the learning-rate grid, the resolution sweep,
ablations) is a set of runs. :func:`run_experiment` trains one config with one seed through
``python -m netaug_det.tools.train``, evaluates the deployable checkpoint (NetAug's
``deploy.pth``, else the final checkpoint) under a test config with
``python -m netaug_det.tools.test`` on the requested splits, and writes ``result.json`` into the
run's work dir. A run whose ``result.json`` matches its spec (the arguments and a fingerprint of
both merged configs, so an edited config runs again) is not run again, and a training
interrupted with the same spec resumes from its last checkpoint: a long experiment stopped
anywhere continues where it stopped. Code changes are not fingerprinted: after changing the
code, use a new work dir.
"""
import glob
import hashlib
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from collections import deque
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config, DictAction

PACKAGE_PARENT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METRIC_KEYS = {'VOCMetric': 'pascal_voc/AP50', 'CocoMetric': 'coco/bbox_mAP_50',
               'TopKAccuracy': 'accuracy/top1'}
# metrics already in percent (the others are fractions)
PERCENT_METRICS = ('accuracy/top1', )
RESULT_FILE = 'result.json'


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


def tool_command(tool: str, args: Sequence[str], launcher: Sequence[str] = ()) -> List[str]:
    """The command line of ``python -m netaug_det.tools.<tool> args``; with a distributed
    ``launcher`` (e.g. torchrun's command, from :mod:`netaug_det.experiments.executors`) that
    launcher replaces ``python`` and the tool gets ``--launcher pytorch``."""
    if launcher:
        return [*launcher, '-m', f'netaug_det.tools.{tool}', *args, '--launcher', 'pytorch']
    return [sys.executable, '-m', f'netaug_det.tools.{tool}', *args]


def run_tool(tool: str, args: Sequence[str], log_file: str, prefix: str = '',
             env: Optional[Dict[str, str]] = None, launcher: Sequence[str] = ()) -> float:
    """Runs ``netaug_det.tools.<tool>`` in a child process, logging everything to ``log_file``.

    Progress (mmengine's ``Epoch(...)``/``Iter(...)`` lines) is echoed, prefixed with
    ``prefix``; ``env`` adds environment variables; ``launcher``: see :func:`tool_command`.
    The child imports this same netaug_det.

    Returns:
        float: the peak resident memory in MiB of the child's largest process (the child itself
        or one of the processes it waited for, e.g. a dataloader worker; not their sum).

    Raises:
        RuntimeError: when the tool fails; the message ends with the log's last lines.
    """
    env = dict(os.environ, **(env or {}))
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get('PYTHONPATH')]))
    command = tool_command(tool, args, launcher)
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    tail: deque = deque(maxlen=30)
    with open(log_file, 'w') as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, env=env)
        for line in process.stdout:
            log.write(line)
            tail.append(line)
            if 'Epoch(' in line or 'Iter(' in line:
                print(prefix + line.split(' - INFO - ')[-1].rstrip(), flush=True)
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {process.returncode}); full log: "
                           f"{log_file}; last lines:\n{''.join(tail)}")
    return usage.ru_maxrss / 1024


def checkpoint_to_evaluate(work_dir: str) -> str:
    """The checkpoint to evaluate: NetAug's ``deploy.pth`` if present, else the final one."""
    deploy = osp.join(work_dir, 'deploy.pth')
    if osp.isfile(deploy):
        return deploy
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise FileNotFoundError(f'{work_dir} has neither deploy.pth nor last_checkpoint; '
                                'train it first (tools/train.py CONFIG --work-dir ...)')
    with open(last) as f:
        return f.read().strip()


def read_ap50(work_dir: str, metric_key: str) -> float:
    """AP50 (percent) of a run: its val AP50 in ``result.json`` (:func:`run_experiment`), else
    its newest ``tools/test.py`` metrics, else its last validation during training.

    Raises:
        FileNotFoundError: when ``work_dir`` holds none of them.
    """
    result_path = osp.join(work_dir, RESULT_FILE)
    if osp.isfile(result_path):
        with open(result_path) as f:
            return json.load(f)['val_ap50']
    tests = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), reverse=True)
    for path in tests:
        if osp.basename(path) == osp.basename(osp.dirname(path)) + '.json':
            with open(path) as f:
                metrics = json.load(f)
            if metric_key in metrics:
                return percent(metric_key, metrics[metric_key])
    curve = validation_curve(work_dir, metric_key)
    if curve:
        return curve[-1]
    raise FileNotFoundError(
        f'no {metric_key!r} in {work_dir}: expected {RESULT_FILE}, <timestamp>/<timestamp>.json '
        'from tools/test.py or <timestamp>/vis_data/scalars.json from a training run with '
        'validation (see netaug_det/experiments/sweep.py for the layout); train and test it, or use '
        'launch mode')


def validation_curve(work_dir: str, metric_key: str) -> List[float]:
    """AP50 (percent) of every validation during the newest training run in ``work_dir``."""
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in reversed(scalars):
        with open(path) as f:
            records = [json.loads(line) for line in f if metric_key in line]
        if records:
            return [percent(metric_key, record[metric_key]) for record in records]
    return []


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


def _split_options(spec: RunSpec, split: str) -> List[str]:
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
    """A short hash of the merged training and test configs of ``spec``."""
    configs = [load_merged(spec.config, [*spec.cfg_options, *spec.train_options]),
               load_merged(spec.test_config, spec.cfg_options)]
    text = json.dumps([cfg.to_dict() for cfg in configs], sort_keys=True, default=str)
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
    """``spec`` as ``result.json`` records it: its fields and ``config_fingerprint``."""
    record = {key: list(value) if isinstance(value, tuple) else value
              for key, value in spec._asdict().items()}
    record['config_fingerprint'] = config_fingerprint(spec)
    return record


def finished_result(spec: RunSpec) -> Optional[dict]:
    """The ``result.json`` of ``spec``'s work dir when it finished with this very spec, else
    None."""
    cached = _read_json(osp.join(spec.work_dir, RESULT_FILE))
    return cached if cached is not None and cached.get('spec') == spec_record(spec) else None


def train_args(spec: RunSpec, resume: bool) -> List[str]:
    """The arguments of ``netaug_det.tools.train`` for ``spec``."""
    return [spec.config, '--work-dir', spec.work_dir, *(['--resume'] if resume else []),
            '--cfg-options', f'randomness.seed={spec.seed}', *spec.cfg_options,
            *spec.train_options]


def run_experiment(spec: RunSpec, prefix: str = '', env: Optional[Dict[str, str]] = None,
                   launcher: Sequence[str] = ()) -> dict:
    """Trains and evaluates one run (or returns its cached result); see the module docstring.
    ``launcher`` starts the training (e.g. torchrun on several GPUs; :func:`tool_command`).

    Returns:
        dict: ``spec`` (with ``config_fingerprint``), ``train_time_s`` (wall clock of the
        training process), ``train_peak_mib`` (the peak resident memory of its largest process),
        ``resumed`` (the training continued an interrupted one: its time is the continuation's),
        ``checkpoint``, ``metric`` (the metric key), ``<split>_ap50`` (that metric in percent:
        AP50, or top-1 for a classifier) per split, and ``val_curve`` (its values at the
        validations during training, if any).
    """
    result_path = osp.join(spec.work_dir, RESULT_FILE)
    spec_dict = spec_record(spec)
    cached = finished_result(spec)
    if cached is not None:
        print(f'{prefix}done before: {result_path}', flush=True)
        return cached
    metric_key = METRIC_KEYS[evaluator_type(load_merged(spec.test_config, spec.cfg_options))]
    started_path = osp.join(spec.work_dir, 'run_spec.json')
    resume = (_read_json(started_path) == spec_dict
              and osp.isfile(osp.join(spec.work_dir, 'last_checkpoint')))
    _write_json(spec_dict, started_path)
    start = time.perf_counter()
    peak = run_tool('train', train_args(spec, resume), osp.join(spec.work_dir, 'train_stdout.log'),
                    prefix, env, launcher)
    result = dict(spec=spec_dict, train_time_s=round(time.perf_counter() - start, 1),
                  train_peak_mib=round(peak, 1), resumed=resume,
                  checkpoint=checkpoint_to_evaluate(spec.work_dir), metric=metric_key,
                  val_curve=validation_curve(spec.work_dir, metric_key))
    for split in spec.splits:
        metrics_file = osp.join(spec.work_dir, f'{split}_metrics.json')
        options = [*spec.cfg_options, *_split_options(spec, split)]
        run_tool('test', [spec.test_config, result['checkpoint'], '--work-dir',
                          osp.join(spec.work_dir, f'test_{split}'), '--metrics-json', metrics_file,
                          *(['--cfg-options', *options] if options else [])],
                 osp.join(spec.work_dir, f'test_{split}.log'), prefix, env)
        value = _read_json(metrics_file)[metric_key]
        result[f'{split}_ap50'] = round(percent(metric_key, value), 2)
    _write_json(result, result_path)
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
