"""AdAM, adaptation-aware kernel modulation (Zhao, Chandrasegaran, Abdollahzadeh & Cheung, NeurIPS 2022, "Few-shot
Image Generation via Adaptation-Aware Kernel Modulation"; code: github.com/yunqing-me/AdAM, read and run at commit
6428e99cfb36bc8bda3506350824f0c7dac9a5ad; tests/plugins/test_adam.py holds this module to their numbers).

Every convolution and linear layer of G and of D (but D's last block and head) gets a kernel modulation
``W' = W * (1 + M)``, M rank-one from two vectors ``u`` (one entry per weight of a filter) and ``v`` (one per
filter), both drawn as randn * 1e-7, so that M starts at about 1e-14 and the nets at the source model; every
bias, and every noise strength, gets an additive ``b`` (zeros). They are torch parametrizations on the layers'
weights and biases, so they live in G and D (checkpointed, copied into the EMA generator, exported with it).

Two phases, as the authors' two scripts:

* **Importance probing** (``probe_steps``, 500 as the authors: a lot for a CPU grid, kept because it is theirs).
  Copies of G and D train, on the shots and the probe's own random streams, only the modulation (G: all of it; D:
  all of it, plus its last block and head in full), with an exponential moving average of both copies (decay
  ``probe_ema``). The diagonal Fisher information of the modulation vectors is then estimated on the averaged
  copies from ``fisher_samples`` single (latent, shot) pairs: the squared gradient of the non-saturating G loss for
  G's vectors, of the logistic D loss for D's, averaged. Each filter of a ranked layer gets the score
  ``mean(F_u) + F_v[o]``, halved with ``F_b[o]`` added where a bias belongs to the filter (G's style rows, D's
  convolutions followed by a bias; the authors' G convolutions never count their activation's bias). Each pool
  (G's convolutions, G's style rows, D's convolutions) is cut at its ``fisher_quantile``-th percentile (linear
  interpolation, as ``np.percentile``): filters above the cut are *important* (their source weights are held,
  their modulation trains), the others are fine-tuned (source weights train, ``v[o]`` (and ``b[o]``) held at 0).
* **Adaptation**, with the nets' own modulation as ``adapt`` drew it (fresh: the probe's copies are discarded,
  only its decision is kept, in ``state_dict()``; the probe leaves torch's global random stream where it was). At the start the held ``v`` / ``b`` entries are set to 0; at
  every step their gradients and those of the held source filters are zeroed (``before_update``) and their
  values put back exactly after the optimizer step (``after_update``: ganbench's Adam has betas (0.5, 0.999),
  the authors' beta1 = 0, under which zeroed gradients alone hold them).

What is modulated, ranked and trained, by position (the authors' config-f layout, said for every architecture):

* G: every convolution and linear layer in ``G.blocks`` is modulated: on StyleGAN2 the mapping network, every
  modulated convolution (to-RGB included) and every style affine layer. Ranked: the layers of the synthesis
  blocks after the first (4x4) one, but the output layers (to-RGB: the modulated convolutions without
  demodulation; on a G without styles, its last block, which makes the image), and the style rows of the ranked
  modulated convolutions. Only the ranked layers' source weights (and the ranked style layers' biases) train;
  every other source parameter of G is frozen: the mapping, the constant, the 4x4 and to-RGB convolutions, the
  activation biases and noise strengths (whose ``b`` shifts train, unselected), batch-norm scales.
* D: every convolution and linear layer in ``D.blocks[:-1]`` is modulated; the first one (from-RGB) keeps its
  source weight and bias (its modulation trains), the others are ranked (the bias that belongs to a filter: the
  layer's own, or that of the activation right after it in a ``nn.Sequential``, as StyleGAN2's). D's last block
  (StyleGAN2's 4x4 epilogue: minibatch std, convolution, linear) and ``D.head`` are unmodulated and trained in
  full, in both phases.

``layout`` says how a convolution's ``u`` and ``v`` make M: ``authors`` (the default, for parity) reshapes the
``(in*k*k, out)`` outer product ``ger(u, v)`` row-major to ``(out, in, k, k)``, as their ``.view`` does, so
``M[o, i, a, b] = u[f // out] * v[f % out]`` with ``f`` the flat index: v[o] does not belong to filter o, and
holding ``v[o]`` at 0 removes modulation from every ``out``-th weight across all filters; ``filter`` is the
per-filter rank-one modulation their code means (``M[o] = v[o] * u``), so holding ``v[o]`` at 0 removes filter o's
modulation. Linear layers are always modulated per row, ``M = v u^T`` (their ``KML_fc`` does that).

Deviations from the authors' code:

* layout=filter (an option, not the default) modulates each filter by its own v[o], where their conv reshape does not.
* Style and mapping layers keep the architecture's equalized-lr scale 1/sqrt(in); their KML_fc scales by 1/sqrt(out), so their modulated G at zero modulation is not the source where in != style_dim (here it is).
* The modulation is drawn once in adapt: the probe trains copies of it and adaptation starts from it untrained (theirs: two independent draws of randn * 1e-7).
* Probe: the loop's losses only (no R1, path length or style mixing), one fake batch for the D and the G step, the cell's lr and augmentation, Adam betas (0, 0.99) (theirs: (0, 0.99^ratio)); probe_steps steps then the Fisher (their loop runs 4 more unused steps).
* Probe EMA: both averaged copies start at the source (theirs: g_ema from the checkpoint's g_ema while g starts from its g, so their Fisher net's frozen weights blend the two).
* Fisher samples: fisher_samples latents from the probe's stream and one shot each, drawn with replacement (theirs: 250 fixed, unseeded noise files of 4 and a loader's shuffled real batches); G's images as the architecture returns them (stylegan2 clamps to [-1, 1]; theirs are unclamped); D's minibatch std as the architecture's (rosinality's group of 4; theirs 25: the same for one image).
* G's activation biases and noise strengths in ranked layers are frozen (requires_grad=False; theirs: gradients zeroed every step, the same under beta1 = 0); the b shift of an activation always applies (their FusedLeakyReLU_kml drops it when frozen, which never happens in their runs).
* Held values are restored after every optimizer step (exact under any Adam betas); theirs rely on beta1 = 0.
* Adaptation: the loop's losses, lazy R1 and EMA of the cell's recipe; no path length, style mixing or the authors' lr (0.002) and betas.
* Other architectures: which layers are modulated and ranked follows the positions above (on projected, whose D blocks are per-scale heads side by side, the finest head's 1x1 projection plays from-RGB and the coarsest head trains in full); batch-norm biases get a b shift (their scales none); transposed convolutions are ranked by output channel; spectrally normalized layers (resnet-sngan, projected) hold a filter's stored weight, but its effective kernel still moves by the normalization's scale as the other filters train.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import ganbench
from ganbench import Option, at_least

LAYOUTS = ("authors", "filter")
INIT_STD = 1e-7  # u and v: randn * 1e-7 (model_adam.py:199-200, 432-433)
PROBE_BETAS = (0.0, 0.99)  # the authors' Adam betas (0, 0.99 ** ratio), ratio 4/5 (G) or 16/17 (D)
EMA_DECAY = 0.5 ** (32 / 10000)  # the authors' accum: 0.997784
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


# --------------------------------------------------------------------------------------------------
# The parametrizations
# --------------------------------------------------------------------------------------------------


class KernelModulation(nn.Module):
    """Parametrization ``W -> W * (1 + M)``, ``M`` rank-one from ``u_vector`` (the weights of one filter) and
    ``v_vector`` (one entry per filter, the output channels: dim ``filter_dim`` of W). ``layout``: ``authors``
    (the ``(rest, out)`` outer product ``ger(u, v)`` read row-major as ``(out, rest)``), ``filter`` (``M[o] = v[o]
    u``); linear layers use ``filter``, as the authors' ``KML_fc``."""

    def __init__(self, weight: torch.Tensor, filter_dim: int = 0, layout: str = "authors") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.filter_dim, self.layout = filter_dim, layout
        self.shape = tuple(weight.shape)
        out = self.shape[filter_dim]
        rest = weight.numel() // out
        like = {"device": weight.device, "dtype": weight.dtype}
        self.u_vector = nn.Parameter(torch.randn(rest, **like) * INIT_STD)
        self.v_vector = nn.Parameter(torch.randn(out, **like) * INIT_STD)

    def modulation(self) -> torch.Tensor:
        """M, of W's shape."""
        u, v = self.u_vector, self.v_vector
        out = v.numel()
        m = torch.outer(u, v).reshape(out, -1) if self.layout == "authors" else torch.outer(v, u)
        others = [s for d, s in enumerate(self.shape) if d != self.filter_dim]
        return m.reshape(out, *others).movedim(0, self.filter_dim)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * (1 + self.modulation())


