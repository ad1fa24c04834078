"""scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels, UCI optdigits): no download."""

from __future__ import annotations

import numpy as np
import torch

import ganbench


class Digits(ganbench.Dataset):
    """1,797 8x8 handwritten digits from scikit-learn (grey levels 0-16 scaled to 0-255)."""

    name = "digits"

    def load(self) -> ganbench.ImageSet:
        from sklearn.datasets import load_digits

        data = load_digits()
        scaled = np.rint(data.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        images = torch.from_numpy(scaled).view(-1, 1, 8, 8)
        return ganbench.ImageSet(images, torch.from_numpy(data.target.astype(np.int64)))

    def size_hint(self) -> int:
        return 1797


@ganbench.hookimpl
def register_datasets(register):
    register(Digits)
