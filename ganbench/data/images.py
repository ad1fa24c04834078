"""Image files as ganbench reads them, everywhere: the ``folder`` dataset (``run matrix``, ``datasets prepare``),
``ganbench fid`` and ``ganbench score``, torchvision's CelebA and Flowers-102, and any third-party dataset plugin
(they are public API). One loader, so one picture gives the same pixels whichever command reads it.

Files are found by suffix, recursively (:func:`image_files`: folder symlinks followed, loops skipped), decoded
to grey or RGB (:func:`decode_image`: the first frame, EXIF orientation applied, 16-bit values scaled to 8
bits, transparency composited on white, palettes and CMYK converted, files over PIL's decompression-bomb limit
refused), then either kept at their own size or center-cropped and resized with PIL's bicubic filter, and
stacked into one uint8 tensor (:func:`stack_images`). A file that cannot be decoded is reported with why, in
words (:func:`decode_images`), never raised from a worker thread.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganbench.files import UserFileError, read_cause, show_path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
BAR_FROM = 200  # decoding this many files or more draws a progress bar (on a terminal)
_EXIF_ORIENTATION = 0x0112
_warned_loops: set[str] = set()  # each looping folder link is reported once per process


def image_files(root: Path) -> list[Path]:
    """Every image file under ``root`` by suffix, recursively, in a stable order (a folder's files sorted by
    name, then its subfolders, sorted); hidden names (starting with '.') are skipped, files and folders alike.

    Folder symlinks are followed, wherever they point (class folders are often links to data kept elsewhere);
    one that points back to a folder it is inside (a loop) is skipped, with one warning naming it. File
    symlinks are listed whatever they point to: a dangling or looping one is then an unreadable file. A folder
    that cannot be listed (permission denied) is refused in one line naming it."""
    found: list[Path] = []
    root = Path(root)
    with _listing(root):
        top = os.stat(root)
    _walk(root, frozenset({(top.st_dev, top.st_ino)}), found)
    return found


@contextmanager
def _listing(folder: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise UserFileError(
            f"cannot list folder {show_path(folder)}: {read_cause(exc, folder)}; make it readable or move it out",
            folder,
        ) from None


def _walk(folder: Path, ancestors: frozenset[tuple[int, int]], found: list[Path]) -> None:
    with _listing(folder), os.scandir(folder) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    folders = []
    for entry in entries:
        try:
            is_dir = entry.is_dir()  # follows links; False for dangling and looping ones
        except OSError:
            is_dir = False
        if is_dir:
            folders.append(entry)
        elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            found.append(Path(folder, entry.name))
    for entry in folders:
        path = Path(folder, entry.name)
        with _listing(path):
            stat = os.stat(path)
        key = (stat.st_dev, stat.st_ino)
        if key in ancestors:
            if str(path) not in _warned_loops:
                _warned_loops.add(str(path))
                log.warning("skipped %s: a folder link back to a folder it is inside (a loop)", show_path(path))
            continue
        _walk(path, ancestors | {key}, found)


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


class ImageRefused(ValueError):
    """An image file ganbench will not decode; the message says why, in words."""


def _check_pixels(size: tuple[int, int]) -> None:
    """Refuse an image over PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, read each time: a
    caller that raised or lifted it is obeyed) before its pixels are decoded."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    w, h = size
    if limit and w * h > limit:
        raise ImageRefused(_bomb_text(w * h, limit, f"{w}x{h} = "))


def _bomb_text(pixels: int, limit: int, dims: str = "") -> str:
    return (f"it is {dims}{pixels} pixels, over PIL's decompression-bomb limit of {limit} "
            "(PIL.Image.MAX_IMAGE_PIXELS): downscale it")  # fmt: skip


