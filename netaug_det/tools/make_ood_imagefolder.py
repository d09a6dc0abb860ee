"""Write the seeded out-of-domain classification dataset of the transfer experiment (ImageNet's
folder layout) under data/transfer_cls/:
``python -m netaug_det.tools.make_ood_imagefolder [--out-dir DIR] [--num-train N] ...``.

See ``netaug_det/datasets/ood_imagefolder.py`` for what the images contain (and what they share
with the detection demo's) and docs/transfer.md for the experiment.
"""
import argparse
import inspect
from typing import List, Optional

from netaug_det.datasets.ood_imagefolder import generate_ood_imagefolder

DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(generate_ood_imagefolder).parameters.items()
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate the out-of-domain classification data')
    for name, default in DEFAULTS.items():
        parser.add_argument('--' + name.replace('_', '-'), type=type(default), default=default,
                            help=f'generate_ood_imagefolder\'s {name} (default {default})')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    meta = generate_ood_imagefolder(**vars(args))
    for split, counts in meta['splits'].items():
        print(f'{split}: {sum(counts.values())} images, per class {counts}')
    print(f'written to {args.out_dir}/{{train,val}}/<class>/')


if __name__ == '__main__':
    main()
