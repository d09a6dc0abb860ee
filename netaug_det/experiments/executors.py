"""Executors: where the runs of an experiment go, behind one option set for every tool.

``--executor local --jobs N`` runs N runs at once on this machine (submitit's
``LocalExecutor``), each with ``max(1, cores // N)`` compute threads (at most
``$OMP_NUM_THREADS`` when it is set) and, with ``--gpus-per-run G``, its own G GPUs;
``--executor slurm`` submits every run as one SLURM job (submitit's ``SlurmExecutor``) with
the partition, GPUs and nodes per run, time limit, account and extra ``#SBATCH`` options given.

Each run is one :class:`Run`: a :class:`~netaug_det.experiments.runs.RunSpec`, trained and tested
by :func:`~netaug_det.experiments.runs.run_experiment` (the project's train and test tools,
``result.json``, resume), and the names of the runs it waits for. A run whose ``result.json``
matches its spec is not submitted again. A run with several GPUs trains under torchrun (the
``dist_train.sh`` launch; several nodes: torchrun on every node through ``srun``, c10d
rendezvous). Dependencies: locally a run starts when its parents finished; on SLURM it is
submitted at once with ``--dependency=afterok:<parents>``. A failed run fails (and on SLURM
cancels) every run that waits for it, with a message naming the failed run's log. On SLURM,
a rerun takes over the still queued or running jobs of the same runs (``submitted.json`` in the
executor dir) instead of submitting them twice. Every run
that ran records ``accounting`` in its ``result.json``: wall time (training and tests), devices
(GPUs, or CPU threads), device-hours and the device's name.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from .launch import PACKAGE_PARENT, fork_from_this_process
from .runs import RESULT_FILE, RunSpec, _write_json, finished_result, run_experiment

EXECUTORS = ('local', 'slurm')
ACTIVE_STATES = ('PENDING', 'RUNNING', 'REQUEUED', 'COMPLETING', 'CONFIGURING', 'SUSPENDED')
# seconds between looks at the running jobs: a local look is a process poll and a file read
POLL_S = dict(local=0.25, slurm=2.0)


class Run(NamedTuple):
    """One unit of work: a named :class:`RunSpec` and the names of the runs it waits for.

    ``gpus`` and ``nodes`` (per run, None: the executor options) let a plan give pretraining
    runs more GPUs than detection runs.
    """

    name: str
    spec: RunSpec
    after: tuple = ()
    gpus: Optional[int] = None
    nodes: Optional[int] = None


class Outcome(NamedTuple):
    """What became of a run: its ``result`` (the ``result.json`` dict) or an ``error`` text,
    ``log`` (where to look), and whether it was ``cached`` (finished before)."""

    result: Optional[dict]
    error: Optional[str] = None
    log: Optional[str] = None
    cached: bool = False


class RunsFailed(RuntimeError):
    """Some runs failed; ``outcomes`` holds every run's :class:`Outcome` by name."""

    def __init__(self, outcomes: Dict[str, Outcome]) -> None:
        self.outcomes = outcomes
        failed = {name: o for name, o in outcomes.items() if o.error is not None}
        super().__init__(f'{len(failed)} of {len(outcomes)} run(s) failed:\n' + '\n'.join(
            f'- {name}: {o.error}' for name, o in failed.items()))


def add_executor_args(parser: argparse.ArgumentParser) -> None:
    """Adds the executor options (same for every experiment tool) to ``parser``."""
    group = parser.add_argument_group('executor (docs/scaling.md)')
    group.add_argument('--executor', choices=EXECUTORS, default='local',
                       help='local: runs on this machine; slurm: one SLURM job per run')
    group.add_argument('--jobs', type=int, default=1,
                       help='local: runs at once (each gets cores // jobs threads)')
    group.add_argument('--gpus-per-run', type=int, default=0,
                       help='GPUs per node of each run (several: torchrun); local: disjoint '
                       'GPUs per concurrent run')
    group.add_argument('--nodes-per-run', type=int, default=1, help='slurm: nodes of each run')
    group.add_argument('--cpus-per-run', type=int, help='slurm: CPUs per run (per node)')
    group.add_argument('--partition', help='slurm: partition')
    group.add_argument('--account', help='slurm: account')
    group.add_argument('--time-limit', type=int, default=24 * 60,
                       help='time limit of each run in minutes (default: one day)')
    group.add_argument('--sbatch-option', nargs='+', default=[], metavar='KEY=VALUE',
                       help='slurm: extra #SBATCH options, e.g. qos=high constraint=a100')
    group.add_argument('--executor-dir',
                       help="the executor's own logs and job files (default: WORK_DIR/jobs)")


