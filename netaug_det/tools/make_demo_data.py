"""Write the seeded demo detection dataset (VOC and COCO layouts) under data/demo/:
``python -m netaug_det.tools.make_demo_data [--out-dir DIR] [--num-train N] ...``.

See ``netaug_det/datasets/demo_data.py`` for what the images contain and the file layout.
"""
import argparse
import inspect
from typing import List, Optional

from netaug_det.datasets.demo_data import generate_demo_dataset

DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(generate_demo_dataset).parameters.items()
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate the demo detection dataset')
    parser.add_argument('--out-dir', default=DEFAULTS['out_dir'], help='dataset root')
    parser.add_argument('--num-train', type=int, default=DEFAULTS['num_train'])
    parser.add_argument('--num-val', type=int, default=DEFAULTS['num_val'])
    parser.add_argument('--seed', type=int, default=DEFAULTS['seed'], help='same seed, same files')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        default=DEFAULTS['img_size'],
        metavar=('MIN', 'MAX'),
        help='range of image widths and heights in pixels')
    parser.add_argument(
        '--max-objects', type=int, default=DEFAULTS['max_objects'], help='most objects per image')
    parser.add_argument(
        '--min-object-size',
        type=int,
        default=DEFAULTS['min_object_size'],
        help='smallest object diameter in pixels')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Writes the dataset; one made in ``--out-dir`` with the same arguments is kept, one made
    with other arguments ends the tool with ``error: ...`` (exit status 2), untouched."""
    args = parse_args(argv)
    from netaug_det.utils.cli import user_errors
    with user_errors():
        meta = generate_demo_dataset(args.out_dir, args.num_train, args.num_val, args.seed,
                                     tuple(args.img_size), args.max_objects,
                                     args.min_object_size)
    for split, counts in meta['splits'].items():
        print(f"{split}: {counts['images']} images, {counts['objects']} objects")
    print(f'classes: {", ".join(meta["classes"])}; written to {args.out_dir}')


if __name__ == '__main__':
    main()