class BiasShift(nn.Module):
    """Parametrization ``b -> b + b_vector`` (``b_vector`` starts at zero)."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.b_vector = nn.Parameter(torch.zeros_like(bias.detach()))

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        return bias + self.b_vector


def add_kernel_modulation(module: nn.Module, filter_dim: int = 0, layout: str = "authors") -> KernelModulation:
    """Put a :class:`KernelModulation` on ``module.weight`` (after any parametrization already there, e.g. spectral
    norm); returns it. Registered in eval mode, so a spectral norm runs no power iteration for it."""
    weight = _original(module, "weight")
    conv = weight.ndim >= 3
    modulation = KernelModulation(weight, filter_dim, layout if conv else "filter")
    was = module.training
    module.eval()
    parametrize.register_parametrization(module, "weight", modulation)
    module.train(was)
    return modulation


def add_bias_shift(module: nn.Module, attr: str = "bias") -> BiasShift:
    """Put a :class:`BiasShift` on ``module.<attr>``; returns it."""
    shift = BiasShift(_original(module, attr))
    parametrize.register_parametrization(module, attr, shift)
    return shift


def _original(module: nn.Module, attr: str) -> torch.Tensor:
    """The stored tensor behind ``module.<attr>`` (the original of a parametrized one)."""
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr].original
    return module._parameters[attr]


def _ours(module: nn.Module, attr: str) -> nn.Module:
    """This plugin's parametrization on ``module.<attr>`` (the last one registered)."""
    return module.parametrizations[attr][-1]


