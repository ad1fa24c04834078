"""``ganbench fid DIR_A DIR_B``: FID and KID between two folders of images, through the extractor runs use; and
:func:`load_image_folder`, how ``fid`` and ``score`` read a folder: the loader every command shares
(:mod:`ganbench.data.images`), at each image's own size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ganbench.data.images import IMAGE_SUFFIXES, decode_images, image_files
from ganbench.errors import GanbenchError
from ganbench.files import UserFileError, show_path
from ganbench.metrics.arithmetic import fid_from_features, kid_from_features, kid_subset_size
from ganbench.metrics.inception import get_extractor, resolve_inception_weights


def load_image_folder(folder: str | os.PathLike) -> list[np.ndarray]:
    """Every image under ``folder`` (:func:`~ganbench.data.images.image_files`: recursive, hidden names
    skipped, folder links followed) as RGB uint8 HWC arrays at their own size, decoded as the folder dataset
    decodes them (16-bit scaled, transparency on white, EXIF orientation applied). Any file that cannot be
    decoded is refused in one line naming it."""
    root = Path(folder)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise GanbenchError(f"{show_path(folder)} {what}; give a folder of images")
    files = image_files(root)
    if not files:
        raise GanbenchError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {show_path(folder)}; give a folder of images"
        )
    arrays, bad = decode_images(files, None, desc=f"decode {root.name}")
    if bad:
        path, why = next(iter(bad.items()))
        more = f" ({len(bad) - 1} more unreadable image files under {show_path(folder)})" if len(bad) > 1 else ""
        raise UserFileError(f"cannot read image {show_path(path)}: {why}{more}; fix or remove it", path)
    return [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]  # type: ignore[union-attr]


def compare_folders(path_a, path_b, device: torch.device, *, batch_size: int | None = None, seed: int = 0, progress: bool = True,
                    cache_dir=None) -> dict:  # fmt: skip
    """FID and KID between two image folders, through the same extractor the runner uses."""
    folders = [(path, load_image_folder(path)) for path in (path_a, path_b)]  # bad folders fail before Inception
    for path, images in folders:
        if len(images) < 2:
            raise GanbenchError(f"{path} holds {len(images)} image: FID and KID need at least 2 per folder; add images")
    weights = resolve_inception_weights(cache_dir)
    extractor = get_extractor(weights, device)
    feats = []
    for path, images in folders:
        feats.append(
            extractor.features(images, batch_size=batch_size, desc=show_path(Path(path).name) if progress else None)
        )
    a, b = feats
    return {
        "fid": fid_from_features(a, b),
        "kid": kid_from_features(a, b, seed=seed),
        "n_a": len(a),
        "n_b": len(b),
        "kid_subset_size": kid_subset_size(len(a), len(b)),
        "kid_seed": seed,
        **weights.provenance(),
    }
