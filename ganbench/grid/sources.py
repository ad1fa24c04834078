"""Source models named by a checkpoint file (``--source checkpoint:path=FILE``), as the grid holds them: the
spec's syntax, the file's sha256 (a cell's identity holds the hash, never the path), and where the
literature's checkpoints come from. Loading the file into nets is :mod:`ganbench.execute.sources`'.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ganbench.errors import GanbenchError
from ganbench.plugin.options import parse_spec
from ganbench.store.cache import file_sha256

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
        raise GanbenchError(f"source checkpoint {path} does not exist; {where_from()}")
    return CheckpointSpec(str(path), file_sha256(path), generator)


def where_from() -> str:
    return "`ganbench sources` says where the standard checkpoints come from"
