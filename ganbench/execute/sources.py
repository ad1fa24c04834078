"""Source models loaded from a checkpoint file instead of pretrained by ganbench: ``--source
checkpoint:path=FILE`` (rosinality/stylegan2-pytorch's layout: ``g_ema`` / ``g`` / ``d`` / ``latent_avg`` /
``args``), keyed by the file's sha256 (the spec and the hash: :mod:`ganbench.grid.sources`).

A cell's identity holds the file's sha256, never its path (the same file elsewhere is the same cell); the path
travels beside the cell for the worker, which checks the hash again before it trusts the file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.files import load_torch_file, reading, show_path
from ganbench.grid.sources import GENERATORS, where_from
from ganbench.plugin.contracts import SourceCheckpoint
from ganbench.store.cache import file_sha256


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The file's dict, loaded with ``weights_only=True`` through the user-file boundary (a truncated file or one
    torch did not write is one line naming it); the one class allowed beyond tensors and plain data is
    ``argparse.Namespace`` (what rosinality's train.py saves as ``args``)."""
    fix = "give the file rosinality/stylegan2-pytorch's train.py saved (or its convert_weight.py wrote)"
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = load_torch_file(path, "the source checkpoint", fix)
    if not isinstance(data, dict) or not any(k in data for k in GENERATORS):
        found = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise GanbenchError(
            f"{show_path(path)} is not a rosinality-format checkpoint: it holds {found}, not g_ema / g (and d); convert it with "
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
        raise GanbenchError(f"the source checkpoint {show_path(path)} is not on this machine; {where_from()}")
    with reading(path, "the source checkpoint"):
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
