"""Data checks that name the bad file and the fix, before and while a run builds its data.

What runs where (docs/data.md has the error texts):

- :func:`check_model_data` (every run, when the runner is built, after
  :func:`netaug_det.utils.config.apply_config_variables`; and ``check_dataset``): the detector head's ``num_classes``
  equals the number of classes of every dataloader's data; a test-time augmentation model
  (mmdet's ``tools/test.py --tta``) does not flip after letterboxing.
- :func:`check_data_paths` (every run, before training, validation or testing starts): the data
  roots, annotation files and image folders of the dataloaders and evaluators it uses exist.
- :func:`check_loaded_dataset` (every run, right after a dataset is built): every image exists,
  is not empty, is not cut short (JPEG and PNG end markers; a suspect one is decoded) and has no
  EXIF orientation that turns it against its boxes; every box has positive width and height; a
  COCO annotation file's categories give every metainfo class its own label and its image ids
  and file names are unique (:func:`coco_label_problems`); :func:`voc_objects_outside` counts
  the objects of classes outside the metainfo, which mmdet drops, for a warning.
- :func:`check_annotations` (``python -m netaug_det.tools.check_dataset``, and when building a
  dataset fails): parses every annotation file itself and reports each unreadable file, each
  degenerate box, each label problem, each bad image (decoding every image unless
  ``decode=False``) and, when no object matches the metainfo, the classes that are there.
"""
import functools
import json
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict
from PIL import Image

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


# Where detectors keep their number of classes.
HEAD_KEYS = ('bbox_head', 'roi_head.bbox_head')
# Why a test-time augmentation flip must come before a step: DetTTAModel flips the predicted boxes
# back in the original image's frame (a padded image is not that frame), and keeps the first
# (flipped) sample's ground truth, which the metrics that score the pipeline's ground truth
# (GT_FROM_PIPELINE) would see flipped.
BEFORE_TTA_FLIP = {
    'Pad': "the boxes of the flipped, letterboxed image are flipped back in the original "
           "image's frame and land off the objects",
    'LoadAnnotations': 'the ground truth is flipped with the image and scored flipped',
}
GT_FROM_PIPELINE = ('VOCMetric', )


def _head_classes(model: dict) -> Iterator[Tuple[str, int]]:
    """(config key, num_classes) of every detection head of a model config."""
    for key in HEAD_KEYS:
        node = model
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        for i, head in enumerate(node if isinstance(node, list) else [node]):
            if isinstance(head, dict) and 'num_classes' in head:
                index = f'[{i}]' if isinstance(node, list) else ''
                yield f'model.{key}{index}.num_classes', head['num_classes']


def _flat_steps(pipeline: Sequence[dict]) -> List[str]:
    """The transform types of a pipeline in order, ``TestTimeAug`` stages unfolded."""
    steps = []
    for step in pipeline:
        if step.get('type') == 'TestTimeAug':
            steps += [t.get('type') for stage in step['transforms'] for t in stage]
        else:
            steps.append(step.get('type'))
    return steps


def check_model_data(cfg: Config) -> None:
    """Raises a ValueError naming the config keys and the fix when the model does not fit the
    data of the config's dataloaders: a detection head's ``num_classes`` other than the number
    of classes of a dataset (labels would be out of range, or outputs never trained), or a
    test-time augmentation model (mmdet's ``tools/test.py --tta``) whose pipeline flips after
    ``Pad`` or ``LoadAnnotations`` (boxes flipped back in the wrong frame, scored against
    flipped ground truth: mmdet's default TTA pipeline on a letterboxed test pipeline)."""
    model = cfg.get('model') or {}
    module = model.get('module', model) if str(model.get('type', '')).endswith('TTAModel') \
        else model
    heads = list(_head_classes(module))
    for name, dataset in dataset_cfgs(cfg):
        classes = classes_of(dataset)
        for key, num_classes in heads:
            if classes and num_classes != len(classes):
                raise ValueError(
                    f'{key} is {num_classes}, but {name} ({dataset.get("ann_file")}) has '
                    f'{len(classes)} classes {classes}: the head needs one output per class '
                    f'and labels 0..{len(classes) - 1}. Set {key} to {len(classes)} in the '
                    f'config (or --cfg-options {key}={len(classes)}), or set metainfo.classes '
                    f"of the datasets to the model's {num_classes} classes")
    if module is not model:
        for name, dataset in dataset_cfgs(cfg, ('test_dataloader', )):
            _check_tta_flip(name, dataset.get('pipeline') or [], cfg.get('test_evaluator'),
                            model.get('type'))


