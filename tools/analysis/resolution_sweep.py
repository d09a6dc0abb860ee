"""AP50 vs MACs of a baseline and a NetAug config over square input resolutions.

Launch mode (default) trains each config at each resolution with ``tools/train.py`` and tests
its deployable model with ``tools/test.py`` (NetAug's ``deploy.pth`` under the baseline config)::

    python tools/analysis/resolution_sweep.py configs/yolov3_mbv2_voc.py \\
        configs/yolov3_mbv2_netaug_voc.py --work-dir work_dirs/sweep_voc

``--collect`` only reads runs made elsewhere, e.g. on a cluster with
``tools/dist_train.sh CONFIG 8 --work-dir WORK_DIR/<baseline|netaug>/r<R> --cfg-options
input_size=R`` (layout and metric keys: ``netaug_det/utils/sweep.py``). Both modes write
``resolution_sweep.{csv,md,png}`` (table, iso-AP50 MAC reduction, plot) and print the table.
"""
import argparse
import os.path as osp

from mmengine.config import Config

from netaug_det.utils.complexity import build_detector, get_detector_complexity
from netaug_det.utils.sweep import (DEFAULT_RESOLUTIONS, METHODS, METRIC_KEYS, collect_points,
                                    evaluator_type, launch_run, parse_cfg_options, run_dir,
                                    write_sweep_outputs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Resolution sweep: AP50 vs MACs, baseline vs NetAug')
    parser.add_argument('baseline', help='baseline config (also tests the NetAug deploy.pth)')
    parser.add_argument('netaug', help='NetAug config')
    parser.add_argument(
        '--resolutions',
        type=int,
        nargs='+',
        help='square input sizes (multiples of 32); default: the paper grid, '
        '256..416 for VOC and 288..448 for COCO, step 32')
    parser.add_argument('--work-dir', default='work_dirs/resolution_sweep',
                        help='root of the runs: WORK_DIR/<baseline|netaug>/r<resolution>')
    parser.add_argument('--out-dir', help='where the outputs go; default: WORK_DIR')
    parser.add_argument(
        '--collect', action='store_true', help='only read existing runs, launch nothing')
    parser.add_argument('--metric-key', help='AP50 metric name; default from the evaluator')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides for both configs, passed on to tools/train.py and tools/test.py '
        '(and applied to the model whose MACs are counted)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.baseline)
    cfg.merge_from_dict(parse_cfg_options(args.cfg_options))
    metric = evaluator_type(cfg)
    resolutions = args.resolutions or DEFAULT_RESOLUTIONS[metric]
    if not args.collect:
        for method, config in zip(METHODS, (args.baseline, args.netaug)):
            for resolution in resolutions:
                launch_run(config, args.baseline, run_dir(args.work_dir, method, resolution),
                           resolution, args.cfg_options)
    model = build_detector(cfg)
    macs = {r: get_detector_complexity(model, r)['macs'] / 1e6 for r in resolutions}
    points = collect_points(args.work_dir, resolutions, macs,
                            args.metric_key or METRIC_KEYS[metric])
    paths = write_sweep_outputs(points, args.out_dir or args.work_dir,
                                title=f'{osp.basename(args.baseline)}: AP50 vs MACs')
    with open(paths['md']) as f:
        print(f.read())
    print('written: ' + ', '.join(paths.values()))


if __name__ == '__main__':
    main()
