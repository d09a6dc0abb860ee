"""The demo: baseline vs NetAug YOLOv3-MobileNetV2-w0.35 on the demo data, on CPU.

``python tools/run_demo.py`` generates ``data/demo/`` when it is missing, trains
``configs/demo/yolov3_mbv2_demo.py`` and ``configs/demo/yolov3_mbv2_netaug_demo.py`` with
``tools/train.py``, tests each deployable model (the baseline's final checkpoint, NetAug's
``deploy.pth`` loaded into the baseline architecture) on the val and train splits with
``tools/test.py``, and prints a side-by-side table. Runs, logs and the table
(``results.md``, ``results.json``) land in ``work_dirs/demo/``. Seeds are fixed: a second run
gives the same AP50s (training times are wall-clock and vary).
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Sequence

from mmengine.config import Config
from mmengine.runner import load_checkpoint

from netaug_det.datasets import ensure_demo_dataset
from netaug_det.utils.complexity import build_detector, get_detector_complexity
from netaug_det.utils.sweep import (REPO_ROOT, checkpoint_to_evaluate, parse_cfg_options,
                                    run_tool)

CONFIGS = {
    'baseline': 'configs/demo/yolov3_mbv2_demo.py',
    'netaug': 'configs/demo/yolov3_mbv2_netaug_demo.py',
}
METRIC_KEY = 'pascal_voc/AP50'
# One compute thread per child (plus one dataloader worker): on a 2-core CPU, OpenMP's second
# thread contends with the worker and makes small convolutions and BatchNorms several times slower.
CHILD_ENV = dict(OMP_NUM_THREADS='1')
COLUMNS = ('model', 'val AP50', 'train AP50', 'params (M)', 'MACs (M)', 'train time')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train and compare baseline and NetAug on the '
                                     'demo data (CPU)')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs, logs and the table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides for both configs, passed to tools/train.py and tools/test.py '
        '(e.g. train_cfg.max_epochs=2 for a quick look)')
    return parser.parse_args()


def with_options(options: Sequence[str]) -> List[str]:
    """``--cfg-options`` followed by ``options``, or nothing when there are none."""
    return ['--cfg-options', *options] if options else []


def evaluate(checkpoint: str, work_dir: str, split_options: Dict[str, List[str]],
             options: Sequence[str]) -> Dict[str, float]:
    """AP50 (percent) of ``checkpoint`` under the baseline config on each split."""
    results = {}
    for split, extra in split_options.items():
        metrics_file = osp.join(work_dir, f'{split}_metrics.json')
        run_tool('test', [
            CONFIGS['baseline'], checkpoint, '--work-dir', osp.join(work_dir, f'test_{split}'),
            '--metrics-json', metrics_file, *with_options([*extra, *options])
        ], osp.join(work_dir, f'test_{split}.log'), f'  [{split}] ', CHILD_ENV)
        with open(metrics_file) as f:
            results[split] = round(100 * json.load(f)[METRIC_KEY], 1)  # VOCMetric rounds to 0.1%
    return results


def markdown_table(rows: List[dict]) -> str:
    """The results as a markdown table with :data:`COLUMNS`."""
    lines = [COLUMNS, ('---', ) + ('---:', ) * (len(COLUMNS) - 1)]
    lines += [(row['model'], f"{row['val_ap50']:.1f}", f"{row['train_ap50']:.1f}",
               f"{row['params'] / 1e6:.3f}", f"{row['macs'] / 1e6:.1f}",
               f"{row['train_time_s'] / 60:.1f} min") for row in rows]
    return ''.join(f"| {' | '.join(line)} |\n" for line in lines)


def main() -> None:
    args = parse_args()
    job_start = time.perf_counter()
    os.chdir(REPO_ROOT)
    cfg = Config.fromfile(CONFIGS['baseline'])
    cfg.merge_from_dict(parse_cfg_options(args.cfg_options))
    data = ensure_demo_dataset(cfg.data_root)['splits']
    print(f'[demo] data in {cfg.data_root}: {data}', flush=True)
    # train AP50: the test pipeline on the training images
    splits = {'val': [], 'train': [f'test_dataloader.dataset.ann_file='
                                   f'{cfg.train_dataloader.dataset.ann_file}']}
    rows = []
    for method, config in CONFIGS.items():
        work_dir = osp.join(args.work_dir, method)
        print(f'[demo] training {method} ({config}) -> {work_dir}', flush=True)
        start = time.perf_counter()
        run_tool('train', [config, '--work-dir', work_dir, *with_options(args.cfg_options)],
                 osp.join(work_dir, 'train.log'), f'  [{method}] ', CHILD_ENV)
        train_time = time.perf_counter() - start
        checkpoint = checkpoint_to_evaluate(work_dir)
        print(f'[demo] evaluating {checkpoint} (baseline architecture)', flush=True)
        ap50 = evaluate(checkpoint, work_dir, splits, args.cfg_options)
        model = build_detector(cfg)
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
        rows.append(
            dict(model=method, val_ap50=ap50['val'], train_ap50=ap50['train'],
                 train_time_s=round(train_time, 1), checkpoint=osp.relpath(checkpoint),
                 **get_detector_complexity(model, cfg.input_size)))
    table = markdown_table(rows)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print(f'\n{table}\nAP50 in %, at {cfg.input_size}x{cfg.input_size}; params and MACs of the '
          f'deployed detector; saved to {args.work_dir}/results.md and results.json; '
          f'{(time.perf_counter() - job_start) / 60:.1f} min in all')


if __name__ == '__main__':
    main()
