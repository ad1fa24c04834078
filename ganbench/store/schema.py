"""The cell record, typed: every field a record has, its type and where it appears, in one place.

:class:`Record` is the single source of the record's fields. The cell builds one, :mod:`ganbench.store.records`
derives the columns of ``results.csv`` from it and :mod:`ganbench.store.runs` checks the records it reads
against it, the reports read its declared keys, and ``docs/results-schema.md`` documents exactly these fields
(a test holds the two together, both ways). Besides its fields a record holds one number per **metric
column** its metrics declare (:class:`Column`, listed in the record's ``metric_columns``) and whatever the
metrics' ``prepare()`` recorded as their provenance (``inception_weights``, ``kid_mode``, ``fd_backbone``, ...).

Each field is ``Annotated[type, WHERE]``: :data:`IDENTITY` fields open every ``results.csv`` row (before the
metric columns), :data:`RESULTS` fields follow the metric columns, :data:`RECORD` fields are in the JSON record
only. Bump ``SCHEMA_VERSION`` (:mod:`ganbench.store.records`) when a field's meaning changes.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

IDENTITY, RESULTS, RECORD = "identity", "results", "record"


@dataclass(frozen=True)
class Column:
    """One number a metric writes: into every record, ``results.csv``, the leaderboards and the report.

    ``lower_is_better`` says which way the number is better (False: higher is better), so leaderboards rank
    by it in the right direction; None marks a detail that is not a score (a sample count, a subset size):
    recorded, never averaged or ranked. ``label`` heads table columns (default: ``name``); ``digits`` is the
    number of decimals tables show; ``help`` says what it is. Records store each column with ``metric``, the
    name of the metric that wrote it (:meth:`describe`), so tables read the same wherever they are rendered.
    """

    name: str
    lower_is_better: bool | None
    label: str = ""
    digits: int = 4
    help: str = ""
    metric: str = ""

    def describe(self, metric: str) -> dict[str, Any]:
        """As records store it (``record["metric_columns"]``), written by ``metric``."""
        return {"name": self.name, "metric": metric, "lower_is_better": self.lower_is_better,
                "label": self.label or self.name, "digits": self.digits}  # fmt: skip

    def as_record(self) -> dict[str, Any]:
        return self.describe(self.metric or self.name)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Column:
        """A column as a record declares it."""
        return cls(data["name"], data.get("lower_is_better"), data.get("label") or data["name"],
                   int(data.get("digits", 4)), metric=data.get("metric", data["name"]))  # fmt: skip


class Record(TypedDict, total=False):
    """One cell's record (``cells/<cell_id>.json``); docs/results-schema.md says what each field means."""

    # identity: what the cell is
    schema_version: Annotated[int, IDENTITY]
    cell_id: Annotated[str, IDENTITY]
    status: Annotated[str, IDENTITY]
    arch: Annotated[str, IDENTITY]
    strategy: Annotated[str, IDENTITY]
    augment: Annotated[str, IDENTITY]
    source: Annotated[str, IDENTITY]
    target: Annotated[str, IDENTITY]
    shots: Annotated[int, IDENTITY]
    seed: Annotated[int, IDENTITY]
    # cost: parameters, time, memory, where it ran
    trainable_params: Annotated[int, RESULTS]
    total_params: Annotated[int, RESULTS]
    trainable_fraction: Annotated[float, RESULTS]
    trainable_g: Annotated[int, RESULTS]
    total_g: Annotated[int, RESULTS]
    trainable_d: Annotated[int, RESULTS]
    total_d: Annotated[int, RESULTS]
    pretrain_s: Annotated[float | None, RESULTS]
    pretrain_cache_hit: Annotated[bool | None, RESULTS]
    adapt_s: Annotated[float, RESULTS]
    probe_s: Annotated[float | None, RESULTS]
    finetune_s: Annotated[float, RESULTS]
    step_ms: Annotated[float, RESULTS]
    images_per_s: Annotated[float, RESULTS]
    eval_s: Annotated[float, RESULTS]
    eval_generate_s: Annotated[float, RESULTS]
    eval_features_s: Annotated[float, RESULTS]
    eval_metrics_s: Annotated[float, RESULTS]
    peak_mem_mb: Annotated[float | None, RESULTS]
    peak_train_mb: Annotated[float | None, RESULTS]
    peak_eval_mb: Annotated[float | None, RESULTS]
    peak_mem_kind: Annotated[str, RESULTS]
    device: Annotated[str, RESULTS]
    host: Annotated[str, RESULTS]
    executor: Annotated[str, RESULTS]
    threads: Annotated[int, RESULTS]
    device_shared_by: Annotated[int, RESULTS]
    worker_warm_up_s: Annotated[float, RESULTS]
    arch_weights: Annotated[str | None, RESULTS]
    resumes: Annotated[int, RESULTS]
    steps_redone: Annotated[int, RESULTS]
    checkpoint_every: Annotated[str | None, RESULTS]
    # settings: everything that made the number
    resolution: Annotated[int, RESULTS]
    channels: Annotated[int, RESULTS]
    pretrain_steps: Annotated[int, RESULTS]
    finetune_steps: Annotated[int, RESULTS]
    batch_size: Annotated[int, RESULTS]
    lr: Annotated[float, RESULTS]
    betas: Annotated[str, RESULTS]
    ema: Annotated[float, RESULTS]
    r1_gamma: Annotated[float, RESULTS]
    r1_every: Annotated[int, RESULTS]
    train_precision: Annotated[str, RESULTS]
    channels_last: Annotated[bool, RESULTS]
    compiled: Annotated[bool, RESULTS]
    augment_p: Annotated[float | None, RESULTS]
    source_file: Annotated[str | None, RESULTS]
    eval_samples: Annotated[int, RESULTS]
    eval_every: Annotated[int, RESULTS]
    n_gen: Annotated[int, RESULTS]
    reference: Annotated[str, RESULTS]
    reference_samples: Annotated[int | None, RESULTS]
    n_target: Annotated[int, RESULTS]
    n_ref: Annotated[int, RESULTS]
    n_heldout: Annotated[int, RESULTS]
    n_val: Annotated[int, RESULTS]
    shots_from: Annotated[str, RESULTS]
    shots_key: Annotated[str, RESULTS]
    reference_key: Annotated[str, RESULTS]
    select_on: Annotated[str, RESULTS]
    selected_step: Annotated[int | None, RESULTS]
    # provenance: how the number was made
    method: Annotated[str | None, RESULTS]
    fid_mode: Annotated[str, RESULTS]
    inception_sha1: Annotated[str, RESULTS]
    ganbench_version: Annotated[str | None, RESULTS]
    torch_version: Annotated[str, RESULTS]
    cleanfid_version: Annotated[str | None, RESULTS]
    git_revision: Annotated[str | None, RESULTS]
    finished_at: Annotated[str, RESULTS]
    error: Annotated[str | None, RESULTS]
    # the JSON record only
    spec: Annotated[dict, RECORD]
    metric_columns: Annotated[list, RECORD]
    curve: Annotated[list, RECORD]
    selected: Annotated[dict, RECORD]
    loss: Annotated[dict, RECORD]
    losses: Annotated[dict, RECORD]
    resumed_from: Annotated[list, RECORD]
    pretrain_key: Annotated[str | None, RECORD]
    source_checkpoint: Annotated[str | None, RECORD]
    python_version: Annotated[str, RECORD]
    numpy_version: Annotated[str | None, RECORD]
    traceback: Annotated[str, RECORD]


