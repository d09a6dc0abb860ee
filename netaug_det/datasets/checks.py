"""Data checks that name the bad file and the fix, before and while a run builds its data.

- :func:`check_data_paths` (every run, before training, validation or testing starts): the data
  roots, annotation files and image folders of the dataloaders and evaluators it uses exist.
- :func:`check_loaded_dataset` (every run, right after a dataset is built): every image exists
  and is not empty, every box has positive width and height; :func:`voc_objects_outside`
  counts the objects of classes outside the metainfo, which mmdet drops, for a warning.
- :func:`check_annotations` (``python -m netaug_det.tools.check_dataset``, and when building a
  dataset fails): parses every annotation file itself and reports each unreadable file, each
  degenerate box and, when no object matches the metainfo, the classes that are there.
"""
import json
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

DEMO_HINT = 'python -m netaug_det.tools.make_demo_data (the demo data)'
WRAPPERS = ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset', 'MultiImageMixDataset')
_VOC_NAME = re.compile(r'<name>\s*([^<]*?)\s*</name>')


class DataProblem(NamedTuple):
    """One bad file and what is wrong with it."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f'{self.path}: {self.reason}'


class DataError(ValueError):
    """Bad or missing data: the message lists each file with its problem and the fix."""


# The dataloaders of a config and the evaluator that reads each one's annotations.
LOADERS = {'train_dataloader': None, 'val_dataloader': 'val_evaluator',
           'test_dataloader': 'test_evaluator'}


def leaf_datasets(dataset: dict, name: str = 'dataset') -> Iterator[Tuple[str, dict]]:
    """(config path, dataset config) of every real dataset inside ``dataset``: wrappers
    (``ConcatDataset``, ``RepeatDataset``, ...) unfolded, ``dataset`` itself if it is none."""
    if dataset.get('type') in WRAPPERS:
        if 'datasets' in dataset:
            for i, inner in enumerate(dataset['datasets']):
                yield from leaf_datasets(inner, f'{name}.datasets[{i}]')
        else:
            yield from leaf_datasets(dataset['dataset'], f'{name}.dataset')
    else:
        yield name, dataset


def dataset_cfgs(cfg: Config, loaders: Sequence[str] = tuple(LOADERS)
                 ) -> Iterator[Tuple[str, ConfigDict]]:
    """(config path, leaf dataset config) of the ``loaders`` of ``cfg``, wrappers unfolded."""
    for loader in loaders:
        if cfg.get(loader) and cfg[loader].get('dataset'):
            yield from leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset')


def _under_root(dataset: dict, path: str) -> str:
    root = dataset.get('data_root') or ''
    return path if osp.isabs(path) or '://' in path else osp.join(root, path)


def check_data_paths(cfg: Config, loaders: Sequence[str] = tuple(LOADERS)) -> None:
    """Raises :class:`DataError` listing every missing data root, annotation file and image
    folder of the config's ``loaders`` (default: all) and their evaluators (URLs and backends are
    not checked)."""
    missing = []
    for name, dataset in dataset_cfgs(cfg, loaders):
        if dataset.get('backend_args'):
            continue
        wanted = [('ann_file', dataset.get('ann_file'))]
        prefix = dataset.get('data_prefix') or {}
        wanted += [(f'data_prefix.{key}', value) for key, value in prefix.items() if value]
        for key, value in wanted:
            if value and not osp.exists(_under_root(dataset, value)):
                missing.append(f"{name}.{key}: {_under_root(dataset, value)} "
                               f"(data_root={dataset.get('data_root')!r}, {key}={value!r})")
    for evaluator in filter(None, (LOADERS[loader] for loader in loaders)):
        for metric in (cfg.get(evaluator) or []) if isinstance(cfg.get(evaluator), list) else [
                cfg.get(evaluator) or {}]:
            ann_file = metric.get('ann_file')
            if ann_file and '://' not in ann_file and not osp.exists(ann_file):
                missing.append(f'{evaluator}.ann_file: {ann_file}')
    if missing:
        config = f' of {cfg.filename}' if cfg.filename else ''
        raise DataError(
            f'data not found{config}:\n  ' + '\n  '.join(missing) +
            '\nPut the data there (layout: docs/demo.md, "Demo data"; VOC and COCO as in '
            "mmdet's user_guides/dataset_prepare.md), point the config at it with "
            '--cfg-options data_root=DIR/ (every dataset and evaluator follows), or generate '
            f'the demo data with {DEMO_HINT}')


def _image_problem(path: str) -> Optional[str]:
    if not osp.isfile(path):
        return 'image file not found'
    if os.path.getsize(path) == 0:
        return 'image file is empty (0 bytes)'
    return None


def _box_problem(bbox) -> Optional[str]:
    x1, y1, x2, y2 = bbox
    if x2 <= x1 or y2 <= y1:
        return f'box {list(bbox)} has no area (xmin >= xmax or ymin >= ymax)'
    return None


def check_loaded_dataset(dataset) -> List[DataProblem]:
    """Problems of a built mmdet dataset (its ``data_list``): missing or empty images, boxes
    without area. A dataset that checks its files while loading them (``checks_own_files``,
    e.g. ``ImageFolderDataset``) is not checked again."""
    if getattr(dataset, 'checks_own_files', False):
        return []
    problems = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        image = info.get('img_path')
        if image and '://' not in image:
            reason = _image_problem(image)
            if reason:
                problems.append(DataProblem(image, reason))
        for instance in info.get('instances', ()):
            reason = _box_problem(instance['bbox'])
            if reason:
                problems.append(DataProblem(info.get('xml_path') or image, reason))
    return problems


def voc_objects_outside(dataset: dict, classes: Tuple[str, ...]) -> Counter:
    """Objects per class name outside ``classes`` in a VOC dataset's annotation files (which
    mmdet drops without a word), read fast with a pattern, not parsed."""
    if dataset.get('type') != 'VOCDataset':
        return Counter()
    sub_root = _under_root(dataset, (dataset.get('data_prefix') or {}).get('sub_data_root', ''))
    outside = Counter()
    for image_id in _voc_ids(dataset):
        path = osp.join(sub_root, 'Annotations', f'{image_id}.xml')
        if osp.isfile(path):
            with open(path) as f:
                outside.update(name for name in _VOC_NAME.findall(f.read())
                               if name not in classes)
    return outside


def _voc_ids(dataset: dict) -> List[str]:
    with open(_under_root(dataset, dataset['ann_file'])) as f:
        return [line.strip() for line in f if line.strip()]


def _check_voc(dataset: dict, classes: Tuple[str, ...]) -> Tuple[List[DataProblem], Counter]:
    problems, names = [], Counter()
    sub_root = _under_root(dataset, (dataset.get('data_prefix') or {}).get('sub_data_root', ''))
    for image_id in _voc_ids(dataset):
        xml = osp.join(sub_root, 'Annotations', f'{image_id}.xml')
        image = osp.join(sub_root, 'JPEGImages', f'{image_id}.jpg')
        reason = _image_problem(image)
        if reason:
            problems.append(DataProblem(image, reason))
        try:
            root = ET.parse(xml).getroot()
        except (ET.ParseError, OSError) as error:
            problems.append(DataProblem(xml, f'unreadable annotation: {error}'))
            continue
        for obj in root.findall('object'):
            name = (obj.findtext('name') or '').strip()
            names[name] += 1
            box = obj.find('bndbox')
            try:
                bbox = [float(box.findtext(key)) for key in ('xmin', 'ymin', 'xmax', 'ymax')]
            except (AttributeError, TypeError, ValueError):
                problems.append(DataProblem(xml, f'object {name!r} has no numeric bndbox'))
                continue
            reason = _box_problem(bbox)
            if reason:
                problems.append(DataProblem(xml, f'object {name!r}: {reason}'))
    return problems, names


def _check_coco(dataset: dict, classes: Tuple[str, ...]) -> Tuple[List[DataProblem], Counter]:
    ann_file = _under_root(dataset, dataset['ann_file'])
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except (OSError, ValueError) as error:
        return [DataProblem(ann_file, f'unreadable annotation file: {error}')], Counter()
    problems = []
    names_by_id = {cat['id']: cat['name'] for cat in coco.get('categories', [])}
    names = Counter(names_by_id.get(ann.get('category_id'), '?')
                    for ann in coco.get('annotations', []))
    image_root = _under_root(dataset, (dataset.get('data_prefix') or {}).get('img', ''))
    for image in coco.get('images', []):
        path = osp.join(image_root, image['file_name'])
        reason = _image_problem(path)
        if reason:
            problems.append(DataProblem(path, reason))
    for ann in coco.get('annotations', []):
        x, y, w, h = ann.get('bbox', (0, 0, 0, 0))
        reason = _box_problem((x, y, x + w, y + h))
        if reason:
            problems.append(DataProblem(ann_file, f"annotation {ann.get('id')}: {reason}"))
    return problems, names


CHECKERS = {'VOCDataset': _check_voc, 'CocoDataset': _check_coco}


def check_annotations(dataset: dict, classes: Optional[Tuple[str, ...]] = None
                      ) -> Tuple[List[DataProblem], Counter]:
    """Parses a VOC or COCO dataset's annotations itself: (problems, objects per class name).

    With ``classes`` (the metainfo's), a dataset holding no object of any of them is a problem
    that names the classes it holds. Other dataset types: no problems, no counts.
    """
    checker = CHECKERS.get(dataset.get('type'))
    if checker is None:
        return [], Counter()
    problems, names = checker(dataset, classes or ())
    if classes and names and not set(names) & set(classes):
        problems.append(DataProblem(
            _under_root(dataset, dataset['ann_file']),
            f'no object of the metainfo classes {tuple(classes)}; the annotations hold '
            f'{dict(names.most_common())}: set metainfo.classes to classes that are there'))
    return problems, names


def problems_report(problems: List[DataProblem], limit: int = 20) -> str:
    """The problems as lines (at most ``limit``, then a count of the rest)."""
    lines = [str(problem) for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f'... and {len(problems) - limit} more')
    return '\n  '.join(lines)


def classes_of(dataset: Dict) -> Optional[Tuple[str, ...]]:
    """The classes a dataset config uses: its ``metainfo``'s, else its type's default."""
    classes = (dataset.get('metainfo') or {}).get('classes')
    if not classes:
        from mmdet.registry import DATASETS
        dataset_cls = DATASETS.get(dataset.get('type', ''))
        classes = getattr(dataset_cls, 'METAINFO', {}).get('classes')
    return tuple(classes) if classes else None
