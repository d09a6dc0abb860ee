"""ImageNet-style classification data: class folders, the official NetAug transforms, top-k metric.

Layout (torchvision's ``ImageFolder``, ImageNet's ``train/`` and ``val/`` after the usual
preparation)::

    <data_root>/train/<class>/<image>.JPEG ...
    <data_root>/val/<class>/<image>.JPEG ...

Transforms (official NetAug ``setup.py``, torchvision on PIL images, so the very same operations):
training ``RandomResizedCrop(S)``, ``RandomHorizontalFlip()``,
``ColorJitter(brightness=32 / 255, saturation=0.5)``; testing a resize of the shorter side to
``ceil(S / 0.875)`` and a centre crop ``S``. Normalisation (ImageNet mean and std) is the model's
data preprocessor's job, on the uint8 tensors ``PackClsInputs`` writes.
"""
import math
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import DATASETS, METRICS, TRANSFORMS
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement
from PIL import Image
from torchvision import transforms as tv_transforms
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import functional as tv_functional

from .checks import DataError, DataProblem, problems_report


def _scan(folder: str) -> Iterator[os.DirEntry]:
    """Image files below ``folder`` (recursively, symlinks followed), in sorted order."""
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        if entry.is_dir():
            yield from _scan(entry.path)
        elif entry.name.lower().endswith(IMG_EXTENSIONS):
            yield entry


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Images in one folder per class (torchvision ``ImageFolder``'s layout and class order).

    Classes are the sub-folders of ``<data_root>/<data_prefix.img_path>`` in sorted order (class
    index = position), unless ``metainfo=dict(classes=...)`` lists them, in which case every
    sub-folder must be one of them (a class may have no folder, e.g. in a small validation set).
    Each data info is ``dict(img_path=..., gt_label=index)``. Files are checked while they are
    listed (a class folder without images, an empty file): the runner's per-file check is not
    repeated (``checks_own_files``).

    Args:
        data_root (str): Dataset root.
        data_prefix (dict): ``dict(img_path='train/')``: the class folders under ``data_root``.
        pipeline (list): Transforms, e.g. ``LoadPILImage``, ``TorchVision``, ``PackClsInputs``.
        **kwargs: Other arguments of mmengine's ``BaseDataset`` (``metainfo``, ``test_mode``,
            ``indices``, ``lazy_init``...).
    """

    checks_own_files = True

    def __init__(self, data_root: str = '', data_prefix: dict = dict(img_path=''),
                 pipeline: Sequence = (), **kwargs) -> None:
        super().__init__(data_root=data_root, data_prefix=data_prefix, pipeline=list(pipeline),
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """Lists the images of every class folder (see the class docstring)."""
        root = self.data_prefix['img_path']
        if not osp.isdir(root):
            raise DataError(f'image folder not found: {root}; expected {root}/<class>/<images> '
                            '(ImageNet: data_root=DIR/ with DIR/train and DIR/val)')
        folders = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
        classes = self._metainfo.get('classes')
        if classes:
            unknown = sorted(set(folders) - set(classes))
            if unknown:
                raise DataError(f'{root} has folders of classes outside metainfo.classes: '
                                f'{unknown[:5]} ({len(unknown)} in all)')
        else:
            classes = self._metainfo['classes'] = tuple(folders)
        if not folders:
            raise DataError(f'{root} has no class folders; expected {root}/<class>/<images>')
        data_list, problems = [], []
        for name in folders:
            found, label = 0, classes.index(name)
            for entry in _scan(osp.join(root, name)):
                found += 1
                if entry.stat().st_size == 0:
                    problems.append(DataProblem(entry.path, 'image file is empty (0 bytes)'))
                data_list.append(dict(img_path=entry.path, gt_label=label))
            if not found:
                problems.append(DataProblem(osp.join(root, name),
                                            f'class folder without images ({IMG_EXTENSIONS})'))
        if problems:
            raise DataError(f'bad data in {root}:\n  {problems_report(problems)}\nFix or remove '
                            'these files or folders')
        return data_list


@TRANSFORMS.register_module()
class LoadPILImage(BaseTransform):
    """Reads ``results['img_path']`` as an RGB PIL image into ``results['img']``, as
    torchvision's ``ImageFolder`` loader does; sets ``ori_shape`` and ``img_shape`` (h, w)."""

    def transform(self, results: dict) -> dict:
        with open(results['img_path'], 'rb') as f:
            image = Image.open(f).convert('RGB')
        results['img'] = image
        results['ori_shape'] = results['img_shape'] = (image.height, image.width)
        return results


