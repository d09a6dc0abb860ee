"""Export a NetAug checkpoint as a checkpoint of the plain baseline detector.

``python -m netaug_det.tools.export_deployable NETAUG_CONFIG CHECKPOINT [--out FILE]
[--check-config BASELINE_CONFIG]``

Does what ``NetAugHook`` does at the end of training, for any checkpoint of a NetAug run (e.g.
``epoch_12.pth`` or ``best_*.pth``): the backbone is replaced by ``backbone.export()`` and the
NetAug state dropped. The result is tested with stock ``tools/test.py BASELINE_CONFIG FILE``.
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

import netaug_det  # noqa: F401  registers modules and checkpoint handling
from netaug_det.models.netaug import deployable_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a NetAug checkpoint as a deployable baseline checkpoint')
    parser.add_argument('config', help='config of the NetAug run (NetAug backbone)')
    parser.add_argument('checkpoint', help='checkpoint written by the NetAug run')
    parser.add_argument('--out', help='output file; defaults to <checkpoint>_deploy.pth')
    parser.add_argument(
        '--check-config',
        help='baseline config to load the export into (strictly) as a check')
    return parser.parse_args(argv)


def build_model(config: str):
    """Builds the (untrained) detector of ``config`` in mmdet's scope."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def export(config: str, checkpoint: str, out: str) -> dict:
    """Writes the deployable checkpoint of ``checkpoint`` (a run of ``config``) to ``out``."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    detector = build_model(config)
    source = load_checkpoint(detector, checkpoint, map_location='cpu', strict=True)
    deployable = deployable_checkpoint(detector, source.get('meta'))
    save_checkpoint(deployable, out)
    return deployable


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    out = args.out or f'{osp.splitext(args.checkpoint)[0]}_deploy.pth'
    export(args.config, args.checkpoint, out)
    print(f'deployable checkpoint saved to {out}')
    if args.check_config:
        load_checkpoint(build_model(args.check_config), out, map_location='cpu', strict=True)
        print(f'{out} loads into {args.check_config} (strict)')


if __name__ == '__main__':
    main()
