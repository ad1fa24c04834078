"""The adversarial training loop, generic over architectures and strategies.

Non-saturating logistic loss (Goodfellow et al. 2014), Adam with DCGAN's betas, one D step then one G step
per iteration. A strategy changes *what* trains (``requires_grad``, ``param_groups``) and adds loss terms;
the loop never branches on which strategy it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganbench.errors import Diverged, GanbenchError
from ganbench.execute.checkpoint import Checkpoints, Resumed, plain, rng_state, set_rng_state
from ganbench.execute.passes import (
    StepPasses,
    check_needs,
    copy_without_hooks,
    transform_styles_hooks,
    transform_w_hook,
)
from ganbench.execute.timing import PhaseMemory, PhaseTimer, StepTimer
from ganbench.grid.cells import Recipe
from ganbench.plugin.contracts import (
    Nets,
    ProbeContext,
    Strategy,
    StrategyModule,
    param_groups_of,
)

BETAS = (0.5, 0.999)


@dataclass
class TrainConfig:
    steps: int
    batch_size: int
    lr: float
    seed: int
    eval_every: int = 0  # 0: evaluate only at the final step
    recipe: Recipe = field(default_factory=Recipe)
    channels_last: bool = False  # nets and batches in channels-last memory format
    compile: bool = False  # torch.compile the training forward passes of G and D


LOSS_POINTS = 256  # loss curves are kept at every step up to this many steps, else as means over equal bins


@dataclass
class TrainResult:
    step_ms: list[float]
    train_seconds: float
    eval_seconds: float
    d_loss: list[float]
    g_loss: list[float]
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # {"step": s, **metrics}
    #: per-step loss terms by name: ``d_real``, ``d_fake``, ``g_adv``, each strategy term, ``d_total``, ``g_total``
    losses: dict[str, list[float]] = field(default_factory=dict)
    resumed: Resumed = field(default_factory=Resumed)
    ema: nn.Module | None = None  # the generator's moving average, when the recipe keeps one (evaluated instead)
    probe_seconds: float | None = None  # the strategy's probing phase, when it has one
    counts: dict[str, Any] = field(default_factory=dict)  # trainable / total parameters (after the probe)

    def loss_curves(self, points: int = LOSS_POINTS) -> dict[str, list[float]]:
        """Every loss term, at every step or thinned to ``points`` bin means; ``step`` is each bin's last step."""
        return thin_losses(self.losses, points)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded the way image files store them."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def make_optimizer(
    strategy: Strategy,
    net: nn.Module,
    which: str,
    lr: float,
    betas: tuple[float, float] = BETAS,
    extra: list[StrategyModule] | tuple[StrategyModule, ...] = (),
) -> torch.optim.Optimizer | None:
    """Adam over the strategy's groups for ``net`` (``which``: "G" or "D") and the trainable parameters of the
    strategy modules that train with it, each group at ``lr`` times its ``lr_mult``."""
    groups = []
    for group in param_groups_of(strategy, net, which):
        group = dict(group)
        group["lr"] = lr * group.pop("lr_mult", 1.0)
        groups.append(group)
    for module in extra:
        params = [p for p in module.module.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr * module.lr_mult})
    return torch.optim.Adam(groups, lr=lr, betas=tuple(betas)) if groups else None


