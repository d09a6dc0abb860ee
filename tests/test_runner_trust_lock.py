"""Two trainings into one work dir: the second is refused, naming the first; a killed run leaves
no stale lock."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from mmengine.config import Config
from mmengine.registry import RUNNERS

from netaug_det.engine.work_dir_lock import LOCK_NAME, work_dir_lock
from netaug_det.utils.cli import RunRefusedError

DEMO = 'configs/demo/yolov3_mbv2_demo.py'


@pytest.mark.slow
def test_second_training_into_a_work_dir_is_refused_naming_the_first(tmp_path):
    cfg = Config.fromfile(DEMO)
    cfg.work_dir = str(tmp_path)
    runner = RUNNERS.build(cfg)
    with work_dir_lock(str(tmp_path)):
        with pytest.raises(RunRefusedError) as refusal:
            runner.train()  # refused before the (missing) data is read
    message = str(refusal.value)
    for part in (f'pid {os.getpid()}', socket.gethostname(), str(tmp_path), '--work-dir'):
        assert part in message
    with work_dir_lock(str(tmp_path)):  # the refused run holds nothing
        pass


@pytest.mark.slow
def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from netaug_det.engine.work_dir_lock import work_dir_lock\n'
         'with work_dir_lock(sys.argv[1]):\n    print("locked", flush=True)\n    time.sleep(600)',
         str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(RunRefusedError, match=f'pid {holder.pid} '):
            with work_dir_lock(str(tmp_path)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert os.path.isfile(tmp_path / LOCK_NAME)
    deadline = time.time() + 10
    with work_dir_lock(str(tmp_path)):
        assert time.time() < deadline