def _fields() -> dict[str, tuple[tuple[type, ...], bool, str]]:
    """name -> (the types a value may have, whether it may be null, where it appears), in declaration order."""
    out = {}
    for name, hint in typing.get_type_hints(Record, include_extras=True).items():
        kind, where = typing.get_args(hint)
        options = typing.get_args(kind) or (kind,)
        out[name] = (tuple(t for t in options if t is not type(None)), type(None) in options, where)
    return out


FIELDS = _fields()
IDENTITY_FIELDS = tuple(name for name, (_, _, where) in FIELDS.items() if where == IDENTITY)
RESULTS_FIELDS = tuple(name for name, (_, _, where) in FIELDS.items() if where == RESULTS)
RECORD_FIELDS = tuple(name for name, (_, _, where) in FIELDS.items() if where == RECORD)


def field_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the record's field ``name`` (None: it can, or ``name`` is not a field)."""
    if name not in FIELDS:
        return None
    types, nullable, _ = FIELDS[name]
    if value is None:
        return None if nullable else f"{name} is null"
    if bool in types and isinstance(value, bool):
        return None
    if isinstance(value, bool):  # JSON's true is no number
        return f"{name} is {value!r}, not {_kind(types)}"
    accepted = (*types, int) if float in types else types  # JSON writes 2.0 as 2
    return None if isinstance(value, accepted) else f"{name} is {value!r:.40}, not {_kind(types)}"


def _kind(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false", list: "a list",
             dict: "an object"}  # fmt: skip
    return " or ".join(names.get(t, t.__name__) for t in types)
