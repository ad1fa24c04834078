"""``folder:path=DIR``: every image under a directory of your own, with classes from its subfolders.

Files are found recursively (names starting with '.' are skipped) by suffix: png, jpg/jpeg, bmp, gif (first
frame), webp, tif/tiff, ppm/pgm/pbm/pnm. Every image is converted to RGB or grey, center-cropped to a square
(``crop=false`` squashes instead) and resized to ``size`` px with PIL's bicubic filter, so that the folder
becomes one tensor; the core then resizes it to the grid's resolution like any other dataset.

``shots_dir=DIR`` names the training images a paper released beside its full set (the 10 images of a
few-shot target): every cell then trains on those rather than on a seeded draw from ``path``. Each of them
is looked for among ``path``'s images (equal pixels after decoding); one that is not there is added to the
dataset, so that the reference (``--reference all``) holds it as it holds the others. In a folder with class
subfolders, an added shot takes its class from its own first subfolder under ``shots_dir``.

The module also holds the decoding helpers the torchvision-backed CelebA and Flowers-102 datasets use.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import ganbench
from ganbench import DataNotFound, at_least

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
BAR_FROM = 200  # decoding this many files or more draws a progress bar (on a terminal)


# --------------------------------------------------------------------------------------------------
# Decoding (shared with torchvision_sets)
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------


class Folder(ganbench.Dataset):
    """Your own images: every image file under path=DIR; one subfolder per class gives labels."""

    name = "folder"
    version = "1"
    options = (
        ganbench.Option("path", str, None, "the directory of images (required); must not contain ','"),
        ganbench.Option(
            "size", int, 128, "side of the square every image is cropped and resized to", check=at_least(8)
        ),
        ganbench.Option(
            "mode", str, "auto", "auto: grey if every image is grey, else RGB", choices=("auto", "rgb", "l")
        ),
        ganbench.Option("crop", bool, True, "center-crop to a square before resizing (false: squash)"),
        ganbench.Option("skip_bad", bool, False, "skip (and count) unreadable image files instead of failing"),
        ganbench.Option(
            "shots_dir", str, "", "a directory of released training images: every cell trains on these (see above)"
        ),
    )

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._provenance: dict[str, Any] = {}

    # where and what ----------------------------------------------------------------------------------

    def _root(self) -> Path:
        text = self.config["path"]
        if not text:
            raise DataNotFound("the folder dataset needs a directory: write folder:path=DIR")
        root = Path(text).expanduser()
        if not root.is_dir():
            what = "is not a directory" if root.exists() else "does not exist"
            raise DataNotFound(f"folder path {text!r} {what} (resolved: {root.resolve()})")
        return root

    def _files(self, root: Path | None = None) -> tuple[Path, list[Path]]:
        root = root or self._root()
        files = image_files(root)
        if not files:
            suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
            raise DataNotFound(f"folder {str(root)!r} holds no image files ({suffixes})")
        return root, files

    def _shots_root(self) -> Path | None:
        text = self.config["shots_dir"]
        if not text:
            return None
        root = Path(text).expanduser()
        if not root.is_dir():
            what = "is not a directory" if root.exists() else "does not exist"
            raise DataNotFound(f"folder shots_dir {text!r} {what} (resolved: {root.resolve()})")
        return root

    def locate(self) -> str:
        shots = self._shots_root()
        return str(self._root().resolve()) + (f" (shots: {shots.resolve()})" if shots else "")

    def size_hint(self) -> int | None:
        if self.config["skip_bad"] or not self.config["path"] or self.config["shots_dir"]:
            return None
        try:
            return len(image_files(self._root()))
        except DataNotFound:
            return None

    def fingerprint(self) -> str:
        """sha256 of the folder's resolved path and every image file's relative path, size and mtime (and the
        same of ``shots_dir``, when there is one)."""
        root, shots = self._root(), self._shots_root()
        h = hashlib.sha256(str(root.resolve()).encode())
        _hash_listing(h, root)
        if shots:
            h.update(f"\0shots\0{shots.resolve()}".encode())
            _hash_listing(h, shots)
        return h.hexdigest()

    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)

    # loading -------------------------------------------------------------------------------------------

    def load(self) -> ganbench.ImageSet:
        root, files = self._files()
        relative = [f.relative_to(root) for f in files]
        flat = any(len(r.parts) == 1 for r in relative)
        classes = self.config.get("classes")
        if flat and classes is not None:
            raise ganbench.GanbenchError(
                f"folder {str(root)!r} has images directly in it, so it has no classes and classes= cannot select "
                "any: put each class in its own subfolder (labels number the sorted subfolder names from 0)"
            )
        arrays, bad = decode_images(files, self.config["size"], self.config["crop"], desc=f"decode {root.name}")
        if bad and not self.config["skip_bad"]:
            named = ", ".join(f"{p.relative_to(root)} ({why})" for p, why in list(bad.items())[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise ganbench.GanbenchError(
                f"folder {str(root)!r}: {len(bad)} unreadable image file(s): {named}{more}; "
                "fix or remove them, or add skip_bad=true to skip them"
            )
        if bad:
            log.warning("folder %s: skipped %d unreadable image file(s), e.g. %s", root, len(bad), next(iter(bad)))
        keep = [i for i, a in enumerate(arrays) if a is not None]
        if not keep:
            raise ganbench.GanbenchError(f"folder {str(root)!r}: none of its {len(files)} image files could be read")
        kept = [arrays[i] for i in keep]
        class_of = [relative[i].parts[0] for i in keep]
        self._provenance = {"path": str(root.resolve()), "files": len(files), "skipped_files": len(bad)}
        shots = self._load_shots(kept, class_of, flat)
        images = stack_images(kept, self.config["mode"])
        labels = None
        self.has_labels = not flat  # a folder without class subfolders has no labels (an instance attribute)
        if not flat:
            names = sorted({r.parts[0] for r in relative})
            index = {name: i for i, name in enumerate(names)}
            labels = torch.tensor([index[name] for name in class_of], dtype=torch.int64)
            self._provenance["classes"] = ", ".join(f"{i}={name}" for i, name in enumerate(names))
        return ganbench.ImageSet(images, labels, shots)

    def _load_shots(self, arrays: list[np.ndarray], class_of: list[str], flat: bool) -> torch.Tensor | None:
        """The positions of ``shots_dir``'s images among ``arrays`` (the folder's decoded images), appending
        (with their class, in ``class_of``) those that are not among them; None without ``shots_dir``."""
        shots_root = self._shots_root()
        if shots_root is None:
            return None
        _, files = self._files(shots_root)
        decoded, bad = decode_images(files, self.config["size"], self.config["crop"], desc=f"decode {shots_root.name}")
        if bad:
            path, why = next(iter(bad.items()))
            raise ganbench.GanbenchError(
                f"folder shots_dir {str(shots_root)!r}: {len(bad)} unreadable image file(s), e.g. "
                f"{path.relative_to(shots_root)} ({why}); the released shots must all be readable"
            )
        where: dict[tuple, list[int]] = {}
        for i, array in enumerate(arrays):
            where.setdefault(_pixel_key(array), []).append(i)
        positions, added = [], 0
        for path, array in zip(files, decoded):
            assert array is not None
            free = [i for i in where.get(_pixel_key(array), []) if i not in positions]
            if free:
                positions.append(free[0])
                continue
            if not flat:
                parts = path.relative_to(shots_root).parts
                if len(parts) < 2 or parts[0] not in set(class_of):
                    raise ganbench.GanbenchError(
                        f"folder shots_dir {str(shots_root)!r}: {path.relative_to(shots_root)} is not among the "
                        "folder's images and not in a subfolder named after one of its classes; put it in one"
                    )
                class_of.append(parts[0])
            arrays.append(array)
            positions.append(len(arrays) - 1)
            added += 1
        self._provenance.update(
            {"shots_dir": str(shots_root.resolve()), "shots": len(files), "shots_added": added}
        )  # fmt: skip
        return torch.tensor(positions, dtype=torch.int64)


def _hash_listing(h, root: Path) -> None:
    """Feed every image file's relative path, size and mtime under ``root`` into the hash ``h``."""
    for path in image_files(root):
        stat = path.stat()
        h.update(f"\0{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())


def _pixel_key(array: np.ndarray) -> tuple:
    """What two decoded images must share to be the same image: shape and pixels."""
    return array.shape, hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@ganbench.hookimpl
def register_datasets(register):
    register(Folder)
