"""NetAugHook: the NetAug training schedule for any model holding NetAug modules."""
import math
import os.path as osp
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import broadcast_object_list, get_rank, is_main_process
from mmengine.hooks import EMAHook, Hook
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop, Runner
from mmengine.runner.checkpoint import save_checkpoint

from netaug_det.models.distillation import NetAugSelfDistillation
from netaug_det.models.netaug import NetAugAuxLoss, NetAugSupernet, deployable_checkpoint
from netaug_det.models.netaug.supernet import SORT_SCOPES
from netaug_det.models.train_loss import TrainLoss
from netaug_det.utils.cli import RunRefusedError
from netaug_det.utils.distributed import unwrap_model

CHECKPOINT_KEY = 'netaug'
TERM_NAME = 'netaug'
SELF_DISTILL_TERM_NAME = 'netaug_self_distill'
_NOT_STARTED = 'not started'
# Tolerance of the phase boundaries: 0.7 * 10 is 7.000000000000001 in floating point.
_EPS = 1e-9


def save_deployable(runner: Runner, filename: str, source: str) -> None:
    """Writes ``<work_dir>/<filename>``: the plain model (NetAug modules exported, training-only
    modules dropped) of the EMA weights when an ``EMAHook`` runs, else of the model."""
    if not is_main_process():
        return
    ema_hook = find_ema_hook(runner)
    model = unwrap_model(runner.model)
    meta = dict(epoch=runner.epoch, iter=runner.iter, seed=runner.seed)
    if hasattr(runner.train_dataloader.dataset, 'metainfo'):
        meta['dataset_meta'] = runner.train_dataloader.dataset.metainfo
    path = osp.join(runner.work_dir, filename)
    checkpoint = deployable_checkpoint(model if ema_hook is None else ema_hook.ema_model.module,
                                       meta)
    check_finite_weights(checkpoint['state_dict'], path)
    save_checkpoint(checkpoint, path)
    averaged = '' if ema_hook is None else ' (EMA weights)'
    runner.logger.info(f'{source}: deployable model{averaged} saved to {path}; test it with the '
                       f'baseline config: tools/test.py BASELINE_CONFIG {path}')


def check_finite_weights(state_dict: dict, path: str) -> None:
    """Raises a :class:`RunRefusedError` naming the tensors of ``state_dict`` (name -> tensor)
    with NaN or infinite values, so that ``path`` is never written from them."""
    bad = [name for name, value in state_dict.items()
           if torch.is_tensor(value) and value.is_floating_point()
           and not torch.isfinite(value).all()]
    if bad:
        raise RunRefusedError(
            f'{len(bad)} weight tensor(s) hold NaN or infinite values (e.g. {bad[:3]}): training '
            f'diverged, and {path} was not written. Lower the learning rate or the loss weights '
            '(e.g. NetAugHook alpha), or resume from an earlier checkpoint of the work dir')


def check_finite(owner: str, values: dict, prefix: str = '') -> None:
    """Raises a ValueError naming ``owner`` and the argument for the first float of ``values``
    (name -> value; dicts searched too, their keys after ``name.``) that is NaN or infinite."""
    for name, value in values.items():
        if isinstance(value, dict):
            check_finite(owner, value, f'{prefix}{name}.')
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'{owner}: {prefix}{name} must be a finite number, got {value}')


def find_ema_hook(runner: Runner) -> Optional[EMAHook]:
    """The run's ``EMAHook``, if any."""
    return next((hook for hook in runner.hooks if isinstance(hook, EMAHook)), None)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of the augmented-model sampler at ``step`` on ``rank``: a well-mixed 64-bit
    function of the three, so that resuming at any step reproduces the samples."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0])