# --------------------------------------------------------------------------------------------------
# What is modulated, ranked and trained
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """A bias-like parameter ``<path>.<attr>`` of one net with an additive shift; ``trains``: whether its source
    value trains in adaptation (per filter, when a ranked layer owns it)."""

    net: str
    path: str
    attr: str
    trains: bool


@dataclass(frozen=True)
class Layer:
    """A modulated convolution or linear layer ``<path>`` of one net. ``pool``: the pool it is ranked in (None:
    modulated, never selected); ``bias``: the shift whose entries belong to its filters (scored and held with
    them); ``trains``: whether its source weight trains in adaptation (per filter, when ranked)."""

    net: str
    path: str
    filter_dim: int
    pool: str | None
    bias: Shift | None
    trains: bool

    @property
    def key(self) -> str:
        return f"{self.net}:{self.path}"


@dataclass(frozen=True)
class Plan:
    layers: tuple[Layer, ...]
    shifts: tuple[Shift, ...]

    def ranked(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.pool is not None]

    def modulation_parameters(self, which: str, net: nn.Module) -> list[nn.Parameter]:
        params = []
        for layer in self.layers:
            if layer.net == which:
                mod = _ours(net.get_submodule(layer.path), "weight")
                params += [mod.u_vector, mod.v_vector]
        return params + [_ours(net.get_submodule(s.path), s.attr).b_vector for s in self.shifts if s.net == which]


