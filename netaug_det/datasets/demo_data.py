"""A seeded synthetic detection dataset (the demo data) in Pascal VOC and COCO layouts.

Objects of :data:`DEMO_CLASSES` differ in shape, colour and texture, but colour and texture are
only hints (each object borrows another class's colour or texture now and then), so the shape is
the one reliable cue. Objects come in many sizes (down to ``min_object_size`` pixels), partly hide
each other and are partly covered by occluders, on backgrounds cluttered with lines, outlines and
blobs. A tiny detector at low resolution cannot fit this data completely.

Layout under ``out_dir`` (``data/demo`` by default)::

    VOCdevkit/VOCdemo/JPEGImages/000000.jpg ...
    VOCdevkit/VOCdemo/Annotations/000000.xml ...
    VOCdevkit/VOCdemo/ImageSets/Main/{train,val}.txt
    annotations/instances_{train,val}.json     (COCO; file_name relative to JPEGImages/)
    meta.json                                  (the generator's arguments and object counts)

The VOC folder is VOC2007-style but not called ``VOC2007``: mmdet's ``VOCDataset`` would then
tag it as Pascal VOC 2007 and ``VOCMetric`` would print VOC's class names in its summary.
Boxes are the visible extent of each object; VOC boxes are 1-based and inclusive, COCO boxes are
``[x, y, w, h]`` of the same pixels. Every image depends only on ``(seed, split, index)``.
"""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np


class DemoClass(NamedTuple):
    """One object class of the demo data: its name and its typical look.

    ``colour`` is BGR; ``shape`` is a key of ``_UNIT_SHAPES``; ``texture`` a key of ``_TEXTURES``.
    """

    name: str
    shape: str
    colour: Tuple[int, int, int]
    texture: str


DEMO_CLASS_SPECS: Tuple[DemoClass, ...] = (
    DemoClass('disc', 'circle', (60, 60, 210), 'solid'),
    DemoClass('ring', 'ring', (40, 180, 230), 'solid'),
    DemoClass('triangle', 'triangle', (70, 170, 60), 'stripes'),
    DemoClass('square', 'square', (200, 110, 40), 'checker'),
    DemoClass('star', 'star', (170, 60, 160), 'dots'),
    DemoClass('cross', 'cross', (190, 190, 60), 'stripes'),
)
DEMO_CLASSES: Tuple[str, ...] = tuple(spec.name for spec in DEMO_CLASS_SPECS)

SPLITS = ('train', 'val')
VOC_SUBDIR = 'VOCdemo'
# Probability that an object takes another class's colour (or texture) instead of its own.
_BORROW_PROB = 0.2
# An object stays annotated only if at least this fraction of it remains visible.
_MIN_VISIBLE = 0.5
_PLACEMENT_TRIES = 20
_TEXTURES = ('solid', 'stripes', 'checker', 'dots')


def _star(points: int, inner_ratio: float = 1.0) -> np.ndarray:
    """Vertices of a regular polygon (``inner_ratio=1``) or star on the unit circle, (N, 2)."""
    radii = np.tile([1.0, inner_ratio], points) if inner_ratio != 1.0 else np.ones(points)
    angles = np.linspace(0, 2 * np.pi, len(radii), endpoint=False) - np.pi / 2
    return np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]


def _cross(half_width: float) -> np.ndarray:
    """Vertices of a plus sign inside the unit square, (12, 2)."""
    a = half_width
    return np.array([(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1),
                     (-a, a), (-1, a), (-1, -a), (-a, -a)], dtype=np.float64)


# shape -> (outline, hole or None), both in unit coordinates
_UNIT_SHAPES: Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]] = {
    'circle': (_star(36), None),
    'ring': (_star(36), _star(36) * 0.55),
    'triangle': (_star(3), None),
    'square': (_star(4), None),
    'star': (_star(5, 0.45), None),
    'cross': (_cross(0.33), None),
}