def parameter_counts(nets: Nets, modules: dict[str, StrategyModule] | None = None) -> dict[str, Any]:
    """Trainable and total parameters of G, D (each with the strategy modules that train with it) and both, and
    the trainable fraction (the record's columns)."""
    counts: dict[str, Any] = {}
    for name, net in (("g", nets.G), ("d", nets.D)):
        params = list(net.parameters())
        params += [p for m in (modules or {}).values() if m.trains_with.lower() == name for p in m.module.parameters()]
        counts[f"total_{name}"] = sum(p.numel() for p in params)
        counts[f"trainable_{name}"] = sum(p.numel() for p in params if p.requires_grad)
    counts["total_params"] = counts["total_g"] + counts["total_d"]
    counts["trainable_params"] = counts["trainable_g"] + counts["trainable_d"]
    counts["trainable_fraction"] = counts["trainable_params"] / max(counts["total_params"], 1)
    return counts


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * net`` for every parameter; buffers (noise maps) copied."""
    for e, p in zip(ema.parameters(), net.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), net.buffers()):
        e.copy_(b)


@torch.no_grad()
def _to_channels_last(net: nn.Module) -> None:
    """Every 4-d parameter and buffer in channels-last layout (``Module.to(memory_format=...)`` refuses nets that
    also hold 5-d weights, as StyleGAN2's modulated convolutions)."""
    for tensor in [*net.parameters(), *net.buffers()]:
        if tensor.ndim == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the mean over the batch of the squared norm of D's gradient at real images.
    Logits judged per patch ``(N, patches)`` count as their mean per image (one judgement per image, as the
    CDC code computes it)."""
    per_image = logits.float().flatten(1).mean(1) if logits.ndim > 1 else logits.float()
    (grad,) = torch.autograd.grad(per_image.sum(), real, create_graph=True)
    return grad.float().square().sum(dim=tuple(range(1, grad.ndim))).mean()


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
    checkpoints: Checkpoints | None = None,
    extra_state: Callable[[], dict[str, Any]] | None = None,
    restore_extra: Callable[[dict[str, Any]], None] | None = None,
    memory: PhaseMemory | None = None,
    source_G: nn.Module | None = None,
) -> TrainResult:
    """Train ``nets`` on uint8 ``data`` (already on the training device) for ``config.steps`` steps.

    ``evaluate(nets, step)`` runs on the schedule and after the final step; its time is measured apart
    from training time. ``augment`` (differentiable) is applied to every image D sees, real and fake. A
    non-finite loss raises :class:`Diverged` at the next measurement boundary (the check stays on the device
    so CUDA never synchronizes per step).

    The strategy's probing phase (when it has one) runs first, timed apart; then its modules join the
    optimizers of the nets they train with. What the strategy's :meth:`~Strategy.needs` asks for is computed on
    the loop's passes and handed over in :class:`StepInfo`; ``source_G`` (frozen, the source weights) is the
    generator ``Needs(source=True)`` runs.

    With ``checkpoints``, the whole state (nets, strategy modules, optimizers, strategy and augmentation state,
    every random stream, losses, timings, evaluations and ``extra_state()``, the caller's own) is saved after
    every evaluation, at the last step and whenever the policy says; a run that finds a checkpoint continues
    from it (without probing again) and hands the caller's saved state to ``restore_extra`` before training on.
    ``memory`` is told which phase (``probe`` / ``train`` / ``eval``) is running, for the peak of each.
    """
    device = data.device
    G, D = nets.G, nets.D
    recipe = config.recipe
    aug = augment or (lambda x: x)
    observe = getattr(augment, "observe", None)  # adaptive augmentations watch D's outputs on real images
    needs = strategy.needs()
    check_needs(needs, strategy, G, D)
    if needs.source and source_G is None:
        raise GanbenchError(f"strategy {getattr(strategy, 'name', '?')} asks for the source generator, but this "
                            "training has none (does the strategy use a source model?)")  # fmt: skip
    state = checkpoints.load() if checkpoints else None
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        _load_plugin_state(strategy, state["strategy"])  # what the probe decided, before anything is built on it
    probe_seconds = None if state is None else state.get("probe_seconds")
    if state is None and strategy.probe_steps() > 0:
        probe_seconds = _probe(strategy, nets, data, config, aug, memory)
    modules = {name: _on_device(m, device) for name, m in strategy.modules().items()}
    on = {side: [m for m in modules.values() if m.trains_with == side] for side in ("G", "D")}
    opt_g = make_optimizer(strategy, G, "G", config.lr, recipe.betas, on["G"])
    opt_d = make_optimizer(strategy, D, "D", config.lr, recipe.betas, on["D"])
    counts = parameter_counts(nets, modules)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        _to_channels_last(G), _to_channels_last(D)
    ema = copy_without_hooks(G).eval().requires_grad_(False) if recipe.ema > 0 else None
    G_fwd, D_fwd = (torch.compile(G), torch.compile(D)) if config.compile else (G, D)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if recipe.precision == "bf16" else nullcontext
    )
    passes = StepPasses(strategy, needs, G, D, G_fwd=G_fwd, D_fwd=D_fwd, source_G=source_G, augment=aug,
                        autocast=autocast)  # fmt: skip  # the loop's taps: put on after the EMA copy (it has none)
    for net in (G, ema):  # the W transforms are part of the adapted G (and its EMA copy): they stay after training
        if net is not None and needs.transform_w:
            transform_w_hook(net, strategy)
        if net is not None and needs.transform_styles:
            transform_styles_hooks(net, strategy)
    before = type(strategy).before_update is not Strategy.before_update
    after = type(strategy).after_update is not Strategy.after_update
    zero = torch.zeros((), device=device)
    data_gen = torch.Generator().manual_seed(config.seed)
    z_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    timer, eval_timer = StepTimer(device), PhaseTimer(device)
    losses: dict[str, list[torch.Tensor]] = {}
    evaluations: list[dict[str, Any]] = []
    finite = torch.ones((), dtype=torch.bool, device=device)
    schedule = set(eval_steps(config.steps, config.eval_every)) if evaluate else set()
    first = 1
    if state is not None:
        for name, module in modules.items():
            module.module.load_state_dict(state.get("modules", {})[name])
        if ema is not None:
            ema.load_state_dict(state["G_ema"])
        for opt, saved in ((opt_g, state["opt_g"]), (opt_d, state["opt_d"])):
            if opt is not None:
                opt.load_state_dict(saved)
        _load_plugin_state(augment, state["augment"])
        set_rng_state(state["rng"], data_gen, z_gen)
        losses = {name: list(values.to(device).unbind()) for name, values in state["losses"].items()}
        evaluations = json.loads(state["evaluations"])
        timer.restore_ms(state["step_ms"].tolist())
        eval_timer.seconds = float(state["eval_seconds"])
        first = int(state["step"]) + 1
        if restore_extra:
            restore_extra(state["extra"])

    def update(opt: torch.optim.Optimizer | None, loss: torch.Tensor, which: str, net: nn.Module, step: int) -> None:
        """One optimizer step on ``loss``, with the strategy's hooks around it (only those it defines)."""
        if opt is None:
            return
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if before:
            strategy.before_update(which, net, step)
        opt.step()
        if after:
            strategy.after_update(which, net, step)

    def save(step: int) -> None:
        if not bool(finite):  # never checkpoint a diverged state
            raise Diverged(f"non-finite loss before step {step}")
        checkpoints.save({
            "step": step, "G": G.state_dict(), "D": D.state_dict(), "G_ema": ema.state_dict() if ema else {},
            "modules": {name: m.module.state_dict() for name, m in modules.items()},
            "opt_g": opt_g.state_dict() if opt_g else {}, "opt_d": opt_d.state_dict() if opt_d else {},
            "strategy": _plugin_state(strategy), "augment": _plugin_state(augment), "probe_seconds": probe_seconds,
            "rng": rng_state(data_gen, z_gen), "losses": {k: torch.stack(v).cpu() for k, v in losses.items()},
            "evaluations": json.dumps(plain(evaluations)), "step_ms": torch.tensor(timer.durations_ms(), dtype=torch.float64),
            "eval_seconds": eval_timer.seconds, "extra": extra_state() if extra_state else {},
        })  # fmt: skip

    G.train()
    D.train()
    if memory:
        memory.phase("train")
    bar = tqdm(range(first, config.steps + 1), desc=desc, disable=not progress, leave=False, unit="step",
               initial=first - 1, total=config.steps)  # fmt: skip
    try:
        for step in bar:
            with timer.step():
                idx = torch.randint(len(data), (config.batch_size,), generator=data_gen).to(device)
                real = to_unit_range(data[idx]).contiguous(memory_format=fmt)
                z = strategy.begin_step(step, torch.randn(config.batch_size, G.z_dim, device=device, generator=z_gen))
                fake, g_kept = passes.generate(z)

                regularize = recipe.r1_gamma > 0 and step % recipe.r1_every == 0  # lazy R1, as StyleGAN2
                real_in = real.detach().requires_grad_(True) if regularize else real
                with autocast():  # fake first: augmentations draw in order
                    fake_pass = passes.discriminate(fake.detach(), "fake", step)
                    terms = {"d_fake": F.softplus(fake_pass.logits).mean()}
                    # R1 needs a double backward, which compiled graphs refuse: its steps run D eagerly
                    real_pass = passes.discriminate(real_in, "real", step, eager=regularize)
                real_logits = real_pass.logits
                terms["d_real"] = F.softplus(-real_logits).mean()
                if callable(observe):
                    observe(real_logits.detach())
                d_adv = terms["d_fake"] + terms["d_real"]
                if recipe.r1_gamma > 0:  # logged every step: its value on regularization steps, 0 between them
                    penalty = r1_penalty(real_logits, real_in) if regularize else zero
                    terms["d_r1"] = penalty * (recipe.r1_gamma / 2 * recipe.r1_every)
                    d_adv = d_adv + terms["d_r1"]
                info = passes.info(step, real, z, fake, g_kept, real_pass, fake_pass)
                extra = strategy.discriminator_loss(nets, info)
                d_loss = _total(d_adv, "d", strategy, extra, terms)
                update(opt_d, d_loss, "D", D, step)

                with autocast():
                    g_pass = passes.discriminate(fake, "fake", step)
                    terms["g_adv"] = F.softplus(-g_pass.logits).mean()
                info = passes.for_generator(info, g_pass)
                g_loss = _total(terms["g_adv"], "g", strategy, strategy.generator_loss(nets, info), terms)
                update(opt_g, g_loss, "G", G, step)
                if ema is not None:
                    update_ema(ema, G, recipe.ema)
                finite &= torch.isfinite(d_loss.detach()) & torch.isfinite(g_loss.detach())
                terms["d_total"], terms["g_total"] = d_loss, g_loss
                for name, value in terms.items():
                    losses.setdefault(name, []).append(value.detach().float())
            if checkpoints:
                checkpoints.note(step)
            if step in schedule:
                if not bool(finite):  # one synchronization, at a measurement boundary
                    raise Diverged(f"non-finite loss before step {step}")
                if memory:
                    memory.phase("eval")
                with eval_timer:
                    G.eval()
                    evaluations.append({"step": step, **evaluate(Nets(ema, D) if ema is not None else nets, step)})
                    G.train()
                if memory:
                    memory.phase("train")
            if checkpoints and (step in schedule or step == config.steps or checkpoints.due(step)):
                save(step)
    finally:  # the W transform stays: it is part of the adapted generator (and of its EMA copy)
        passes.remove()
    if not bool(finite):
        raise Diverged(f"non-finite loss within {config.steps} steps")
    step_ms = timer.durations_ms()
    curves = {name: torch.stack(values).tolist() for name, values in losses.items()}
    return TrainResult(
        step_ms=step_ms,
        train_seconds=sum(step_ms) / 1000.0,
        eval_seconds=eval_timer.seconds,
        d_loss=curves.get("d_total", []),
        g_loss=curves.get("g_total", []),
        evaluations=plain(evaluations),
        losses=curves,
        resumed=checkpoints.resumed if checkpoints else Resumed(),
        ema=ema,
        probe_seconds=probe_seconds,
        counts=counts,
    )


def _probe(
    strategy: Strategy,
    nets: Nets,
    data: torch.Tensor,
    config: TrainConfig,
    aug: Callable[[torch.Tensor], torch.Tensor],
    memory: PhaseMemory | None,
) -> float:
    """Runs the strategy's probing phase on generators of its own (seeded from the cell's seed, apart from the
    training streams); returns its seconds."""
    device = data.device
    context = ProbeContext(
        shots=to_unit_range(data), steps=strategy.probe_steps(), batch_size=config.batch_size, lr=config.lr,
        device=device, data_generator=torch.Generator().manual_seed(config.seed + 2),
        z_generator=torch.Generator(device=device).manual_seed(config.seed + 3), augment=aug,
    )  # fmt: skip
    if memory:
        memory.phase("probe")
    timer = PhaseTimer(device)
    with timer:
        strategy.probe(nets, context)
    return timer.seconds


def _on_device(module: StrategyModule, device: torch.device) -> StrategyModule:
    if not isinstance(module, StrategyModule):
        raise GanbenchError(
            f"Strategy.modules() must map names to ganbench.StrategyModule, got {type(module).__name__}"
        )
    module.module.to(device)
    return module


def thin_losses(losses: dict[str, list[float]], points: int = LOSS_POINTS) -> dict[str, list[float]]:
    """``{"step": [...], name: [...]}``: every step when there are at most ``points``, else the means of
    ``points`` bins of (nearly) equal length, each at its last step. Non-finite values stay visible."""
    n = max((len(v) for v in losses.values()), default=0)
    if n == 0:
        return {}
    edges = [round(i * n / min(points, n)) for i in range(min(points, n) + 1)]
    out: dict[str, list[float]] = {"step": [edges[i + 1] for i in range(len(edges) - 1)]}
    for name, values in losses.items():
        t = torch.tensor(values, dtype=torch.float64)
        out[name] = [float(t[a:b].mean()) for a, b in zip(edges, edges[1:])]
    return out


def _total(
    loss: torch.Tensor, side: str, strategy: Strategy, extra: Any, terms: dict[str, torch.Tensor]
) -> torch.Tensor:
    """``loss`` plus a strategy's extra term(s): a tensor (logged as ``<side>_<strategy name>``) or a dict of
    named tensors (each logged as ``<side>_<name>``)."""
    if extra is None:
        return loss
    named = extra if isinstance(extra, dict) else {getattr(strategy, "name", "strategy"): extra}
    for name, value in named.items():
        terms[f"{side}_{name}"] = value
        loss = loss + value
    return loss


def _plugin_state(plugin: Any) -> dict[str, Any]:
    state = getattr(plugin, "state_dict", None)
    return dict(state()) if callable(state) else {}


def _load_plugin_state(plugin: Any, state: dict[str, Any]) -> None:
    load = getattr(plugin, "load_state_dict", None)
    if state and callable(load):
        load(state)


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
