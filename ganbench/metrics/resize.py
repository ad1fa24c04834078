"""clean-fid's "clean" resize (PIL bicubic on float images, clipped to [0, 255]) as two matrix products on
whatever device the images are on, so features need no per-image, per-channel trip through PIL.

PIL resamples one axis at a time with a weight per (output, input) pixel pair that depends only on the two
sizes (``precompute_coeffs`` in Pillow's ``Resample.c``); those weights, written out as a dense
``out x in`` matrix, turn the resize into ``W_h @ x @ W_w.T``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

SIZE = 299  # Inception's input
BICUBIC_SUPPORT = 2.0
BICUBIC_A = -0.5  # PIL's bicubic is the Keys kernel with a = -0.5


def _bicubic(x: float) -> float:
    x = abs(x)
    if x < 1.0:
        return ((BICUBIC_A + 2.0) * x - (BICUBIC_A + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * BICUBIC_A
    return 0.0


@functools.lru_cache(maxsize=64)
def bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """PIL's bicubic weights for one axis, ``in_size -> out_size``, as a read-only float64 ``out x in`` matrix.

    Follows Pillow's arithmetic step by step (the window bounds truncate like C's ``(int)``, the filter is
    evaluated at ``(x - centre + 0.5) * (1 / filterscale)``) so the weights are PIL's to the last bit or two.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)  # shrinking widens the filter: it then also low-passes
    support = BICUBIC_SUPPORT * filterscale
    inverse = 1.0 / filterscale
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        taps = [_bicubic((x - center + 0.5) * inverse) for x in range(xmin, xmax)]
        total = sum(taps)
        weights[i, xmin:xmax] = [t / total for t in taps] if total != 0.0 else taps
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=64)
def _device_weights(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(bicubic_weights(in_size, out_size).copy()).to(device)


def resize_clean(images: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """uint8 (or float, 0-255) N x C x H x W images, C = 1 or 3, on any device -> float32 N x 3 x size x size
    in [0, 255] on the same device: clean-fid's ``build_resizer('clean')`` to within ~1e-5.

    The arithmetic is float64 on every device. PIL accumulates in double too, and float32 would be exposed to
    TF32 matmuls on CUDA wherever a user allows them (10-bit mantissa: errors of ~0.1 in 0-255 units, far
    over clean-fid's tolerance). The cost is ~0.75 GFLOP per 512 px image and far less at GAN sizes.
    PIL rounds its horizontal pass to float32 before the vertical one; one rounding at the end instead
    differs from it by float32 rounding only (~1e-5, measured in tests/metrics/test_resize.py).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected N x C x H x W images with C = 1 or 3, got {tuple(images.shape)}")
    x = images.to(torch.float64)
    height, width = x.shape[-2:]
    if width != size:  # PIL skips an axis that already has the right size (its weights would be the identity)
        x = x @ _device_weights(width, size, x.device).T
    if height != size:
        x = _device_weights(height, size, x.device) @ x
    x = x.clamp_(0, 255).to(torch.float32)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x  # grey -> RGB replicates, as PIL's convert('RGB')