def _texture(kind: str, rng: np.random.Generator, colour: np.ndarray, height: int,
             width: int) -> np.ndarray:
    """A (height, width, 3) float patch of ``colour`` with the pattern ``kind``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    second = colour * rng.uniform(0.35, 0.6)
    if kind == 'solid':
        shade = 1.0 + 0.25 * (xs / max(width, 1) - 0.5) * rng.choice([-1, 1])
        return colour * shade[..., None]
    if kind == 'stripes':
        angle = rng.uniform(0, np.pi)
        phase = xs * np.cos(angle) + ys * np.sin(angle)
        pattern = (phase // rng.uniform(2.0, 4.0)) % 2 == 0
    elif kind == 'checker':
        cell = rng.uniform(2.0, 4.0)
        pattern = ((xs // cell) + (ys // cell)) % 2 == 0
    elif kind == 'dots':
        period = rng.uniform(3.0, 5.0)
        centred = (xs % period - period / 2)**2 + (ys % period - period / 2)**2
        pattern = centred > (period / 3)**2
    else:
        raise ValueError(f'unknown texture {kind!r}; use one of {sorted(_TEXTURES)}')
    return np.where(pattern[..., None], colour, second)


def _polygon_mask(rng: np.random.Generator, shape: Tuple[int, int], unit: np.ndarray,
                  hole: Optional[np.ndarray], centre: np.ndarray, radius: float) -> np.ndarray:
    """Boolean mask of ``unit`` (and its ``hole``) rotated, stretched and placed at ``centre``."""
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    stretch = np.array([1.0, rng.uniform(0.7, 1.0)])
    mask = np.zeros(shape, dtype=np.uint8)
    for polygon, value in ((unit, 1), (hole, 0)):
        if polygon is not None:
            points = (polygon * stretch) @ rotation.T * radius + centre
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], value)
    return mask.astype(bool)


def _random_blob(rng: np.random.Generator, shape: Tuple[int, int], radius: float) -> np.ndarray:
    """Mask of an irregular polygon (clutter and occluders) of about ``radius`` pixels."""
    vertices = _star(int(rng.integers(5, 9)))
    vertices = vertices * rng.uniform(0.5, 1.0, size=(len(vertices), 1))
    centre = rng.uniform([0, 0], [shape[1], shape[0]])
    return _polygon_mask(rng, shape, vertices, None, centre, radius)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour field with lines, outlines and blobs on it, (H, W, 3) float32."""
    grid = rng.uniform(40, 215, size=(int(rng.integers(2, 5)), int(rng.integers(2, 5)), 3))
    image = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(4, 10))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
        kind = rng.integers(3)
        if kind == 0:
            cv2.line(image, p1, p2, colour, int(rng.integers(1, 4)))
        elif kind == 1:
            cv2.rectangle(image, p1, p2, colour, int(rng.integers(1, 3)))
        else:
            image[_random_blob(rng, (height, width), rng.uniform(4, 0.2 * min(height, width)))] = \
                colour
    return image


def _pick(rng: np.random.Generator, own: object, others: Sequence) -> object:
    """``own`` most of the time; otherwise a random element of ``others``."""
    return others[int(rng.integers(len(others)))] if rng.random() < _BORROW_PROB else own


def _fits(visible: List[np.ndarray], areas: List[int], cover: np.ndarray) -> bool:
    """Whether every earlier object keeps ``_MIN_VISIBLE`` of its area once ``cover`` is drawn."""
    return all((vis & ~cover).sum() >= _MIN_VISIBLE * area for vis, area in zip(visible, areas))


