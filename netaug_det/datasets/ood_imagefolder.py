"""A seeded classification dataset for transfer experiments: other classes, other images than
the detection demo's (ImageNet's folder layout, as :mod:`.demo_imagefolder`).

Pretraining a backbone on :mod:`.demo_imagefolder` and then detecting the same six shapes is not
the paper's transfer (ImageNet -> VOC/COCO: other images, other classes). The classes here
(:data:`OOD_CLASSES`) are none of :data:`~.demo_data.DEMO_CLASSES` and are drawn by their own
renderer:

- six **objects** of shapes the demo never draws (arrow, crescent, heart, lightning bolt, spiral,
  dumbbell), filled with textures the demo never uses (linear gradients, smooth noise, hatching,
  solid), or outlined;
- six **texture families** that fill the whole image, with no object at all (waves, bricks,
  hexagonal cells, scribbles, speckles, concentric rings);
- **backgrounds** of value noise and gradients with speckles, unlike the demo's smooth colour
  fields crossed by lines, rectangles and blobs; no occluders.

What it shares with the detection demo, stated plainly: synthetic images drawn with OpenCV,
the same 64x64 size as the demo classification set, the same colour range, and the same final
blur and pixel noise. So it is "out of domain" the way ImageNet is for VOC only in its classes
and images; it is still much closer in style (flat synthetic shapes and patterns) than two real
photo datasets would be. Layout under ``out_dir``::

    train/<class>/<index>.jpg ...
    val/<class>/<index>.jpg ...
    meta.json     (the generator's arguments and the images per class and split)

Every image depends only on ``(seed, split, index)``; the class of image ``index`` is
``index % len(OOD_CLASSES)`` (balanced splits).
"""
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from .demo_data import SPLITS, made_before, write_meta
from .demo_imagefolder import write_image

Image = np.ndarray
Rng = np.random.Generator


def _colour(rng: Rng) -> np.ndarray:
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _value_noise(rng: Rng, size: int, cells: int) -> np.ndarray:
    """A smooth (size, size) field in [0, 1]: random values on a ``cells`` grid, upsampled."""
    grid = rng.uniform(0, 1, size=(cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _mix(field: np.ndarray, first: np.ndarray, second: np.ndarray) -> Image:
    """An image blending two colours by ``field`` (values in [0, 1])."""
    return first * field[..., None] + second * (1 - field[..., None])


def _background(rng: Rng, size: int) -> Image:
    """Value noise between two colours, or a linear gradient, with a sprinkle of specks."""
    if rng.random() < 0.5:
        field = _value_noise(rng, size, int(rng.integers(3, 8)))
    else:
        field = _gradient(rng, size)
    image = _mix(field, _colour(rng), _colour(rng))
    specks = rng.random((size, size)) < rng.uniform(0.0, 0.03)
    image[specks] = _colour(rng)
    return image


def _gradient(rng: Rng, size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    return (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)


def _fill(rng: Rng, size: int) -> Image:
    """An object's fill: solid, gradient, smooth noise or hatching (the demo: solid, stripes,
    checker, dots)."""
    first, second = _colour(rng), _colour(rng)
    kind = int(rng.integers(4))
    if kind == 0:
        return np.broadcast_to(first, (size, size, 3)).copy()
    if kind == 1:
        return _mix(_gradient(rng, size), first, second)
    if kind == 2:
        return _mix(_value_noise(rng, size, int(rng.integers(4, 10))), first, second)
    ys, xs = np.mgrid[0:size, 0:size]
    period = int(rng.integers(3, 6))
    hatch = ((xs + ys) % period == 0) | ((xs - ys) % period == 0)
    return _mix(hatch.astype(np.float32), second, first)


def _transform(rng: Rng, points: np.ndarray, size: int) -> np.ndarray:
    """Unit-coordinate points rotated, scaled (30-85% of the image) and placed, as int32."""
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    radius = rng.uniform(0.15, 0.42) * size
    centre = rng.uniform(radius, size - radius, size=2)
    return np.round(points @ rotation.T * radius + centre).astype(np.int32)


def _arrow() -> np.ndarray:
    return np.array([(-1, -0.25), (0.2, -0.25), (0.2, -0.7), (1, 0), (0.2, 0.7), (0.2, 0.25),
                     (-1, 0.25)], dtype=np.float64)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    x = 16 * np.sin(t)**3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y], axis=1) / 17


def _lightning() -> np.ndarray:
    return np.array([(-0.3, -1), (0.4, -1), (0.05, -0.15), (0.5, -0.15), (-0.35, 1),
                     (-0.05, 0.1), (-0.5, 0.1)], dtype=np.float64)


def _spiral() -> np.ndarray:
    t = np.linspace(0, 4 * np.pi, 80)
    return np.stack([np.cos(t), np.sin(t)], axis=1) * (t / (4 * np.pi))[:, None]


def _dumbbell() -> np.ndarray:
    return np.array([(-0.85, 0), (0.85, 0)], dtype=np.float64)


def _crescent() -> np.ndarray:
    t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 24)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    inner = np.stack([0.45 * np.cos(t[::-1]), np.sin(t[::-1])], axis=1)
    return np.concatenate([outer, inner])


