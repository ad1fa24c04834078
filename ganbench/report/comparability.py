"""What may be ranked side by side: cells whose evaluation and budgets agree (``SETTING_FIELDS``).

``check_settings`` finds the setting fields that differ where rows would sit side by side and refuses, in
one line naming the field, its values and the runs and cells holding each, unless ``allow_mixed``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.store.records import COMPLETE
from ganbench.store.runs import listed

RUN = "_run"  # the run directory a loaded record came from, on the leaderboard's copies of records
RANK_WITHIN = ["arch", "source", "target", "shots"]  # a comparison group: ranks are computed inside one
# Settings that change what a number means. Rows are only ranked side by side when these agree: across the
# whole table, except the reference-set fields, which must agree among rows of the same target, and the
# weights an architecture brings itself, which must agree among rows of the same architecture.
SETTING_FIELDS = ["eval_samples", "n_gen", "n_ref", "reference_key", "fid_mode", "inception_sha1", "resolution",
                  "channels", "pretrain_steps", "finetune_steps", "batch_size", "lr", "eval_every",
                  "arch_weights"]  # fmt: skip
PER_TARGET_SETTINGS = {"n_ref", "reference_key"}
PER_ARCH_SETTINGS = {"arch_weights"}  # e.g. a pretrained vs a random backbone: must agree within one architecture


def fill_settings(records: list[dict[str, Any]]) -> None:
    """Diverged and failed cells never reached an evaluation: take their evaluation settings from the ok
    cells of the same run (of the same target, for the reference set), so that they group with them."""
    by_run: dict[Path, dict[str, Any]] = {}
    by_target: dict[tuple, dict[str, Any]] = {}
    for r in records:
        r["augment"] = r.get("augment") or "none"
        if r.get("status") == "ok":
            by_run.setdefault(r[RUN], r)
            by_target.setdefault((r[RUN], r.get("target")), r)
    for r in records:
        if r.get("status") == "ok":
            continue
        if r.get("n_gen") is None:
            r["n_gen"] = r.get("eval_samples")
        for names, other in ((("fid_mode", "inception_sha1"), by_run.get(r[RUN])),
                             (PER_TARGET_SETTINGS, by_target.get((r[RUN], r.get("target"))))):  # fmt: skip
            for name in names if other else ():
                if r.get(name) is None:
                    r[name] = other.get(name)


def show(value: Any) -> str:
    return "missing" if value is None else str(value)


def same_key(value: Any) -> Any:
    """A key under which equal settings meet (``1`` and ``1.0`` too); unhashable values by their text."""
    try:
        hash(value)
    except TypeError:
        return show(value)
    return value


def _differing(records: list[dict[str, Any]], name: str) -> dict[str, list[dict[str, Any]]]:
    values: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        value = r.get(name)
        if value is None and r.get("status") != "ok":
            continue  # not recorded by a cell that never evaluated: unknown, not different
        values[same_key(value)].append(r)
    return {show(v): rs for v, rs in values.items()} if len(values) > 1 else {}


def _comparison_label(record: dict[str, Any], keys: list[str] = RANK_WITHIN) -> str:
    values = {k: record.get(k) for k in keys}
    label = f"{values['arch']}: {values['source']} -> {values['target']}, {values['shots']} shots"
    extra = [f"{k}={show(v)}" for k, v in values.items() if k not in RANK_WITHIN]
    return label + (f" ({', '.join(extra)})" if extra else "")


def check_settings(records: list[dict[str, Any]], allow_mixed: bool) -> list[str]:
    """The setting fields that differ where rows would sit side by side; raises unless ``allow_mixed``."""
    scored = [r for r in records if r.get("status") in COMPLETE]
    found: list[tuple[str, dict[str, list[dict[str, Any]]]]] = []
    for name in SETTING_FIELDS:
        scopes: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in scored:
            scope = ("target", r.get("target")) if name in PER_TARGET_SETTINGS else None
            scope = ("arch", r.get("arch")) if name in PER_ARCH_SETTINGS else scope
            scopes[scope].append(r)
        for scope_records in scopes.values():
            values = _differing(scope_records, name)
            if values:
                found.append((name, values))
                break
    if found and not allow_mixed:
        raise GanbenchError(_refusal(found))
    return [name for name, _ in found]


def _refusal(found: list[tuple[str, dict[str, list[dict[str, Any]]]]]) -> str:
    name, values = found[0]
    groups: dict[tuple, set[str]] = defaultdict(set)
    for value, rs in values.items():
        for r in rs:
            groups[tuple(r.get(k) for k in RANK_WITHIN)].add(value)
    inside = [key for key, seen in groups.items() if len(seen) > 1]
    if inside:
        example = next(r for rs in values.values() for r in rs if tuple(r.get(k) for k in RANK_WITHIN) == inside[0])
        where = f"within the comparison group {_comparison_label(example)}"
    else:
        where = "between rows of the same table"
    parts = []
    for value, rs in sorted(values.items()):
        runs = sorted({r[RUN].name for r in rs})
        cells = [r["cell_id"] for r in sorted(rs, key=lambda r: r["cell_id"])]
        parts.append(f"{name}={value} in run {', '.join(runs)} (cells {listed(cells)})")
    others = [n for n, _ in found[1:]]
    also = f"; also differing: {', '.join(others)}" if others else ""
    return (
        f"refusing to rank side by side cells measured differently: {name} differs {where}: "
        f"{' vs '.join(parts)}{also}. Compare runs made with identical settings, or pass --allow-mixed to split "
        f"rows and ranks by {', '.join(n for n, _ in found)}"
    )