def _weight_of(module: nn.Module) -> torch.Tensor | None:
    """The trainable weight (2-d or more) that makes ``module`` a convolution or linear layer, or None."""
    if parametrize.is_parametrized(module, "weight"):
        weight = module.parametrizations.weight.original
    else:
        weight = module._parameters.get("weight")
    return weight if weight is not None and weight.ndim >= 2 and weight.requires_grad else None


def _own_bias(module: nn.Module) -> bool:
    bias = module._parameters.get("bias")
    return bias is not None and bias.requires_grad


def _members(net: nn.Module, blocks) -> list[tuple[str, nn.Module]]:
    """(path in ``net``, module) of every module under ``blocks``, in ``net``'s registration order."""
    inside = {id(m) for block in blocks for m in block.modules()}
    return [(path, m) for path, m in net.named_modules() if id(m) in inside]


def _filter_dim(module: nn.Module, weight: torch.Tensor) -> int:
    """The output-channel dimension: 1 for rosinality's (1, out, in, k, k) and for transposed convolutions."""
    return 1 if weight.ndim == 5 or isinstance(module, TRANSPOSED) else 0


def _shifts(members: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module, str]]:
    """(path, module, attr) of every bias and noise strength among ``members``."""
    found = []
    for path, m in members:
        if _own_bias(m):
            found.append((path, m, "bias"))
        elif "noise" in type(m).__name__.lower():
            found += [(path, m, name) for name, p in m._parameters.items() if p is not None and p.requires_grad]
    return found


def _partner(net: nn.Module, path: str, module: nn.Module, weight: torch.Tensor, filter_dim: int) -> str | None:
    """The path of the module whose bias belongs to this layer's filters: the layer's own, else (StyleGAN2's
    ConvLayer) the activation right after it in an ``nn.Sequential``, when its bias has one entry per filter."""
    if _own_bias(module):
        return path
    parent_path, _, name = path.rpartition(".")
    parent = net.get_submodule(parent_path) if parent_path else net
    if not isinstance(parent, nn.Sequential):
        return None
    names = list(parent._modules)
    if name not in names or names.index(name) + 1 >= len(names):
        return None
    after = names[names.index(name) + 1]
    nxt = parent._modules[after]
    if _own_bias(nxt) and _weight_of(nxt) is None and nxt.bias.numel() == weight.shape[filter_dim]:
        return f"{parent_path}.{after}" if parent_path else after
    return None


