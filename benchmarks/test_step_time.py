"""Wall time of one full GAN training step per registered architecture, at its default options.

One step is what :func:`ganbench.execute.training.train_gan` does per iteration: G makes a batch, D takes an Adam
step on real and generated images (non-saturating logistic loss), then G takes one through D. Batch 64,
32 px, 1 channel (the default job's sizes), on the CPU and, when there is one, on CUDA (the device is
synchronized inside the timed function, so kernels are counted, not just launched).

    python -m pytest benchmarks/test_step_time.py --benchmark-only
    python -m pytest benchmarks/test_step_time.py --benchmark-only -k projected --benchmark-columns=median,iqr

Kept out of the test suite (``benchmarks/`` is not in ``testpaths``): it takes about a minute and its
numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganbench.execute.training import BETAS
from ganbench.plugin.manager import load_registry

BATCH, RESOLUTION, CHANNELS = 64, 32, 1
REGISTRY = load_registry()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROUNDS = {"cpu": 10, "cuda": 50}


def _training_step(arch_name: str, device: torch.device):
    torch.manual_seed(0)
    G, D = REGISTRY.get("architecture", arch_name).cls().build(RESOLUTION, CHANNELS)
    G, D = G.to(device).train(), D.to(device).train()
    opt_g = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=2e-4, betas=BETAS)
    opt_d = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=2e-4, betas=BETAS)
    real = torch.rand(BATCH, CHANNELS, RESOLUTION, RESOLUTION, device=device) * 2 - 1

    def step() -> None:
        fake = G(torch.randn(BATCH, G.z_dim, device=device))
        d_loss = F.softplus(D(fake.detach())).mean() + F.softplus(-D(real)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch_name", REGISTRY.names("architecture"))
def test_training_step(benchmark, arch_name, device):
    step = _training_step(arch_name, torch.device(device))
    benchmark.group = f"training step, batch {BATCH}, {RESOLUTION} px, {CHANNELS} channel, {device}"
    benchmark.extra_info.update(arch=arch_name, device=device, batch=BATCH, resolution=RESOLUTION)
    benchmark.pedantic(step, rounds=ROUNDS[device], warmup_rounds=2, iterations=1)
