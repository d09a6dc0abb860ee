"""Print params and MACs of a config's deployable model at square input sizes.

``python -m netaug_det.tools.get_macs CONFIG [--input-size 256 320 416] [--cfg-options ...]``

MACs count conv and linear multiply-accumulates of backbone + neck + head with BatchNorm folded
(not counted) and no NMS; a NetAug config is measured on its exported (deployable) model.
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--input-size', type=int, nargs='+',
                        help="square input sizes in pixels (default: the config's input_size)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. input_size=320 or '
                        'model.neck.out_channels=[48,48,48]')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from mmengine.config import Config

    from netaug_det.models.builders import build_detector
    from netaug_det.analysis.complexity import get_detector_complexity

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    sizes = args.input_size or [cfg.get('input_size')]
    if sizes == [None]:
        raise SystemExit(f'{args.config} has no input_size; pass --input-size')
    model = build_detector(cfg)
    print(f'{"input":>7} {"params (M)":>11} {"MACs (M)":>10}   {args.config}')
    for size in sizes:
        result = get_detector_complexity(model, size)
        print(f'{size:>7} {result["params"] / 1e6:>11.3f} {result["macs"] / 1e6:>10.1f}')


if __name__ == '__main__':
    main()
