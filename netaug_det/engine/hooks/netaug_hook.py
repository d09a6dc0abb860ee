"""NetAugHook: Network Augmentation training for any detector with a NetAug-capable backbone."""
import os.path as osp
from typing import Optional

import torch
import torch.nn as nn
from mmdet.registry import HOOKS
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.checkpoint import save_checkpoint

from netaug_det.models.netaug_detector import (AUG_MODES, NetAugLoss, deployable_checkpoint,
                                               netaug_backbone)

CHECKPOINT_KEY = 'netaug'
_NOT_STARTED = 'not started'


@HOOKS.register_module()
class NetAugHook(Hook):
    """Trains the detector with Network Augmentation (NetAug, Cai et al., ICLR 2022).

    ``custom_hooks = [dict(type='NetAugHook')]`` in a config whose backbone is NetAug-capable
    (``NetAugMobileNetV2``/``NetAugMobileNetV3``) is all it takes. Each training step then
    minimises base loss + ``alpha`` x the loss of one augmented backbone sampled for that step
    (same batch, same neck and head) in one optimizer step: the hook installs a
    :class:`NetAugLoss` as the detector's ``loss``, so mmengine's optimizer wrapper (clipping,
    AMP, ``accumulative_counts``, paramwise settings) and DDP see one ordinary loss.

    Schedule, in epochs for epoch-based loops and in iterations for iteration-based ones, with
    ``T`` the training length and ``t`` the current epoch/iteration (0-based):

    - ``t < width_aug_ratio * T``: widths and expand ratios sampled ('random' mode), hidden
      channels sorted by importance at the start of every epoch (iteration-based loops: every
      ``sort_interval`` iterations); parameters a sort reorders restart their optimizer state;
    - afterwards expand ratios only ('random_expand'), no sorting;
    - ``t >= T - stop_aug_before_end``: no auxiliary pass (base training only).

    Sampling draws only from the hook's ``torch.Generator``, seeded identically on every rank
    (``seed``, or rank 0's run seed) and advanced once per step on every rank, so all DDP ranks
    use the same augmented widths. Its state goes into every checkpoint and comes back on
    ``--resume``; the schedule is a function of the restored epoch/iteration. The backbone is in
    base mode outside the auxiliary pass, so validation, testing and the end of training see
    the base model; augmented passes leave every BatchNorm's running statistics (backbone, neck
    and head) alone, so those are the base model's. At the end of training the hook writes
    ``<work_dir>/<deploy_filename>``: the base detector with the plain exported backbone, which
    the matching baseline config loads with ``tools/test.py``.

    Args:
        alpha (float): weight of the auxiliary (augmented-model) loss. Defaults to 1.0.
        width_aug_ratio (float): fraction of training with width augmentation. Defaults to 0.5
            (official code: widths stop for the last 75 of 155 epochs).
        stop_aug_before_end (int): epochs (iteration-based loops: iterations) at the end of
            training without any augmentation. Defaults to 0.
        sort_channels (bool): sort hidden channels while widths are augmented. Defaults to True.
        sort_interval (int, optional): iteration-based loops only: iterations between sorts;
            defaults to the length of the train dataloader (one pass over the data).
        seed (int, optional): seed of the augmented-model sampler. Defaults to the run's seed.
        deploy_filename (str, optional): name of the deployable checkpoint written into the work
            dir after training; None writes none. Defaults to 'deploy.pth'.
    """

    priority = 'NORMAL'

    def __init__(self,
                 alpha: float = 1.0,
                 width_aug_ratio: float = 0.5,
                 stop_aug_before_end: int = 0,
                 sort_channels: bool = True,
                 sort_interval: Optional[int] = None,
                 seed: Optional[int] = None,
                 deploy_filename: Optional[str] = 'deploy.pth') -> None:
        if alpha < 0:
            raise ValueError(f'NetAugHook: alpha must be >= 0, got {alpha}')
        if not 0 <= width_aug_ratio <= 1:
            raise ValueError('NetAugHook: width_aug_ratio is a fraction of training in [0, 1], '
                             f'got {width_aug_ratio}')
        if stop_aug_before_end < 0:
            raise ValueError('NetAugHook: stop_aug_before_end counts epochs/iterations and must be '
                             f'>= 0, got {stop_aug_before_end}')
        if sort_interval is not None and sort_interval < 1:
            raise ValueError(f'NetAugHook: sort_interval must be >= 1 or None, got {sort_interval}')
        self.alpha = alpha
        self.width_aug_ratio = width_aug_ratio
        self.stop_aug_before_end = stop_aug_before_end
        self.sort_channels = sort_channels
        self.sort_interval = sort_interval
        self.seed = seed
        self.deploy_filename = deploy_filename
        self.generator = torch.Generator()
        self._resumed_generator_state: Optional[torch.Tensor] = None
        self._loss: Optional[NetAugLoss] = None
        self._by_epoch = True
        self._aug_mode: Optional[str] = _NOT_STARTED

    def aug_mode_at(self, progress: int, total: int) -> Optional[str]:
        """The augmentation mode of epoch/iteration ``progress`` (0-based) out of ``total``."""
        if progress >= total - self.stop_aug_before_end:
            return None
        if progress < self.width_aug_ratio * total:
            return AUG_MODES[0]
        return AUG_MODES[1]

    def before_train(self, runner) -> None:
        """Seeds the sampler (or restores it on resume) and installs the NetAug loss."""
        detector = self._detector(runner)
        self._loss = NetAugLoss(detector, self.alpha, self.generator)
        self._by_epoch = not isinstance(runner.train_loop, IterBasedTrainLoop)
        if not self._by_epoch and self.sort_interval is None:
            self.sort_interval = len(runner.train_dataloader)
        if self.sort_channels and any(isinstance(hook, EMAHook) for hook in runner.hooks):
            runner.logger.warning('NetAugHook: EMAHook averages parameters across channel sorts, '
                                  'which mixes unrelated channels; set sort_channels=False when '
                                  'using EMA')
        seed = [self.seed if self.seed is not None else runner.seed]
        broadcast_object_list(seed)
        self.generator.manual_seed(seed[0])
        if self._resumed_generator_state is not None:
            self.generator.set_state(self._resumed_generator_state)
            self._resumed_generator_state = None
        detector.loss = self._loss
        self._aug_mode = _NOT_STARTED

    def before_train_epoch(self, runner) -> None:
        """Epoch-based loops: sorts channels at the start of every width-augmented epoch."""
        if self._by_epoch:
            self._update_schedule(runner, runner.epoch, runner.max_epochs, sort=True)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Iteration-based loops: the mode of this iteration and sorting every ``sort_interval``."""
        if not self._by_epoch:
            self._update_schedule(runner, runner.iter, runner.max_iters,
                                  sort=runner.iter % self.sort_interval == 0)

    def before_val(self, runner) -> None:
        self._set_base_mode(runner)

    def before_test(self, runner) -> None:
        self._set_base_mode(runner)

    def after_train(self, runner) -> None:
        """Removes the NetAug loss, leaves the base model and writes the deployable checkpoint."""
        detector = self._detector(runner)
        if detector.__dict__.get('loss') is self._loss:
            del detector.loss
        self._set_base_mode(runner)
        if self.deploy_filename is not None and is_main_process():
            filename = osp.join(runner.work_dir, self.deploy_filename)
            save_checkpoint(deployable_checkpoint(detector, self._run_meta(runner)), filename)
            runner.logger.info(f'NetAugHook: deployable base detector saved to {filename}; '
                               'test it with the baseline config: tools/test.py BASELINE_CONFIG '
                               f'{filename}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(generator_state=self.generator.get_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On resume, keeps the sampler state for ``before_train`` (which runs afterwards)."""
        if not runner._resume:
            return
        if CHECKPOINT_KEY not in checkpoint:
            runner.logger.warning('NetAugHook: the resumed checkpoint has no NetAug state (not '
                                  'written by a NetAug run); the augmented-model sampler starts '
                                  'from its seed')
            return
        self._resumed_generator_state = checkpoint[CHECKPOINT_KEY]['generator_state']

    def _update_schedule(self, runner, progress: int, total: int, sort: bool) -> None:
        aug_mode = self.aug_mode_at(progress, total)
        if aug_mode != self._aug_mode:
            unit = 'epoch' if self._by_epoch else 'iteration'
            runner.logger.info(f'NetAugHook: from {unit} {progress + 1}, auxiliary pass in '
                               f'{aug_mode or "none (base training only)"} mode')
            self._aug_mode = aug_mode
        self._loss.aug_mode = aug_mode
        if sort and self.sort_channels and aug_mode == AUG_MODES[0]:
            self._sort_channels(runner)

    def _sort_channels(self, runner) -> None:
        """Sorts the backbone's hidden channels; every parameter the sort reorders loses its
        optimizer state (momentum kept in the old channel order would push other channels)."""
        params = dict(self._loss.backbone.named_parameters())
        before = {name: param.detach().clone() for name, param in params.items()}
        self._loss.backbone.sort_channels()
        moved = [param for name, param in params.items() if not torch.equal(param, before[name])]
        wrappers = runner.optim_wrapper.values() if isinstance(
            runner.optim_wrapper, OptimWrapperDict) else [runner.optim_wrapper]
        for wrapper in wrappers:
            for param in moved:
                wrapper.optimizer.state.pop(param, None)

    def _set_base_mode(self, runner) -> None:
        netaug_backbone(self._detector(runner)).set_mode('base')

    @staticmethod
    def _detector(runner) -> nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def _run_meta(runner) -> dict:
        meta = dict(epoch=runner.epoch, iter=runner.iter, seed=runner.seed)
        dataset = runner.train_dataloader.dataset
        if hasattr(dataset, 'metainfo'):
            meta['dataset_meta'] = dataset.metainfo
        return meta