def check_executor_args(args: argparse.Namespace) -> None:
    """Refuses executor options that cannot work, naming the option and the fix."""
    if args.jobs < 1:
        raise ValueError(f'--jobs must be at least 1, got {args.jobs}')
    if args.gpus_per_run < 0 or args.nodes_per_run < 1:
        raise ValueError('--gpus-per-run must be >= 0 and --nodes-per-run >= 1')
    if args.executor == 'local' and args.nodes_per_run > 1:
        raise ValueError('--nodes-per-run > 1 needs --executor slurm (local runs use one node)')
    if args.executor == 'slurm' and args.jobs != 1:
        raise ValueError('--jobs is for --executor local; SLURM runs every job its queue admits')
    for option in args.sbatch_option:
        if '=' not in option:
            raise ValueError(f'--sbatch-option {option!r}: expected KEY=VALUE, e.g. qos=high')


def local_threads(jobs: int) -> int:
    """Compute threads of each of ``jobs`` concurrent local runs: the cores split between them,
    capped by ``$OMP_NUM_THREADS`` when it is set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    threads = max(1, (cores or 1) // jobs)
    cap = os.environ.get('OMP_NUM_THREADS', '')
    return min(threads, int(cap)) if cap.isdigit() and int(cap) > 0 else threads


def torchrun_launcher(gpus: int, nodes: int, endpoint: str = '', job_id: str = '') -> List[str]:
    """The command that starts ``gpus`` training processes per node on ``nodes`` nodes (empty:
    one plain process). Several nodes: ``srun`` starts torchrun once per node of the SLURM job
    ``job_id``, and torchrun's c10d rendezvous at ``endpoint`` (first node:port) ranks them."""
    if gpus <= 1 and nodes <= 1:
        return []
    torchrun = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={max(gpus, 1)}']
    if nodes <= 1:
        return [*torchrun, '--standalone']
    return ['srun', '--overlap', f'--nodes={nodes}', '--ntasks-per-node=1', *torchrun,
            f'--nnodes={nodes}', '--rdzv_backend=c10d', f'--rdzv_endpoint={endpoint}',
            f'--rdzv_id={job_id}']


def device_name(gpus: int) -> str:
    """The device a run used: the first GPU's name, else 'cpu'."""
    if gpus <= 0:
        return 'cpu'
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'


def execute_run(run: Run, gpus: int, nodes: int, threads: int) -> Optional[dict]:
    """The job of one run (in the executor's process): :func:`run_experiment` under the
    launcher its GPUs need, then its accounting added to ``result.json``. On a several-node
    SLURM job only the first task runs it (the others return None). The tools' children are
    forked from this job process (:func:`~netaug_det.experiments.launch.fork_from_this_process`)."""
    fork_from_this_process()
    launcher = torchrun_launcher(gpus, nodes)
    if nodes > 1:
        from submitit import JobEnvironment
        environment = JobEnvironment()
        if environment.global_rank != 0:
            return None
        launcher = torchrun_launcher(gpus, nodes, f'{environment.hostnames[0]}:29500',
                                     str(environment.job_id))
    start = time.time()
    env = {'OMP_NUM_THREADS': str(threads)}
    result = run_experiment(run.spec, prefix=f'[{run.name}] ', env=env, launcher=launcher)
    wall = time.time() - start
    devices = gpus * nodes if gpus > 0 else threads
    result['accounting'] = dict(
        wall_time_s=round(wall, 1), device=device_name(gpus), devices=devices,
        device_kind='gpu' if gpus > 0 else 'cpu thread',
        device_hours=round(wall * devices / 3600, 4))
    _write_json(result, osp.join(run.spec.work_dir, RESULT_FILE))
    return result


def check_runs(runs: Sequence[Run]) -> None:
    """Refuses duplicate names or work dirs, unknown parents and cycles."""
    names = [run.name for run in runs]
    for key, values in (('name', names), ('work dir', [run.spec.work_dir for run in runs])):
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f'two runs share the {key} {repeated}: give each run its own')
    known = set(names)
    for run in runs:
        unknown = [parent for parent in run.after if parent not in known]
        if unknown:
            raise ValueError(f'run {run.name!r} waits for {unknown}, which are not in the list')
    by_name = {run.name: run for run in runs}
    done: set = set()

    def visit(name: str, path: tuple) -> None:
        if name in path:
            raise ValueError(f"runs wait for each other in a circle: {' -> '.join(path + (name,))}")
        if name not in done:
            for parent in by_name[name].after:
                visit(parent, path + (name, ))
            done.add(name)

    for name in names:
        visit(name, ())


