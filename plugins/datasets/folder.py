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

Decoding is the core's (``ganbench.decode_images``), shared with every file-backed dataset.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ganbench
from ganbench import IMAGE_SUFFIXES, DataNotFound, at_least, decode_images, image_files, stack_images

log = logging.getLogger(__name__)

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