@TRANSFORMS.register_module()
class TorchVision(BaseTransform):
    """Applies ``torchvision.transforms.<transform>(**kwargs)`` to ``results['img']``.

    E.g. ``dict(type='TorchVision', transform='RandomResizedCrop', size=(160, 160))``. Random
    transforms draw from torch's global generator, which mmengine seeds per dataloader worker.
    """

    def __init__(self, transform: str, **kwargs) -> None:
        if not hasattr(tv_transforms, transform):
            raise ValueError(f'torchvision.transforms has no {transform!r}')
        self.name = transform
        self.op = getattr(tv_transforms, transform)(**kwargs)

    def transform(self, results: dict) -> dict:
        results['img'] = self.op(results['img'])
        results['img_shape'] = tv_functional.get_image_size(results['img'])[::-1]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.op!r})'


@TRANSFORMS.register_module()
class ResizeCenterCrop(BaseTransform):
    """The ImageNet test transform: the shorter side resized to ``ceil(max(size) / crop_ratio)``
    (bilinear, PIL), then the centre ``size`` (h, w) cropped.

    Args:
        size (tuple[int, int]): Output (h, w). The config's ``input_size`` follows
            ``--cfg-options input_size=S`` as a square ``(S, S)``.
        crop_ratio (float): Crop over resized side. Defaults to 0.875 (official NetAug).
    """

    def __init__(self, size: Tuple[int, int], crop_ratio: float = 0.875) -> None:
        if not 0 < crop_ratio <= 1:
            raise ValueError(f'crop_ratio must be in (0, 1], got {crop_ratio}')
        self.size = tuple(size)
        self.resize = int(math.ceil(max(self.size) / crop_ratio))

    def transform(self, results: dict) -> dict:
        image = tv_functional.resize(results['img'], self.resize)
        results['img'] = tv_functional.center_crop(image, list(self.size))
        results['img_shape'] = self.size
        return results


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """``inputs``: the image as a (3, H, W) uint8 RGB tensor; ``data_samples``: a
    ``BaseDataElement`` with ``gt_label`` (1, ) and the image's path and shapes as metainfo."""

    def transform(self, results: dict) -> dict:
        sample = BaseDataElement(metainfo=dict(
            img_path=results['img_path'], ori_shape=results['ori_shape'],
            img_shape=results['img_shape']))
        sample.gt_label = torch.tensor([results['gt_label']], dtype=torch.long)
        return dict(inputs=tv_functional.pil_to_tensor(results['img']), data_samples=sample)


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy (%) of ``pred_score`` against ``gt_label``: ``accuracy/top1``,
    ``accuracy/top5``... A k at least the number of classes counts every image as a hit.

    Args:
        topk (Sequence[int]): The k's. Defaults to (1, 5).
        collect_device (str): Where results are gathered across ranks. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to 'accuracy'.
    """

    default_prefix: Optional[str] = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not topk or min(topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Stores, per image, whether the label is among the k best scores, for every k."""
        for sample in data_samples:
            score, label = sample['pred_score'], int(sample['gt_label'][0])
            rank = int((score > score[label]).sum())
            self.results.append(tuple(rank < k for k in self.topk))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """``top<k>``: percentage of images whose label is among the k best scores."""
        hits = torch.tensor(results, dtype=torch.float64)
        return {f'top{k}': float(hits[:, i].mean() * 100) for i, k in enumerate(self.topk)}
