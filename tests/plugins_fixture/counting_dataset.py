"""A dataset that says how often it was decoded: every ``load()`` appends a line to ``loads.txt`` in each
``counting-digits`` folder under the active context's data roots (none exists outside the tests that make one),
so tests can count decodes across processes. ``load()`` takes ``delay`` seconds, to make two builders overlap."""

import os
import time

import torch

import ganbench


class CountingDigits(ganbench.Dataset):
    """32 seeded random 8x8 grey images in two classes."""

    name = "counting-digits"
    options = (ganbench.Option("delay", float, 0.0, "seconds load() sleeps"),)

    def load(self):
        for root in ganbench.data_roots():
            if (root / self.name).is_dir():
                with open(root / self.name / "loads.txt", "a") as f:
                    f.write(f"{os.getpid()}\n")
        time.sleep(self.config["delay"])
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (32, 1, 8, 8), generator=generator, dtype=torch.uint8)
        return ganbench.ImageSet(images, torch.arange(32) % 2)

    def size_hint(self):
        return 32


@ganbench.hookimpl
def register_datasets(register):
    register(CountingDigits)
