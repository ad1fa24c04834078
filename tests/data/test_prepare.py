import pytest
import torch

from ganbench.data.prepare import convert_channels, prepare_dataset, resize_images, select_shots
from ganbench.errors import GanbenchError


def test_shots_are_seeded_and_sorted():
    a, b, c = select_shots(100, 10, seed=0), select_shots(100, 10, seed=0), select_shots(100, 10, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 10 and a.tolist() == sorted(a.tolist())


def test_more_shots_than_images_is_an_error():
    with pytest.raises(GanbenchError, match="101 shots requested but only 100"):
        select_shots(100, 101, seed=0)


def test_class_selection_and_resizing(registry, context):
    data = prepare_dataset(registry.resolve("dataset", "mnist5k:classes=5-9"), registry, 32, 1, context)
    assert data.images.shape == (2500, 1, 32, 32) and data.images.dtype == torch.uint8
    assert sorted(set(data.labels.tolist())) == [5, 6, 7, 8, 9]
    digits = prepare_dataset(registry.resolve("dataset", "digits:classes=3"), registry, 32, 3, context)
    assert digits.images.shape[1:] == (3, 32, 32) and set(digits.labels.tolist()) == {3}
    assert len(digits) == 183  # scikit-learn's digits hold 183 threes


def test_prepared_data_is_cached(registry, context, monkeypatch):
    ref = registry.resolve("dataset", "digits:classes=0-1")
    first = prepare_dataset(ref, registry, 16, 1, context)
    cls = registry.get("dataset", "digits").cls
    monkeypatch.setattr(cls, "load", lambda self: pytest.fail("decoded again despite the cache"))
    second = prepare_dataset(ref, registry, 16, 1, context)
    assert torch.equal(first.images, second.images) and first.content_key == second.content_key


def test_selecting_missing_classes_says_which_exist(registry, context):
    with pytest.raises(GanbenchError, match="selects no images; its classes are 0-9"):
        prepare_dataset(registry.resolve("dataset", "digits:classes=11"), registry, 32, 1, context)


def test_resize_and_channel_conversion():
    images = torch.full((2, 1, 8, 8), 200, dtype=torch.uint8)
    big = resize_images(images, 32)
    assert big.shape == (2, 1, 32, 32) and int(big.min()) == 200 == int(big.max())
    rgb = convert_channels(big, 3)
    assert rgb.shape == (2, 3, 32, 32) and torch.equal(rgb[:, 0], rgb[:, 2])
    assert torch.equal(convert_channels(rgb, 1), big)
