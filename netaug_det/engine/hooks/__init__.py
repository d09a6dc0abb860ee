"""Training hooks: NetAugHook (NetAug schedule, auxiliary loss, deployable export) and
DistillationHook (teacher distillation)."""
from .distillation_hook import DistillationHook
from .netaug_hook import NetAugHook

__all__ = ['NetAugHook', 'DistillationHook']
