"""Stand-in SLURM commands for the tests (tests/test_executors.py): ``sbatch``, ``sacct``,
``squeue``, ``scancel`` and ``srun`` that run the submitted scripts on this machine, one
background process per job, with ``afterok`` dependencies. State lives in ``$FAKE_SLURM_DIR``
(one JSON file per job). Only what submitit and netaug_det use is implemented."""
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time

STATE_DIR = os.environ.get('FAKE_SLURM_DIR', '')
FINISHED = ('COMPLETED', 'FAILED', 'CANCELLED')


def job_file(job_id: str) -> str:
    return os.path.join(STATE_DIR, f'{job_id}.json')


def read_job(job_id: str) -> dict:
    with open(job_file(job_id)) as f:
        return json.load(f)


def update_job(job_id: str, **changes) -> dict:
    with open(os.path.join(STATE_DIR, 'lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        job = read_job(job_id)
        if job['state'] == 'CANCELLED' and changes.get('state') not in (None, 'CANCELLED'):
            return job
        job.update(changes)
        with open(job_file(job_id) + '.part', 'w') as f:
            json.dump(job, f)
        os.replace(job_file(job_id) + '.part', job_file(job_id))
    return job


def new_job_id() -> str:
    # ids unique across test runs: submitit caches states by job id in a class-level watcher
    with open(os.path.join(STATE_DIR, 'lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = os.path.join(STATE_DIR, 'counter')
        if os.path.isfile(counter):
            with open(counter) as f:
                last = int(f.read())
        else:
            last = time.time_ns() // 10**6 % 10**9
        with open(counter, 'w') as f:
            f.write(str(last + 1))
    return str(last + 1)


def sbatch(args: list) -> None:
    script = args[-1]
    with open(script) as f:
        text = f.read()
    options = dict(re.findall(r'^#SBATCH --([\w-]+)(?:=(.*))?$', text, re.M))
    dependency = options.get('dependency', '')
    parents = dependency.split(':')[1:] if dependency.startswith('afterok:') else []
    job_id = new_job_id()
    job = dict(id=job_id, name=options.get('job-name', ''), state='PENDING', parents=parents,
               script=os.path.abspath(script), output=options.get('output', '/dev/null'),
               options=options, pid=None)
    with open(job_file(job_id), 'w') as f:
        json.dump(job, f)
    subprocess.Popen([sys.executable, __file__, '_run', job_id], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, env=dict(os.environ))
    print(f'Submitted batch job {job_id}')


def run_job(job_id: str) -> None:
    """The background process of one job: waits for its parents, then runs its script."""
    job = read_job(job_id)
    while True:
        job = read_job(job_id)
        if job['state'] == 'CANCELLED':
            return
        states = [read_job(parent)['state'] for parent in job['parents']]
        if any(state in ('FAILED', 'CANCELLED') for state in states):
            return  # SLURM leaves it pending (DependencyNeverSatisfied) until cancelled
        if all(state == 'COMPLETED' for state in states):
            break
        time.sleep(0.2)
    env = dict(os.environ, SLURM_JOB_ID=job_id, SLURM_JOBID=job_id, SLURM_NTASKS='1',
               SLURM_JOB_NUM_NODES='1', SLURM_NODEID='0', SLURM_PROCID='0', SLURM_LOCALID='0',
               SLURM_JOB_NODELIST='localhost', SLURM_JOB_NAME=job['name'],
               SLURM_SUBMIT_DIR=os.getcwd())
    output = job['output'].replace('%j', job_id)
    os.makedirs(os.path.dirname(output) or '.', exist_ok=True)
    with open(output, 'a') as log:
        process = subprocess.Popen(['bash', job['script']], stdout=log, stderr=log, env=env)
        update_job(job_id, state='RUNNING', pid=process.pid)
        code = process.wait()
    update_job(job_id, state='COMPLETED' if code == 0 else 'FAILED', exit_code=code)


def all_jobs() -> list:
    return [read_job(name[:-5]) for name in sorted(os.listdir(STATE_DIR))
            if name.endswith('.json')]


def sacct(args: list) -> None:
    wanted = [args[i + 1] for i, arg in enumerate(args) if arg == '-j']
    print('JobID|State|NodeList')
    for job in all_jobs():
        if not wanted or job['id'] in wanted:
            print(f"{job['id']}|{job['state']}|localhost")


def squeue(args: list) -> None:
    print('JOBID|NAME|STATE')
    for job in all_jobs():
        if job['state'] not in FINISHED:
            print(f"{job['id']}|{job['name']}|{job['state']}")


def scancel(args: list) -> None:
    job_id = args[0]
    job = read_job(job_id)
    if job['state'] in FINISHED:
        return
    update_job(job_id, state='CANCELLED')
    if job.get('pid'):
        try:
            os.kill(job['pid'], signal.SIGTERM)
        except ProcessLookupError:
            pass


def srun(args: list) -> None:
    """Runs the command after srun's options once (one task), with --output/--error."""
    streams, index = {}, 0
    while index < len(args) and args[index].startswith('-'):
        option = args[index]
        if option in ('--output', '--error', '-o', '-e'):
            streams[option.lstrip('-')[0]] = args[index + 1]
            index += 2
        else:
            index += 1
    job_id = os.environ.get('SLURM_JOB_ID', '0')
    files = {key: open(path.replace('%j', job_id).replace('%t', '0'), 'a')
             for key, path in streams.items()}
    code = subprocess.call(args[index:], stdout=files.get('o'), stderr=files.get('e'))
    sys.exit(code)


if __name__ == '__main__':
    if not STATE_DIR:
        sys.exit('set FAKE_SLURM_DIR to the folder of the fake SLURM state')
    os.makedirs(STATE_DIR, exist_ok=True)
    command, rest = sys.argv[1], sys.argv[2:]
    if command == '_run':
        run_job(rest[0])
    else:
        dict(sbatch=sbatch, sacct=sacct, squeue=squeue, scancel=scancel, srun=srun)[command](rest)
