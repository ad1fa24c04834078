"""ganbench: transfer learning in GANs, benchmarked on equal terms.

The public API, and nothing else. Scripts use ``run_matrix`` (with ``LocalExecutor`` or ``RayExecutor``;
``on_finish=draw_run`` draws the run's ``curves.png`` as the CLI does), ``load_records`` and ``build_leaderboard``
(run directories -> a seed-averaged, ranked table). Plugins use ``hookimpl``, the contracts (``Architecture``,
``Strategy``, ``Dataset``, ``Metric`` with its ``Column`` s, ``Augmentation``), ``Option`` and its checks, the
block helpers strategies address any architecture with, the data-root helpers of file-backed datasets, the
network policy and downloads, the user-file boundary (``reading``, ``writing``: one-line errors naming the path),
file hashing and atomic writes, image decoding, pretrained weights found offline,
and the Inception features (``InceptionMetric``) and FID/KID arithmetic metrics share. Built-in plugins import
nothing from ganbench but this module; ``ganbench.testing`` holds the checks for plugin authors' tests.
"""

from ganbench.context import CheckpointPolicy, RunContext, current_context
from ganbench.data.images import IMAGE_SUFFIXES, decode_image, decode_images, image_files, stack_images
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
from ganbench.execute.driver import RunSummary, run_matrix
from ganbench.execute.executors import Executor, LocalExecutor
from ganbench.execute.plan import Plan, plan_matrix
from ganbench.execute.ray_executor import RayExecutor
from ganbench.files import UserFileError, load_torch_file, read_user_text, reading, show_path, writing
from ganbench.grid.cells import Budget, Cell
from ganbench.grid.config import Grid, load_config, make_grid
from ganbench.metrics.arithmetic import fid_from_features, kid_from_features, kid_subset_size
from ganbench.metrics.features import (
    FeatureSpace,
    InceptionMetric,
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
from ganbench.plugin.consistency import block_feature_shapes, patch_block, row_consistency, similarity_distributions
from ganbench.plugin.contracts import (
    Architecture,
    Augmentation,
    Column,
    Dataset,
    DPass,
    EvalContext,
    EvalSizes,
    GPass,
    ImageSet,
    MethodCard,
    Metric,
    Needs,
    Nets,
    ProbeContext,
    SourceCheckpoint,
    StepInfo,
    Strategy,
    StrategyModule,
    TargetParts,
)
from ganbench.plugin.hookspecs import hookimpl
from ganbench.plugin.manager import load_registry
from ganbench.plugin.options import Option, at_least, parse_int_set
from ganbench.plugin.weights import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    OFFLINE_BACKBONE,
    OFFLINE_PACKAGE,
    OfflineBackbone,
    checked_sha256,
    download_file,
    hub_allowed,
    load_in_key_order,
    offline_backbone,
    offline_weights_file,
    state_sha256,
)
from ganbench.report.leaderboard import build_leaderboard
from ganbench.report.plots import draw_run
from ganbench.store.cache import atomic_write_bytes, atomic_write_json, atomic_write_text, file_sha256
from ganbench.store.runs import load_records

__all__ = [
    "similarity_distributions",
    "row_consistency",
    "patch_block",
    "Architecture",
    "Augmentation",
    "BlockOutputs",
    "Budget",
    "Cell",
    "CheckpointPolicy",
    "Column",
    "DataNotFound",
    "DPass",
    "Dataset",
    "Diverged",
    "EvalContext",
    "EvalSizes",
    "Executor",
    "FID_MODE",
    "FeatureSpace",
    "GPass",
    "GanbenchError",
    "Grid",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "IMAGENET_INCEPTION_MEAN",
    "IMAGENET_INCEPTION_STD",
    "IMAGE_SUFFIXES",
    "ImageSet",
    "InceptionMetric",
    "InceptionSpace",
    "InceptionWeights",
    "LocalExecutor",
    "MethodCard",
    "Metric",
    "Needs",
    "Nets",
    "OFFLINE_BACKBONE",
    "OFFLINE_PACKAGE",
    "OfflineBackbone",
    "Option",
    "PixelSpace",
    "ProbeContext",
    "Plan",
    "RayExecutor",
    "RunContext",
    "RunSummary",
    "SourceCheckpoint",
    "StepInfo",
    "Strategy",
    "StrategyModule",
    "TargetParts",
    "UserFileError",
    "at_least",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "authenticity",
    "block_feature_shapes",
    "block_output_shapes",
    "build_leaderboard",
    "cached_features",
    "checked_sha256",
    "copy_ratio",
    "current_context",
    "data_roots",
    "decode_image",
    "decode_images",
    "download_file",
    "download_root",
    "draw_run",
    "eval_features",
    "fid_from_features",
    "file_sha256",
    "find_folder",
    "freeze_first",
    "get_extractor",
    "hookimpl",
    "hub_allowed",
    "image_files",
    "inception_features",
    "kid_from_features",
    "kid_subset_size",
    "knn_radii",
    "load_config",
    "load_in_key_order",
    "load_records",
    "load_registry",
    "load_torch_file",
    "make_grid",
    "not_found_message",
    "offline",
    "offline_backbone",
    "offline_weights_file",
    "one_line",
    "output_shapes",
    "parse_int_set",
    "pick",
    "plan_matrix",
    "prdc",
    "read_user_text",
    "reading",
    "reference_features",
    "resolve_inception_weights",
    "run_cell",
    "run_matrix",
    "show_path",
    "source_parameters",
    "stack_images",
    "state_sha256",
    "try_download",
    "unreachable",
    "writing",
]
