"""A seeded classification dataset in ImageNet's folder layout, from the demo data's objects.

Each image holds one object of :data:`netaug_det.datasets.demo_data.DEMO_CLASSES` drawn by the
detection demo's renderer (same shapes, colours, textures, clutter and occluders), so a backbone
pretrained on it has seen the objects the demo detector looks for. Layout under ``out_dir``::

    train/<class>/<index>.jpg ...
    val/<class>/<index>.jpg ...
    meta.json     (the generator's arguments and the images per class and split)

It exists to run the ImageNet pretraining pipeline end to end on a CPU; its accuracies say
nothing about ImageNet. Every image depends only on ``(seed, split, index)``.
"""
import os
import os.path as osp
from collections import Counter
from typing import Dict

import cv2
import numpy as np

from .demo_data import DEMO_CLASSES, SPLITS, made_before, render_image, write_meta


def generate_demo_imagefolder(out_dir: str = 'data/demo_cls',
                              num_train: int = 1500,
                              num_val: int = 300,
                              seed: int = 0,
                              img_size: int = 64,
                              min_object_size: int = 16) -> Dict[str, dict]:
    """Writes the dataset under ``out_dir`` (see the module docstring) and returns its meta;
    a dataset made there with the same arguments is kept as it is.

    Args:
        out_dir (str): Dataset root. Defaults to ``'data/demo_cls'``.
        num_train (int): Training images. Defaults to 1500.
        num_val (int): Validation images. Defaults to 300.
        seed (int): Seed; the same arguments always give the same files. Defaults to 0.
        img_size (int): Image width and height in pixels. Defaults to 64.
        min_object_size (int): Smallest object diameter in pixels (the largest is 45% of the
            image side). Defaults to 16.

    Returns:
        dict: ``meta.json``'s content: the arguments and, per split, images per class.

    Raises:
        ValueError: when the sizes leave no room for objects, a split would miss a class, or
            ``out_dir`` holds a dataset made with other arguments.
    """
    if not 0 < min_object_size < 0.45 * img_size:
        raise ValueError(f'min_object_size={min_object_size} must be in (0, 0.45 * img_size = '
                         f'{0.45 * img_size})')
    args = dict(num_train=num_train, num_val=num_val, seed=seed, img_size=img_size,
                min_object_size=min_object_size)
    meta = made_before(out_dir, args)
    if meta is not None:
        return meta
    counts = {}
    for split_index, (split, num_images) in enumerate(zip(SPLITS, (num_train, num_val))):
        per_class = Counter()
        index = 0
        while sum(per_class.values()) < num_images:
            rng = np.random.default_rng([seed, split_index, index])
            index += 1
            image, objects = render_image(rng, img_size, img_size, 1, min_object_size)
            if not objects:  # the object did not fit: draw the next index
                continue
            name = DEMO_CLASSES[objects[0][0]]
            write_image(out_dir, split, name, index - 1, image)
            per_class[name] += 1
        missing = sorted(set(DEMO_CLASSES) - set(per_class))
        if missing:
            raise ValueError(f'the {split} split has no image of {missing}; generate more images')
        counts[split] = {name: per_class[name] for name in DEMO_CLASSES}
    return write_meta(out_dir, dict(args=args, classes=list(DEMO_CLASSES), splits=counts))


def write_image(out_dir: str, split: str, name: str, index: int, image: np.ndarray) -> None:
    """Writes ``image`` as ``out_dir/split/name/<index>.jpg`` (JPEG quality 92)."""
    folder = osp.join(out_dir, split, name)
    os.makedirs(folder, exist_ok=True)
    cv2.imwrite(osp.join(folder, f'{index:06d}.jpg'), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