def _check_tta_flip(name: str, pipeline: list, evaluator: Any, tta_model: str) -> None:
    """Raises a ValueError when a test-time augmentation pipeline flips after a step in
    :data:`BEFORE_TTA_FLIP` (``LoadAnnotations`` only with a metric in
    :data:`GT_FROM_PIPELINE`)."""
    steps = _flat_steps(pipeline)
    flips = [i for i, step in enumerate(steps) if 'Flip' in str(step)]
    metrics = {m.get('type') for m in (evaluator if isinstance(evaluator, list) else
                                         [evaluator or {}])}
    wrong = [step for step in BEFORE_TTA_FLIP if flips and step in steps[:flips[0]] and (
        step != 'LoadAnnotations' or metrics & set(GT_FROM_PIPELINE))]
    if wrong:
        raise ValueError(
            f'test-time augmentation ({tta_model}, tools/test.py --tta) with a pipeline that '
            f'flips after {" and ".join(wrong)} ({name}.pipeline: {steps}): '
            f'{"; ".join(BEFORE_TTA_FLIP[step] for step in wrong)} (mmdet\'s default '
            'tta_pipeline when a config sets none). Set tta_pipeline with RandomFlip first, '
            'before Resize, Pad and LoadAnnotations (as configs/_base_/datasets/'
            'yolov3_pipelines.py does), or test without --tta')


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
            '\nPut the data there (docs/data.md, "Data layout"), point the config at it with '
            '--cfg-options data_root=DIR/ (every dataset and evaluator follows), or generate '
            f'the demo data with {DEMO_HINT}')


# How the last bytes of a whole image file look, by the first bytes of its format.
END_MARKERS = ((b'\xff\xd8', b'\xff\xd9'), (b'\x89PNG', b'IEND'))
# EXIF orientation values and what a viewer (and mmcv's 'color' decoding) does with the pixels.
ORIENTATIONS = {2: 'mirrored', 3: 'turned 180 degrees', 4: 'flipped upside down',
                5: 'transposed', 6: 'turned 90 degrees clockwise', 7: 'transversed',
                8: 'turned 90 degrees counter-clockwise'}
EXIF_ORIENTATION = 0x0112
ORIENTATION_FIX = (
    "set color_type='color_ignore_orientation' in the pipelines' LoadImageFromFile (mmcv then "
    'decodes the stored pixels, the frame COCO and VOC annotations and their width/height are '
    'in), or write the image again without the orientation tag')


def _cut_short(path: str, size: int) -> bool:
    """Whether a JPEG or PNG file lacks its end marker in its last KiB (then it may be cut
    short; bytes appended after a whole image can hide the marker too)."""
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(size - 1024, 0))
        tail = f.read()
    return any(head.startswith(magic) and end not in tail for magic, end in END_MARKERS)


def _orientation_problem(orientation: int, stored: Tuple[int, int],
                         annotated: Optional[Tuple[int, int]], turned: bool) -> Optional[str]:
    """Whether loading an image of this EXIF ``orientation`` (``turned``: the pipeline applies
    it) puts it in another frame than its annotation (whose width and height are
    ``annotated``; the stored frame when they do not tell)."""
    transposes = orientation in (5, 6, 7, 8) and stored[0] != stored[1]
    annotated_turned = transposes and annotated == stored[::-1]
    if turned == annotated_turned:
        return None
    loaded = 'turned by' if turned else 'stored without'
    frame = 'turned' if annotated_turned else 'stored'
    size = f'{annotated[0]}x{annotated[1]}' if annotated else 'no size'
    fix = ORIENTATION_FIX if turned else (
        "drop color_type='color_ignore_orientation' from the pipelines' LoadImageFromFile")
    return (f'EXIF orientation {orientation} ({ORIENTATIONS[orientation]}): the pipeline loads '
            f'the image {loaded} it, but its annotation ({size}) is in the {frame} frame of the '
            f'{stored[0]}x{stored[1]} stored pixels, so its boxes land off the objects; {fix}')


def _image_problem(path: str, decode: bool = False, turned: bool = True,
                   annotated: Optional[Tuple[int, int]] = None) -> Optional[str]:
    """What is wrong with an image file, or None: missing, empty, cut short or undecodable
    (decoded only when ``decode`` or its end marker is missing), or an EXIF orientation that
    loads it against its annotation (see :func:`_orientation_problem`)."""
    if not osp.isfile(path):
        return 'image file not found'
    size = os.path.getsize(path)
    if size == 0:
        return 'image file is empty (0 bytes)'
    decode = decode or _cut_short(path, size)
    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            stored = image.size
            if decode:
                image.load()
    except (OSError, SyntaxError, ValueError) as error:
        return (f'image cannot be decoded ({type(error).__name__}: {error}); the file is cut '
                'short or damaged: copy it again or remove it from the annotations')
    if orientation in ORIENTATIONS:
        return _orientation_problem(orientation, stored, annotated, turned)
    return None


