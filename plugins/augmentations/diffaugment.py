"""Differentiable augmentation of D's inputs.

``diffaugment`` is DiffAugment (Zhao, Liu, Lin, Zhu & Han, NeurIPS 2020): the same random colour,
translation and cutout transforms applied to real and generated images, differentiably, so the
discriminator cannot memorize a few-shot target and G still gets gradients. ``none`` leaves images alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import ganbench
from ganbench import Option

POLICIES = ("color", "translation", "cutout")


def _policy(text: str) -> tuple[str, ...]:
    parts = tuple(p for p in text.split("+") if p)
    unknown = [p for p in parts if p not in POLICIES]
    if unknown or not parts:
        raise ValueError(f"expected '+'-joined parts of {', '.join(POLICIES)}")
    return parts


_policy.type_name = "policy"  # type: ignore[attr-defined]


def _uniform(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    x = x + (_uniform(x, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, 1, 1, 1) * 2) + mean  # saturation (a no-op on one channel)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, 1, 1, 1) + 0.5) + mean  # contrast


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; pixels shifted in are zero."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp(-1, h)  # -1 and h hit the padding
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows + 1, cols + 1].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` times the image size at a random position in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


class NoAugmentation(ganbench.Augmentation):
    """No augmentation: D sees the images as they are."""

    name = "none"

    def __call__(self, images):
        return images


class DiffAugment(ganbench.Augmentation):
    """DiffAugment (Zhao et al. 2020): colour, translation and cutout on real and fake images alike."""

    name = "diffaugment"
    options = (Option("policy", _policy, POLICIES, "transforms to apply, '+'-joined"),)

    def __call__(self, images):
        for part in self.config["policy"]:
            images = TRANSFORMS[part](images)
        return images


@ganbench.hookimpl
def register_augmentations(register):
    register(NoAugmentation)
    register(DiffAugment)
