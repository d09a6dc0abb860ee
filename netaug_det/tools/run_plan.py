"""Run a whole planned pipeline: pretraining -> detection -> resolution sweeps, over seeds.

``python -m netaug_det.tools.run_plan PLAN [--dry-run | --collect] [--work-dir DIR]
[executor options: --executor local --jobs N | --executor slurm --partition P ...]``

``--dry-run`` prints every run of the plan (``configs/plans/*.py``) with its training command,
what it waits for and its estimated GPU-hours, then the run count and totals. Without it the
plan's demo datasets are generated, every run that has not finished with the same settings is
run (locally or on SLURM, parents first; rerunning after an interruption continues where it
stopped), and the report (Table 4's detection AP50 and Figure 5's AP50 vs MACs with the
iso-AP50 MAC reduction, beside the paper's figures, and the recorded cost) is printed and
written to ``WORK_DIR/plan_report.md``. ``--collect`` only reports the runs that finished.
Documentation: docs/scaling.md. A plan with ``type = 'transfer'`` (``configs/plans/
transfer_demo.py``) is the staged transfer experiment of docs/transfer.md instead
(:mod:`netaug_det.experiments.transfer`; its report: ``WORK_DIR/transfer_report.md``).
"""
import argparse
from typing import List, Optional

from mmengine.config import Config

from netaug_det.experiments.executors import add_executor_args


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run, resume or show a planned pipeline')
    parser.add_argument('plan', help='plan config, e.g. configs/plans/paper.py')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--dry-run', action='store_true',
                      help='print every run, its command, parents and GPU-hours; run nothing')
    mode.add_argument('--collect', action='store_true',
                      help='only report the runs that finished; run nothing')
    parser.add_argument('--work-dir', help="overrides the plan's work_dir")
    add_executor_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import os.path as osp

    from netaug_det.experiments.executors import Outcome, execute
    from netaug_det.experiments.plan import (dry_run_text, expand_plan, load_plan,
                                             prepare_datasets, report)
    from netaug_det.experiments.runs import finished_result
    from netaug_det.utils.cli import user_errors

    if Config.fromfile(args.plan).get('type') == 'transfer':
        run_transfer_plan(args)
        return
    plan = load_plan(args.plan)
    if args.work_dir:
        plan.work_dir = args.work_dir
    planned = expand_plan(plan)
    if args.dry_run:
        print(dry_run_text(planned))
        return
    if args.collect:
        outcomes = {item.run.name: Outcome(finished_result(item.run.spec)) for item in planned}
    else:
        with user_errors():
            prepare_datasets(plan)
        outcomes = execute([item.run for item in planned], args, plan.work_dir)
    text = report(plan, planned, outcomes)
    finish(outcomes, text, osp.join(plan.work_dir, 'plan_report.md'))


def finish(outcomes: dict, text: str, path: str) -> None:
    """Writes and prints the report; exits with an error when a run failed."""
    import os
    import os.path as osp
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    print(text)
    print(f'written: {path}')
    if any(outcome.error for outcome in outcomes.values()):
        raise SystemExit('some runs failed (listed above); fix them and run the same command '
                         'again: finished runs are not run again')


def run_transfer_plan(args: argparse.Namespace) -> None:
    """The transfer plan's stages (docs/transfer.md): ``--dry-run`` lists the first stage."""
    import os.path as osp

    from netaug_det.experiments.plan import prepare_datasets, train_command
    from netaug_det.experiments.transfer import (check_transfer_plan, run_transfer, stage_grid,
                                                 transfer_report)
    from netaug_det.utils.cli import user_errors
    plan = Config.fromfile(args.plan)
    check_transfer_plan(plan, args.plan)
    if args.work_dir:
        plan.work_dir = args.work_dir
    if args.dry_run:
        for run in stage_grid(plan):
            print(f'[{run.name}]\n    {train_command(run)}')
        print('then: the classifiers at their best learning rate, the longer baseline and the '
              'detection grid; then the detectors from every classifier (docs/transfer.md)')
        return
    if not args.collect:
        with user_errors():
            prepare_datasets(plan)
    stages = run_transfer(plan, args, collect=args.collect)
    finish(stages.outcomes, transfer_report(plan, stages),
           osp.join(plan.work_dir, 'transfer_report.md'))


if __name__ == '__main__':
    main()