def render_image(rng: np.random.Generator, height: int, width: int, max_objects: int,
                 min_object_size: int) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Draws one demo image.

    Returns:
        tuple: the (H, W, 3) uint8 BGR image and a list of ``(label, visible_mask)``, one per
        object, with (H, W) boolean masks of the pixels where the object can be seen.
    """
    image = _background(rng, height, width)
    labels: List[int] = []
    visible: List[np.ndarray] = []
    areas: List[int] = []
    max_radius = 0.45 * min(height, width) / 2
    min_radius = min_object_size / 2
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(len(DEMO_CLASS_SPECS)))
        spec = DEMO_CLASS_SPECS[label]
        for _ in range(_PLACEMENT_TRIES):
            radius = float(np.exp(rng.uniform(np.log(min_radius), np.log(max_radius))))
            centre = rng.uniform([radius, radius], [width - radius, height - radius])
            unit, hole = _UNIT_SHAPES[spec.shape]
            mask = _polygon_mask(rng, (height, width), unit, hole, centre, radius)
            if mask.any() and _fits(visible, areas, mask):
                break
        else:
            continue
        colour = np.array(_pick(rng, spec.colour, [s.colour for s in DEMO_CLASS_SPECS]),
                          dtype=np.float32) * rng.uniform(0.75, 1.2)
        colour = np.clip(colour + rng.uniform(-30, 30, size=3), 0, 255)
        texture = _pick(rng, spec.texture, _TEXTURES)
        x0, y0, x1, y1 = _extent(mask)
        window = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        patch = _texture(texture, rng, colour, y1 - y0 + 1, x1 - x0 + 1)
        image[window][mask[window]] = patch[mask[window]]
        visible = [vis & ~mask for vis in visible]
        labels.append(label)
        visible.append(mask)
        areas.append(int(mask.sum()))
    for _ in range(int(rng.integers(0, 3))):
        cover = _random_blob(rng, (height, width), rng.uniform(4, 0.25 * min(height, width)))
        if _fits(visible, areas, cover):
            image[cover] = rng.uniform(0, 255, size=3)
            visible = [vis & ~cover for vis in visible]
    image = cv2.GaussianBlur(image, (3, 3), 0.6) + rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), list(zip(labels, visible))


def _extent(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """0-based inclusive ``(x0, y0, x1, y1)`` of the True pixels of a (H, W) mask."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _voc_xml(img_id: str, width: int, height: int,
             objects: List[Tuple[int, Tuple[int, int, int, int]]]) -> ET.ElementTree:
    """A Pascal VOC annotation; boxes are written 1-based and inclusive, as VOC does."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = VOC_SUBDIR
    ET.SubElement(root, 'filename').text = f'{img_id}.jpg'
    size = ET.SubElement(root, 'size')
    for key, value in (('width', width), ('height', height), ('depth', 3)):
        ET.SubElement(size, key).text = str(value)
    for label, (x0, y0, x1, y1) in objects:
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = DEMO_CLASSES[label]
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'truncated').text = '0'
        ET.SubElement(obj, 'difficult').text = '0'
        box = ET.SubElement(obj, 'bndbox')
        for key, value in (('xmin', x0), ('ymin', y0), ('xmax', x1), ('ymax', y1)):
            ET.SubElement(box, key).text = str(value + 1)
    ET.indent(root)
    return ET.ElementTree(root)


def generate_demo_dataset(out_dir: str = 'data/demo',
                          num_train: int = 320,
                          num_val: int = 100,
                          seed: int = 0,
                          img_size: Tuple[int, int] = (160, 224),
                          max_objects: int = 6,
                          min_object_size: int = 8) -> Dict[str, dict]:
    """Writes the demo dataset under ``out_dir`` (see the module docstring for the layout); a
    dataset made there with the same arguments is kept as it is.

    Args:
        out_dir (str): Dataset root. Defaults to ``'data/demo'``.
        num_train (int): Number of training images. Defaults to 320.
        num_val (int): Number of validation images. Defaults to 100.
        seed (int): Seed; the same arguments always give the same files. Defaults to 0.
        img_size (tuple[int, int]): Inclusive range of image widths and heights, in pixels.
            Defaults to (160, 224).
        max_objects (int): Most objects placed in one image (each image gets 1 to this many
            attempts; some may not fit). Defaults to 6.
        min_object_size (int): Smallest object diameter, in pixels. Defaults to 8.

    Returns:
        dict: ``meta.json``'s content: the arguments, and per split the number of images and
        objects.

    Raises:
        ValueError: when ``out_dir`` holds a generated dataset made with other arguments
            (nothing is written over it).
    """
    low, high = img_size
    if not 0 < min_object_size < 0.45 * low <= 0.45 * high:
        raise ValueError(f'img_size={img_size} and min_object_size={min_object_size} leave no '
                         'room for objects: use 0 < min_object_size < 0.45 * img_size[0] and '
                         'img_size[0] <= img_size[1]')
    if num_train < 1 or num_val < 1 or max_objects < 1:
        raise ValueError('num_train, num_val and max_objects must be at least 1')
    args = dict(num_train=num_train, num_val=num_val, seed=seed, img_size=[low, high],
                max_objects=max_objects, min_object_size=min_object_size)
    meta = made_before(out_dir, args)
    if meta is not None:
        return meta
    voc_root = osp.join(out_dir, 'VOCdevkit', VOC_SUBDIR)
    for sub in ('JPEGImages', 'Annotations', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(voc_root, sub), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)

    categories = [dict(id=i + 1, name=name) for i, name in enumerate(DEMO_CLASSES)]
    counts = {}
    first_index = 0
    for split_index, (split, num_images) in enumerate(zip(SPLITS, (num_train, num_val))):
        coco = dict(images=[], annotations=[], categories=categories)
        img_ids = []
        for index in range(first_index, first_index + num_images):
            rng = np.random.default_rng([seed, split_index, index])
            height, width = (int(v) for v in rng.integers(low, high + 1, size=2))
            image, objects = render_image(rng, height, width, max_objects, min_object_size)
            img_id = f'{index:06d}'
            img_ids.append(img_id)
            cv2.imwrite(osp.join(voc_root, 'JPEGImages', f'{img_id}.jpg'), image,
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            boxes = [(label, _extent(mask)) for label, mask in objects]
            _voc_xml(img_id, width, height, boxes).write(
                osp.join(voc_root, 'Annotations', f'{img_id}.xml'))
            coco['images'].append(
                dict(id=index, file_name=f'{img_id}.jpg', width=width, height=height))
            for (label, mask), (_, (x0, y0, x1, y1)) in zip(objects, boxes):
                coco['annotations'].append(
                    dict(id=len(coco['annotations']) + 1, image_id=index, category_id=label + 1,
                         bbox=[x0, y0, x1 - x0 + 1, y1 - y0 + 1], area=int(mask.sum()),
                         iscrowd=0))
        with open(osp.join(voc_root, 'ImageSets', 'Main', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(img_ids) + '\n')
        with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        counts[split] = dict(images=num_images, objects=len(coco['annotations']))
        first_index += num_images
    return write_meta(out_dir, dict(args=args, classes=list(DEMO_CLASSES), splits=counts))


def read_dataset_meta(out_dir: str) -> Optional[dict]:
    """The ``meta.json`` of the generated dataset in ``out_dir`` (the demo detection data or a
    generated classification set), None when there is none."""
    meta_file = osp.join(out_dir, 'meta.json')
    if not osp.isfile(meta_file):
        return None
    with open(meta_file) as f:
        return json.load(f)


def made_before(out_dir: str, args: dict) -> Optional[dict]:
    """The ``meta.json`` of a dataset a generator already made in ``out_dir`` with ``args``
    (None when there is none).

    Raises:
        ValueError: when ``out_dir`` holds a dataset made with other arguments.
    """
    meta = read_dataset_meta(out_dir)
    if meta is not None and meta['args'] != args:
        raise ValueError(f'{out_dir} holds a dataset made with {meta["args"]}, not with the '
                         f'{args} asked for; nothing was written over it. Remove the folder to '
                         'make it again, or choose another output folder')
    return meta


def write_meta(out_dir: str, meta: dict) -> dict:
    """Writes ``meta`` as ``out_dir/meta.json`` (last, so a dataset with a meta is whole) and
    returns it."""
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta


def demo_dataset_at(out_dir: str) -> Dict[str, dict]:
    """The demo dataset a tool was pointed at: the one in ``out_dir`` as it is (whatever its
    arguments: never generated again over it), else a new one with the defaults; its meta."""
    return read_dataset_meta(out_dir) or generate_demo_dataset(out_dir)
