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
  refused.
"""
import copy
import logging
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..datasets.checks import (DataError, check_annotations, check_data_paths,
                               check_loaded_dataset, classes_of, leaf_datasets,
                               problems_report, voc_objects_outside)
from ..utils.allocator import apply_malloc_cfg
from ..utils.checkpoint import explain_mismatch, remove_stale_parts
from ..utils.config import apply_config_variables
from ..utils.distributed import unwrap_model


# In mmengine's root registry: mmdet's tools/train.py builds ``runner_type`` with no default scope
# set yet, so a runner registered only in mmdet's registry would not be found.
@RUNNERS.register_module()
class NetAugDetRunner(Runner):
    """mmengine's :class:`Runner` plus netaug_det's pre-flight (see the module docstring)."""

    _training = False  # inside train(): the only place a partial load_from is allowed

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'NetAugDetRunner':
        cfg = copy.deepcopy(cfg)
        apply_config_variables(cfg)
        optim_wrapper = cfg.get('optim_wrapper') or {}
        if optim_wrapper.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
            raise RuntimeError(
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
        """Checks the train and val data and the hooks the model needs, then trains as
        mmengine's Runner does (partial ``load_from`` allowed here only)."""
        from ..models.netaug.supernet import netaug_modules
        from .hooks import DistillationHook, NetAugHook

        validates = all(self.cfg.get(key) is not None
                        for key in ('val_dataloader', 'val_cfg', 'val_evaluator'))
        check_data_paths(self.cfg, ('train_dataloader', ) + (
            ('val_dataloader', ) if validates else ()))
        model = unwrap_model(self.model)
        has_hook = {hook_type: any(isinstance(hook, hook_type) for hook in self.hooks)
                    for hook_type in (NetAugHook, DistillationHook)}
        if (getattr(model, 'distiller', None) is None) == has_hook[DistillationHook]:
            raise RuntimeError('distillation needs both distiller = dict(type=\'TeacherDistiller\''
                               ', ...) in the config and dict(type=\'DistillationHook\') in '
                               'custom_hooks; this config has only one of them')
        found = list(netaug_modules(model))
        if found and not has_hook[NetAugHook] and \
                not self.cfg.get('allow_netaug_without_hook', False):
            raise RuntimeError(
                f'the model has NetAug modules {found} but no NetAugHook, so it would train as a '
                'plain model inside a NetAug supernet and write no deploy.pth. Add '
                "custom_hooks = [dict(type='NetAugHook')] (a custom_hooks list in your config "
                "replaces the inherited one: keep dict(type='NetAugHook') in it), use the plain "
                'backbone type, or set allow_netaug_without_hook = True on purpose')
        if self.cfg.get('sync_bn') and found:
            raise RuntimeError(
                f'sync_bn={self.cfg.sync_bn!r} with NetAug modules {found}: SyncBatchNorm would '
                'replace the dynamic BatchNorms by full-width ones, which narrower passes cannot '
                'run. Train NetAug without sync_bn (each rank normalises its own batch, as the '
                'official NetAug training does)')
        self._training = True
        try:
            return super().train()
        finally:
            self._training = False

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
            raise RuntimeError(explain_mismatch(filename, unwrap_model(self.model),
                                                self.cfg.filename)) from None
