"""Training-loop plugins (the NetAug hook)."""
from . import hooks  # noqa: F401
