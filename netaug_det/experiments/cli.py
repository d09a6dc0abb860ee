"""Command-line pieces shared by the experiment tools."""
import argparse
from typing import Any, Optional, Sequence

from .runs import require_unique


class UniqueValues(argparse.Action):
    """An ``nargs='+'`` option whose values must all differ (seeds, learning-rate multiples,
    resolutions, methods): a repeated value would be one run counted twice."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Sequence[Any], option_string: Optional[str] = None) -> None:
        try:
            require_unique(values, 'the values')
        except ValueError as error:
            raise argparse.ArgumentError(self, str(error)) from None
        setattr(namespace, self.dest, values)
