"""The on-disk cache of a fixed image set's features: computed once (by one of several concurrent callers),
checksummed, damaged entries reported in one line and rebuilt, entries from before checksums still read."""

from __future__ import annotations

import hashlib
import io
import threading
import time

import numpy as np
import pytest
import torch

from ganbench.metrics.features import CACHE_FOLDER, PixelSpace, cached_features
from ganbench.store.cache import tensor_hash

IMAGES = torch.randint(0, 256, (12, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
KEY = tensor_hash(IMAGES)


class CountingPixels(PixelSpace):
    """Pixels, counting the passes (and taking ``delay`` seconds for each)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.passes = 0
        self.delay = delay

    def __call__(self, images, device, desc=None):
        self.passes += 1
        time.sleep(self.delay)
        return super().__call__(images, device, desc)


def entry(cache):
    [path] = (cache / CACHE_FOLDER).glob("*.npy")
    return path


def test_features_are_computed_once_and_checksummed(tmp_path):
    space = CountingPixels()
    first = cached_features(space, IMAGES, KEY, "cpu", tmp_path)
    second = cached_features(space, IMAGES, KEY, "cpu", tmp_path)
    assert space.passes == 1 and torch.equal(first, second) and first.shape == (12, 16)
    path = entry(tmp_path)
    assert path.with_suffix(".sha256").read_text() == hashlib.sha256(path.read_bytes()).hexdigest() + "\n"
    assert not path.with_suffix(".lock").exists()


def test_concurrent_callers_compute_the_features_once(tmp_path, capsys):
    space = CountingPixels(delay=0.5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_features(space, IMAGES, KEY, "cpu", tmp_path)))
               for _ in range(2)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert space.passes == 1 and len(results) == 2 and torch.equal(results[0], results[1])
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("waiting for process ") and "which is building reference features (pixels, " in line


def truncate(path):
    path.write_bytes(path.read_bytes()[:100])


def flip_a_value(path):
    feats = np.load(path)
    feats[3, 5] += 1.0
    buffer = io.BytesIO()
    np.save(buffer, feats)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    "damage, why",
    [(truncate, "its bytes do not match their sha256"), (flip_a_value, "its bytes do not match their sha256")],
    ids=["truncated", "edited"],
)
def test_a_damaged_entry_is_reported_in_one_line_and_rebuilt(tmp_path, capsys, damage, why):
    space = CountingPixels()
    first = cached_features(space, IMAGES, KEY, "cpu", tmp_path)
    path = entry(tmp_path)
    whole = path.read_bytes()
    damage(path)
    capsys.readouterr()
    again = cached_features(space, IMAGES, KEY, "cpu", tmp_path)
    assert capsys.readouterr().out.splitlines() == [
        f"warning: the feature cache file {path} is damaged ({why}); rebuilding it"
    ]
    assert space.passes == 2 and torch.equal(again, first) and path.read_bytes() == whole


def other_rows(path):
    np.save(path, np.zeros((5, 16), np.float32))


@pytest.mark.parametrize(
    "damage, why",
    [(truncate, "unreadable: "), (other_rows, "it holds float32 (5, 16) features, not 12 rows")],
    ids=["truncated", "other-rows"],
)
def test_entries_without_a_checksum_are_read_when_whole_and_rebuilt_when_not(tmp_path, capsys, damage, why):
    space = CountingPixels()
    first = cached_features(space, IMAGES, KEY, "cpu", tmp_path)
    path = entry(tmp_path)
    path.with_suffix(".sha256").unlink()  # as entries were written before checksums
    assert torch.equal(cached_features(space, IMAGES, KEY, "cpu", tmp_path), first) and space.passes == 1
    damage(path)
    capsys.readouterr()
    again = cached_features(space, IMAGES, KEY, "cpu", tmp_path)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"warning: the feature cache file {path} is damaged ({why}")
    assert space.passes == 2 and torch.equal(again, first) and path.with_suffix(".sha256").is_file()
