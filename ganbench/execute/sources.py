"""Source models loaded from a checkpoint file instead of pretrained by ganbench: ``--source
checkpoint:path=FILE`` (rosinality/stylegan2-pytorch's layout: ``g_ema`` / ``g`` / ``d`` / ``latent_avg`` /
``args``), keyed by the file's sha256.

A cell's identity holds the file's sha256, never its path (the same file elsewhere is the same cell); the path
travels beside the cell for the worker, which checks the hash again before it trusts the file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.plugin.contracts import SourceCheckpoint
from ganbench.plugin.options import parse_spec

PREFIX = "checkpoint"
GENERATORS = ("g_ema", "g")
HELP = (
    "checkpoint:path=FILE[,generator=g_ema|g] -- a pretrained source in rosinality/stylegan2-pytorch's format "
    "(g_ema, g, d, latent_avg); G starts from `generator` (default g_ema), D from d"
)

#: Where the inputs of the literature's protocols come from; none of them ships with ganbench.
KNOWN_SOURCES: tuple[dict[str, str], ...] = (
    {"name": "stylegan2-ffhq-config-f.pt", "kind": "checkpoint",
     "what": "StyleGAN2 config-f, FFHQ 256 px, rosinality's conversion of NVIDIA's weights (g, d, g_ema, latent_avg)",
     "where": "linked from the README of github.com/rosinality/stylegan2-pytorch (also the checkpoint of "
              "github.com/utkarshojha/few-shot-gan-adaptation); use --source checkpoint:path=FILE"},
    {"name": "babies, sunglasses, sketches, amedeo (Modigliani), otto (Dix), raphael", "kind": "10-shot targets",
     "what": "the 10-shot image folders and the full target sets that FID is computed against",
     "where": "github.com/utkarshojha/few-shot-gan-adaptation (data links in its README); use "
              "--target folder:path=FULL,shots_dir=TEN (the full set, the released 10) and --shots 10"},
    {"name": "afhq (cat, dog, wild)", "kind": "target",
     "what": "Animal Faces-HQ, 512 px, 5k images per class",
     "where": "github.com/clovaai/stargan-v2 (download script); use --target folder:path=DIR/train/cat"},
)  # fmt: skip


def is_checkpoint_spec(text: str) -> bool:
    return text.partition(":")[0].strip() == PREFIX


@dataclass(frozen=True)
class CheckpointSpec:
    """A checkpoint source as the grid names it: the file, its sha256 and which generator G starts from."""

    path: str  # absolute
    sha256: str
    generator: str = "g_ema"

    @property
    def canonical(self) -> str:
        """What the cell's identity holds: the content, not the place."""
        return f"{PREFIX}:sha256={self.sha256},generator={self.generator}"

    @property
    def label(self) -> str:
        suffix = "" if self.generator == "g_ema" else f",generator={self.generator}"
        return f"{PREFIX}:{Path(self.path).name}{suffix}"


def parse_checkpoint_spec(text: str) -> CheckpointSpec:
    """``checkpoint:path=FILE[,generator=g_ema|g]`` -> the spec with the file's sha256; one-line errors."""
    try:
        _, options = parse_spec(text)
    except GanbenchError as exc:
        raise GanbenchError(f"bad source {text!r}: {exc}; {HELP}") from None
    unknown = sorted(set(options) - {"path", "generator"})
    if unknown:
        raise GanbenchError(f"source {text!r} has no option {unknown[0]!r}; {HELP}")
    if not options.get("path"):
        raise GanbenchError(f"source {text!r} names no file; {HELP}")
    generator = options.get("generator", "g_ema")
    if generator not in GENERATORS:
        raise GanbenchError(f"source {text!r}: generator must be g_ema or g, not {generator!r}")
    path = Path(os.path.expanduser(options["path"])).absolute()
    if not path.is_file():
        raise GanbenchError(f"source checkpoint {path} does not exist; {_where_from()}")
    return CheckpointSpec(str(path), file_sha256(path), generator)


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (remembered per path, size and mtime within a process)."""
    stat = os.stat(path)
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
        _HASHES[memo] = digest.hexdigest()
    return _HASHES[memo]


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The file's dict, loaded with ``weights_only=True``; the one class allowed beyond tensors and plain
    data is ``argparse.Namespace`` (what rosinality's train.py saves as ``args``)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanbenchError(f"cannot read the source checkpoint {path}: {first}") from None
    if not isinstance(data, dict) or not any(k in data for k in GENERATORS):
        found = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise GanbenchError(
            f"{path} is not a rosinality-format checkpoint: it holds {found}, not g_ema / g (and d); convert it with "
            "rosinality/stylegan2-pytorch's convert_weight.py"
        )
    return data


def check_state(kind: str, expected: dict[str, torch.Tensor], given: dict[str, Any], path: str) -> None:
    """Key for key and shape for shape, or one line naming what does not match."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k} {tuple(given[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and (not torch.is_tensor(given[k]) or tuple(given[k].shape) != tuple(v.shape))
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}"
                        f"{', ...' if len(unexpected) > 3 else ''})")  # fmt: skip
    if shapes:
        problems.append(f"{len(shapes)} of other shape ({'; '.join(shapes[:3])}{'; ...' if len(shapes) > 3 else ''})")
    if problems:
        raise GanbenchError(
            f"the {kind} in {path} does not fit the architecture: keys {', '.join(problems)}; check the architecture "
            "options (size = --resolution, channel_multiplier, style_dim, n_mlp) against the checkpoint's"
        )


def load_checkpoint_source(
    path: str, sha256: str, generator: str, nets: tuple[nn.Module, nn.Module], key: str
) -> SourceCheckpoint:
    """The checkpoint as a :class:`SourceCheckpoint` for ``nets`` (freshly built G and D whose state dicts say
    what must be there), after checking the file is the one the plan hashed."""
    if not Path(path).is_file():
        raise GanbenchError(f"the source checkpoint {path} is not on this machine; {_where_from()}")
    actual = file_sha256(path)
    if actual != sha256:
        raise GanbenchError(
            f"the source checkpoint {path} changed since the grid was planned (sha256 {actual[:12]}, planned "
            f"{sha256[:12]}); plan the run again"
        )
    data = read_checkpoint(path)
    name = generator if generator in data else next(g for g in GENERATORS if g in data)
    if generator == "g" and "g" not in data:
        raise GanbenchError(f"{path} has no 'g' (only {', '.join(sorted(data))}); use generator=g_ema")
    G, D = nets
    check_state(f"generator ({name})", G.state_dict(), data[name], path)
    has_d = "d" in data
    if has_d:
        check_state("discriminator (d)", D.state_dict(), data["d"], path)
    args = data.get("args")
    meta = {
        "seconds": None, "file": path, "generator_key": name, "has_discriminator": has_d,
        "keys": sorted(data), "args": _plain(vars(args)) if isinstance(args, argparse.Namespace) else None,
    }  # fmt: skip
    if torch.is_tensor(data.get("latent_avg")):
        meta["latent_avg"] = data["latent_avg"]
    return SourceCheckpoint(dict(data[name]), dict(data["d"]) if has_d else {}, key, sha256, meta)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in values.items()}


def _where_from() -> str:
    return "`ganbench sources` says where the standard checkpoints come from"
