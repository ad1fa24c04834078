"""What the core does to every dataset, identically: class selection, resizing, channel conversion,
caching the result as one uint8 tensor, and seeded n-shot subsampling."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganbench.context import RunContext, current_context
from ganbench.data.roots import DataNotFound
from ganbench.errors import GanbenchError, one_line
from ganbench.plugin.contracts import Dataset, ImageSet
from ganbench.plugin.options import format_int_set
from ganbench.plugin.registry import PluginRef, Registry
from ganbench.store.cache import atomic_write_bytes, atomic_write_text, stable_hash, tensor_hash
from ganbench.store.locks import entry_lock

PREPROCESS_VERSION = 1  # bump when resize / conversion below changes


@dataclass
class PreparedData:
    images: torch.Tensor  # uint8 (N, C, R, R)
    labels: torch.Tensor | None
    content_key: str  # sha256 of the images: what reference statistics are cached by
    provenance: dict[str, Any] = field(default_factory=dict)  # the dataset's provenance() after load()
    shots: torch.Tensor | None = None  # positions of the dataset's own (released) training images, if it has them

    def __len__(self) -> int:
        return len(self.images)


def prepare_dataset(
    ref: PluginRef, registry: Registry, resolution: int, channels: int, context: RunContext | None = None
) -> PreparedData:
    """The dataset's selected classes at ``resolution`` px and ``channels`` channels, cached under the context's
    cache root (the active context by default)."""
    ctx = context or current_context()
    dataset = registry.create(ref)
    with ctx.active():
        path, fingerprint = _cache_key(ref, dataset, resolution, channels, ctx.cache)
        data, _ = _read_prepared(path)
        if data is None:  # built by one process at a time; the others wait, then read what it wrote
            with entry_lock(
                path.with_suffix(".lock"), f"prepared data of {ref.label} ({path.name})", notify=tqdm.write
            ):
                data, damage = _read_prepared(path)
                if data is None:
                    if damage:
                        tqdm.write(f"warning: the prepared-data cache file {path} is damaged ({damage}); rebuilding it")
                        path.unlink(missing_ok=True)
                    data = _build(ref, dataset, resolution, channels, path)
        _remember(path, ref, fingerprint)
    return data


def _build(ref: PluginRef, dataset: Dataset, resolution: int, channels: int, path: Path) -> PreparedData:
    """Decode, select, resize and convert the dataset, and cache the result at ``path``."""
    raw = dataset.load()
    provenance = dict(dataset.provenance())
    selected = select_classes(raw, ref)
    images = convert_channels(resize_images(selected.images, resolution), channels)
    data = PreparedData(images, selected.labels, tensor_hash(images), provenance, selected.shots)
    blob = {"images": data.images, "labels": data.labels, "content_key": data.content_key, "provenance": provenance,
            "shots": data.shots}  # fmt: skip
    if data.labels is not None:
        blob["labels_key"] = tensor_hash(data.labels)
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return data


def _read_prepared(path: Path) -> tuple[PreparedData | None, str | None]:
    """The cached tensors at ``path`` if they are whole; else (None, what is wrong with the file), or (None, None)
    when there is no file. The images must hash to the content key stored with them (2 ms for 2,500 28x28 images)."""
    if not path.is_file():
        return None, None
    try:
        blob = torch.load(path, weights_only=True)
        images, labels, key, shots = blob["images"], blob.get("labels"), blob["content_key"], blob.get("shots")
        matches = tensor_hash(images) == key
        if shots is not None and (shots.ndim != 1 or len(shots) == 0 or int(shots.max()) >= len(images)):
            return None, "its shot positions do not fit its images"
        labels_match = labels is None or "labels_key" not in blob or tensor_hash(labels) == blob["labels_key"]
    except FileNotFoundError:
        return None, None
    except Exception as e:  # truncated or overwritten: rebuilt, never trusted
        return None, f"unreadable: {one_line(str(e) or type(e).__name__, 80)}"
    if not matches:
        return None, "its images do not match their sha256"
    if not labels_match:
        return None, "its labels do not match their sha256"
    return PreparedData(images, labels, key, blob.get("provenance", {}), shots), None


def _remember(path: Path, ref: PluginRef, fingerprint: tuple[str, str] | None) -> None:
    """Note which content fingerprint of ``ref`` this cache holds, for machines that lack the data."""
    if fingerprint:
        latest = path.with_name(f"{ref.name}-{fingerprint[0]}.fingerprint")
        if not latest.is_file() or latest.read_text() != fingerprint[1]:
            atomic_write_text(latest, fingerprint[1])


def prepared_path(
    ref: PluginRef, registry: Registry, resolution: int, channels: int, context: RunContext | None = None
) -> Path:
    """Where :func:`prepare_dataset` caches (or has cached) ``ref`` at this resolution and channel count."""
    ctx = context or current_context()
    with ctx.active():
        return _cache_key(ref, registry.create(ref), resolution, channels, ctx.cache)[0]


def _cache_key(
    ref: PluginRef, dataset: Dataset, resolution: int, channels: int, cache: Path
) -> tuple[Path, tuple[str, str] | None]:
    """The cache file of ``ref`` at this size, keyed by the canonical spec, the dataset's ``version`` and, for
    datasets that have one, its content ``fingerprint()``; and (spec key, fingerprint) to remember. When the
    data is not on this machine (a worker without the user's folder), the fingerprint last prepared into this
    cache for the same spec is used."""
    spec = {"dataset": ref.canonical, "version": type(dataset).version, "res": resolution, "ch": channels,
            "pre": PREPROCESS_VERSION}  # fmt: skip
    folder = cache / "data"
    spec_key = stable_hash(spec)[:16]
    try:
        fingerprint = dataset.fingerprint()
    except DataNotFound:
        latest = folder / f"{ref.name}-{spec_key}.fingerprint"
        if not latest.is_file():
            raise
        fingerprint = latest.read_text()
    if not fingerprint:  # datasets without one keep the keys they always had
        return folder / f"{ref.name}-{stable_hash(spec)[:16]}.pt", None
    spec["fingerprint"] = fingerprint
    return folder / f"{ref.name}-{stable_hash(spec)[:16]}.pt", (spec_key, fingerprint)


def select_classes(data: ImageSet, ref: PluginRef) -> ImageSet:
    classes = ref.config.get("classes")
    if classes is None:
        return data
    assert data.labels is not None, "datasets declaring has_labels must return labels"
    mask = torch.isin(data.labels, torch.tensor(classes, dtype=data.labels.dtype))
    if not mask.any():
        present = format_int_set(sorted(set(data.labels.tolist())))
        raise GanbenchError(f"{ref.label} selects no images; its classes are {present}")
    shots = None
    if data.shots is not None:
        kept = mask[data.shots]
        if not kept.all():
            raise GanbenchError(
                f"{ref.label}: {int((~kept).sum())} of its {len(data.shots)} released shots are not in the selected "
                "classes; select their classes too, or leave the shots out of the dataset"
            )
        shots = (mask.cumsum(0) - 1)[data.shots]  # their positions among the selected images
    return ImageSet(data.images[mask], data.labels[mask], shots)


def resize_images(images: torch.Tensor, resolution: int, batch: int = 1024) -> torch.Tensor:
    """Square-resize uint8 images (antialiased bilinear when shrinking, bilinear when enlarging)."""
    if images.shape[-2:] == (resolution, resolution):
        return images
    out = []
    for chunk in images.split(batch):
        x = F.interpolate(
            chunk.float(), size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:  # ITU-R 601 luma, as PIL's convert('L')
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    raise GanbenchError(f"cannot convert {have}-channel images to {channels} channels; use --channels 1 or 3")


def select_shots(n_available: int, shots: int, seed: int, released: torch.Tensor | None = None) -> torch.Tensor:
    """Positions of a cell's ``shots`` training images (sorted), the same on every machine: a seeded random
    subset of the ``n_available`` images, or, for a dataset with ``released`` shots, those (all of them when
    ``shots`` is their number, whatever the seed; else a seeded subset of them)."""
    if released is not None:
        if shots > len(released):
            raise GanbenchError(
                f"{shots} shots requested but the target comes with {len(released)} released shots; "
                f"use --shots {len(released)} or fewer"
            )
        if shots == len(released):
            return released.sort().values
        generator = torch.Generator().manual_seed(seed)
        return released[torch.randperm(len(released), generator=generator)[:shots]].sort().values
    if shots > n_available:
        raise GanbenchError(f"{shots} shots requested but only {n_available} images are available")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_available, generator=generator)[:shots].sort().values


def shot_positions(target: PreparedData, shots: int, seed: int) -> torch.Tensor:
    """The positions of a cell's training images in its prepared target (see :func:`select_shots`)."""
    return select_shots(len(target), shots, seed, target.shots)
