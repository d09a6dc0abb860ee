"""Starting the project's tools (``netaug_det.tools.<tool>``) as child processes of an experiment.

An experiment runs its train and test tools in child processes, so that each run starts from a
clean process (its own seeds, registries, loggers and memory peak). Importing torch, mmcv, mmdet
and netaug_det takes a child about 4-8 s, longer than a tiny test run itself, so by default the
children are forked from a process that has imported the tools and never ran torch on more than
one thread (a fork of a process whose OpenMP threads have run can hang): the executors' job
process, which declares itself so (:func:`fork_from_this_process`), else a *warm* server process
(:mod:`multiprocessing`'s ``forkserver``) that imported the tools once. Each child then runs
``main(args)`` of its tool with the environment and working directory a fresh ``python -m``
would have, its output in a pipe, and exits; the results are the same (tested bit for bit
against fresh processes).

``NETAUG_DET_TOOL_START=subprocess`` starts a fresh interpreter per tool instead (``python -m
netaug_det.tools.<tool>``), as a distributed ``launcher`` (torchrun) always does.
"""
import atexit
import contextlib
import importlib
import multiprocessing
import multiprocessing.forkserver
import os
import os.path as osp
import resource
import signal
import subprocess
import sys
from collections import deque
from multiprocessing.connection import Connection
from typing import Dict, Iterator, List, Optional, Sequence

from ..utils.paths import PACKAGE_DIR

PACKAGE_PARENT = osp.dirname(PACKAGE_DIR)  # what child processes put on PYTHONPATH
START_ENV = 'NETAUG_DET_TOOL_START'
START_METHODS = ('forkserver', 'subprocess')
# what a tool's main imports; the server imports it once, every child inherits it
PRELOAD = ('netaug_det.tools.train', 'netaug_det.tools.test', 'mmengine.runner',
           'mmdet.datasets', 'mmdet.engine', 'mmdet.evaluation', 'mmdet.models',
           'mmdet.visualization', 'netaug_det.models', 'netaug_det.engine')


_fork_safe = False  # see fork_from_this_process()


def fork_from_this_process() -> None:
    """Makes this process the one tool children are forked from, instead of a warm server: torch
    runs on one thread in it from now on, and it imports what the tools import. Call it before
    this process runs any tensor operation or touches CUDA (the executors' job processes call it
    first: each is a fresh process for one run, whose own work is reading files)."""
    import torch
    global _fork_safe
    torch.set_num_threads(1)
    for module in PRELOAD:
        importlib.import_module(module)
    _fork_safe = True


def tool_command(tool: str, args: Sequence[str], launcher: Sequence[str] = ()) -> List[str]:
    """The command line of ``python -m netaug_det.tools.<tool> args``; with a distributed
    ``launcher`` (e.g. torchrun's command, from :mod:`netaug_det.experiments.executors`) that
    launcher replaces ``python`` and the tool gets ``--launcher pytorch``."""
    if launcher:
        return [*launcher, '-m', f'netaug_det.tools.{tool}', *args, '--launcher', 'pytorch']
    return [sys.executable, '-m', f'netaug_det.tools.{tool}', *args]


def start_method() -> str:
    """How :func:`run_tool` starts a tool: ``$NETAUG_DET_TOOL_START``, 'forkserver' by default.

    Raises:
        ValueError: for another value.
    """
    method = os.environ.get(START_ENV, 'forkserver')
    if method not in START_METHODS:
        raise ValueError(f'{START_ENV}={method!r} is not one of {START_METHODS}; unset it or '
                         'pick one of them')
    return method


def run_tool(tool: str, args: Sequence[str], log_file: str, prefix: str = '',
             env: Optional[Dict[str, str]] = None, launcher: Sequence[str] = ()) -> float:
    """Runs ``netaug_det.tools.<tool>`` in a child process, logging everything to ``log_file``.

    Progress (mmengine's ``Epoch(...)``/``Iter(...)`` lines) is echoed, prefixed with
    ``prefix``; ``env`` adds environment variables; ``launcher``: see :func:`tool_command`
    (always a fresh process). The child imports this same netaug_det.

    Returns:
        float: the peak resident memory in MiB of the child's largest process (the child itself
        or one of the processes it waited for, e.g. a dataloader worker; not their sum).

    Raises:
        RuntimeError: when the tool fails; the message ends with the log's last lines.
    """
    env = dict(os.environ, **(env or {}))
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get('PYTHONPATH')]))
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    tail: deque = deque(maxlen=30)
    with open(log_file, 'w') as log:
        if launcher or start_method() == 'subprocess':
            command = tool_command(tool, args, launcher)
            exit_code, peak_kib = _run_subprocess(command, env, log, tail, prefix)
        else:
            command = ['netaug_det.tools.' + tool, *args]
            exit_code, peak_kib = _run_forked(tool, args, env, log, tail, prefix)
    if exit_code != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {exit_code}); full log: "
                           f"{log_file}; last lines:\n{''.join(tail)}")
    return peak_kib / 1024


