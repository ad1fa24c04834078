"""``ganbench fid DIR_A DIR_B``: FID and KID between two folders of images, through the extractor runs use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ganbench.errors import GanbenchError
from ganbench.metrics.arithmetic import fid_from_features, kid_from_features, kid_subset_size
from ganbench.metrics.inception import get_extractor, resolve_inception_weights

IMAGE_EXTENSIONS = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}


def load_image_folder(folder: str | os.PathLike) -> list[np.ndarray]:
    """Every image under ``folder`` (recursive, sorted by path) as RGB uint8 HWC arrays."""
    from PIL import Image

    root = Path(folder)
    if not root.is_dir():
        raise GanbenchError(f"{folder} is not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise GanbenchError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found under {folder}")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            raise GanbenchError(f"cannot read image {f}: {exc}") from None
    return arrays


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
        feats.append(extractor.features(images, batch_size=batch_size, desc=f"{Path(path).name}" if progress else None))
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
