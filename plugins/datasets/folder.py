"""``folder:path=DIR``: every image under a directory of your own, with classes from its subfolders.

Files are found recursively (names starting with '.' are skipped) by suffix: png, jpg/jpeg, bmp, gif (first
frame), webp, tif/tiff, ppm/pgm/pbm/pnm. Every image is turned upright by its EXIF orientation, converted to RGB
or grey (16-bit values scaled to 8 bits, palettes and CMYK converted, transparency composited on white),
center-cropped to a square (``crop=false`` squashes instead) and resized to ``size`` px with PIL's bicubic
filter, so that the folder becomes one tensor; the core then resizes it to the grid's resolution like any other
dataset. ``ganbench fid`` and ``ganbench score`` decode with the same loader (at each image's own size).

Symlinks are followed wherever they point, files and class folders alike, and the content fingerprint (which
keys the prepared-tensor cache) hashes what they point to. A folder link back to a folder it is inside (a loop)
is skipped with one warning. A file link that dangles or loops, a file that is truncated or not an image, and
an image over PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) are unreadable files: refused in
one line naming them, or skipped and counted with ``skip_bad=true``. File names need not be UTF-8.

``shots_dir=DIR`` names the training images a paper released beside its full set (the 10 images of a
few-shot target): every cell then trains on those rather than on a seeded draw from ``path``. Each of them
is looked for among ``path``'s images (equal pixels after decoding); one that is not there is added to the
dataset, so that the reference (``--reference all``) holds it as it holds the others. In a folder with class
subfolders, an added shot takes its class from its own first subfolder under ``shots_dir``.

Decoding is the core's (``ganbench.decode_images``), shared with every file-backed dataset. Version 2: EXIF
orientation applied (EXIF-rotated JPEGs decode upright; earlier caches are not reused).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ganbench
from ganbench import IMAGE_SUFFIXES, DataNotFound, at_least, decode_images, image_files, show_path, stack_images

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------


class Folder(ganbench.Dataset):
    """Your own images: every image file under path=DIR; one subfolder per class gives labels."""

    name = "folder"
    version = "2"  # 2: EXIF orientation applied
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
        except (DataNotFound, ganbench.UserFileError):  # a listing shows no count; loading says what is wrong
            return None

    def fingerprint(self) -> str:
        """sha256 of the folder's resolved path and every image file's relative path, size and mtime (and the
        same of ``shots_dir``, when there is one); names are hashed as the bytes they are on disk."""
        root, shots = self._root(), self._shots_root()
        h = hashlib.sha256(os.fsencode(root.resolve()))
        _hash_listing(h, root)
        if shots:
            h.update(b"\0shots\0" + os.fsencode(shots.resolve()))
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
            named = ", ".join(f"{show_path(p.relative_to(root))} ({why})" for p, why in list(bad.items())[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise ganbench.GanbenchError(
                f"folder {str(root)!r}: {len(bad)} unreadable image file(s): {named}{more}; "
                "fix or remove them, or add skip_bad=true to skip them"
            )
        if bad:
            first, why = next(iter(bad.items()))
            log.warning("folder %s: skipped %d unreadable image file(s), e.g. %s (%s)", show_path(root), len(bad),
                        show_path(first.relative_to(root)), why)  # fmt: skip
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
            self._provenance["classes"] = ", ".join(f"{i}={show_path(name)}" for i, name in enumerate(names))
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
                f"{show_path(path.relative_to(shots_root))} ({why}); the released shots must all be readable"
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
                        f"folder shots_dir {str(shots_root)!r}: {show_path(path.relative_to(shots_root))} is not among the "
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
    """Feed every image file's relative path (its bytes on disk), size and mtime under ``root`` into the hash
    ``h``: a symlink's are those of what it points to, and its target; a dangling or looping link's, its own."""
    for path in image_files(root):
        try:
            stat = os.stat(path)
        except OSError:  # dangling or looping: an unreadable file, still part of what the folder holds
            stat = os.lstat(path)
        h.update(
            b"\0" + os.fsencode(path.relative_to(root).as_posix()) + f"\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        )
        if path.is_symlink():
            h.update(b"\0->" + os.fsencode(os.readlink(path)))


def _pixel_key(array: np.ndarray) -> tuple:
    """What two decoded images must share to be the same image: shape and pixels."""
    return array.shape, hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@ganbench.hookimpl
def register_datasets(register):
    register(Folder)
