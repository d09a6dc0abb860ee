"""Evaluate a checkpoint: ``python -m netaug_det.tools.test CONFIG CHECKPOINT [--out FILE.pkl]
[--metrics-json FILE] [--work-dir DIR] [--cfg-options KEY=VALUE ...]``.

Behaves like mmdet's ``tools/test.py``. A NetAug run's ``deploy.pth`` is tested with the matching
baseline config.
"""
import argparse
import json
import os.path as osp
from typing import List, Optional

from netaug_det.utils.cli import add_common_args


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    parser.add_argument(
        '--metrics-json',
        help='also write the evaluation metrics to this json file (for scripts)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Tests; a user error (bad config value, missing file, bad data, refused run) ends with
    ``error: ...`` and exit status 2."""
    args = parse_args(argv)
    from netaug_det.utils.cli import user_errors

    with user_errors():
        test(args)


def test(args: argparse.Namespace) -> None:
    """Builds the runner of ``args`` as mmdet's ``tools/test.py`` does and tests."""
    from netaug_det.utils.outputs import check_outputs
    check_outputs({'--out': (args.out, ('.pkl', '.pickle')),
                   '--metrics-json': (args.metrics_json, ('.json', ))},
                  [args.config, args.checkpoint])
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from netaug_det.utils.cli import load_config
    from netaug_det.utils.distributed import finish_distributed

    setup_cache_size_limit_of_dynamo()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) \
            else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))

    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    metrics = runner.test()
    finish_distributed(runner)
    if args.metrics_json and runner.rank == 0:
        with open(args.metrics_json, 'w') as f:
            json.dump({key: float(value) for key, value in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
