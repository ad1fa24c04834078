"""The training recipe of the StyleGAN2 papers in the one training loop: optimizer preset, generator EMA
(evaluated instead of G), lazy R1; part of a cell's id only when set."""

from __future__ import annotations

import copy

import pytest
import torch

from ganbench.errors import GanbenchError
from ganbench.execute.training import TrainConfig, r1_penalty, train_gan
from ganbench.grid.cells import Recipe
from ganbench.grid.config import make_grid
from ganbench.grid.expand import expand
from ganbench.plugin.contracts import Nets, Strategy


def _nets(registry):
    torch.manual_seed(0)
    arch = registry.create(registry.resolve("architecture", "dcgan:width=4,z_dim=8"))
    G, D = arch.build(32, 1)
    return Nets(G, D)


def _data():
    return torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8)


def test_the_stylegan2_preset_fills_what_is_not_given():
    grid = make_grid(None, optimizer="stylegan2")
    assert (grid.betas, grid.lr, grid.batch_size) == ([0.0, 0.99], 0.002, 4)
    assert make_grid(None, optimizer="stylegan2", batch_size=16).batch_size == 16
    assert make_grid({"optimizer": "stylegan2", "lr": 0.001}).lr == 0.001
    with pytest.raises(GanbenchError, match="unknown optimizer preset 'adamw'"):
        make_grid(None, optimizer="adamw")
    with pytest.raises(GanbenchError, match="betas must be two numbers"):
        make_grid(None, betas="0.5")
    with pytest.raises(GanbenchError, match="ema must be a decay"):
        make_grid(None, ema=1.0)


def test_the_recipe_is_in_the_cell_id_only_when_set(registry):
    plain = expand(make_grid(None, strategy="finetune", baseline=False), registry)[0]
    assert "recipe" not in plain.identity()
    speed = expand(make_grid(None, strategy="finetune", baseline=False, channels_last=True, compile=True), registry)[0]
    assert speed.id == plain.id  # how fast is not what
    ema = expand(make_grid(None, strategy="finetune", baseline=False, ema=0.999), registry)[0]
    assert ema.id != plain.id and ema.identity()["recipe"]["ema"] == 0.999


def test_ema_follows_its_formula_and_is_what_evaluations_see(registry):
    nets = _nets(registry)
    before = copy.deepcopy(nets.G)
    seen = []

    def evaluate(evaluated, step):
        seen.append(evaluated.G)
        return {"fid": 0.0}

    decay = 0.25
    config = TrainConfig(1, 4, 1e-3, 0, recipe=Recipe(ema=decay))
    result = train_gan(nets, Strategy(), _data(), config, evaluate=evaluate, progress=False)
    assert result.ema is not None and seen == [result.ema] and result.ema is not nets.G
    for e, g0, g1 in zip(result.ema.parameters(), before.parameters(), nets.G.parameters()):
        assert torch.allclose(e, decay * g0 + (1 - decay) * g1, atol=1e-7)
    assert any(not torch.equal(g0, g1) for g0, g1 in zip(before.parameters(), nets.G.parameters()))


def test_r1_penalty_is_the_squared_gradient_norm():
    w = torch.randn(1, 3, 4, 4)
    real = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (real * w).sum(dim=(1, 2, 3))  # D(x) = <w, x>: its gradient is w for every image
    assert float(r1_penalty(logits, real)) == pytest.approx(float(w.square().sum()), rel=1e-6)
    # judged per patch (CDC): each image's patch logits count as their mean, so the gradient is still w
    patches = torch.stack([logits, logits, logits], dim=1)  # (N, 3)
    assert float(r1_penalty(patches, real)) == pytest.approx(float(w.square().sum()), rel=1e-6)


def test_lazy_r1_is_logged_on_its_steps_and_changes_training(registry):
    config = TrainConfig(6, 4, 1e-3, 0, recipe=Recipe(r1_gamma=10.0, r1_every=3))
    result = train_gan(_nets(registry), Strategy(), _data(), config, progress=False)
    r1 = result.losses["d_r1"]
    assert [v > 0 for v in r1] == [False, False, True, False, False, True]
    plain = train_gan(_nets(registry), Strategy(), _data(), TrainConfig(6, 4, 1e-3, 0), progress=False)
    assert "d_r1" not in plain.losses
    assert plain.losses["d_real"][:3] == result.losses["d_real"][:3]  # the same until the first penalty acts
    assert plain.losses["d_real"][3:] != result.losses["d_real"][3:]


def test_betas_reach_the_optimizer(registry, monkeypatch):
    made = []
    original = torch.optim.Adam

    class Spy(original):
        def __init__(self, params, **kw):
            made.append(kw["betas"])
            super().__init__(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", Spy)
    train_gan(_nets(registry), Strategy(), _data(), TrainConfig(1, 4, 1e-3, 0, recipe=Recipe(betas=(0.0, 0.99))),
              progress=False)  # fmt: skip
    assert made == [(0.0, 0.99), (0.0, 0.99)]


def test_channels_last_changes_no_number(registry):
    a = train_gan(_nets(registry), Strategy(), _data(), TrainConfig(3, 4, 1e-3, 0), progress=False)
    b = train_gan(_nets(registry), Strategy(), _data(), TrainConfig(3, 4, 1e-3, 0, channels_last=True),
                  progress=False)  # fmt: skip
    assert a.losses["g_adv"] == pytest.approx(b.losses["g_adv"], rel=1e-4)


def test_a_source_is_pretrained_with_the_grid_recipe_and_keeps_its_moving_average(
    tmp_path, monkeypatch, fixture_plugins, tiny_grid
):
    import dataclasses

    import ganbench.execute.pretrain as pretrain_module
    from ganbench.execute.plan import plan_matrix

    plain = plan_matrix(tiny_grid(strategy="finetune", baseline=False), tmp_path, plugins_dirs=[fixture_plugins])
    plan = plan_matrix(tiny_grid(strategy="finetune", baseline=False, ema=0.5, betas="0,0.99"), tmp_path,
                       plugins_dirs=[fixture_plugins])  # fmt: skip
    (plain_job,), (job,) = plain.pretrain.values(), plan.pretrain.values()
    assert plain_job.recipe == Recipe() and job.recipe == Recipe(betas=(0.0, 0.99), ema=0.5)
    assert job.key != plain_job.key == dataclasses.replace(job, recipe=Recipe()).key
    trained = []

    def spy(nets, strategy, data, config, **kwargs):
        trained.append((config, nets, result := train_gan(nets, strategy, data, config, **kwargs)))
        return result

    monkeypatch.setattr(pretrain_module, "train_gan", spy)
    source, info = pretrain_module.ensure_pretrained(job, plan.context, progress=False)
    [(config, nets, result)] = trained
    assert config.recipe == job.recipe and info["pretrain_cache_hit"] is False
    ema, raw = result.ema.state_dict(), nets.G.state_dict()
    assert all(torch.equal(source.generator[k], ema[k].cpu()) for k in ema)  # the source G: the moving average
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)  # which is not the last trained G
    assert pretrain_module.load_pretrained(job, plan.context).meta["job"]["recipe"]["ema"] == 0.5
