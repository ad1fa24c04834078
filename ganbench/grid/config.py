"""What to run: the :class:`Grid` of a ``ganbench run matrix``, from defaults, a TOML file and command-line
options, checked before anything is resolved."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.files import read_user_text, show_path
from ganbench.grid.cells import PRECISIONS, REFERENCE_CHOICES, Budget, EvalProtocol, Recipe
from ganbench.plugin.options import closest_first, split_spec_list

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def setting(default: Any, help: str, *, choices: tuple[str, ...] | None = None, option: bool = True,
            default_note: str = "", shown: str = "") -> Any:  # fmt: skip
    """A field of :class:`Grid`: its default and what ``ganbench run matrix --help`` says of it. The command's
    options are made from these fields (``option=False``: settable in a TOML config only), so the default its
    help shows is the default used; ``default_note`` adds when another default applies, ``shown`` replaces the
    value when it is a sentinel that cannot be typed (0 for "no cap")."""
    metadata = {"help": help, "choices": choices, "option": option, "default_note": default_note, "shown": shown}
    if isinstance(default, list):
        return field(
            default_factory=lambda: [list(v) if isinstance(v, list) else v for v in default], metadata=metadata
        )
    return field(default=default, metadata=metadata)


@dataclass
class Grid:
    """What ``ganbench run matrix`` runs. The defaults are the embedded default grid (no download)."""

    name: str = setting(
        "default",
        "Run name: the run directory is NAME-<grid hash>.",
        default_note="with --config, the config file's name",
    )
    arch: list[str] = setting(["dcgan"], "Architectures, comma-separated: NAME[:key=value,...].")
    strategy: list[str] = setting(
        ["scratch", "finetune", "freeze-d", "adapter"], "Transfer strategies, e.g. scratch,finetune,freeze-d:layers=2."
    )
    source: list[str] = setting(["mnist5k:classes=0-4"], "Source datasets, e.g. mnist5k:classes=0-4.")
    target: list[str] = setting(["mnist5k:classes=5-9"], "Target datasets, e.g. mnist5k:classes=5-9.")
    # explicit (source, target) pairs replace the cross product (TOML only: a list of [source, target])
    pairs: list[list[str]] = setting([], "Explicit [source, target] pairs instead of the cross product.", option=False)
    shots: list[int] = setting([100], "Target images per cell (seeded subsets), e.g. 10,100.")
    seeds: list[int] = setting([0], "Seeds, e.g. 0,1,2 (each from 0 to 2147483647).")
    metrics: list[str] = setting(["fid", "kid", "prdc", "memorization"], "Metrics, e.g. fid,kid,fd,intra-lpips.")
    augment: list[str] = setting(["none"], "Augmentations of D's inputs, a grid axis, e.g. none,diffaugment,ada.")
    baseline: bool = setting(True, "Add the scratch baseline when the strategies don't include it.")
    resolution: int = setting(32, "Image size in pixels.")
    channels: int = setting(1, "1 (grey) or 3 (RGB).")
    # sized so the default grid runs in under 15 minutes on 2 CPU cores, reference statistics included
    pretrain_steps: int = setting(2000, "Source pretraining steps, cached per source.")
    finetune_steps: int = setting(400, "Fine-tuning steps on the target.")
    batch_size: int = setting(64, "Images per step.", default_note="--optimizer stylegan2: 4")
    lr: float = setting(2e-4, "Base learning rate (Adam).", default_note="--optimizer stylegan2: 0.002")
    eval_samples: int = setting(250, "Generated images per evaluation.")
    eval_every: int = setting(200, "Evaluate every N fine-tuning steps and at the last (0: the last only).")
    # what evaluations compare against (see EvalProtocol): all target images, shots included, by default
    reference: str = setting("all", "What FID compares with: all target images, shots included (as the "
                             "literature), or those held out from the shots.", choices=REFERENCE_CHOICES)  # fmt: skip
    reference_samples: int = setting(0, "Cap the reference at a seeded subset of N >= 2 target images.",
                                     shown="none: the whole target")  # fmt: skip
    select_on: str = setting("final", "val: also report the metrics at the step a validation split picks (never "
                             "the test reference).", choices=("final", "val"))  # fmt: skip
    val_samples: int = setting(0, "Size of the validation split (non-shot target images, not in the reference).")
    # the training recipe (see Recipe); `optimizer` names a preset of lr, betas and batch size (OPTIMIZERS)
    optimizer: str = setting(
        "dcgan",
        "Optimizer preset: dcgan, or stylegan2 (Adam betas 0,0.99, lr 0.002, batch 4, "
        "as the few-shot StyleGAN2 papers); explicit --lr / --batch-size / --betas win.",
    )
    betas: list[float] = setting([0.5, 0.999], "Adam betas, e.g. 0,0.99.", default_note="--optimizer stylegan2: 0,0.99")
    ema: float = setting(0.0, "Generator EMA decay per step (e.g. 0.999); metrics use the EMA. 0: off.")
    r1_gamma: float = setting(0.0, "R1 penalty weight (StyleGAN2: 10 at 256 px). 0: off.")
    r1_every: int = setting(16, "Lazy R1: apply it every N steps, scaled by N.")
    precision: str = setting("fp32", "bf16: autocast forward passes (CUDA).", choices=PRECISIONS)
    # how fast, never what: recorded, not part of a cell's id
    channels_last: bool = setting(False, "Channels-last memory format (speed only).")
    compile: bool = setting(False, "torch.compile G and D for training (speed only).")

    def recipe(self) -> Recipe:
        return Recipe(tuple(self.betas), self.ema, self.r1_gamma, self.r1_every, self.precision)

    def budget(self) -> Budget:
        return Budget(
            self.pretrain_steps, self.finetune_steps, self.batch_size, self.lr, self.eval_samples, self.eval_every
        )

    def protocol(self) -> EvalProtocol:
        return EvalProtocol(self.reference, self.reference_samples, self.select_on, self.val_samples)

    def pair_list(self) -> list[tuple[str, str]]:
        if self.pairs:
            return [(s, t) for s, t in self.pairs]
        return [(s, t) for s in self.source for t in self.target]

    def strategies(self) -> list[str]:
        names = [s.partition(":")[0] for s in self.strategy]
        return self.strategy if not self.baseline or "scratch" in names else ["scratch", *self.strategy]


#: named optimizer settings; a preset fills what the config and command line leave unset
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "dcgan": {},  # ganbench's defaults: Adam betas (0.5, 0.999), lr 2e-4, batch 64
    # the few-shot StyleGAN2 papers (CDC, DCL, RSSA, ...: rosinality's train.py): Adam betas (0, 0.99), lr 0.002,
    # batch 4
    "stylegan2": {"betas": [0.0, 0.99], "lr": 0.002, "batch_size": 4},
}
LIST_FIELDS = {"arch", "strategy", "source", "target", "metrics", "augment"}
INT_LIST_FIELDS = {"shots", "seeds"}
POSITIVE = {"resolution", "channels", "batch_size", "eval_samples", "finetune_steps"}
NON_NEGATIVE = {"pretrain_steps", "eval_every", "reference_samples", "val_samples"}


#: the largest integer any setting takes: seeds go to torch's and NumPy's generators (NumPy's take 0 to 2**32 - 1)
#: with fixed offsets added (a cell's evaluation latents are seeded 1,000,003 + seed), and sizes and step counts
#: to torch, whose sizes are 64-bit; 2**31 - 1 keeps every one of those uses in range
INT_MAX = 2**31 - 1
NAME_MAX = 200  # bytes: the run folder's name adds '-' and 8 hex digits, and file systems allow 255


def load_config(path: str | Path) -> dict[str, Any]:
    """A TOML config's settings: a ``[grid]`` table, or top-level keys. Read as UTF-8 text (another encoding,
    unreadable or invalid TOML is one line naming the file)."""
    data = _parse_toml(read_user_text(path, "config"), path)
    if "grid" in data:
        rest = sorted(k for k in data if k != "grid")
        if rest:
            raise GanbenchError(
                f"config {show_path(path)} has settings outside its [grid] table ({', '.join(rest)}), which would be "
                "ignored; put every setting under [grid]"
            )
        data = data["grid"]
    if not isinstance(data, dict):
        raise GanbenchError(
            f"config {show_path(path)}: grid must be a table of settings ([grid] then key = value lines)"
        )
    data.setdefault("name", Path(path).stem)
    return data


def _parse_toml(text: str, path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GanbenchError(f"config {show_path(path)} is not valid TOML: {exc}; fix it there") from None


def make_grid(
    config: dict[str, Any] | None = None, *, warn: Callable[[str], None] | None = None, **overrides: Any
) -> Grid:
    """Defaults, then the TOML config, then command-line overrides (None means 'not given'): the command line
    wins for every field. What cannot be overridden (``--source`` / ``--target`` against the config's
    ``pairs``) and settings that would have no effect (``val_samples`` without ``select_on = "val"``) are
    refused in one line; a config's setting that the command line switches off is ignored with one line to
    ``warn`` (default: :func:`warnings.warn`)."""
    config = dict(config or {})
    given = {k: v for k, v in overrides.items() if v is not None}
    _check_pairs(config, given)
    if "pairs" in given:  # explicit pairs on top replace the config's cross product
        config = {k: v for k, v in config.items() if k not in ("source", "target")}
    values = {**config, **given}
    preset = values.get("optimizer", "dcgan")
    if not isinstance(preset, str) or preset not in OPTIMIZERS:
        raise GanbenchError(f"unknown optimizer preset {preset!r}; presets: {', '.join(OPTIMIZERS)}")
    known = {f.name: f for f in fields(Grid)}
    for key in values:
        if key not in known:
            raise GanbenchError(f"unknown grid setting '{key}'; did you mean '{closest_first(key, known)[0]}'?")
    values = {**OPTIMIZERS[preset], **values}
    grid = Grid()
    try:
        for key, value in values.items():
            setattr(grid, key, _coerce(key, value, type(getattr(grid, key))))
    except (TypeError, ValueError) as exc:
        raise GanbenchError(f"bad grid setting: {exc}") from None
    _check(grid)
    if "reference_samples" in values and grid.reference_samples < 2:  # 0, the default, is only implicit
        raise GanbenchError(
            f"reference_samples must be at least 2 (got {grid.reference_samples}): it caps the reference at that "
            "many target images; leave it out to compare with the whole target"
        )
    _check_effect(grid, set(config), set(given), warn or _warn)
    return grid


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _check_pairs(config: dict[str, Any], given: dict[str, Any]) -> None:
    """``pairs`` replace the source x target cross product: a source or target beside them would be ignored."""
    for layer, on_cli in ((config, False), (given, True)):
        if "pairs" in layer and {"source", "target"} & set(layer):
            both = " and ".join(k for k in ("source", "target") if k in layer)
            where = "the command line" if on_cli else "the config"
            raise GanbenchError(
                f"{where} sets both pairs and {both}: pairs replace the source x target cross product, so {both} "
                "would be ignored; keep one of them"
            )
    cli_specs = [k for k in ("source", "target") if k in given]
    if "pairs" in config and cli_specs:
        flags = " / ".join(f"--{k}" for k in cli_specs)
        raise GanbenchError(
            f"{flags} cannot override the config's pairs (explicit [source, target] pairs, each its own source "
            f"and target); edit the pairs in the config, or remove them from it to run every source x target"
        )


@dataclass(frozen=True)
class _Inert:
    """A setting that does nothing unless ``acts(grid)``: what it needs, said for the command line and the config."""

    needs: str  # the setting that makes it act
    acts: Callable[[Grid], bool]
    why: tuple[str, str]  # (command line, config): when it has no effect
    fix: tuple[str, str]  # (command line, config): what to do instead


_INERT: dict[str, _Inert] = {
    "val_samples": _Inert(
        "select_on", lambda g: g.select_on == "val",
        ("without --select-on val", 'without select_on = "val"'),
        ("add --select-on val or drop --val-samples", 'set select_on = "val" or drop val_samples')),
    "r1_every": _Inert(
        "r1_gamma", lambda g: g.r1_gamma > 0,
        ("while R1 is off (--r1-gamma 0)", "while R1 is off (r1_gamma = 0)"),
        ("add --r1-gamma X (above 0) or drop --r1-every", "set r1_gamma above 0 or drop r1_every")),
    "baseline": _Inert(
        "strategy", lambda g: "scratch" not in [s.partition(":")[0] for s in g.strategy],
        ("when the strategies include scratch", "when the strategies include scratch"),
        ("drop --no-baseline", "drop baseline")),
}  # fmt: skip
_WHAT = {"val_samples": " (the validation split would pick no step and only leave the reference smaller)"}


def _check_effect(grid: Grid, from_config: set[str], from_cli: set[str], warn: Callable[[str], None]) -> None:
    """A setting the user changed from its default that would do nothing here (or only something silent) is
    refused. One from the config that a command-line option made inert (a config used as a template:
    ``--select-on final`` on a config with a validation split) is ignored, reset to its default, with a warning."""
    default = Grid()
    for key, rule in _INERT.items():
        if rule.acts(grid) or key not in from_config | from_cli or getattr(grid, key) == getattr(default, key):
            continue  # it acts, or it was not given, or given as its default (which changes nothing either way)
        if key not in from_cli and rule.needs in from_cli:
            value = getattr(grid, rule.needs)
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            warn(f"the config's {key} has no effect with --{rule.needs.replace('_', '-')} {shown}: ignored")
            setattr(grid, key, getattr(default, key))
            continue
        cli = key in from_cli
        name = f"--{key.replace('_', '-')}" if cli else f"the config's {key}"
        raise GanbenchError(f"{name} has no effect {rule.why[0 if cli else 1]}{_WHAT.get(key, '')}; "
                            f"{rule.fix[0 if cli else 1]}")  # fmt: skip


def _coerce(key: str, value: Any, current_type: type) -> Any:
    if key in LIST_FIELDS:
        if not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{key} must be a list of NAME[:key=value,...] strings (or one comma-separated string), "
                             f"got {value!r}")  # fmt: skip
        items = split_spec_list(value) if isinstance(value, str) else [str(v) for v in value]
        if not items:
            raise ValueError(f"{key} is empty")
        return items
    if key in INT_LIST_FIELDS:
        items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
        numbers = []
        for v in items:
            if isinstance(v, str) and not v.strip():
                continue
            try:
                numbers.append(_integer(key, v.strip() if isinstance(v, str) else v))
            except ValueError as exc:
                if "must be an integer" in str(exc):
                    raise ValueError(f"{key} must be integers (e.g. 0,1,2), got {value!r}") from None
                raise
        return numbers
    if key == "betas":
        items = value.split(",") if isinstance(value, str) else value
        try:
            if not isinstance(items, list) or any(isinstance(v, bool) for v in items):
                raise TypeError
            return [float(v) for v in items]
        except (TypeError, ValueError):
            raise ValueError(f"betas must be two numbers, e.g. 0,0.99, got {value!r}") from None
    if key == "pairs":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value)
        ):
            raise ValueError('pairs must be a list of [source, target], e.g. [["mnist5k:classes=0-4", "digits"]]')
        return [[s, t] for s, t in value]
    if current_type is str:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be text, got {value!r}")
        return value
    if current_type is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if current_type is int:
        return _integer(key, value)
    if current_type is float and isinstance(value, bool):
        raise ValueError(f"{key} must be a number, got {value!r}")
    try:
        return current_type(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be {current_type.__name__}, got {value!r}") from None


def _integer(key: str, value: Any) -> int:
    """``value`` as an int: integers, whole floats and integer strings; never a bool or a fraction."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key} must be an integer, got {value!r}") from None
    if key == "seeds" and not 0 <= number <= INT_MAX:
        raise ValueError(f"seeds must be integers from 0 to {INT_MAX}, got {number}; e.g. --seeds 0,1,2")
    if abs(number) > INT_MAX:
        raise ValueError(f"{key} must be at most {INT_MAX}, got {number}")
    return number