def applies_orientation(pipeline: Sequence[Any]) -> bool:
    """Whether a pipeline (transform dicts or built transforms) decodes images turned by their
    EXIF orientation, as mmcv's default ``color_type='color'`` does (cv2 and pillow)."""
    for step in pipeline:
        get = step.get if isinstance(step, dict) else functools.partial(getattr, step)
        name = step.get('type', '') if isinstance(step, dict) else type(step).__name__
        if 'LoadImage' in str(name):
            return 'ignore_orientation' not in str(get('color_type', 'color'))
    return True


def _box_problem(bbox) -> Optional[str]:
    x1, y1, x2, y2 = bbox
    if x2 <= x1 or y2 <= y1:
        return f'box {list(bbox)} has no area (xmin >= xmax or ymin >= ymax)'
    return None


def _built_leaves(dataset) -> Iterator:
    """The real datasets inside a built dataset, wrappers (``ConcatDataset``,
    ``RepeatDataset``, ...) unfolded."""
    inner = getattr(dataset, 'datasets', None) or [getattr(dataset, 'dataset', None)]
    if inner[0] is None:
        yield dataset
    else:
        for child in inner:
            yield from _built_leaves(child)


def check_loaded_dataset(dataset) -> List[DataProblem]:
    """Problems of a built mmdet dataset (wrappers unfolded): images missing, empty, cut short
    or loaded against their boxes by an EXIF orientation (not decoded: fast on large datasets),
    boxes without area, and the label problems of a COCO annotation file
    (:func:`coco_label_problems`). A dataset that checks its files while loading them
    (``checks_own_files``, e.g. ``ImageFolderDataset``) is not checked again."""
    problems = []
    for leaf in _built_leaves(dataset):
        if getattr(leaf, 'checks_own_files', False):
            continue
        if hasattr(leaf, 'cat_ids') and str(getattr(leaf, 'ann_file', '')).endswith('.json'):
            problems += coco_label_problems(leaf.ann_file, tuple(leaf.metainfo['classes']))
        turned = applies_orientation(getattr(leaf.pipeline, 'transforms', ()))
        for index in range(len(leaf)):
            problems += _info_problems(leaf.get_data_info(index), turned)
    return problems


def _info_problems(info: dict, turned: bool) -> List[DataProblem]:
    """Problems of one built data sample (mmdet's data info: image, size, instances)."""
    problems = []
    image = info.get('img_path')
    if image and '://' not in image:
        annotated = (info['width'], info['height']) if info.get('width') else None
        reason = _image_problem(image, turned=turned, annotated=annotated)
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


def _check_voc(dataset: dict, classes: Tuple[str, ...], decode: bool
               ) -> Tuple[List[DataProblem], Counter]:
    problems, names = [], Counter()
    sub_root = _under_root(dataset, (dataset.get('data_prefix') or {}).get('sub_data_root', ''))
    turned = applies_orientation(dataset.get('pipeline') or ())
    for image_id in _voc_ids(dataset):
        xml = osp.join(sub_root, 'Annotations', f'{image_id}.xml')
        image = osp.join(sub_root, 'JPEGImages', f'{image_id}.jpg')
        try:
            root = ET.parse(xml).getroot()
        except (ET.ParseError, OSError) as error:
            problems.append(DataProblem(xml, f'unreadable annotation: {error}'))
            root = ET.Element('annotation')
        try:
            annotated = (int(root.findtext('size/width')), int(root.findtext('size/height')))
        except (TypeError, ValueError):
            annotated = None
        reason = _image_problem(image, decode, turned, annotated)
        if reason:
            problems.append(DataProblem(image, reason))
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


def _read_json(path: str) -> Tuple[Optional[dict], List[DataProblem]]:
    try:
        with open(path) as f:
            return json.load(f), []
    except (OSError, ValueError) as error:
        return None, [DataProblem(path, f'unreadable annotation file: {error}')]


def _check_coco(dataset: dict, classes: Tuple[str, ...], decode: bool
                ) -> Tuple[List[DataProblem], Counter]:
    ann_file = _under_root(dataset, dataset['ann_file'])
    coco, problems = _read_json(ann_file)
    if coco is None:
        return problems, Counter()
    problems = coco_label_problems(ann_file, classes, coco)
    names_by_id = {cat['id']: cat['name'] for cat in coco.get('categories', [])}
    names = Counter(names_by_id.get(ann.get('category_id'), '?')
                    for ann in coco.get('annotations', []))
    image_root = _under_root(dataset, (dataset.get('data_prefix') or {}).get('img', ''))
    turned = applies_orientation(dataset.get('pipeline') or ())
    for image in coco.get('images', []):
        path = osp.join(image_root, image['file_name'])
        annotated = (image['width'], image['height']) if image.get('width') else None
        reason = _image_problem(path, decode, turned, annotated)
        if reason:
            problems.append(DataProblem(path, reason))
    for ann in coco.get('annotations', []):
        x, y, w, h = ann.get('bbox', (0, 0, 0, 0))
        reason = _box_problem((x, y, x + w, y + h))
        if reason:
            problems.append(DataProblem(ann_file, f"annotation {ann.get('id')}: {reason}"))
    return problems, names


