"""DistillationHook: trains with the teacher distiller the config attached to the model."""
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import Runner

from netaug_det.models.train_loss import TrainLoss
from netaug_det.utils.distributed import unwrap_model
from .netaug_hook import NetAugHook, save_deployable

TERM_NAME = 'distill'


@HOOKS.register_module()
class DistillationHook(Hook):
    """Adds the model's ``distiller`` (a ``TeacherDistiller`` the runner built from the config's
    ``distiller = dict(...)``) to its training loss for the run, and removes it afterwards.

    With ``NetAugHook`` too, one step is base + alpha * aux + the distillation losses of the base
    pass, in one backward. The teacher's parameter count is logged at the start; each step logs
    ``kd_total`` and ``kd_teacher_time``. At the end of training it writes
    ``<work_dir>/<deploy_filename>``, the student without the distiller (which the baseline
    config loads strictly), unless a ``NetAugHook`` writes one.

    Args:
        deploy_filename (str, optional): None writes none. Defaults to 'deploy.pth'.
    """

    priority = 'NORMAL'

    def __init__(self, deploy_filename: Optional[str] = 'deploy.pth') -> None:
        self.deploy_filename = deploy_filename

    def before_train(self, runner: Runner) -> None:
        model = unwrap_model(runner.model)
        distiller = getattr(model, 'distiller', None)
        if distiller is None:
            raise RuntimeError('DistillationHook needs a teacher: add distiller = dict(type='
                               "'TeacherDistiller', teacher=dict(config=..., checkpoint=...), "
                               "output_loss=..., feature_loss=...) to the config")
        TrainLoss.attach(model).add(TERM_NAME, distiller)
        teacher = distiller.teacher
        runner.logger.info(
            f'DistillationHook: teacher {type(teacher).__name__} with '
            f'{sum(p.numel() for p in teacher.parameters()) / 1e6:.2f}M parameters (not trained, '
            'not saved), adapters and losses as model.distiller (trained, never exported)')

    def after_train(self, runner: Runner) -> None:
        model = unwrap_model(runner.model)
        loss = TrainLoss.of(model)
        if loss is not None:
            loss.remove(TERM_NAME, getattr(model, 'distiller', None))
        netaug_writes = any(isinstance(hook, NetAugHook) and hook.deploy_filename is not None
                            for hook in runner.hooks)
        if self.deploy_filename is not None and not netaug_writes:
            save_deployable(runner, self.deploy_filename, 'DistillationHook')
