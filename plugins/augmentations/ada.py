"""Adaptive discriminator augmentation (Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, NeurIPS 2020,
"Training Generative Adversarial Networks with Limited Data"): the baseline "TGAN + ADA" of the few-shot
tables.

Every image D sees, real and generated alike, goes through a chain of differentiable transforms, each applied
to each image with probability ``p``. ``p`` is adapted during training from the overfitting heuristic
r_t = E[sign(D(real))]: every ``interval`` steps, p moves by ``sign(r_t - target) * batch * interval /
(kimg * 1000)`` (so from 0 to 1 in ``kimg`` thousand images when D is always sure), clamped to [0, 1]. The
training loop hands D's logits on real images to :meth:`observe` at every step; p stays on the device, so
adapting it never synchronizes.

The chain here is ADA's "bgc" pipeline in a compact form: x-flip, rotation by multiples of 90 degrees,
integer translation (up to 1/8 of the size), isotropic scaling (log-normal, std 0.2 ln 2), rotation
(uniform, with probability 1 - sqrt(1 - p) twice as in ADA), anisotropic scaling and fractional translation
(std 1/8), as one affine warp per image (bilinear, reflection padding: ADA upsamples with a wavelet filter
first, which this leaves out), then brightness (std 0.2), contrast (log-normal, std 0.5 ln 2) and, on colour
images, saturation (log-normal, std ln 2) about the per-image luma.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import ganbench
from ganbench import Option, at_least


def _between(low: float, high: float):
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be in [{low}, {high}]"

    return check


class ADA(ganbench.Augmentation):
    """ADA (Karras et al. 2020): bgc augmentations with a probability adapted from the sign of D(real)."""

    name = "ada"
    options = (
        Option("target", float, 0.6, "target of E[sign(D(real))]: p rises while D is surer than this",
               check=_between(0.0, 1.0)),
        Option("kimg", float, 500.0, "thousands of images over which p can go from 0 to 1", check=at_least(1e-6)),
        Option("interval", int, 4, "steps between adjustments of p", check=at_least(1)),
        Option("p", float, 0.0, "initial probability", check=_between(0.0, 1.0)),
    )  # fmt: skip

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self._p = torch.tensor(float(self.config["p"]))
        self._signs = torch.zeros(())
        self._count = torch.zeros(())
        self._seen = 0  # steps since the last adjustment

    @property
    def p(self) -> float:
        return float(self._p)

    def observe(self, real_logits: torch.Tensor) -> None:
        if self._p.device != real_logits.device:
            self._p, self._signs, self._count = (t.to(real_logits.device) for t in (self._p, self._signs, self._count))
        self._signs = self._signs + torch.sign(real_logits.float()).sum()
        self._count = self._count + real_logits.numel()
        self._seen += 1
        if self._seen >= self.config["interval"]:
            batch = real_logits.shape[0]  # images, not logits: a patch-level D gives several per image
            step = batch * self._seen / (self.config["kimg"] * 1000)
            r_t = self._signs / self._count.clamp(min=1)
            self._p = (self._p + torch.sign(r_t - self.config["target"]) * step).clamp(0.0, 1.0)
            self._signs, self._count, self._seen = torch.zeros_like(self._signs), torch.zeros_like(self._count), 0

    def state_dict(self):
        return {"p": self._p.cpu(), "signs": self._signs.cpu(), "count": self._count.cpu(), "seen": self._seen}

    def load_state_dict(self, state):
        self._p, self._signs, self._count = state["p"].clone(), state["signs"].clone(), state["count"].clone()
        self._seen = int(state["seen"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        dev, dtype = images.device, images.dtype
        p = self._p.to(dev)

        def chosen(prob=None) -> torch.Tensor:  # (N,) 0/1: whether each image gets this transform
            return (torch.rand(n, device=dev) < (p if prob is None else prob)).to(dtype)

        def normal(std: float) -> torch.Tensor:
            return torch.randn(n, device=dev, dtype=dtype) * std

        # geometric: one 2x3 affine per image in normalized coordinates (-1..1), composed right to left
        eye = torch.eye(3, device=dev, dtype=dtype).expand(n, 3, 3)
        mat = eye.clone()
        flip = 1 - 2 * chosen() * torch.randint(0, 2, (n,), device=dev).to(dtype)
        mat = mat @ _scale(flip, torch.ones_like(flip))
        quarter = chosen() * torch.randint(0, 4, (n,), device=dev).to(dtype)
        mat = mat @ _rotate(quarter * (math.pi / 2))
        shift = chosen()[:, None] * (torch.rand(n, 2, device=dev, dtype=dtype) * 2 - 1) * 0.125
        shift = (
            torch.round(shift * torch.tensor([w, h], device=dev, dtype=dtype) / 2)
            * 2
            / torch.tensor([w, h], device=dev, dtype=dtype)
        )  # whole pixels
        mat = mat @ _translate(shift[:, 0], shift[:, 1])
        iso = torch.exp2(normal(0.2) * chosen())
        mat = mat @ _scale(iso, iso)
        p_rot = 1 - torch.sqrt((1 - p).clamp(min=0))
        mat = mat @ _rotate((torch.rand(n, device=dev, dtype=dtype) * 2 - 1) * math.pi * chosen(p_rot))
        aniso = torch.exp2(normal(0.2) * chosen())
        mat = mat @ _scale(aniso, 1 / aniso)
        mat = mat @ _rotate((torch.rand(n, device=dev, dtype=dtype) * 2 - 1) * math.pi * chosen(p_rot))
        frac = torch.randn(n, 2, device=dev, dtype=dtype) * (0.125 * 2) * chosen()[:, None]  # std 1/8 of the size
        mat = mat @ _translate(frac[:, 0], frac[:, 1])
        grid = F.affine_grid(mat[:, :2, :], list(images.shape), align_corners=False)
        x = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

        # colour, about each image's mean luma
        x = x + (normal(0.2) * chosen()).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * torch.exp2(normal(0.5) * chosen()).view(n, 1, 1, 1) + mean
        if c == 3:
            luma = x.mean(dim=1, keepdim=True)
            x = (x - luma) * torch.exp2(normal(1.0) * chosen()).view(n, 1, 1, 1) + luma
        return x


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(len(sx), 3, 3, device=sx.device, dtype=sx.dtype)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = sx, sy, 1
    return m


def _rotate(angle: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(len(angle), 3, 3, device=angle.device, dtype=angle.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2] = cos, -sin, sin, cos, 1
    return m


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=tx.device, dtype=tx.dtype).repeat(len(tx), 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


@ganbench.hookimpl
def register_augmentations(register):
    register(ADA)