class _Scheduler:
    """Submits runs to a submitit executor in dependency order and collects their outcomes."""

    def __init__(self, runs: Sequence[Run], args: argparse.Namespace, log_dir: str,
                 work: Callable) -> None:
        try:
            import submitit
        except ImportError as error:
            raise ImportError('the experiment tools run their runs through submitit: pip install '
                              'submitit (pinned in requirements/pinned.txt)') from error
        self.work = work
        self.runs = {run.name: run for run in runs}
        self.args = args
        self.log_dir = osp.abspath(log_dir)
        self.slurm = args.executor == 'slurm'
        self.threads = 1 if self.slurm else local_threads(args.jobs)
        self.folder = folder = osp.join(self.log_dir, '%j')
        self.submitted_path = osp.join(self.log_dir, 'submitted.json')
        self.submitted = {}  # SLURM: run name -> its job id and spec, for reattach()
        if osp.isfile(self.submitted_path):
            with open(self.submitted_path) as f:
                self.submitted = json.load(f)
        setup = [f'export PYTHONPATH={PACKAGE_PARENT}${{PYTHONPATH:+:$PYTHONPATH}}']
        if self.slurm:
            self.executor = submitit.SlurmExecutor(folder=folder)
            self.executor.update_parameters(setup=setup, time=args.time_limit,
                                            signal_delay_s=120)
        else:
            self.executor = submitit.LocalExecutor(folder=folder)
            self.executor.update_parameters(setup=setup, timeout_min=args.time_limit)
        self.jobs: Dict[str, object] = {}
        self.slots: Dict[str, int] = {}  # local: the GPU slot of each running job
        self.echoed: Dict[str, int] = {}  # how much of each job's stdout was echoed
        self.outcomes: Dict[str, Outcome] = {}

    def resources(self, run: Run) -> tuple:
        gpus = self.args.gpus_per_run if run.gpus is None else run.gpus
        nodes = self.args.nodes_per_run if run.nodes is None else run.nodes
        return gpus, nodes

    def submit(self, run: Run, slot: int) -> None:
        gpus, nodes = self.resources(run)
        if self.slurm:
            extra = dict(option.split('=', 1) for option in self.args.sbatch_option)
            parents = [self.jobs[name].job_id for name in run.after if name in self.jobs]
            if parents:
                extra['dependency'] = 'afterok:' + ':'.join(parents)
            self.executor.update_parameters(
                job_name=run.name, nodes=nodes, ntasks_per_node=1, gpus_per_node=gpus or None,
                cpus_per_task=self.args.cpus_per_run, partition=self.args.partition,
                account=self.args.account, additional_parameters=extra)
        else:
            self.executor.update_parameters(
                gpus_per_node=gpus, visible_gpus=tuple(range(slot * gpus, (slot + 1) * gpus)))
        job = self.executor.submit(self.work, run, gpus, nodes, self.threads)
        self.jobs[run.name] = job
        print(f'[{run.name}] submitted: job {job.job_id}, log {job.paths.stdout}', flush=True)
        if self.slurm:
            self.submitted[run.name] = dict(job_id=job.job_id, spec=list(run.spec))
            _write_json(self.submitted, self.submitted_path)

    def reattach(self) -> None:
        """SLURM: takes over the jobs an interrupted invocation submitted for these very runs
        that are still queued or running, instead of submitting them twice."""
        import submitit
        for name, entry in self.submitted.items():
            run = self.runs.get(name)
            if run is None or name in self.outcomes or entry['spec'] != json.loads(
                    json.dumps(list(run.spec))):
                continue
            job = submitit.SlurmJob(folder=self.folder, job_id=entry['job_id'])
            if job.watcher.get_state(entry['job_id'], mode='force') in ACTIVE_STATES:
                self.jobs[name] = job
                print(f'[{name}] still queued or running: job {job.job_id} (taken over)',
                      flush=True)

    def echo(self, name: str) -> None:
        """Prints the progress lines (``[name] ...``) a job wrote since the last call."""
        path = self.jobs[name].paths.stdout
        if not path.is_file():
            return
        with open(path, 'rb') as f:
            f.seek(self.echoed.get(name, 0))
            text = f.read()
        complete = text[:text.rfind(b'\n') + 1]
        self.echoed[name] = self.echoed.get(name, 0) + len(complete)
        for line in complete.decode(errors='replace').splitlines():
            if line.startswith('['):
                print(line, flush=True)

    def finish(self, name: str) -> None:
        job = self.jobs.pop(name)
        log = str(job.paths.stderr)
        error = job.exception()
        if error is None:
            result = job.result()
            self.outcomes[name] = Outcome(result, log=log)
            print(f'[{name}] done: {summary(result)}', flush=True)
        else:
            train_log = osp.join(self.runs[name].spec.work_dir, 'train_stdout.log')
            where = f'{train_log} and {log}' if osp.isfile(train_log) else log
            self.outcomes[name] = Outcome(None, f'failed (logs: {where}): {last_line(error)}',
                                          log=where)
            print(f'[{name}] FAILED; logs: {where}', flush=True)

    def fail_children(self) -> None:
        """Fails (and cancels, when submitted) every run waiting for a failed run."""
        changed = True
        while changed:
            changed = False
            for run in self.runs.values():
                if run.name in self.outcomes:
                    continue
                failed = [p for p in run.after if p in self.outcomes
                          and self.outcomes[p].error is not None]
                if failed:
                    parent = self.outcomes[failed[0]]
                    if run.name in self.jobs:
                        self.jobs.pop(run.name).cancel(check=False)
                    self.outcomes[run.name] = Outcome(
                        None, f'not run: it waits for {failed[0]!r}, which failed (its log: '
                        f'{parent.log})', log=parent.log)
                    print(f'[{run.name}] not run: {failed[0]} failed', flush=True)
                    changed = True

    def ready(self, run: Run) -> bool:
        if self.slurm:
            return all(p in self.jobs or p in self.outcomes for p in run.after)
        return all(p in self.outcomes for p in run.after) and len(self.jobs) < self.args.jobs

    def run(self) -> Dict[str, Outcome]:
        for run in self.runs.values():
            result = finished_result(run.spec)
            if result is not None:
                self.outcomes[run.name] = Outcome(result, cached=True)
                print(f'[{run.name}] done before: {run.spec.work_dir}', flush=True)
        if self.slurm:
            self.reattach()
        while len(self.outcomes) < len(self.runs):
            self.fail_children()
            for run in self.runs.values():
                if run.name not in self.outcomes and run.name not in self.jobs and self.ready(run):
                    free = set(range(self.args.jobs)) - set(self.slots.values())
                    self.slots[run.name] = min(free) if free else 0
                    self.submit(run, self.slots[run.name])
            for name in list(self.jobs):
                done = self.jobs[name].done()
                self.echo(name)
                if done:
                    self.slots.pop(name, None)
                    self.finish(name)
            if len(self.outcomes) < len(self.runs):
                time.sleep(POLL_S[self.args.executor])
        return {name: self.outcomes[name] for name in self.runs}