@contextmanager
def _bomb_warnings_ignored() -> Iterator[None]:
    """PIL warns (DecompressionBombWarning) when it opens an image over its limit; :func:`_check_pixels` refuses
    those itself, so the warning is silenced here, and only here. Entered by the calling thread only (Python's
    warning filters are global, and ``catch_warnings`` is not safe to enter from several threads at once)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _oriented(img):
    """``img`` turned upright by its EXIF orientation tag (a camera's portrait JPEG), when it has one; an
    unreadable EXIF block is ignored, as viewers do."""
    from PIL import ImageOps

    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block: the pixels are still fine
        return img
    return ImageOps.exif_transpose(img) if orientation in range(2, 9) else img


def _decode(path: str | os.PathLike, size: int | None, crop: bool) -> np.ndarray:
    from PIL import Image

    try:
        opened = Image.open(path)
    except Image.DecompressionBombError as exc:  # over twice the limit: PIL refuses before we can look
        found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
        pixels, limit = (int(found.group(1)), int(found.group(2)) // 2) if found else (0, Image.MAX_IMAGE_PIXELS)
        raise ImageRefused(_bomb_text(pixels, limit)) from None
    with opened as img:
        _check_pixels(img.size)
        img.seek(0)
        w, h = img.size
        side = min(w, h) if crop else None
        if size and img.format == "JPEG" and side:  # decode at a reduced scale when that still leaves >= size px
            img.draft(img.mode, (-(-size * w // side), -(-size * h // side)))
        img.load()  # before the orientation is read: PIL's TIFF reader turns the image upright as it loads
        img = to_grey_or_rgb(_oriented(img))
    if size is not None:
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


def decode_image(path: str | os.PathLike, size: int | None, crop: bool = True) -> np.ndarray:
    """One image file as uint8 ``(H, W)`` (grey) or ``(H, W, 3)`` (colour): the first frame, turned upright by
    its EXIF orientation, converted by :func:`to_grey_or_rgb`; then, for a ``size``, center-cropped to a square
    (unless ``crop`` is false) and resized to ``size`` x ``size``; ``size=None`` keeps its own size. An RGB
    image whose three channels are equal comes back grey. A file over PIL's decompression-bomb limit raises
    :class:`ImageRefused` before its pixels are decoded."""
    with _bomb_warnings_ignored():
        return _decode(path, size, crop)


def why_unreadable(exc: BaseException, path: str | os.PathLike) -> str:
    """Why decoding ``path`` failed, in words (what :func:`decode_images` reports for each bad file)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, ImageRefused):
        return str(exc)
    if isinstance(exc, UnidentifiedImageError):
        return "it is not an image file PIL can decode (damaged, empty, or another format under an image suffix)"
    text = " ".join(str(exc).split()).lower()
    truncated = "truncated" in text or "broken data stream" in text or isinstance(exc, EOFError)
    if truncated and isinstance(exc, (OSError, EOFError, SyntaxError)) and getattr(exc, "errno", None) is None:
        return "it is truncated"
    return show_path(read_cause(exc, path))[:160]


def _decode_or_reason(args: tuple[Path, int | None, bool]) -> np.ndarray | str:
    path, size, crop = args
    try:
        return _decode(path, size, crop)
    except Exception as exc:  # any failure to decode a user's file makes it an unreadable file
        return why_unreadable(exc, path)


def decode_images(
    paths: Sequence[Path], size: int | None, crop: bool = True, desc: str = "decode"
) -> tuple[list[np.ndarray | None], dict[Path, str]]:
    """Decode ``paths`` with :func:`decode_image` on a few threads (PIL releases the GIL), in order, with a
    progress bar for long lists. Returns the arrays (None for a file that failed) and why each failure, in words
    (:func:`why_unreadable`)."""
    workers = min(8, os.cpu_count() or 1)
    arrays: list[np.ndarray | None] = []
    bad: dict[Path, str] = {}
    bar = tqdm(total=len(paths), desc=show_path(desc), unit="img", leave=False,
               disable=None if len(paths) >= BAR_FROM else True)  # fmt: skip
    with _bomb_warnings_ignored(), ThreadPoolExecutor(workers) as pool:
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
