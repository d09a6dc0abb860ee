"""Train a model: ``python -m netaug_det.tools.train CONFIG [--work-dir DIR] [--resume [CKPT]]
[--amp] [--auto-scale-lr] [--cfg-options KEY=VALUE ...] [--launcher pytorch]``.

Behaves like mmdet's ``tools/train.py`` (same arguments and precedence); the project's configs
run the same with mmdet's own script.
"""
import argparse
from typing import List, Optional

from netaug_det.utils.cli import add_common_args


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (total batch size / auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work dir without a path')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Trains; a user error (bad config value, missing file, bad data, refused run) ends with
    ``error: ...`` and exit status 2."""
    args = parse_args(argv)
    from netaug_det.utils.cli import user_errors

    with user_errors():
        train(args)


def train(args: argparse.Namespace) -> None:
    """Builds the runner of ``args`` as mmdet's ``tools/train.py`` does and trains."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from netaug_det.utils.cli import load_config
    from netaug_det.utils.distributed import finish_distributed

    cfg = load_config(args)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=N)` in '
                             'the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.train()
    finish_distributed(runner)


if __name__ == '__main__':
    main()
