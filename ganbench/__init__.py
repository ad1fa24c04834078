"""ganbench: transfer learning in GANs, benchmarked on equal terms.

The public API. Plugins use ``hookimpl`` and the base classes; scripts use ``run_matrix``,
``load_records`` and ``build_leaderboard`` (run directories -> a seed-averaged, ranked table).
"""

from ganbench.errors import Diverged, GanbenchError
from ganbench.hookspecs import hookimpl
from ganbench.leaderboard import build_leaderboard
from ganbench.matrix import Grid, load_config, make_grid
from ganbench.plugins import load_registry
from ganbench.records import load_records
from ganbench.registry import Option
from ganbench.runner import run_cell, run_matrix
from ganbench.types import (
    Architecture,
    Augmentation,
    Cell,
    Dataset,
    EvalContext,
    ImageSet,
    Metric,
    Nets,
    SourceCheckpoint,
    StepInfo,
    Strategy,
)

__all__ = [
    "Architecture",
    "Augmentation",
    "Cell",
    "Dataset",
    "Diverged",
    "EvalContext",
    "GanbenchError",
    "Grid",
    "ImageSet",
    "Metric",
    "Nets",
    "Option",
    "SourceCheckpoint",
    "StepInfo",
    "Strategy",
    "build_leaderboard",
    "hookimpl",
    "load_config",
    "load_records",
    "load_registry",
    "make_grid",
    "run_cell",
    "run_matrix",
]