def last_line(error: BaseException) -> str:
    """The most telling line of a job's error: the run's own error message when it is there."""
    text = str(error)
    for marker in ('RuntimeError: ', 'ValueError: ', 'FileNotFoundError: '):
        if marker in text:
            return text.rsplit(marker, 1)[1].strip().splitlines()[0]
    return text.strip().splitlines()[-1] if text.strip() else type(error).__name__


def summary(result: dict) -> str:
    """One line about a finished run: its metrics and accounting."""
    metric = result.get('metric', 'AP50')
    metrics = ', '.join(f"{key.replace('_ap50', '')} {metric} {value}"
                        for key, value in result.items() if key.endswith('_ap50'))
    accounting = result.get('accounting') or {}
    cost = (f"{accounting['wall_time_s'] / 60:.1f} min, {accounting['device_hours']:.3f} "
            f"{accounting['device_kind']}-hours" if accounting else '')
    return '; '.join(filter(None, [metrics, cost]))


def execute(runs: Sequence[Run], args: argparse.Namespace, log_dir: str,
            work: Callable = execute_run) -> Dict[str, Outcome]:
    """Runs every run (finished ones are read back) with the executor ``args`` chose, parents
    before children, and returns every run's :class:`Outcome` by name (failures included).
    Job files go to ``--executor-dir``, default ``log_dir/jobs``; ``work(run, gpus, nodes,
    threads)`` is the job (:func:`execute_run`; tests replace it)."""
    check_executor_args(args)
    check_runs(runs)
    log_dir = args.executor_dir or osp.join(log_dir, 'jobs')
    return _Scheduler(runs, args, log_dir, work).run()


def run_many(runs: Sequence[Run], args: argparse.Namespace, log_dir: str) -> List[dict]:
    """:func:`execute`, then the results in the order of ``runs``.

    Raises:
        RunsFailed: when any run failed, after every run that could run has run.
    """
    outcomes = execute(runs, args, log_dir)
    if any(outcome.error is not None for outcome in outcomes.values()):
        raise RunsFailed(outcomes)
    return [outcomes[run.name].result for run in runs]


def default_executor_args(**overrides) -> argparse.Namespace:
    """The executor options' defaults (one local run at a time), with ``overrides``."""
    parser = argparse.ArgumentParser()
    add_executor_args(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        if not hasattr(args, key):
            raise ValueError(f'{key!r} is not an executor option')
        setattr(args, key, value)
    return args