def _check(grid: Grid) -> None:
    for key in POSITIVE:
        if getattr(grid, key) < 1:
            raise GanbenchError(f"{key} must be at least 1 (got {getattr(grid, key)})")
    for key in NON_NEGATIVE:
        if getattr(grid, key) < 0:
            raise GanbenchError(f"{key} must be 0 or more (got {getattr(grid, key)})")
    if grid.eval_samples < 2:
        raise GanbenchError("eval_samples must be at least 2 (FID needs a covariance)")
    if not math.isfinite(grid.lr) or grid.lr <= 0:
        raise GanbenchError(f"lr must be a positive number, e.g. --lr {Grid.lr} (got {grid.lr})")
    for key in ("ema", "r1_gamma"):
        if not math.isfinite(getattr(grid, key)):
            raise GanbenchError(f"{key} must be a finite number (got {getattr(grid, key)})")
    if (
        not grid.name or grid.name.startswith(".") or any(c in grid.name for c in "/\\")
        or not grid.name.isprintable() or len(grid.name.encode("utf-8", "surrogatepass")) > NAME_MAX
    ):  # fmt: skip
        raise GanbenchError(
            f"name {grid.name!r} must be a plain folder name (no '/' or '\\', not starting with '.', printable, at "
            f"most {NAME_MAX} bytes): the run directory is <out>/<name>-<grid hash>; e.g. --name my-grid"
        )
    if grid.channels not in (1, 3):
        raise GanbenchError(f"channels must be 1 or 3 (got {grid.channels})")
    if not grid.shots or min(grid.shots) < 1:
        raise GanbenchError("shots must be positive integers, e.g. --shots 10,100")
    grid.protocol().check()
    grid.recipe().check()
    if not grid.seeds:
        raise GanbenchError("seeds must list at least one integer, e.g. --seeds 0,1,2")
