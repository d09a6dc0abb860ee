"""A config whose formatted text is computed once per content.

mmengine formats ``Config.pretty_text`` with yapf at every call, about 1-2 s for a detector
config on a CPU core, and a runner asks for it each time it logs, dumps or checkpoints its config
(5-10 times in a short run). :func:`with_cached_text` gives the runner a view of its config whose
``pretty_text`` is formatted once per distinct content: the same text, computed once.
"""
from collections import OrderedDict

from mmengine.config import Config

# unformatted text -> formatted text, the last few configs formatted in this process
_FORMATTED: 'OrderedDict[str, str]' = OrderedDict()
_CACHE_SIZE = 8


class CachedTextConfig(Config):
    """A :class:`~mmengine.config.Config` whose ``pretty_text`` is mmengine's, formatted once
    per content (the unformatted text, cheap to make, is the cache key), so editing the config
    still changes its text."""

    @property
    def pretty_text(self) -> str:
        if not self._format_python_code:
            return Config.pretty_text.fget(self)
        raw = _unformatted_text(self)
        if raw in _FORMATTED:
            _FORMATTED.move_to_end(raw)
        else:
            _FORMATTED[raw] = Config.pretty_text.fget(self)
            if len(_FORMATTED) > _CACHE_SIZE:
                _FORMATTED.popitem(last=False)
        return _FORMATTED[raw]


def _unformatted_text(cfg: Config) -> str:
    """``cfg.pretty_text`` before yapf formats it."""
    object.__setattr__(cfg, '_format_python_code', False)
    try:
        return Config.pretty_text.fget(cfg)
    finally:
        object.__setattr__(cfg, '_format_python_code', True)


def with_cached_text(cfg: Config) -> CachedTextConfig:
    """A :class:`CachedTextConfig` view of ``cfg`` (the same contents, shared, not copied)."""
    view = CachedTextConfig.__new__(CachedTextConfig)
    view.__dict__.update(cfg.__dict__)
    return view