def _object_mask(rng: Rng, size: int, shape: str) -> np.ndarray:
    """Boolean mask of one object of ``shape``, filled or (sometimes) outlined."""
    mask = np.zeros((size, size), dtype=np.uint8)
    thickness = int(rng.integers(2, 5))
    if shape == 'spiral':
        cv2.polylines(mask, [_transform(rng, _spiral(), size)], False, 1, thickness)
    elif shape == 'dumbbell':
        ends = _transform(rng, _dumbbell(), size)
        radius = int(rng.integers(4, max(5, size // 7)))
        cv2.line(mask, tuple(map(int, ends[0])), tuple(map(int, ends[1])), 1, thickness)
        for end in ends:
            cv2.circle(mask, tuple(map(int, end)), radius, 1, -1)
    else:
        outline = dict(arrow=_arrow, heart=_heart, lightning=_lightning,
                       crescent=_crescent)[shape]()
        points = _transform(rng, outline, size)
        if rng.random() < 0.25:
            cv2.polylines(mask, [points], True, 1, thickness)
        else:
            cv2.fillPoly(mask, [points], 1)
    return mask.astype(bool)


def _waves(rng: Rng, size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 12)
    warp = rng.uniform(1, 5) * np.sin(ys / rng.uniform(6, 15))
    phase = (xs * np.cos(angle) + ys * np.sin(angle) + warp) * 2 * np.pi / period
    return 0.5 + 0.5 * np.sin(phase)


def _bricks(rng: Rng, size: int) -> np.ndarray:
    height, width = int(rng.integers(5, 10)), int(rng.integers(10, 20))
    field = np.ones((size, size), dtype=np.float32)
    offset = int(rng.integers(width))
    for row, y in enumerate(range(0, size, height)):
        field[y:y + 1] = 0
        shift = offset + (width // 2) * (row % 2)
        for x in range(-shift % width, size, width):
            field[y:y + height, x:x + 1] = 0
    return _rotated(rng, field)


def _hexcells(rng: Rng, size: int) -> np.ndarray:
    pitch = rng.uniform(6, 12)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    row = np.floor(ys / (pitch * 0.866))
    centre_x = (np.floor(xs / pitch - 0.5 * (row % 2)) + 0.5 + 0.5 * (row % 2)) * pitch
    centre_y = (row + 0.5) * pitch * 0.866
    distance = np.hypot(xs - centre_x, ys - centre_y) / (pitch / 2)
    return (distance < rng.uniform(0.6, 0.9)).astype(np.float32)


def _scribbles(rng: Rng, size: int) -> np.ndarray:
    field = np.zeros((size, size), dtype=np.float32)
    for _ in range(int(rng.integers(3, 7))):
        steps = rng.normal(0, size / 10, size=(12, 2)).cumsum(axis=0) + rng.uniform(0, size, 2)
        cv2.polylines(field, [np.round(steps).astype(np.int32)], False, 1.0,
                      int(rng.integers(1, 3)))
    return field


def _speckles(rng: Rng, size: int) -> np.ndarray:
    field = np.zeros((size, size), dtype=np.float32)
    for _ in range(int(rng.integers(25, 60))):
        centre = tuple(int(v) for v in rng.integers(0, size, size=2))
        cv2.circle(field, centre, int(rng.integers(1, 3)), 1.0, -1)
    return field


def _concentric(rng: Rng, size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = rng.uniform(0, size, size=2)
    distance = np.hypot(xs - centre[0], ys - centre[1])
    return ((distance // rng.uniform(3, 7)) % 2).astype(np.float32)


def _rotated(rng: Rng, field: np.ndarray) -> np.ndarray:
    size = field.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-30, 30), 1.2)
    return cv2.warpAffine(field, matrix, (size, size), borderMode=cv2.BORDER_REFLECT)


_OBJECTS = ('arrow', 'crescent', 'heart', 'lightning', 'spiral', 'dumbbell')
_TEXTURE_FAMILIES: Dict[str, Callable[[Rng, int], np.ndarray]] = dict(
    waves=_waves, bricks=_bricks, hexcells=_hexcells, scribbles=_scribbles, speckles=_speckles,
    concentric=_concentric)
OOD_CLASSES: Tuple[str, ...] = _OBJECTS + tuple(_TEXTURE_FAMILIES)


def render_ood_image(rng: Rng, label: int, size: int) -> Image:
    """One (size, size, 3) uint8 BGR image of class ``OOD_CLASSES[label]``."""
    name = OOD_CLASSES[label]
    if name in _TEXTURE_FAMILIES:
        field = _TEXTURE_FAMILIES[name](rng, size)
        image = _mix(field, _colour(rng), _colour(rng))
        if rng.random() < 0.5:  # a second, faint pattern layer: the family is the cue, not colour
            image = 0.8 * image + 0.2 * _background(rng, size)
    else:
        image = _background(rng, size)
        mask = _object_mask(rng, size, name)
        image[mask] = _fill(rng, size)[mask]
    image = cv2.GaussianBlur(image.astype(np.float32), (3, 3), 0.6)
    image = image + rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_ood_imagefolder(out_dir: str = 'data/transfer_cls',
                             num_train: int = 1200,
                             num_val: int = 240,
                             seed: int = 0,
                             img_size: int = 64) -> Dict[str, dict]:
    """Writes the dataset under ``out_dir`` (see the module docstring) and returns its meta;
    a dataset made there with the same arguments is kept as it is.

    Args:
        out_dir (str): Dataset root. Defaults to ``'data/transfer_cls'``.
        num_train (int): Training images (classes take turns). Defaults to 1200.
        num_val (int): Validation images. Defaults to 240.
        seed (int): Seed; the same arguments always give the same files. Defaults to 0.
        img_size (int): Image width and height in pixels. Defaults to 64.

    Returns:
        dict: ``meta.json``'s content: the arguments, the classes and, per split, images per
        class.

    Raises:
        ValueError: when a split would miss a class, the images are too small, or ``out_dir``
            holds a dataset made with other arguments.
    """
    if min(num_train, num_val) < len(OOD_CLASSES):
        raise ValueError(f'num_train={num_train} and num_val={num_val} must each be at least '
                         f'the {len(OOD_CLASSES)} classes, so that every class has an image')
    if img_size < 32:
        raise ValueError(f'img_size={img_size} is too small to draw the classes; use 32 or more')
    args = dict(num_train=num_train, num_val=num_val, seed=seed, img_size=img_size)
    meta = made_before(out_dir, args)
    if meta is not None:
        return meta
    counts = {}
    for split_index, (split, num_images) in enumerate(zip(SPLITS, (num_train, num_val))):
        per_class = dict.fromkeys(OOD_CLASSES, 0)
        for index in range(num_images):
            label = index % len(OOD_CLASSES)
            image = render_ood_image(np.random.default_rng([seed, split_index, index]), label,
                                     img_size)
            write_image(out_dir, split, OOD_CLASSES[label], index, image)
            per_class[OOD_CLASSES[label]] += 1
        counts[split] = per_class
    return write_meta(out_dir, dict(args=args, classes=list(OOD_CLASSES), splits=counts))
