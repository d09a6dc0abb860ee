"""NetAugDetRunner: mmengine's Runner with the checks and config variables netaug_det needs.

The project's configs set ``runner_type = 'NetAugDetRunner'`` (``configs/_base_/
default_runtime.py``), which mmdet's own ``tools/train.py`` and ``tools/test.py``, ``mim train``
and this project's tools all honour (``RUNNERS.build(cfg)``). So whichever entry point a user
takes, the same things happen before the first step:

- config variables (``input_size``, ``data_root``, the backbone checkpoint variables) reach
  every place derived from them (:func:`netaug_det.utils.config.apply_config_variables`);
- the data paths and annotation files of the loaders a run uses (training: train and val;
  testing: test) are checked, every missing file named with the fix; each
  built dataset is checked (missing or empty images, boxes without area, objects of classes
  outside the metainfo), and a dataset that fails to build has its annotation files parsed to
  name the bad one (``netaug_det/datasets/checks.py``);
- ``env_cfg.malloc_cfg`` (the project's default runtime sets it) tunes glibc's allocator to
  keep freed CPU memory for reuse (:func:`netaug_det.utils.allocator.tune_glibc_malloc`);
- stale temporary checkpoint files of an interrupted write are removed from the work dir;
- ``AmpOptimWrapper`` without a GPU is refused with what to do instead;
- checkpoints load strictly (``load_from``, testing and ``--resume``), and a mismatch says what
  the checkpoint is and what to do (:func:`netaug_det.utils.checkpoint.explain_mismatch`);
  ``allow_partial_load = True`` in a config allows a partial ``load_from`` with a warning;
- a model with NetAug modules but no ``NetAugHook`` is refused (it would silently train as a
  baseline and write no ``deploy.pth``) unless ``allow_netaug_without_hook = True``;
- a config's ``distiller = dict(type='TeacherDistiller', ...)`` is built with the model and
  attached as ``model.distiller`` (before the optimizer and DDP see the model, so its adapters
  are trained and all-reduced), for ``DistillationHook`` to use; one without the other is
  refused;
- training holds a lock on the work dir (:func:`netaug_det.engine.work_dir_lock.work_dir_lock`):
  a second training into it is refused, naming the first;
- a training length of zero (``train_cfg.max_epochs`` / ``max_iters``) is refused, and so is a
  config that declares ``imagenet_checkpoints`` (a paper recipe, which needs an
  ImageNet-pretrained backbone) but would start from random weights, unless it sets
  ``allow_random_init = True``;
- ``--resume`` continues with the random numbers the uninterrupted run would have drawn
  (:mod:`netaug_det.engine.randomness`);
- the config's formatted text, which mmengine logs, dumps and saves in every checkpoint, is
  formatted once (:mod:`netaug_det.utils.config_text`).
"""
import copy
import logging
import os.path as osp
from contextlib import ExitStack

import torch
from mmengine.config import Config
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from ..datasets.checks import (DataError, check_annotations, check_data_paths,
                               check_loaded_dataset, check_model_data, classes_of, leaf_datasets,
                               problems_report, voc_objects_outside)
from ..utils.allocator import apply_malloc_cfg
from ..utils.checkpoint import explain_mismatch, remove_stale_parts
from ..utils.cli import RunRefusedError
from ..utils.config import apply_config_variables
from ..utils.config_text import with_cached_text
from ..utils.distributed import unwrap_model
from .randomness import EpochSeedHook, worker_init_fn
from .work_dir_lock import work_dir_lock