def plan_modulation(nets: ganbench.Nets) -> Plan:
    """Which layers of ``nets`` are modulated, ranked and trained (see the module docstring); refuses nets with
    nothing to rank, in one line."""
    G, D = nets.G, nets.D
    styles = getattr(G, "styles", None)
    style_ids = {id(s) for s in styles} if isinstance(styles, nn.ModuleList) else set()
    mapping = getattr(G, "mapping", None)
    first = 1 if mapping is not None and len(G.blocks) > 1 and mapping is G.blocks[0] else 0  # the 4x4 block
    later = G.blocks[first + 1 :] if style_ids else G.blocks[first + 1 : -1]
    ranked_ids = {id(m) for block in later for m in block.modules()}
    layers: list[Layer] = []
    shift_of: dict[tuple[str, str, str], Shift] = {}

    g_members = _members(G, G.blocks)
    parent_of = {id(child): m for _, m in g_members for child in m.children()}
    modulated_convs = {id(parent_of[i]) for i in style_ids if i in parent_of}
    ranked_convs: set[int] = set()
    for _, m in g_members:
        if id(m) in ranked_ids and _weight_of(m) is not None and id(m) not in style_ids:
            output = id(m) in modulated_convs and getattr(m, "demodulate", True) is False  # to-RGB
            if not output:
                ranked_convs.add(id(m))
    ranked_styles = {i for i in style_ids if i in parent_of and id(parent_of[i]) in ranked_convs}
    for path, m, attr in _shifts(g_members):
        trains = id(m) in ranked_styles and attr == "bias"  # a ranked style row's bias trains with its row
        shift_of[("G", path, attr)] = Shift("G", path, attr, trains)
    for path, m in g_members:
        weight = _weight_of(m)
        if weight is None:
            continue
        dim = _filter_dim(m, weight)
        if id(m) in ranked_convs:
            layers.append(Layer("G", path, dim, "g_conv", None, True))
        elif id(m) in ranked_styles:
            layers.append(Layer("G", path, dim, "g_style", shift_of.get(("G", path, "bias")), True))
        else:
            layers.append(Layer("G", path, dim, None, None, False))

    d_members = _members(D, D.blocks[:-1])
    from_rgb = (
        next((m for m in D.blocks[0].modules() if _weight_of(m) is not None), None) if len(D.blocks) > 1 else None
    )
    rgb_partner = None
    d_layers = []
    for path, m in d_members:
        weight = _weight_of(m)
        if weight is None:
            continue
        dim = _filter_dim(m, weight)
        partner = _partner(D, path, m, weight, dim)
        if m is from_rgb:
            rgb_partner = partner
        d_layers.append((path, m, dim, partner))
    for path, _, attr in _shifts(d_members):
        shift_of[("D", path, attr)] = Shift("D", path, attr, not (path == rgb_partner and attr == "bias"))
    for path, m, dim, partner in d_layers:
        bias = shift_of.get(("D", partner, "bias")) if partner is not None else None
        ranked = m is not from_rgb
        layers.append(Layer("D", path, dim, "d_conv" if ranked else None, bias, ranked))

    plan = Plan(tuple(layers), tuple(shift_of.values()))
    pools = {layer.pool for layer in plan.ranked()}
    if "g_conv" not in pools:
        raise ganbench.GanbenchError(
            "adam ranks the filters of G's synthesis layers between its first (4x4) block and its output layers, "
            f"and this G ({len(G.blocks)} blocks) has none; use a larger resolution or another strategy"
        )
    if "d_conv" not in pools:
        raise ganbench.GanbenchError(
            "adam ranks the filters of D's layers between its from-RGB layer and its last block, and this D "
            f"({len(D.blocks)} blocks) has none; use a larger resolution or another strategy"
        )
    return plan


def modulate(nets: ganbench.Nets, plan: Plan, layout: str = "authors") -> None:
    """Register the plan's modulation on ``nets`` (u, v: randn * 1e-7 from torch's generator, in plan order)."""
    for which, net in nets.modules().items():
        for layer in plan.layers:
            if layer.net == which:
                add_kernel_modulation(net.get_submodule(layer.path), layer.filter_dim, layout)
        for shift in plan.shifts:
            if shift.net == which:
                add_bias_shift(net.get_submodule(shift.path), shift.attr)


def set_adaptation_trainable(plan: Plan, G: nn.Module, D: nn.Module) -> None:
    """requires_grad as the authors' adaptation (AdAM_main_adaptation.py:836-864): G's modulation and its ranked
    layers' source weights; all of D but from-RGB's source weight and bias."""
    G.requires_grad_(False)
    D.requires_grad_(False)
    for block in [*D.blocks, D.head]:
        for p in block.parameters():
            p.requires_grad_(True)
    nets = {"G": G, "D": D}
    for which, net in nets.items():
        for p in plan.modulation_parameters(which, net):
            p.requires_grad_(True)
    for layer in plan.layers:
        _original(nets[layer.net].get_submodule(layer.path), "weight").requires_grad_(layer.trains)
    for shift in plan.shifts:
        _original(nets[shift.net].get_submodule(shift.path), shift.attr).requires_grad_(shift.trains)


def set_probe_trainable(plan: Plan, G: nn.Module, D: nn.Module) -> None:
    """requires_grad as the authors' probing (AdAM_importance_probing.py:497-518): the modulation of G and D,
    and D's last block and head in full."""
    G.requires_grad_(False)
    D.requires_grad_(False)
    for p in [*plan.modulation_parameters("G", G), *plan.modulation_parameters("D", D)]:
        p.requires_grad_(True)
    for block in (D.blocks[-1], D.head):
        for p in block.parameters():
            p.requires_grad_(True)


