"""Write the seeded demo classification dataset (ImageNet's folder layout) under data/demo_cls/:
``python -m netaug_det.tools.make_demo_imagefolder [--out-dir DIR] [--num-train N] ...``.

See ``netaug_det/datasets/demo_imagefolder.py`` for what the images contain.
"""
import argparse
import inspect
from typing import List, Optional

from netaug_det.datasets.demo_imagefolder import generate_demo_imagefolder

DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(generate_demo_imagefolder).parameters.items()
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate the demo classification dataset')
    parser.add_argument('--out-dir', default=DEFAULTS['out_dir'], help='dataset root')
    parser.add_argument('--num-train', type=int, default=DEFAULTS['num_train'])
    parser.add_argument('--num-val', type=int, default=DEFAULTS['num_val'])
    parser.add_argument('--seed', type=int, default=DEFAULTS['seed'], help='same seed, same files')
    parser.add_argument('--img-size', type=int, default=DEFAULTS['img_size'],
                        help='image side in pixels')
    parser.add_argument('--min-object-size', type=int, default=DEFAULTS['min_object_size'],
                        help='smallest object diameter in pixels')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    meta = generate_demo_imagefolder(args.out_dir, args.num_train, args.num_val, args.seed,
                                     args.img_size, args.min_object_size)
    for split, counts in meta['splits'].items():
        print(f'{split}: {sum(counts.values())} images, per class {counts}')
    print(f'written to {args.out_dir}/{{train,val}}/<class>/')


if __name__ == '__main__':
    main()
