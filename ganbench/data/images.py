"""Image files as every file-backed dataset reads them: found by suffix, decoded to grey or RGB (16-bit grey
scaled to 8 bits, transparency on white), center-cropped and resized with PIL's bicubic filter, stacked into
one uint8 tensor. The ``folder`` dataset and torchvision's CelebA and Flowers-102 use these, and so can any
third-party dataset plugin (they are public API).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
BAR_FROM = 200  # decoding this many files or more draws a progress bar (on a terminal)


def image_files(root: Path) -> list[Path]:
    """Every image file under ``root`` by suffix, recursively, in a stable (sorted) order; hidden names
    (starting with '.') are skipped, files and folders alike."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(folder, f) for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        )
    return found


def to_grey_or_rgb(img):
    """A PIL image in mode ``L`` or ``RGB``: 16-bit and 32-bit grey scaled to 8 bits, transparency composited
    onto white, palettes, CMYK and other colour modes converted to RGB."""
    from PIL import Image

    mode = img.mode
    if mode in ("1", "L"):
        return img.convert("L")
    if mode.startswith("I") or mode == "F":  # I;16 variants and I hold 16-bit values; F is taken as 0-255
        values = np.asarray(img, dtype=np.float64)
        if mode != "F":
            values = values / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in img.info):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        white.alpha_composite(img.convert("RGBA"))
        return white.convert("RGB")
    return img.convert("RGB")


def decode_image(path: str | os.PathLike, size: int, crop: bool = True) -> np.ndarray:
    """One image file as uint8 ``(size, size)`` (grey) or ``(size, size, 3)`` (colour): the first frame,
    converted by :func:`to_grey_or_rgb`, center-cropped to a square (unless ``crop`` is false) and resized.
    An RGB image whose three channels are equal comes back grey."""
    from PIL import Image

    with Image.open(path) as img:
        img.seek(0)
        w, h = img.size
        side = min(w, h) if crop else None
        if img.format == "JPEG" and side:  # decode at a reduced scale when that still leaves >= size px
            img.draft(img.mode, (-(-size * w // side), -(-size * h // side)))
        img = to_grey_or_rgb(img)
    w, h = img.size
    if crop and w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(img)
    if array.ndim == 3 and (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all():
        array = array[..., 0]
    return array


def _decode_or_reason(args: tuple[Path, int, bool]) -> np.ndarray | str:
    path, size, crop = args
    try:
        return decode_image(path, size, crop)
    except Exception as exc:  # any failure to decode a user's file makes it an unreadable file
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:120]


def decode_images(
    paths: Sequence[Path], size: int, crop: bool = True, desc: str = "decode"
) -> tuple[list[np.ndarray | None], dict[Path, str]]:
    """Decode ``paths`` with :func:`decode_image` on a few threads (PIL releases the GIL), in order, with a
    progress bar for long lists. Returns the arrays (None for a file that failed) and why each failure."""
    workers = min(8, os.cpu_count() or 1)
    arrays: list[np.ndarray | None] = []
    bad: dict[Path, str] = {}
    bar = tqdm(total=len(paths), desc=desc, unit="img", leave=False, disable=None if len(paths) >= BAR_FROM else True)
    with ThreadPoolExecutor(workers) as pool:
        for path, result in zip(paths, pool.map(_decode_or_reason, [(p, size, crop) for p in paths])):
            if isinstance(result, str):
                bad[path] = result
                arrays.append(None)
            else:
                arrays.append(result)
            bar.update()
    bar.close()
    return arrays, bad


def stack_images(arrays: Sequence[np.ndarray], mode: str = "auto") -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` from equal-sized grey ``(H, W)`` and colour ``(H, W, 3)`` arrays: one channel
    when ``mode`` is ``l``, or ``auto`` and every image is grey; else three (grey images repeated)."""
    grey = all(a.ndim == 2 for a in arrays)
    if mode == "l" or (mode == "auto" and grey):
        planes = [a if a.ndim == 2 else _luma(a) for a in arrays]
        return torch.from_numpy(np.stack(planes)[:, None])
    colour = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    return torch.from_numpy(np.ascontiguousarray(np.stack(colour).transpose(0, 3, 1, 2)))


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's convert('L') and the core's channel conversion."""
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).convert("L"))