# --------------------------------------------------------------------------------------------------
# Fisher information and selection
# --------------------------------------------------------------------------------------------------


def fisher_diagonal(
    G: nn.Module,
    D: nn.Module,
    samples,
    g_params: dict[str, torch.Tensor],
    d_params: dict[str, torch.Tensor],
    generate=None,
    losses: list | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The authors' Fisher estimate (AdAM_importance_probing.py:181-261): for each (z, real) of ``samples``
    (one image each), ``g = softplus(-D(G(z)))`` and ``d = softplus(-D(real)) + softplus(D(G(z)))``; the mean
    over samples of ``(dg/dθ)²`` for ``g_params`` and of ``(dd/dφ)²`` for ``d_params``. G and D are put in eval
    mode; ``generate`` (default ``G``) makes the images; ``losses`` collects ``("g", value), ("d", value)``."""
    generate = generate or G
    G.eval()
    D.eval()
    fg = {n: torch.zeros_like(p.detach()) for n, p in g_params.items()}
    fd = {n: torch.zeros_like(p.detach()) for n, p in d_params.items()}
    count = 0
    for z, real in samples:
        fake_logit = D(generate(z))
        real_logit = D(real)
        g_loss = F.softplus(-fake_logit).mean()
        d_loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        if losses is not None:
            losses += [("g", g_loss.item()), ("d", d_loss.item())]
        for loss, params, acc, retain in ((g_loss, g_params, fg, True), (d_loss, d_params, fd, False)):
            if params:
                grads = torch.autograd.grad(loss, list(params.values()), retain_graph=retain, allow_unused=True)
                for name, grad in zip(params, grads):
                    if grad is not None:
                        acc[name] += grad.detach() ** 2
        count += 1
    count = max(count, 1)
    return {n: f / count for n, f in fg.items()}, {n: f / count for n, f in fd.items()}


def filter_scores(fisher_u: torch.Tensor, fisher_v: torch.Tensor, fisher_b: torch.Tensor | None = None) -> torch.Tensor:
    """A layer's per-filter importance (AdAM_main_adaptation.py:711-785): ``mean(F_u) + F_v``, or with the
    filters' bias ``(mean(F_u) + F_v + F_b) / 2``; float64."""
    score = fisher_u.double().mean() + fisher_v.double().flatten()
    return score if fisher_b is None else (score + fisher_b.double().flatten()) / 2


def select_filters(
    scores: dict[str, tuple[str, torch.Tensor]], quantile: float
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """``scores``: layer key -> (pool, per-filter scores). Each pool is cut at its ``quantile``-th percentile
    (linear interpolation, ``np.percentile``'s default); returns the important filters (score > cut, a bool
    mask per layer) and the cut of each pool."""
    pooled: dict[str, list[torch.Tensor]] = {}
    for pool, score in scores.values():
        pooled.setdefault(pool, []).append(score.double().flatten().cpu())
    cutlines = {pool: float(torch.quantile(torch.cat(parts), quantile / 100.0)) for pool, parts in pooled.items()}
    important = {key: score.double().flatten().cpu() > cutlines[pool] for key, (pool, score) in scores.items()}
    return important, cutlines


# --------------------------------------------------------------------------------------------------
# The strategy
# --------------------------------------------------------------------------------------------------


def _quantile(value: float) -> str | None:
    return None if 0 <= value <= 100 else "must be a percent in [0, 100]"


def _decay(value: float) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


@torch.no_grad()
def _update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), net.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), net.buffers()):
        e.copy_(b)


