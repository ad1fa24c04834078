"""The adversarial training loop, generic over architectures and strategies.

Non-saturating logistic loss (Goodfellow et al. 2014), Adam with DCGAN's betas, one D step then one G step
per iteration. A strategy changes *what* trains (``requires_grad``, ``param_groups``) and adds loss terms;
the loop never branches on which strategy it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganbench.errors import Diverged
from ganbench.execute.timing import PhaseTimer, StepTimer
from ganbench.plugin.contracts import Nets, StepInfo, Strategy

BETAS = (0.5, 0.999)


@dataclass
class TrainConfig:
    steps: int
    batch_size: int
    lr: float
    seed: int
    eval_every: int = 0  # 0: evaluate only at the final step


@dataclass
class TrainResult:
    step_ms: list[float]
    train_seconds: float
    eval_seconds: float
    d_loss: list[float]
    g_loss: list[float]
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # {"step": s, **metrics}


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded the way image files store them."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def make_optimizer(strategy: Strategy, net: nn.Module, lr: float) -> torch.optim.Optimizer | None:
    groups = []
    for group in strategy.param_groups(net):
        group = dict(group)
        group["lr"] = lr * group.pop("lr_mult", 1.0)
        groups.append(group)
    return torch.optim.Adam(groups, lr=lr, betas=BETAS) if groups else None


def eval_steps(total: int, every: int) -> list[int]:
    steps = list(range(every, total, every)) if every > 0 else []
    return [*steps, total]


def train_gan(
    nets: Nets,
    strategy: Strategy,
    data: torch.Tensor,
    config: TrainConfig,
    *,
    evaluate: Callable[[Nets, int], dict[str, Any]] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> TrainResult:
    """Train ``nets`` on uint8 ``data`` (already on the training device) for ``config.steps`` steps.

    ``evaluate(nets, step)`` runs on the schedule and after the final step; its time is measured apart
    from training time. ``augment`` (differentiable) is applied to every image D sees, real and fake. A non-finite loss raises :class:`Diverged` at the next measurement boundary (the
    check stays on the device so CUDA never synchronizes per step).
    """
    device = data.device
    G, D = nets.G, nets.D
    aug = augment or (lambda x: x)
    opt_g = make_optimizer(strategy, G, config.lr)
    opt_d = make_optimizer(strategy, D, config.lr)
    data_gen = torch.Generator().manual_seed(config.seed)
    z_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    timer, eval_timer = StepTimer(device), PhaseTimer(device)
    d_losses, g_losses, evaluations = [], [], []
    finite = torch.ones((), dtype=torch.bool, device=device)
    schedule = set(eval_steps(config.steps, config.eval_every)) if evaluate else set()
    G.train()
    D.train()
    for step in tqdm(range(1, config.steps + 1), desc=desc, disable=not progress, leave=False, unit="step"):
        with timer.step():
            idx = torch.randint(len(data), (config.batch_size,), generator=data_gen).to(device)
            real = to_unit_range(data[idx])
            z = torch.randn(config.batch_size, G.z_dim, device=device, generator=z_gen)
            fake = G(z)
            info = StepInfo(step, real, z, fake)

            d_loss = F.softplus(D(aug(fake.detach()))).mean() + F.softplus(-D(aug(real))).mean()
            d_loss = _plus(d_loss, strategy.discriminator_loss(nets, info))
            if opt_d is not None:
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()

            g_loss = _plus(F.softplus(-D(aug(fake))).mean(), strategy.generator_loss(nets, info))
            if opt_g is not None:
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
            finite &= torch.isfinite(d_loss.detach()) & torch.isfinite(g_loss.detach())
            d_losses.append(d_loss.detach())
            g_losses.append(g_loss.detach())
        if step in schedule:
            if not bool(finite):  # one synchronization, at a measurement boundary
                raise Diverged(f"non-finite loss before step {step}")
            with eval_timer:
                G.eval()
                evaluations.append({"step": step, **evaluate(nets, step)})
                G.train()
    if not bool(finite):
        raise Diverged(f"non-finite loss within {config.steps} steps")
    step_ms = timer.durations_ms()
    return TrainResult(
        step_ms=step_ms,
        train_seconds=sum(step_ms) / 1000.0,
        eval_seconds=eval_timer.seconds,
        d_loss=torch.stack(d_losses).tolist() if d_losses else [],
        g_loss=torch.stack(g_losses).tolist() if g_losses else [],
        evaluations=evaluations,
    )


def _plus(loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return loss if extra is None else loss + extra


@torch.no_grad()
def generate(G: nn.Module, n: int, seed: int, batch_size: int = 256, device_output: bool = False) -> torch.Tensor:
    """``n`` uint8 images from fixed latents (the same ``seed`` gives the same z on every call), on the CPU or,
    with ``device_output``, left on G's device (evaluation featurizes them there)."""
    device = next(G.parameters()).device
    z_gen = torch.Generator(device=device).manual_seed(seed)
    was_training = G.training
    G.eval()
    out = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), G.z_dim, device=device, generator=z_gen)
        out.append(to_uint8(G(z)) if device_output else to_uint8(G(z)).cpu())
    G.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.uint8, device=device if device_output else "cpu")