# In mmengine's root registry: mmdet's tools/train.py builds ``runner_type`` with no default scope
# set yet, so a runner registered only in mmdet's registry would not be found.
@RUNNERS.register_module()
class NetAugDetRunner(Runner):
    """mmengine's :class:`Runner` plus netaug_det's pre-flight (see the module docstring)."""

    _training = False  # inside train(): the only place a partial load_from is allowed

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'NetAugDetRunner':
        cfg = with_cached_text(copy.deepcopy(cfg))
        apply_config_variables(cfg)
        check_model_data(cfg)
        optim_wrapper = cfg.get('optim_wrapper') or {}
        if optim_wrapper.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
            raise RunRefusedError(
                'AMP (--amp, AmpOptimWrapper) needs a GPU: mmengine runs fp16 autocast and loss '
                'scaling on CUDA only. On this CPU machine train in fp32 (drop --amp); NetAug '
                'training under autocast is tested on CPU with bfloat16 (docs/netaug_training.md)')
        if cfg.get('work_dir'):
            removed = remove_stale_parts(cfg.work_dir)
            if removed:
                print_log(f'removed {len(removed)} temporary file(s) of an interrupted checkpoint '
                          f'write from {cfg.work_dir}: {removed}', 'current', logging.WARNING)
        return super().from_cfg(cfg)

    def setup_env(self, env_cfg: dict) -> None:
        """mmengine's environment set-up, plus ``env_cfg.malloc_cfg`` (keyword arguments of
        :func:`netaug_det.utils.allocator.tune_glibc_malloc`; None or absent: glibc's
        defaults)."""
        super().setup_env(env_cfg)
        not_applied = apply_malloc_cfg(env_cfg)
        if not_applied:
            print_log(f'env_cfg.malloc_cfg not applied: {not_applied}', 'current',
                      logging.WARNING)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """mmengine's hooks, plus an :class:`EpochSeedHook` unless the config has one."""
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(hook, EpochSeedHook) for hook in self.hooks):
            self.register_hook(EpochSeedHook())

    def build_model(self, model):
        """mmengine's model, with the config's ``distiller`` attached (see the module doc)."""
        model = super().build_model(model)
        distiller = self.cfg.get('distiller')
        if distiller is not None:
            from mmdet.registry import MODELS
            model.distiller = MODELS.build(distiller, default_args=dict(student=model))
        return model

    def build_dataloader(self, dataloader, seed=None, diff_rank_seed=False):
        """mmengine's dataloader, with the dataset checked (see the module docstring)."""
        if not isinstance(dataloader, dict):
            return Runner.build_dataloader(dataloader, seed, diff_rank_seed)
        if 'worker_init_fn' not in dataloader:
            dataloader = dict(dataloader, worker_init_fn=dict(
                type=worker_init_fn,
                disable_subprocess_warning=dataloader.get('disable_subprocess_warning', False)))
            dataloader.pop('disable_subprocess_warning', None)
        dataset_cfg = dataloader.get('dataset', {})
        leaves = [leaf for _, leaf in leaf_datasets(dataset_cfg)]
        try:
            loader = Runner.build_dataloader(dataloader, seed, diff_rank_seed)
        except Exception as error:
            for leaf in leaves:
                problems, _ = check_annotations(leaf, classes_of(leaf))
                if problems:
                    raise DataError(f'the dataset {leaf.get("ann_file")} cannot be built:\n  '
                                    f'{problems_report(problems)}\nFix or remove these files, or '
                                    'fix metainfo.classes') from error
            raise
        problems = check_loaded_dataset(loader.dataset)
        if problems:
            ann_files = ', '.join(str(leaf.get('ann_file')) for leaf in leaves)
            raise DataError(f'bad data in {ann_files}:\n  '
                            f'{problems_report(problems)}\nFix or remove these files (python -m '
                            'netaug_det.tools.check_dataset CONFIG lists every problem)')
        for leaf in leaves:
            dropped = voc_objects_outside(leaf, loader.dataset.metainfo.get('classes', ()))
            if dropped:
                print_log(f'{sum(dropped.values())} object(s) of classes outside the metainfo '
                          f'are not used in {leaf.get("ann_file")}: {dict(dropped.most_common())}',
                          'current', logging.WARNING)
        return loader

    def train(self) -> torch.nn.Module:
        """Locks the work dir, checks the config, the train and val data and the hooks the model
        needs, then trains as mmengine's Runner does (partial ``load_from`` allowed here
        only)."""
        with ExitStack() as stack:
            self._lock_work_dir(stack)
            self._check_training_length()
            self._check_backbone_init()
            validates = all(self.cfg.get(key) is not None
                            for key in ('val_dataloader', 'val_cfg', 'val_evaluator'))
            check_data_paths(self.cfg, ('train_dataloader', ) + (
                ('val_dataloader', ) if validates else ()))
            self._check_hooks()
            self._fresh_workers_every_epoch()
            self._training = True
            try:
                return super().train()
            finally:
                self._training = False

    def _lock_work_dir(self, stack: ExitStack) -> None:
        """The main process takes the work dir's training lock for the ``stack``'s lifetime;
        every process raises its refusal."""
        refusal = [None]
        if is_main_process():
            try:
                stack.enter_context(work_dir_lock(self.work_dir))
            except RunRefusedError as error:
                refusal[0] = str(error)
        broadcast_object_list(refusal)
        if refusal[0] is not None:
            raise RunRefusedError(refusal[0])

    def _check_training_length(self) -> None:
        """Refuses ``train_cfg.max_epochs`` / ``max_iters`` below 1: nothing would be trained,
        and the hooks would still write the untrained model as the run's result."""
        train_cfg = self.cfg.get('train_cfg') or {}
        for key in ('max_epochs', 'max_iters'):
            value = train_cfg.get(key)
            if value is not None and (type(value) is not int or value < 1):
                raise RunRefusedError(
                    f'train_cfg.{key}={value!r}: a training length must be a whole number >= 1 '
                    '(0 trains nothing, and deploy.pth would hold the untrained model); e.g. '
                    f'--cfg-options train_cfg.{key}=12')

    def _check_backbone_init(self) -> None:
        """Refuses a config that declares ``imagenet_checkpoints`` (a recipe with a pretrained
        backbone) when no weights would be loaded, unless ``allow_random_init = True``."""
        if 'imagenet_checkpoints' not in self.cfg or self.cfg.get('allow_random_init', False):
            return
        if self.cfg.get('load_from') or (self._resume and find_latest_checkpoint(self.work_dir)):
            return
        init_cfg = self.cfg.get('model', {}).get('backbone', {}).get('init_cfg') or {}
        if init_cfg.get('type') == 'Pretrained':
            return
        raise RunRefusedError(
            f'{self.cfg.filename or "this config"} trains from an ImageNet-pretrained backbone '
            '(its recipe), but no checkpoint is given (imagenet_checkpoints.'
            f'{self.cfg.get("backbone_pretrain", "baseline")} and backbone_checkpoint are None), '
            'so the backbone would start from random weights. Pass one, e.g. --cfg-options '
            'backbone_checkpoint=PATH or imagenet_checkpoints.baseline=PATH (how to get or '
            'pretrain one: docs/pretraining.md), or set allow_random_init=True to train from '
            'scratch on purpose')

    def _fresh_workers_every_epoch(self) -> None:
        """Turns ``persistent_workers`` off for the training loader (see
        :mod:`netaug_det.engine.randomness`)."""
        loader = self._train_dataloader
        if isinstance(loader, dict) and loader.get('persistent_workers') and \
                loader.get('num_workers', 0) > 0:
            self._train_dataloader = dict(loader, persistent_workers=False)
            self.logger.info('train_dataloader: persistent_workers off, so that every epoch '
                             'starts workers seeded for it and --resume reproduces the run')

    def _check_hooks(self) -> None:
        """Refuses hooks and model parts that do not fit together (NetAug, distillation,
        sync_bn)."""
        from ..models.netaug.supernet import netaug_modules
        from .hooks import DistillationHook, NetAugHook

        model = unwrap_model(self.model)
        has_hook = {hook_type: any(isinstance(hook, hook_type) for hook in self.hooks)
                    for hook_type in (NetAugHook, DistillationHook)}
        if (getattr(model, 'distiller', None) is None) == has_hook[DistillationHook]:
            raise RunRefusedError('distillation needs both distiller = dict(type=\'TeacherDistiller'
                                  '\', ...) in the config and dict(type=\'DistillationHook\') in '
                                  'custom_hooks; this config has only one of them')
        found = list(netaug_modules(model))
        if found and not has_hook[NetAugHook] and \
                not self.cfg.get('allow_netaug_without_hook', False):
            raise RunRefusedError(
                f'the model has NetAug modules {found} but no NetAugHook, so it would train as a '
                'plain model inside a NetAug supernet and write no deploy.pth. Add '
                "custom_hooks = [dict(type='NetAugHook')] (a custom_hooks list in your config "
                "replaces the inherited one: keep dict(type='NetAugHook') in it), use the plain "
                'backbone type, or set allow_netaug_without_hook = True on purpose')
        if self.cfg.get('sync_bn') and found:
            raise RunRefusedError(
                f'sync_bn={self.cfg.sync_bn!r} with NetAug modules {found}: SyncBatchNorm would '
                'replace the dynamic BatchNorms by full-width ones, which narrower passes cannot '
                'run. Train NetAug without sync_bn (each rank normalises its own batch, as the '
                'official NetAug training does)')

    def val(self) -> dict:
        """Checks the val data, then validates as mmengine's Runner does."""
        check_data_paths(self.cfg, ('val_dataloader', ))
        return super().val()

    def test(self) -> dict:
        """Checks the test data, then tests as mmengine's Runner does."""
        check_data_paths(self.cfg, ('test_dataloader', ))
        return super().test()

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = True,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """Loads strictly; a mismatch is explained (what the checkpoint is, what to do).

        ``allow_partial_load = True`` in the config loads non-strictly (mmengine's default)
        for ``load_from`` fine-tuning, with mmengine's list of mismatched keys in the log;
        testing and validation always load strictly.
        """
        if not osp.isfile(filename) and '://' not in filename:
            raise FileNotFoundError(f'checkpoint not found: {filename} (load_from / --resume / '
                                    'the CHECKPOINT argument of tools/test.py)')
        if self.cfg.get('allow_partial_load', False) and self._training and not self._resume:
            return super().load_checkpoint(filename, map_location, False, revise_keys)
        try:
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        except RuntimeError as error:
            if 'state_dict' not in str(error) and 'size mismatch' not in str(error):
                raise
            raise RunRefusedError(explain_mismatch(filename, unwrap_model(self.model),
                                                self.cfg.filename)) from None