def _category_problem(categories: List[dict], classes: Tuple[str, ...]) -> Optional[str]:
    """Why a COCO file's categories do not give each of ``classes`` its own label in order
    (mmdet's CocoDataset labels the file's categories whose names are in ``classes``, in the
    file's order, by position), or None."""
    in_file = [cat.get('name') for cat in categories]
    used = [name for name in in_file if name in classes]
    if used == list(classes):
        return None
    details = []
    missing = [name for name in classes if name not in in_file]
    if missing:
        details.append(f'metainfo.classes {missing} are not in the file')
    twice = sorted(name for name, count in Counter(used).items() if count > 1)
    if twice:
        details.append(f'{twice} name more than one category')
    if not details:
        details.append(f'the file lists them in another order: {used}')
    return (f"category names differ from metainfo.classes {tuple(classes)}: "
            f"{'; '.join(details)}. mmdet's CocoDataset labels the file's categories whose "
            'names are in metainfo.classes by their position in the file, so the labels of '
            'the other classes shift. Set metainfo.classes to the categories in file order '
            f'{tuple(in_file)} (and model.bbox_head.num_classes to {len(in_file)}), or rename '
            'the categories in the file')


def coco_label_problems(ann_file: str, classes: Tuple[str, ...],
                        coco: Optional[dict] = None) -> List[DataProblem]:
    """What makes the labels of a COCO annotation file (``coco``: its parsed json; None: read
    it) wrong under metainfo ``classes``: categories that do not give each class its own label
    in order, an image id used twice (pycocotools keeps one image and gives it the boxes of
    both), a file name listed twice (each entry is trained with part of the picture's boxes),
    annotations of image ids no image has (dropped)."""
    if coco is None:
        coco, problems = _read_json(ann_file)
        if coco is None:
            return problems
    problems = []
    reason = _category_problem(coco.get('categories', []), tuple(classes))
    if reason:
        problems.append(DataProblem(ann_file, reason))
    images = coco.get('images', [])
    files_by_id, ids_by_file = {}, {}
    for image in images:
        files_by_id.setdefault(image.get('id'), []).append(image.get('file_name'))
        ids_by_file.setdefault(image.get('file_name'), []).append(image.get('id'))
    for image_id, files in files_by_id.items():
        if len(files) > 1:
            problems.append(DataProblem(ann_file, (
                f'image id {image_id} is used by {len(files)} images {files}: pycocotools keeps '
                'one of them and gives it the boxes of all; give every image its own id')))
    for file_name, ids in ids_by_file.items():
        if len(set(ids)) > 1:
            problems.append(DataProblem(ann_file, (
                f'{file_name} is listed under image ids {ids}: each entry is trained with only '
                'its own boxes, the others as background; merge them into one image entry')))
    orphans = sorted({ann.get('image_id') for ann in coco.get('annotations', [])} -
                     set(files_by_id), key=str)
    if orphans:
        problems.append(DataProblem(ann_file, (
            f'annotations refer to image ids no image has {orphans[:10]}'
            f'{" ..." if len(orphans) > 10 else ""}: their boxes are never used; add the images '
            'or fix the image_id of the annotations')))
    return problems


CHECKERS = {'VOCDataset': _check_voc, 'CocoDataset': _check_coco}


def check_annotations(dataset: dict, classes: Optional[Tuple[str, ...]] = None,
                      decode: bool = False) -> Tuple[List[DataProblem], Counter]:
    """Parses a VOC or COCO dataset's annotations itself: (problems, objects per class name).

    Every image is checked as :func:`check_loaded_dataset` does, and with ``decode`` also
    decoded whole (slow on large datasets: ``check_dataset`` does it unless ``--fast``). With
    ``classes`` (the metainfo's), a COCO file's label problems (:func:`coco_label_problems`) and
    a dataset holding no object of any of them are problems too, the latter naming the classes
    it holds. Other dataset types: no problems, no counts.
    """
    checker = CHECKERS.get(dataset.get('type'))
    if checker is None:
        return [], Counter()
    problems, names = checker(dataset, classes or (), decode)
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
