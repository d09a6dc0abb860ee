"""The experiment tools' children: forked from a warm server by default, from an executor's job
process, or fresh interpreters; all train the same model bit for bit, and a failure names its log
and exit status."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

from conftest import DEMO_BASELINE
from netaug_det.experiments.launch import (START_ENV, _signal_handlers_as_after_exec, run_tool,
                                           start_method)

# an executor's job process (executors.execute_run): a SIGTERM handler that ignores the signal, as
# submitit's, then fork_from_this_process(); prints run_tool's peak memory
JOB_PROCESS = """
import json, signal, sys
signal.signal(signal.SIGTERM, lambda *_: None)
from netaug_det.experiments.launch import fork_from_this_process, run_tool
fork_from_this_process()
args = json.loads(sys.argv[1])
print(run_tool('train', args, 'job/train.log', prefix='[job] ', env={'OMP_NUM_THREADS': '1'}))
"""


def train_args(data_root: str, work_dir: str) -> list:
    """The demo baseline for 2 iterations of 2 tiny images, no validation."""
    loaders = [f'{loader}.{key}' for loader in ('train_dataloader', 'test_dataloader')
               for key in (f'dataset.data_root={data_root}', 'batch_size=2', 'num_workers=0',
                           'persistent_workers=False')]
    return [DEMO_BASELINE, '--work-dir', work_dir, '--cfg-options', f'data_root={data_root}',
            'input_size=64', 'train_cfg.max_epochs=1', 'val_cfg=None', 'val_dataloader=None',
            'val_evaluator=None', *loaders]


@pytest.mark.slow
def test_forked_and_fresh_children_train_bit_identical_models(demo_data, tmp_path, monkeypatch,
                                                              capsys):
    run_tool('train', ['--help'], str(tmp_path / 'help.log'))  # the server runs (any cwd)
    monkeypatch.chdir(tmp_path)  # a child works where its parent is now, as a fresh one does
    peaks, states = {}, {}
    for method in ('forkserver', 'subprocess', 'job'):
        if method == 'job':
            job = subprocess.run(
                [sys.executable, '-c', JOB_PROCESS, json.dumps(train_args(demo_data, method))],
                capture_output=True, text=True, timeout=300,
                env={**{key: value for key, value in os.environ.items() if key != START_ENV},
                     'PYTHONPATH': os.pathsep.join(sys.path)})
            assert job.returncode == 0, job.stderr
            print(job.stdout)
            peaks[method] = float(job.stdout.splitlines()[-1])
        else:
            monkeypatch.setenv(START_ENV, method)
            peaks[method] = run_tool('train', train_args(demo_data, method),
                                     osp.join(method, 'train.log'), prefix=f'[{method}] ',
                                     env={'OMP_NUM_THREADS': '1'})
        states[method] = torch.load(tmp_path / method / 'epoch_1.pth', map_location='cpu',
                                    weights_only=False)['state_dict']
        with open(tmp_path / method / 'train.log') as log:
            assert 'Saving checkpoint at 1 epochs' in log.read()
    for method in ('subprocess', 'job'):
        assert states[method].keys() == states['forkserver'].keys()
        assert all(torch.equal(states['forkserver'][key], states[method][key])
                   for key in states['forkserver'])
    assert all(peak > 100 for peak in peaks.values())  # MiB: torch alone takes more
    printed = capsys.readouterr().out  # progress echoed with the prefix
    for method in ('forkserver', 'subprocess', 'job'):
        assert f'[{method}] Epoch(train) [1][2/2]' in printed


def test_a_forked_child_gets_the_signal_handlers_of_a_fresh_interpreter():
    saved = {number: signal.getsignal(number)
             for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGTERM, lambda *_: None)  # submitit's job process: log and ignore
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # e.g. under nohup: stays ignored after exec
        _signal_handlers_as_after_exec()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


@pytest.mark.slow
@pytest.mark.parametrize('method', ['forkserver', 'subprocess'])
def test_a_failing_tool_names_its_log_and_exit_status(tmp_path, monkeypatch, method):
    monkeypatch.setenv(START_ENV, method)
    log_file = str(tmp_path / 'train.log')
    with pytest.raises(RuntimeError) as error:
        run_tool('train', [str(tmp_path / 'missing.py')], log_file)
    message = str(error.value)
    assert 'failed (exit 2)' in message and log_file in message
    assert 'missing.py' in message.splitlines()[-1]  # the tool's own error, from the log's tail


def test_an_unknown_start_method_is_refused(monkeypatch):
    monkeypatch.setenv(START_ENV, 'thread')
    with pytest.raises(ValueError, match=f"{START_ENV}='thread' is not one of"):
        start_method()
    monkeypatch.delenv(START_ENV)
    assert start_method() == 'forkserver'
