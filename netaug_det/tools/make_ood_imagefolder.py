"""Write the seeded out-of-domain classification dataset of the transfer experiment (ImageNet's
folder layout) under data/transfer_cls/:
``python -m netaug_det.tools.make_ood_imagefolder [--out-dir DIR] [--num-train N] ...``.

See ``netaug_det/datasets/ood_imagefolder.py`` for what the images contain and docs/transfer.md
for the experiment.
"""
import argparse
from typing import List, Optional

from netaug_det.datasets.ood_imagefolder import generate_ood_imagefolder
from netaug_det.tools.make_demo_imagefolder import DEFAULTS as DEMO_DEFAULTS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate the out-of-domain classification data')
    parser.add_argument('--out-dir', default='data/transfer_cls', help='dataset root')
    parser.add_argument('--num-train', type=int, default=1200)
    parser.add_argument('--num-val', type=int, default=240)
    parser.add_argument('--seed', type=int, default=0, help='same seed, same files')
    parser.add_argument('--img-size', type=int, default=DEMO_DEFAULTS['img_size'],
                        help='image side in pixels')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    meta = generate_ood_imagefolder(args.out_dir, args.num_train, args.num_val, args.seed,
                                    args.img_size)
    for split, counts in meta['splits'].items():
        print(f'{split}: {sum(counts.values())} images, per class {counts}')
    print(f'written to {args.out_dir}/{{train,val}}/<class>/')


if __name__ == '__main__':
    main()
