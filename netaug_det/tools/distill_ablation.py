"""The distillation ablation on the demo data: baseline, KD, NetAug, NetAug+KD, NetAug+self-RKD,
NetAug+KD+self-RKD, over seeds, in one command.

``python -m netaug_det.tools.distill_ablation [--seeds 0 1 2] [--work-dir work_dirs/distill]
[--methods ...] [--cfg-options KEY=VALUE ...]``

Trains the demo teacher (``configs/demo/yolov3_mbv2_teacher_demo.py``, seed 0) unless it is
there, then every method with every seed through ``python -m netaug_det.tools.train`` (progress
shown; finished runs are read back), each evaluated through its deployable checkpoint under
``configs/demo/yolov3_mbv2_demo.py`` on the val and train splits. Writes
``comparison.{md,json,png}`` (val and train AP50 mean ± sd, training time and peak memory, and
the teacher's own AP50 in the notes). Each method trains at the learning rate its config sets:
the baseline's for baseline and KD, NetAug's for the NetAug variants (both tuned by lr_grid).
"""
import argparse
from typing import List, Optional

from netaug_det.experiments.cli import UniqueValues
from netaug_det.experiments.executors import add_executor_args

METHODS = {
    'baseline': 'yolov3_mbv2_demo.py',
    'kd': 'yolov3_mbv2_kd_demo.py',
    'netaug': 'yolov3_mbv2_netaug_demo.py',
    'netaug_kd': 'yolov3_mbv2_netaug_kd_demo.py',
    'netaug_rkd': 'yolov3_mbv2_netaug_rkd_demo.py',
    'netaug_kd_rkd': 'yolov3_mbv2_netaug_kd_rkd_demo.py',
}
TEACHER = 'yolov3_mbv2_teacher_demo.py'
BASELINE = 'yolov3_mbv2_demo.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Distillation ablation on the demo data')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        action=UniqueValues)
    parser.add_argument('--work-dir', default='work_dirs/distill_ablation',
                        help='runs: WORK_DIR/<method>/s<seed>/ (the teacher in WORK_DIR/teacher)')
    parser.add_argument('--out-dir', help='where the report goes (default: WORK_DIR)')
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS),
                        action=UniqueValues)
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides for every run (teacher included), training and testing')
    add_executor_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import os
    import os.path as osp

    from netaug_det.datasets import demo_dataset_at
    from netaug_det.experiments.compare import Method, run_methods, write_comparison
    from netaug_det.experiments.executors import Run, run_many
    from netaug_det.experiments.runs import RunSpec, load_merged
    from netaug_det.utils.paths import project_path

    os.environ.setdefault('OMP_NUM_THREADS', '1')
    demo = 'configs/demo/'
    baseline = project_path(demo + BASELINE)
    demo_dataset_at(load_merged(baseline, args.cfg_options).data_root)
    teacher, = run_many([Run('teacher', RunSpec(
        project_path(demo + TEACHER), project_path(demo + TEACHER),
        osp.join(args.work_dir, 'teacher'), 0, tuple(args.cfg_options)))], args, args.work_dir)
    teacher_option = f"distiller.teacher.checkpoint={teacher['checkpoint']}"
    methods = [Method(name, project_path(demo + METHODS[name]),
                      (teacher_option, ) if 'kd' in name.split('_') else ())
               for name in args.methods]
    results = run_methods(methods, baseline, args.seeds, args.work_dir, args.cfg_options,
                          ('val', 'train'), executor=args)
    notes = (f"Seeds {args.seeds}; AP50 in %, mean ± sd (n), each model evaluated through its "
             f"deployable checkpoint in the baseline architecture. Teacher "
             f"({TEACHER}, seed 0): val AP50 {teacher['val_ap50']:.1f}.")
    paths = write_comparison(results, args.out_dir or args.work_dir,
                             'Distillation ablation, demo data', notes)
    with open(paths['md']) as f:
        print(f.read())
    print('written: ' + ', '.join(paths.values()))


if __name__ == '__main__':
    main()
