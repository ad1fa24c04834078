"""ganbench: transfer learning in GANs, benchmarked on equal terms.

The public API, and nothing else. Scripts use ``run_matrix`` (with ``LocalExecutor`` or ``RayExecutor``), ``load_records`` and ``build_leaderboard``
(run directories -> a seed-averaged, ranked table). Plugins use ``hookimpl``, the contracts (``Architecture``,
``Strategy``, ``Dataset``, ``Metric`` with its ``Column`` s, ``Augmentation``), ``Option`` and its checks, the
block helpers strategies address any architecture with, the data-root helpers of file-backed datasets, the
network policy, and the Inception features and FID/KID arithmetic metrics share. Built-in plugins import
nothing from ganbench but this module; ``ganbench.testing`` holds the checks for plugin authors' tests.
"""

from ganbench.data.roots import (
    DataNotFound,
    data_roots,
    download_root,
    find_folder,
    not_found_message,
    pick,
    try_download,
)
from ganbench.errors import Diverged, GanbenchError, one_line
from ganbench.execute.cell import run_cell
from ganbench.execute.context import RunContext, current_context
from ganbench.execute.driver import RunSummary, run_matrix
from ganbench.execute.executors import Executor, LocalExecutor
from ganbench.execute.plan import Plan, plan_matrix
from ganbench.execute.ray_executor import RayExecutor
from ganbench.grid.cells import Budget, Cell
from ganbench.grid.config import Grid, load_config, make_grid
from ganbench.metrics.arithmetic import fid_from_features, kid_from_features, kid_subset_size
from ganbench.metrics.features import (
    FeatureSpace,
    InceptionSpace,
    PixelSpace,
    cached_features,
    eval_features,
    inception_features,
    reference_features,
)
from ganbench.metrics.inception import MODE as FID_MODE
from ganbench.metrics.inception import InceptionWeights, get_extractor, resolve_inception_weights
from ganbench.metrics.neighbours import authenticity, copy_ratio, knn_radii, prdc
from ganbench.net import offline, unreachable
from ganbench.plugin.blocks import BlockOutputs, block_output_shapes, freeze_first, output_shapes, source_parameters
from ganbench.plugin.contracts import (
    Architecture,
    Augmentation,
    Column,
    Dataset,
    EvalContext,
    ImageSet,
    Metric,
    Nets,
    SourceCheckpoint,
    StepInfo,
    Strategy,
    TargetParts,
)
from ganbench.plugin.hookspecs import hookimpl
from ganbench.plugin.manager import load_registry
from ganbench.plugin.options import Option, at_least, parse_int_set
from ganbench.report.leaderboard import build_leaderboard
from ganbench.store.runs import load_records

__all__ = [
    "FID_MODE",
    "Architecture",
    "Augmentation",
    "BlockOutputs",
    "Budget",
    "Cell",
    "Column",
    "DataNotFound",
    "Dataset",
    "Diverged",
    "EvalContext",
    "Executor",
    "FeatureSpace",
    "GanbenchError",
    "Grid",
    "ImageSet",
    "InceptionSpace",
    "InceptionWeights",
    "LocalExecutor",
    "Metric",
    "Nets",
    "Option",
    "PixelSpace",
    "Plan",
    "RayExecutor",
    "RunContext",
    "RunSummary",
    "SourceCheckpoint",
    "StepInfo",
    "Strategy",
    "TargetParts",
    "at_least",
    "authenticity",
    "block_output_shapes",
    "build_leaderboard",
    "cached_features",
    "copy_ratio",
    "current_context",
    "data_roots",
    "download_root",
    "eval_features",
    "fid_from_features",
    "find_folder",
    "freeze_first",
    "get_extractor",
    "hookimpl",
    "inception_features",
    "kid_from_features",
    "kid_subset_size",
    "knn_radii",
    "load_config",
    "load_records",
    "load_registry",
    "make_grid",
    "not_found_message",
    "offline",
    "one_line",
    "output_shapes",
    "parse_int_set",
    "pick",
    "plan_matrix",
    "prdc",
    "reference_features",
    "resolve_inception_weights",
    "run_cell",
    "run_matrix",
    "source_parameters",
    "try_download",
    "unreachable",
]