def _echo(lines: Iterator[str], log, tail: deque, prefix: str) -> None:
    """Copies the child's output to ``log``, keeps its last lines, echoes its progress."""
    for line in lines:
        log.write(line)
        tail.append(line)
        if 'Epoch(' in line or 'Iter(' in line:
            print(prefix + line.split(' - INFO - ')[-1].rstrip(), flush=True)


def _run_subprocess(command: List[str], env: Dict[str, str], log, tail: deque,
                    prefix: str) -> tuple:
    """Runs ``command``; returns its exit code and the peak memory (KiB) from ``wait4``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    _echo(process.stdout, log, tail, prefix)
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss


def _run_forked(tool: str, args: Sequence[str], env: Dict[str, str], log, tail: deque,
                prefix: str) -> tuple:
    """Runs the tool in a forked child (see the module docstring); returns its exit code and
    peak memory (KiB; as reported by the child, 0 if it died before reporting)."""
    context = multiprocessing.get_context('fork') if _fork_safe else _warm_context(
        env['PYTHONPATH'])
    output_read, output_write = context.Pipe(duplex=False)
    report_read, report_write = context.Pipe(duplex=False)
    child = context.Process(target=_tool_child, name=f'netaug_det.tools.{tool}',
                            args=(tool, list(args), env, os.getcwd(), output_write,
                                  report_write))
    sys.stdout.flush()  # a forked child would write what this process has not written yet
    sys.stderr.flush()
    try:
        child.start()
        output_write.close()
        report_write.close()
        with os.fdopen(os.dup(output_read.fileno()), errors='replace') as output:
            _echo(output, log, tail, prefix)
        child.join()
        peak_kib = report_read.recv() if report_read.poll() else 0
    finally:
        if child.is_alive():  # the parent was interrupted
            child.terminate()
            child.join()
        output_read.close()
        report_read.close()
    return child.exitcode, peak_kib


def _warm_context(python_path: str) -> multiprocessing.context.BaseContext:
    """The ``forkserver`` context, its server started (once per process) with ``python_path``
    so that it imports this same netaug_det, preloading :data:`PRELOAD`."""
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(list(PRELOAD))
    with _environment(PYTHONPATH=python_path, OMP_NUM_THREADS='1'):
        multiprocessing.forkserver.ensure_running()
    return context


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """Sets environment variables for the block, then restores them."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _signal_handlers_as_after_exec() -> None:
    """Sets this process's signal handlers as ``exec`` of a fresh interpreter would: a signal
    caught by a Python handler is back to its default (SIGINT: ``KeyboardInterrupt``), an
    ignored one stays ignored. A job process of submitit catches SIGTERM to log and ignore it;
    a tool child keeping that handler outlives ``terminate()``, and a ``multiprocessing.Pool``
    it starts (mmdet's VOC metric does) waits forever for its workers to end."""
    for number in signal.valid_signals():
        if callable(signal.getsignal(number)):
            signal.signal(number,
                          signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)


def _tool_child(tool: str, args: List[str], env: Dict[str, str], cwd: str, output: Connection,
                report: Connection) -> None:
    """A forked child: the environment, working directory, signal handlers and output of a fresh
    ``python -m netaug_det.tools.<tool> args`` started by the parent now, then the tool's
    ``main(args)``; its peak memory is sent to ``report`` however it ends."""
    _signal_handlers_as_after_exec()
    os.chdir(cwd)
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    output.close()
    os.environ.clear()
    os.environ.update(env)
    import torch
    threads = env.get('OMP_NUM_THREADS')
    torch.set_num_threads(int(threads) if threads else len(os.sched_getaffinity(0)))
    sys.argv = [f'netaug_det.tools.{tool}', *args]
    try:
        importlib.import_module(f'netaug_det.tools.{tool}').main(args)
    finally:
        atexit._run_exitfuncs()  # what a fresh interpreter runs at its exit
        sys.stdout.flush()
        sys.stderr.flush()
        report.send(max(resource.getrusage(who).ru_maxrss
                        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
        report.close()
