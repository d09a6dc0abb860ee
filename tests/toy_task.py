"""A toy regression task with mmengine's model, dataset and metric contracts (tests only)."""
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """Linear regression from 4 features; returns per-batch squared errors in predict mode."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        preds = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((preds - targets)**2).mean())
        return [dict(error=float(((preds - targets)**2).sum()), count=len(preds))]


@DATASETS.register_module()
class ToyDataset(torch.utils.data.Dataset):
    """``size`` seeded samples whose target is the sum of their 4 features."""

    metainfo = dict(classes=('toy', ))

    def __init__(self, size=16):
        generator = torch.Generator().manual_seed(0)
        self.inputs = torch.randn(size, 4, generator=generator)
        self.targets = self.inputs.sum(1, keepdim=True)

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return dict(inputs=self.inputs[index], targets=self.targets[index])


@METRICS.register_module()
class ToyMSE(BaseMetric):
    """Mean squared error over a test set."""

    def process(self, data_batch, data_samples):
        self.results.extend(data_samples)

    def compute_metrics(self, results):
        return dict(mse=sum(r['error'] for r in results) / sum(r['count'] for r in results))


class SeededSamples(torch.utils.data.Dataset):
    """``length`` fixed samples: sample ``i`` is ``make_sample`` of a generator seeded with ``i``
    (subclasses define it); classes ``('a', 'b', 'c')``."""

    metainfo = dict(classes=('a', 'b', 'c'))

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.make_sample(torch.Generator().manual_seed(index), index)

    def make_sample(self, generator: torch.Generator, index: int) -> dict:
        raise NotImplementedError
