"""Training hooks: NetAugHook (NetAug training schedule, auxiliary loss and deployable export)."""
from .netaug_hook import NetAugHook

__all__ = ['NetAugHook']