@HOOKS.register_module()
class NetAugHook(Hook):
    """Trains a model with Network Augmentation (NetAug, Cai et al., ICLR 2022).

    ``custom_hooks = [dict(type='NetAugHook')]`` in a config whose model holds NetAug modules
    (e.g. ``NetAugMobileNetV2`` as backbone) is all it takes. Each training step then minimises
    base loss + ``alpha`` x the loss of one augmented model sampled for that step (same batch) in
    one optimizer step: the hook adds a :class:`NetAugAuxLoss` term to the model's
    :class:`TrainLoss`, so the optimizer wrapper (clipping, AMP, ``accumulative_counts``,
    paramwise settings) and DDP see one ordinary loss. The model's
    :class:`NetAugSupernet` owns the widths; the hook only decides the schedule.

    Schedule, with ``t`` the current epoch (iteration-based loops: iteration, 0-based) and ``T``
    the training length:

    - the first ``ceil(width_aug_ratio * T)`` units: widths and expand ratios sampled
      ('random'), hidden channels sorted by importance at the start of every epoch
      (iteration-based loops: every ``sort_interval`` iterations);
    - afterwards expand ratios only ('random_expand'), no sorting;
    - the last ``floor(stop_aug_ratio * T)`` units: no auxiliary pass (base training only).

    With ``aux_interval=k`` the auxiliary pass runs on every k-th iteration only, its losses (and
    the self-distillation terms) weighted k times, so that their expected contribution stays.

    Sampling: the augmented model of iteration ``i`` is drawn from a generator seeded with a
    function of (seed, rank, i): with ``sync_sampling=False`` (official NetAug, ``sync: false``)
    every DDP rank samples its own model, so one update averages one augmented model per rank;
    with ``sync_sampling=True`` all ranks use the same one. The samples depend on nothing else,
    so ``--resume`` reproduces them; the seed is stored in checkpoints.

    A sort permutes the optimizer state (momentum, Adam moments), any gradient being accumulated
    and an ``EMAHook``'s averaged copy with the parameters. The model outside the auxiliary pass
    is in base mode, so validation and testing see the base model; augmented passes leave every
    running statistic alone. At the end of training the hook writes
    ``<work_dir>/<deploy_filename>``: the plain model of the base widths (the ``EMAHook``'s
    averaged weights when there is one, the weights validation used), which the baseline config
    loads with ``tools/test.py``.

    Args:
        alpha (float): weight of the auxiliary (augmented-model) loss. Defaults to 1.0.
        width_aug_ratio (float): fraction of training with width augmentation. Defaults to 0.5
            (the official ImageNet recipe samples widths for 80 of 155 epochs, 0.516).
        stop_aug_ratio (float): fraction of training, at the end, without any auxiliary pass.
            Defaults to 0.
        sort_channels (bool): sort hidden channels while widths are augmented. Defaults to True.
        sort_scope (str): 'auto', 'all' or 'augmented', see
            :meth:`NetAugSupernet.sort_channels`. 'auto' (default) never moves base channels
            of a module initialised from a plain pretrained checkpoint.
        sort_interval (int, optional): iteration-based loops only: iterations between sorts;
            defaults to the length of the train dataloader (one pass over the data).
        sync_sampling (bool): all ranks use the same augmented model. Defaults to False.
        aux_interval (int): run the auxiliary pass every this many iterations. Defaults to 1.
        seed (int, optional): seed of the sampler. Defaults to the run's seed.
        self_distill (dict, optional): online self-distillation from the augmented model to the
            base model, a :class:`netaug_det.models.distillation.NetAugSelfDistillation` term
            (arguments of :class:`netaug_det.models.distillation.SelfDistillation`, e.g.
            ``dict(rkd_distance=25.0, rkd_angle=50.0)``). Defaults to None (none).
        release_base_graph (bool): lower peak memory, the same update: the base pass's gradient
            is taken before the auxiliary pass runs, freeing its activations
            (:func:`netaug_det.models.train_loss.release_graph`). Not with ``self_distill``,
            which compares the two passes. Defaults to False.
        deploy_filename (str, optional): name of the deployable checkpoint written into the work
            dir after training; None writes none. Defaults to 'deploy.pth'.
    """

    priority = 'NORMAL'

    def __init__(self,
                 alpha: float = 1.0,
                 width_aug_ratio: float = 0.5,
                 stop_aug_ratio: float = 0.0,
                 sort_channels: bool = True,
                 sort_scope: str = 'auto',
                 sort_interval: Optional[int] = None,
                 sync_sampling: bool = False,
                 aux_interval: int = 1,
                 seed: Optional[int] = None,
                 self_distill: Optional[dict] = None,
                 release_base_graph: bool = False,
                 deploy_filename: Optional[str] = 'deploy.pth',
                 stop_aug_before_end: Optional[int] = None) -> None:
        if stop_aug_before_end is not None:
            raise ValueError('NetAugHook: stop_aug_before_end counted epochs or iterations '
                             'depending on the loop; use stop_aug_ratio, a fraction of training '
                             '(e.g. 5 of 155 epochs: stop_aug_ratio=5/155)')
        check_finite('NetAugHook', dict(alpha=alpha, width_aug_ratio=width_aug_ratio,
                                        stop_aug_ratio=stop_aug_ratio,
                                        self_distill=self_distill or {}))
        if alpha < 0:
            raise ValueError(f'NetAugHook: alpha must be >= 0, got {alpha}')
        for name, ratio in (('width_aug_ratio', width_aug_ratio),
                            ('stop_aug_ratio', stop_aug_ratio)):
            if not 0 <= ratio <= 1:
                raise ValueError(f'NetAugHook: {name} is a fraction of training in [0, 1], got '
                                 f'{ratio}')
        if sort_scope not in SORT_SCOPES:
            raise ValueError(f'NetAugHook: sort_scope must be one of {SORT_SCOPES}, got '
                             f'{sort_scope!r}')
        if sort_interval is not None and sort_interval < 1:
            raise ValueError(f'NetAugHook: sort_interval must be >= 1 or None, got {sort_interval}')
        if aux_interval < 1:
            raise ValueError(f'NetAugHook: aux_interval must be >= 1, got {aux_interval}')
        if release_base_graph and self_distill is not None:
            raise ValueError('NetAugHook: release_base_graph frees the base pass before the '
                             'augmented pass, which self_distill compares it with; use one of '
                             'them')
        self.alpha = alpha
        self.width_aug_ratio = width_aug_ratio
        self.stop_aug_ratio = stop_aug_ratio
        self.sort_channels = sort_channels
        self.sort_scope = sort_scope
        self.sort_interval = sort_interval
        self.sync_sampling = sync_sampling
        self.aux_interval = aux_interval
        self.seed = seed
        self.self_distill = self_distill
        self.release_base_graph = release_base_graph
        self.deploy_filename = deploy_filename
        self.supernet: Optional[NetAugSupernet] = None
        self.term: Optional[NetAugAuxLoss] = None
        self.self_distill_term: Optional[NetAugSelfDistillation] = None
        self._resumed_seed: Optional[int] = None
        self._sampler_seed = 0
        self._rank = 0
        self._by_epoch = True
        self._sort_every = 1
        self._ema_hook: Optional[EMAHook] = None
        self._phase: Optional[str] = _NOT_STARTED

    def aug_mode_at(self, progress: int, total: int) -> Optional[str]:
        """The augmentation mode of epoch/iteration ``progress`` (0-based) out of ``total``.

        The phase lengths are whole units computed once, so that float rounding never moves a
        boundary: ``ceil(width_aug_ratio * T)`` units with widths, the last
        ``floor(stop_aug_ratio * T)`` units without any auxiliary pass.
        """
        if progress >= total - math.floor(self.stop_aug_ratio * total + _EPS):
            return None
        if progress < math.ceil(self.width_aug_ratio * total - _EPS):
            return 'random'
        return 'random_expand'

    def before_train(self, runner: Runner) -> None:
        """Finds the NetAug modules, adds the auxiliary term, seeds the sampler."""
        model = unwrap_model(runner.model)
        self.supernet = NetAugSupernet(model)
        self.term = NetAugAuxLoss(self.supernet, self.alpha,
                                  keep_outputs=self.self_distill is not None)
        loss = TrainLoss.attach(model)
        loss.add(TERM_NAME, self.term)
        if self.self_distill is not None:
            num_classes = getattr(getattr(model, 'bbox_head', None), 'num_classes', None)
            self.self_distill_term = NetAugSelfDistillation(self.term, num_classes,
                                                            **self.self_distill)
            loss.add(SELF_DISTILL_TERM_NAME, self.self_distill_term)
        loss.release_base_graph = self.release_base_graph
        self._by_epoch = not isinstance(runner.train_loop, IterBasedTrainLoop)
        self._sort_every = self.sort_interval or len(runner.train_dataloader)
        seed = [self._resumed_seed if self._resumed_seed is not None else
                self.seed if self.seed is not None else runner.seed]
        broadcast_object_list(seed)
        self._sampler_seed = seed[0]
        self._rank = 0 if self.sync_sampling else get_rank()
        self._ema_hook = find_ema_hook(runner)
        self._phase = _NOT_STARTED
        runner.logger.info(
            f'NetAugHook: NetAug modules {list(self.supernet.modules)}, sampler seed '
            f'{self._sampler_seed}, ' + ('one augmented model for all ranks' if
                                         self.sync_sampling else 'one augmented model per rank'))

    def before_train_epoch(self, runner: Runner) -> None:
        """Epoch-based loops: the phase of this epoch, and a sort at its start."""
        if self._by_epoch:
            self._update_phase(runner, runner.epoch, runner.max_epochs, sort=True)

    def before_train_iter(self, runner: Runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """The phase (iteration-based loops), a sort every ``sort_interval`` iterations
        (iteration-based loops), and the sampler of this iteration."""
        if not self._by_epoch:
            self._update_phase(runner, runner.iter, runner.max_iters,
                               sort=runner.iter % self._sort_every == 0)
        aux_step = runner.iter % self.aux_interval == 0
        self.term.prepare_step(self._phase if aux_step else None, self.aux_interval,
                               step_seed(self._sampler_seed, self._rank, runner.iter))
        if self.release_base_graph:
            TrainLoss.of(unwrap_model(runner.model)).prepare_step(self._loss_scale(runner))

    def after_train(self, runner: Runner) -> None:
        """Removes the auxiliary term and writes the deployable checkpoint."""
        model = unwrap_model(runner.model)
        loss = TrainLoss.of(model)
        if loss is not None:
            loss.release_base_graph = False
            loss.remove(TERM_NAME, self.term)
            if self.self_distill_term is not None:
                loss.remove(SELF_DISTILL_TERM_NAME, self.self_distill_term)
        if self.deploy_filename is not None:
            save_deployable(runner, self.deploy_filename, 'NetAugHook')

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(sampler_seed=self._sampler_seed,
                                          sync_sampling=self.sync_sampling)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """On resume, keeps the sampler seed of the interrupted run for ``before_train``."""
        if not runner._resume:
            return
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            runner.logger.warning('NetAugHook: the resumed checkpoint has no NetAug state (not '
                                  'written by a NetAug run); the sampler uses this run\'s seed')
            return
        self._resumed_seed = state['sampler_seed']
        if state.get('sync_sampling', self.sync_sampling) != self.sync_sampling:
            runner.logger.warning(
                f'NetAugHook: the resumed run sampled with sync_sampling='
                f'{state["sync_sampling"]}, this one with {self.sync_sampling}: from here on the '
                'augmented models differ from the interrupted run\'s')

    def _update_phase(self, runner: Runner, progress: int, total: int, sort: bool) -> None:
        phase = self.aug_mode_at(progress, total)
        if phase != self._phase:
            unit = 'epoch' if self._by_epoch else 'iteration'
            runner.logger.info(f'NetAugHook: from {unit} {progress + 1}, auxiliary pass in '
                               f'{phase or "none (base training only)"} mode')
            self._phase = phase
        if sort and self.sort_channels and phase == 'random':
            self._sort_channels(runner)

    def _optimizer_wrappers(self, runner: Runner) -> list:
        wrapper = runner.optim_wrapper
        return list(wrapper.values()) if isinstance(wrapper, OptimWrapperDict) else [wrapper]

    def _loss_scale(self, runner: Runner) -> float:
        """The smallest current AMP loss scale of the run's optimizer wrappers (1 without AMP)."""
        scales = [float(wrapper.loss_scaler.get_scale())
                  for wrapper in self._optimizer_wrappers(runner)
                  if isinstance(getattr(wrapper, 'loss_scaler', None), torch.amp.GradScaler)
                  and wrapper.loss_scaler.is_enabled()]
        return min(scales, default=1.0)

    def _sort_channels(self, runner: Runner) -> None:
        """Sorts hidden channels; optimizer state, pending gradients and the EMA copy follow."""
        wrappers = self._optimizer_wrappers(runner)
        copies = [] if self._ema_hook is None else [self._ema_hook.ema_model.module]
        self.supernet.sort_channels(self.sort_scope, [wrapper.optimizer for wrapper in wrappers],
                                    copies)