class AdAM(ganbench.Strategy):
    """Kernel modulation of G and D; Fisher-probed filters keep their source weights (AdAM, Zhao et al. 2022)."""

    name = "adam"
    card = ganbench.MethodCard(
        paper="Zhao, Chandrasegaran, Abdollahzadeh & Cheung: Few-shot Image Generation via Adaptation-Aware Kernel "
        "Modulation (AdAM), NeurIPS",
        year=2022,
        trains="rank-one kernel modulations and bias shifts of G's and D's convolutions and linear layers; after "
        "Fisher probing of the modulation, the source weights of G's and D's less important filters; D's last block "
        "and head",
        losses="none",
        code="yunqing-me/AdAM@6428e99cfb36bc8bda3506350824f0c7dac9a5ad",
        parity="tests/plugins/test_adam.py",
    )
    options = (
        Option("probe_steps", int, 500, "importance-probing steps training the modulation (the authors' 500)",
               check=at_least(1)),
        Option("fisher_samples", int, 1000, "single (latent, shot) pairs of the Fisher estimate (the authors' 250 x 4)",
               check=at_least(1)),
        Option("fisher_quantile", float, 50.0, "percent of each pool's filters fine-tuned; the rest keep their "
               "source weights (the authors' 50 for FFHQ -> babies, 75 for AFHQ-cat)", check=_quantile),
        Option("probe_ema", float, EMA_DECAY, "decay of the probe's moving averages of G and D, on which the Fisher "
               "is estimated (the authors' 0.5^(32/10000))", check=_decay),
        Option("layout", str, "authors", "convolution modulation: authors (their reshape of ger(u, v)) or filter "
               "(per-filter rank one)", choices=LAYOUTS),
    )  # fmt: skip

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.plan: Plan | None = None
        self.nets: ganbench.Nets | None = None
        self.important: dict[str, torch.Tensor] | None = None
        self.cutlines: dict[str, float] = {}
        self._held: dict[str, list[tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]]] = {"G": [], "D": []}

    def check(self, nets):
        plan_modulation(nets)

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        self.plan = plan_modulation(nets)
        modulate(nets, self.plan, self.config["layout"])
        set_adaptation_trainable(self.plan, nets.G, nets.D)
        self.nets, self.important, self.cutlines = nets, None, {}
        self._held = {"G": [], "D": []}
        return nets

    def probe_steps(self) -> int:
        return self.config["probe_steps"]

    def probe(self, nets, probe):
        devices = [probe.device] if probe.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the probe leaves torch's own stream where it was
            fisher = self.probe_fisher(nets, probe)
        self.select(fisher)

    def probe_fisher(self, nets, probe) -> dict[str, dict[str, torch.Tensor]]:
        """Train the modulation of copies of the nets (and D's last block and head) for ``probe.steps`` steps, with
        moving averages; return the Fisher of the ranked layers' modulation on the averages, by parameter name."""
        plan = self.plan
        G, D = copy.deepcopy(nets.G), copy.deepcopy(nets.D)
        set_probe_trainable(plan, G, D)
        G_ema, D_ema = copy.deepcopy(G).requires_grad_(False), copy.deepcopy(D).requires_grad_(False)
        opt_g = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=probe.lr, betas=PROBE_BETAS)
        opt_d = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=probe.lr, betas=PROBE_BETAS)
        G.train()
        D.train()
        decay = self.config["probe_ema"]
        for _ in range(probe.steps):
            real = probe.real_batch()
            fake = G(probe.latents(G.z_dim))
            d_loss = F.softplus(D(probe.augment(fake.detach()))).mean() + F.softplus(-D(probe.augment(real))).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = F.softplus(-D(probe.augment(fake))).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            _update_ema(G_ema, G, decay)
            _update_ema(D_ema, D, decay)
        wanted = {"G": self._scored_parameters("G", G_ema), "D": self._scored_parameters("D", D_ema)}
        for params in wanted.values():
            for p in params.values():
                p.requires_grad_(True)
        samples = ((probe.latents(G.z_dim, 1), probe.real_batch(1)) for _ in range(self.config["fisher_samples"]))
        fg, fd = fisher_diagonal(G_ema, D_ema, samples, wanted["G"], wanted["D"])
        return {"G": fg, "D": fd}

    def _scored_parameters(self, which: str, net: nn.Module) -> dict[str, torch.Tensor]:
        """The modulation parameters the selection reads (u and v of ranked layers, their filters' b), by name."""
        names = {id(p): n for n, p in net.named_parameters()}
        found = {}
        for layer in self.plan.ranked():
            if layer.net != which:
                continue
            mod = _ours(net.get_submodule(layer.path), "weight")
            params = [mod.u_vector, mod.v_vector]
            if layer.bias is not None:
                params.append(_ours(net.get_submodule(layer.bias.path), layer.bias.attr).b_vector)
            found.update({names[id(p)]: p for p in params})
        return found

    def scores(self, fisher: dict[str, dict[str, torch.Tensor]]) -> dict[str, tuple[str, torch.Tensor]]:
        """Per-filter scores of every ranked layer from a Fisher estimate keyed by parameter name per net."""
        nets = self.nets.modules()
        out = {}
        for layer in self.plan.ranked():
            net = nets[layer.net]
            names = {id(p): n for n, p in net.named_parameters()}
            mod = _ours(net.get_submodule(layer.path), "weight")
            f = fisher[layer.net]
            fb = None
            if layer.bias is not None:
                fb = f[names[id(_ours(net.get_submodule(layer.bias.path), layer.bias.attr).b_vector)]]
            out[layer.key] = (layer.pool, filter_scores(f[names[id(mod.u_vector)]], f[names[id(mod.v_vector)]], fb))
        return out

    def select(self, fisher: dict[str, dict[str, torch.Tensor]]) -> None:
        """Decide, from a Fisher estimate, which filters keep their source weights; apply it to the nets."""
        self.important, self.cutlines = select_filters(self.scores(fisher), self.config["fisher_quantile"])
        self._arm()

    def _arm(self) -> None:
        """Set the held modulation entries to 0 and record every held value (for before/after_update)."""
        self._held = {"G": [], "D": []}
        if self.important is None or self.nets is None:
            return
        nets = self.nets.modules()
        with torch.no_grad():
            for layer in self.plan.ranked():
                net = nets[layer.net]
                module = net.get_submodule(layer.path)
                important = self.important[layer.key].to(_original(module, "weight").device)
                keep, tune = important.nonzero().flatten(), (~important).nonzero().flatten()
                pairs = [(_ours(module, "weight").v_vector, _original(module, "weight"), layer.filter_dim)]
                if layer.bias is not None:
                    shifted = net.get_submodule(layer.bias.path)
                    pairs.append((_ours(shifted, layer.bias.attr).b_vector, _original(shifted, layer.bias.attr), 0))
                for vector, source, dim in pairs:
                    vector.index_fill_(0, tune, 0.0)
                    if len(tune):
                        self._held[layer.net].append((vector, 0, tune, vector.index_select(0, tune).clone()))
                    if len(keep) and source.requires_grad:
                        self._held[layer.net].append((source, dim, keep, source.index_select(dim, keep).clone()))

    def before_update(self, which, net, step):
        for param, dim, index, _ in self._held.get(which, ()):
            if param.grad is not None:
                param.grad.index_fill_(dim, index, 0.0)

    def after_update(self, which, net, step):
        with torch.no_grad():
            for param, dim, index, held in self._held.get(which, ()):
                param.index_copy_(dim, index, held)

    def state_dict(self) -> dict[str, Any]:
        if self.important is None:
            return {}
        return {"important": {k: v.clone() for k, v in self.important.items()}, "cutlines": dict(self.cutlines)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "important" in state:
            self.important = {k: v.bool().clone() for k, v in state["important"].items()}
            self.cutlines = dict(state.get("cutlines", {}))
            self._arm()


@ganbench.hookimpl
def register_strategies(register):
    register(AdAM)
