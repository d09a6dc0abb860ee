"""Check a config's datasets and report every bad file with its name and reason.

``python -m netaug_det.tools.check_dataset CONFIG [--fast] [--cfg-options KEY=VALUE ...]``

For every dataloader of the config (wrappers such as ConcatDataset unfolded): the model's
``num_classes`` matches the data's classes; the data root, annotation file and image folders
exist; every annotation file parses (VOC XML, COCO json); a COCO file's categories give every
metainfo class its own label, its image ids and file names are unique; every image exists, is
not empty, decodes whole (not with ``--fast``) and has no EXIF orientation that loads it turned
against its boxes; every box has positive width and height; and the objects per class, so that
classes outside the metainfo (which mmdet drops) and a metainfo matching no class at all show.
Exit status 1 when there is a problem. Training runs all but the decoding by itself
(``NetAugDetRunner``; docs/data.md).
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Check the datasets of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--fast', action='store_true',
                        help='do not decode every image (the checks a training runs at start)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. data_root=/data/voc/')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from mmengine.config import Config

    from netaug_det.datasets.checks import (check_annotations, check_data_paths,
                                            check_model_data, classes_of, dataset_cfgs,
                                            problems_report)
    from netaug_det.utils.cli import user_errors
    from netaug_det.utils.config import apply_config_variables

    with user_errors():
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        apply_config_variables(cfg)
        check_model_data(cfg)
        check_data_paths(cfg)
    bad = 0
    for name, dataset in dataset_cfgs(cfg):
        classes = classes_of(dataset)
        problems, names = check_annotations(dataset, classes, decode=not args.fast)
        outside = {k: v for k, v in names.items() if classes and k not in classes}
        print(f'{name} ({dataset.get("type")}, {dataset.get("ann_file")}): '
              f'{sum(names.values())} objects {dict(names.most_common())}')
        if outside:
            print(f'  not in the metainfo classes (not used): {outside}')
        if problems:
            bad += len(problems)
            print(f'  {len(problems)} problem(s):\n  {problems_report(problems, limit=1000)}')
    images = 'images not decoded (--fast)' if args.fast else 'every image decoded'
    if bad:
        raise SystemExit(f'{bad} problem(s) found ({images})')
    print(f'no problems found ({images})')


if __name__ == '__main__':
    main()
