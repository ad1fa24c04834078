"""RICK (Zhao, Du, Abdollahzadeh, Pang, Lin, Yan & Cheung, CVPR 2023, "Exploring Incompatible Knowledge Transfer
in Few-shot Image Generation"): knowledge truncation by filter importance, re-estimated during training.

Checked against the authors' code, github.com/yunqing-me/RICK at commit 44d65c1257895f9bca6a53bed76b071bc478c3fd
(``train_dynamic_update_prune.py`` and ``gan_training/models/model_probe_tune.py``, read and run at development
time; tests/plugins/test_rick.py holds the Fisher, the selection, the cumulative pruning and the masked step to
their numbers).

What it does:

* **What trains.** G: its synthesis blocks after the first one (neither the mapping network nor the 4x4 block
  trains), but not the layers that make the image (StyleGAN's to-RGB layers; G's last convolution otherwise). D:
  everything but its first convolution on the image (from-RGB). No extra loss.
* **Warm-up.** For the first ``warmup`` steps only D's last block and head are updated (StyleGAN2: the final
  convolution and both linear layers); G is not updated.
* **Filter importance.** At step ``warmup + 1`` and every ``fisher_freq`` steps after, the diagonal Fisher
  information of every filter is estimated from per-sample squared loss gradients: ``fisher_samples`` pairs of a
  latent (drawn once per cell) and a shot (drawn per estimate), G's from the non-saturating G loss, D's from the
  logistic D loss of that pair. A filter is the output channel of a convolution weight; its score is the mean of
  the Fisher over the filter's weights. Ranked: the convolutions G trains (G: the weights alone, and, where G has
  style layers, each style affine row at ``(mean of its weight row + its bias) / 2``) and those of D's blocks
  before the last one (D: ``(weight mean + the filter's bias) / 2``, the bias being the convolution's own or the
  following activation's; a convolution without a bias scores its weight alone). Three pools: G's
  convolutions, G's style rows, D's convolutions.
* **Selection.** In each pool ``cut = percentile(scores, fisher_quantile)`` and ``prune = percentile(scores,
  prune_quantile)`` (both in PERCENT, numpy's linear interpolation): ``score > cut`` is frozen (its gradients
  zeroed and its values restored after every step, until the next estimate), ``prune < score <= cut`` is
  fine-tuned, ``score <= prune`` is pruned: zeroed and held at zero from then on (cumulative: a pruned filter
  stays pruned). D convolutions without a bias use the authors' skip-layer ties (fine-tuned ``prune <= score <=
  cut``, pruned ``score < prune``). A G style row's decision applies to its weight row and bias entry, a D
  filter's to its weight and bias.
* The defaults are the authors' 10-shot FFHQ -> Babies command (``fisher_quantile=40, prune_quantile=0.1``,
  warm-up 250, every 50 steps, 5 samples); their AFHQ-Cat command is ``fisher_quantile=85,prune_quantile=0.075``.

On stylegan2 the filters, pools, trainable sets and warm-up set are the authors' exactly (rosinality's parameter
names). Deviations from their code:

* Fisher on the nets being trained, not on EMA copies: ganbench keeps no EMA of D and strategies do not see the
  loop's EMA of G (theirs: ``g_ema`` and ``d_ema``, decay 0.9978; at the first estimate their ``g_ema`` is about
  0.57 of the checkpoint's ``g_ema`` and 0.43 of its ``g``). So a pruned filter is exactly zero when it is scored
  again, and StyleGAN2's demodulation makes it look important at once (theirs: gradually, as ``g_ema`` decays);
  it stays pruned either way.
* The Fisher's images are ``G(z)`` as the loop trains on them (clamped to [-1, 1] on stylegan2; theirs: the raw
  synthesis), with both nets in eval mode (the stored noise maps, batch-norm running statistics; theirs draw
  fresh noise) and no augmentation (as theirs).
* Samples: ``fisher_samples`` latents drawn once per cell (theirs: 5 latent files shared by every run), each with
  a shot drawn, without replacement within an estimate, by the strategy's own seeded generator (theirs: row 0 of
  the next shuffled batch). The squared gradients are averaged over the samples (theirs: the sum divided by
  ``num_fisher_img * batch``, a constant factor that changes no decision).
* The optimizer is the loop's Adam for both nets (default betas (0.5, 0.999), the grid's learning rate; theirs:
  lr 0.002 x 4/5 for G and x 16/17 for D, beta1 = 0): frozen filters are held by restoring their values after each
  step and pruned ones are zeroed again (theirs zero the gradients, which holds them only because beta1 = 0).
* One D step (lazy R1 inside it, as the grid's recipe says) and one G step per step, masked alike (theirs: D, R1,
  G and path-length steps, each masked); no path-length regularization or style mixing (the loop has neither).
* Counts are in steps: warm-up steps 1..``warmup`` (their i < 250, 0-based), estimates at steps ``warmup + 1 +
  k * fisher_freq`` to the end of the run (theirs: to ``iter + 10``); absolute, as the strategy is not told the
  run's length.
* Other architectures: "the first synthesis block" is G.blocks[0] (G.blocks[1] after a mapping network), "the
  image layers" the modulated convolutions that do not demodulate (to-RGB, with their own biases) or else G's
  last convolution, "from-RGB" D's first convolution on the image (DCGAN's whole first block; SNGAN-ResNet's
  first 3x3 convolution, its 1x1 shortcut on the pooled image still trains). Batch-norm scales and shifts in the
  trained G blocks train unmasked, as StyleGAN2's activation biases and noise strengths do (theirs, too).
* A spectrally normalized layer (resnet-sngan's and projected's D) never loses all its filters: when an estimate
  would prune its last ones, the best of them stays (an all-zero weight has no spectral norm: 0 / 0). Their code
  can prune whole layers (StyleGAN2 has no such norm), and here too on the other architectures.
* The shots: the strategy keeps them (uint8) from its probe, which trains nothing, and in its state, since a
  resumed cell does not probe again and strategies are not handed the shots during training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import ganbench
from ganbench import Option, at_least

POOLS = ("g_conv", "g_style", "d")


# --------------------------------------------------------------------------------------------------
# Which parameters are filters, and what trains
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterLayer:
    """One layer of ranked filters: ``weight`` (a parameter name in its net) holds the filters along ``dim``;
    ``bias`` (or None) holds one entry per filter, scored at 1/2 and masked with it."""

    net: str  # "G" or "D"
    pool: str  # "g_conv", "g_style" or "d"
    weight: str
    dim: int
    bias: str | None = None
    filters: int = 0
    normalized: bool = False  # the weight is under a parametrization (spectral norm): never all zero

    @property
    def skip_ties(self) -> bool:
        """D convolutions without a bias (StyleGAN2's skips) take the authors' skip-layer tie rules."""
        return self.net == "D" and self.bias is None

    def names(self) -> tuple[str, ...]:
        return (self.weight,) if self.bias is None else (self.weight, self.bias)


@dataclass
class Layout:
    """The filters of a pair of nets, what trains at all, and what trains during the warm-up (parameter names)."""

    layers: list[FilterLayer]
    trainable: dict[str, set[str]]  # "G" / "D" -> names
    warmup: set[str]  # D's names updated during the warm-up
    dims: dict[str, dict[str, int]] = field(default_factory=dict)  # "G" / "D" -> masked name -> filter dim

    def __post_init__(self) -> None:
        self.dims = {"G": {}, "D": {}}
        for layer in self.layers:
            self.dims[layer.net][layer.weight] = layer.dim
            if layer.bias is not None:
                self.dims[layer.net][layer.bias] = 0


def _weight(module: nn.Module) -> tuple[nn.Parameter, int] | None:
    """A convolution's stored weight (the original under a parametrization such as spectral norm) and the dim of
    its output channels, or None for modules that are not convolutions."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    elif isinstance(module._parameters.get("weight"), nn.Parameter) and module._parameters["weight"].ndim == 5:
        dim = 1  # rosinality's modulated convolution: (1, out, in, k, k)
    else:
        return None
    if parametrize.is_parametrized(module, "weight"):  # never read .weight itself: it would run a power iteration
        return module.parametrizations.weight.original, dim
    return module._parameters["weight"], dim


def _normalized(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight")


def _in_dim(weight: torch.Tensor, dim: int) -> int:
    """The size of a convolution weight's input-channel dim."""
    return weight.shape[{0: 1, 1: 0}[dim]] if weight.ndim == 4 else weight.shape[2]


def _modules(root: nn.Module) -> list[nn.Module]:
    seen: dict[int, nn.Module] = {}
    for module in root.modules():
        seen.setdefault(id(module), module)
    return list(seen.values())


def _convs(root: nn.Module) -> list[nn.Module]:
    return [m for m in _modules(root) if _weight(m) is not None]


def _conv_bias(parent_children: dict[int, nn.Module | None], conv: nn.Module) -> nn.Parameter | None:
    """A convolution's own bias, else the bias of the activation that follows it in its container (StyleGAN2's
    fused leaky ReLU), else None."""
    own = conv._parameters.get("bias")
    if isinstance(own, nn.Parameter):
        return own
    after = parent_children.get(id(conv))
    bias = None if after is None else after._parameters.get("bias")
    weight = _weight(conv)
    fits = isinstance(bias, nn.Parameter) and bias.ndim == 1 and _weight(after) is None and weight is not None
    return bias if fits and bias.shape[0] == weight[0].shape[weight[1]] else None


def _next_sibling(root: nn.Module) -> dict[int, nn.Module | None]:
    """For every module of ``root``: the child registered right after it in its parent."""
    following: dict[int, nn.Module | None] = {}
    for module in _modules(root):
        children = list(module.children())
        for a, b in zip(children, children[1:] + [None]):
            following.setdefault(id(a), b)
    return following


def _image_layers(G: nn.Module, blocks: list[nn.Module]) -> list[nn.Module]:
    """The layers of the trained G blocks that make the image: modulated convolutions that do not demodulate
    (to-RGB; with their wrapper when it holds nothing else with parameters, e.g. rosinality's ToRGB and its bias),
    or else the last convolution of G."""
    found: list[nn.Module] = []
    for block in blocks:
        for module in _modules(block):
            for child in module.children():
                if getattr(child, "demodulate", True) is False and _weight(child) is not None:
                    others = [c for c in module.children() if c is not child and any(True for _ in c.parameters())]
                    found.append(module if not others and module is not block else child)
    if found:
        return found
    convs = _convs(G.blocks[-1])
    return convs[-1:]


def filter_layout(G: nn.Module, D: nn.Module) -> Layout:
    """Which filters RICK ranks in these nets, what trains at all and what the warm-up updates; one-line
    :class:`GanbenchError` when there is nothing to rank."""
    g_names = {id(p): n for n, p in G.named_parameters()}
    d_names = {id(p): n for n, p in D.named_parameters()}
    start = 2 if isinstance(getattr(G, "mapping", None), nn.Module) and G.blocks[0] is G.mapping else 1
    g_blocks = list(G.blocks[start:])
    image = _image_layers(G, g_blocks)
    image_params = {id(p) for m in image for p in m.parameters()}
    image_convs = [m for layer in image for m in _convs(layer)]
    trained_g = {
        g_names[id(p)] for b in g_blocks for p in b.parameters() if p.requires_grad and id(p) not in image_params
    }
    styles = {id(s) for s in getattr(G, "styles", [])}
    layers: list[FilterLayer] = []
    seen: set[int] = set()
    for block in g_blocks:
        for conv in _convs(block):
            weight, dim = _weight(conv)
            if id(weight) in image_params or id(weight) in seen or g_names[id(weight)] not in trained_g:
                continue
            seen.add(id(weight))
            layers.append(
                FilterLayer("G", "g_conv", g_names[id(weight)], dim, None, weight.shape[dim], _normalized(conv))
            )
            for child in conv.children():
                if id(child) in styles and isinstance(child._parameters.get("weight"), nn.Parameter):
                    bias = child._parameters.get("bias")
                    layers.append(FilterLayer("G", "g_style", g_names[id(child.weight)], 0,
                                              None if bias is None else g_names[id(bias)], child.weight.shape[0],
                                              _normalized(child)))  # fmt: skip
    if not any(layer.pool == "g_conv" for layer in layers):
        raise ganbench.GanbenchError(
            "rick ranks convolution filters, but this generator has no trainable convolution after its first "
            "synthesis block; use it with dcgan, resnet-sngan, stylegan2, stylegan2-lite or projected"
        )
    channels = image_convs[0] if image_convs else None
    image_channels = None if channels is None else _weight(channels)[0].shape[_weight(channels)[1]]
    following = _next_sibling(D)
    from_rgb: set[int] = set()
    first = _convs(D.blocks[0])[:1]
    if first and image_channels is not None and _in_dim(*_weight(first[0])) == image_channels:
        weight = _weight(first[0])[0]
        bias = _conv_bias(following, first[0])
        from_rgb = {id(weight)} | ({id(bias)} if bias is not None else set())
    trained_d = {n for n, p in D.named_parameters() if p.requires_grad and id(p) not in from_rgb}
    seen = set()
    for block in list(D.blocks)[:-1]:
        for conv in _convs(block):
            weight, dim = _weight(conv)
            if id(weight) in from_rgb or id(weight) in seen or d_names[id(weight)] not in trained_d:
                continue
            seen.add(id(weight))
            bias = _conv_bias(following, conv)
            bias = None if bias is None else d_names[id(bias)]
            layers.append(FilterLayer("D", "d", d_names[id(weight)], dim, bias, weight.shape[dim], _normalized(conv)))
    if not any(layer.pool == "d" for layer in layers):
        raise ganbench.GanbenchError(
            f"rick ranks D's filters before its last block, but this D has none (its {len(D.blocks)} block(s) hold "
            "no convolution besides from-RGB there); use a larger resolution or another architecture"
        )
    warm = {d_names[id(p)] for m in (D.blocks[-1], D.head) for p in m.parameters() if d_names.get(id(p)) in trained_d}
    return Layout(layers, {"G": trained_g, "D": trained_d}, warm)


# --------------------------------------------------------------------------------------------------
# Fisher information, scores and the selection
# --------------------------------------------------------------------------------------------------


def fisher_information(
    G: nn.Module,
    D: nn.Module,
    latents: torch.Tensor,
    reals: torch.Tensor,
    g_names: list[str],
    d_names: list[str],
    generate: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[tuple[str, float]]]:
    """The diagonal Fisher of G's parameters ``g_names`` (under the non-saturating G loss) and D's ``d_names``
    (under the logistic D loss), each the mean over the samples ``(latents[j], reals[j])`` of the squared
    gradient of that sample's loss. Both nets run as they are (put them in eval mode first); ``generate(z)``
    makes the images (default: ``G(z)``). Also returns the per-sample losses, ``("g", .), ("d", .)`` in turn."""
    g_params, d_params = dict(G.named_parameters()), dict(D.named_parameters())
    fg = {n: torch.zeros_like(g_params[n]) for n in g_names}
    fd = {n: torch.zeros_like(d_params[n]) for n in d_names}
    make = generate or G
    losses: list[tuple[str, float]] = []
    for j in range(len(latents)):
        fake_logits = D(make(latents[j : j + 1]))
        real_logits = D(reals[j : j + 1])
        g_loss = F.softplus(-fake_logits).mean()
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        grads = torch.autograd.grad(g_loss, [g_params[n] for n in g_names], retain_graph=True, allow_unused=True)
        for name, grad in zip(g_names, grads):
            if grad is not None:
                fg[name] += grad.detach().square()
        grads = torch.autograd.grad(d_loss, [d_params[n] for n in d_names], allow_unused=True)
        for name, grad in zip(d_names, grads):
            if grad is not None:
                fd[name] += grad.detach().square()
        losses += [("g", float(g_loss.detach())), ("d", float(d_loss.detach()))]
    for fisher in (fg, fd):
        for name in fisher:
            fisher[name] /= len(latents)
    return fg, fd, losses


def filter_scores(layer: FilterLayer, fisher: dict[str, torch.Tensor]) -> np.ndarray:
    """One score per filter of ``layer``: the mean Fisher over the filter's weights, averaged with its bias's
    Fisher when it has a bias (float64)."""
    weight = fisher[layer.weight].detach().double()
    score = weight.mean(dim=tuple(d for d in range(weight.ndim) if d != layer.dim))
    if layer.bias is not None:
        score = (score + fisher[layer.bias].detach().double()) / 2
    return score.cpu().numpy()


@dataclass
class Selection:
    """One estimate's decisions: parameter name -> filter indices, per net; the pools' scores and thresholds."""

    freeze: dict[str, dict[str, list[int]]]
    finetune: dict[str, dict[str, list[int]]]
    prune: dict[str, dict[str, list[int]]]
    lines: dict[str, tuple[float, float]]  # pool -> (cut, prune)
    pools: dict[str, np.ndarray]  # pool -> the scores, in layer order
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # net -> weight name -> scores


def select_filters(
    layers: list[FilterLayer], fisher: dict[str, dict[str, torch.Tensor]], fisher_quantile: float,
    prune_quantile: float,
) -> Selection:  # fmt: skip
    """The authors' selection: per pool, ``cut`` and ``prune`` are the pool's ``fisher_quantile`` and
    ``prune_quantile`` percentiles; filters above ``cut`` are frozen, those at or below ``prune`` pruned, the rest
    fine-tuned (strict ``< prune`` for D layers without a bias). ``fisher``: "G" / "D" -> name -> Fisher."""
    scores = {layer: filter_scores(layer, fisher[layer.net]) for layer in layers}
    pools = {
        p: np.concatenate([scores[x] for x in layers if x.pool == p]) for p in POOLS if any(x.pool == p for x in layers)
    }
    lines = {
        p: (float(np.percentile(v, fisher_quantile)), float(np.percentile(v, prune_quantile))) for p, v in pools.items()
    }
    out: dict[str, dict[str, dict[str, list[int]]]] = {k: {"G": {}, "D": {}} for k in ("freeze", "ft", "prune")}
    for layer in layers:
        s, (cut, low) = scores[layer], lines[layer.pool]
        pruned = s < low if layer.skip_ties else s <= low
        decided = {"freeze": s > cut, "ft": (s <= cut) & ~pruned, "prune": pruned}
        for kind, mask in decided.items():
            for name in layer.names():
                out[kind][layer.net][name] = np.flatnonzero(mask).tolist()
    by_name: dict[str, dict[str, np.ndarray]] = {"G": {}, "D": {}}
    for layer, values in scores.items():
        by_name[layer.net][layer.weight] = values
    return Selection(out["freeze"], out["ft"], out["prune"], lines, pools, by_name)


def merge_pruned(old: dict[str, list[int]], new: dict[str, list[int]]) -> dict[str, list[int]]:
    """The union of two prune sets, per parameter (sorted): pruning is cumulative."""
    return {k: sorted(set(old.get(k, [])) | set(new.get(k, []))) for k in {**old, **new}}


def _unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the training loop's arithmetic (so the shots are bit for bit the loop's)."""
    return images.float().div_(127.5).sub_(1.0)


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------------------


def _percent(value: float) -> str | None:
    return None if 0 <= value <= 100 else "must be a percentage, 0 to 100"


class RICK(ganbench.Strategy):
    """Freeze the most important filters, prune the least, re-estimated by Fisher information (Zhao et al. 2023)."""

    name = "rick"
    card = ganbench.MethodCard(
        paper="Zhao, Du, Abdollahzadeh, Pang, Lin, Yan & Cheung: Exploring Incompatible Knowledge Transfer in "
        "Few-shot Image Generation (RICK), CVPR",
        year=2023,
        trains="G's synthesis convolutions after the first block (not to-RGB) and D but from-RGB, only D's last "
        "block and head during the warm-up; the filters of highest Fisher information frozen and the lowest pruned "
        "(cumulatively), re-estimated every fisher_freq steps",
        losses="none",
        code="yunqing-me/RICK@44d65c1",
        parity="tests/plugins/test_rick.py",
    )
    options = (
        Option("fisher_quantile", float, 40.0, "percentile (in percent) of the filter scores above which filters are "
               "frozen (FFHQ -> Babies: 40; AFHQ-Cat: 85)", check=_percent),
        Option("prune_quantile", float, 0.1, "percentile (in percent) at or below which filters are pruned (Babies: "
               "0.1, i.e. 0.1 %; AFHQ-Cat: 0.075)", check=_percent),
        Option("warmup", int, 250, "steps at the start in which only D's last block and head train", check=at_least(0)),
        Option("fisher_freq", int, 50, "steps between filter-importance estimates after the warm-up",
               check=at_least(1)),
        Option("fisher_samples", int, 5, "latent / shot pairs per Fisher estimate", check=at_least(1)),
    )  # fmt: skip

    def check(self, nets):
        if self.config["prune_quantile"] > self.config["fisher_quantile"]:
            raise ganbench.GanbenchError(
                f"rick:prune_quantile={self.config['prune_quantile']} is above fisher_quantile="
                f"{self.config['fisher_quantile']}: filters would be frozen and pruned at once; use a smaller one"
            )
        filter_layout(nets.G, nets.D)

    def adapt(self, nets, source):
        if source is None:
            raise ganbench.GanbenchError("rick needs a source model")
        nets = super().adapt(nets, source)
        self.check(nets)
        self.layout = filter_layout(nets.G, nets.D)
        for which, net in nets.modules().items():
            for name, p in net.named_parameters():
                if p.requires_grad and name not in self.layout.trainable[which]:
                    p.requires_grad_(False)
        self.frozen: dict[str, dict[str, list[int]]] = {"G": {}, "D": {}}
        self.pruned: dict[str, dict[str, list[int]]] = {"G": {}, "D": {}}
        self.estimates = 0
        self.last: Selection | None = None
        self.shots: torch.Tensor | None = None  # uint8, CPU
        self.latents: torch.Tensor | None = None
        self.generator: torch.Generator | None = None
        self._indices: dict[tuple[str, str, str], torch.Tensor] = {}
        self._held: list[tuple[nn.Parameter, int, torch.Tensor, torch.Tensor]] = []
        return nets

    # the shots and the samples' random draws -------------------------------------------------------------

    def probe_steps(self):
        return 1  # no training: the probe keeps the shots the Fisher estimates draw from

    def probe(self, nets, probe):
        seed = int(torch.randint(0, 2**62, (1,), generator=probe.data_generator))
        self.generator = torch.Generator().manual_seed(seed)
        self.shots = _to_uint8(probe.shots.detach()).cpu()
        self.latents = torch.randn(self.config["fisher_samples"], nets.G.z_dim, generator=self.generator)

    def _draw_reals(self) -> torch.Tensor:
        n, k = len(self.shots), self.config["fisher_samples"]
        order = torch.cat([torch.randperm(n, generator=self.generator) for _ in range(-(-k // n))])[:k]
        return _unit_range(self.shots[order])

    # the schedule ------------------------------------------------------------------------------------------

    def estimate_due(self, step: int) -> bool:
        since = step - 1 - self.config["warmup"]
        return since >= 0 and since % self.config["fisher_freq"] == 0

    def discriminator_loss(self, nets, step):
        if self.estimate_due(step.step):  # before this step's updates: the authors' estimate at the top of i
            self.estimate(nets)
        return None

    def estimate(
        self, nets: ganbench.Nets, generate: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> Selection:
        """One Fisher estimate on ``nets`` (eval mode, restored after), the selection, and the masks it sets."""
        if self.shots is None:
            raise ganbench.GanbenchError("rick: no shots to estimate filter importance from (its probe did not run)")
        weight = next(nets.G.parameters())
        reals = self._draw_reals().to(weight.device, weight.dtype)
        latents = self.latents.to(weight.device, weight.dtype)
        names = {w: [n for layer in self.layout.layers if layer.net == w for n in layer.names()] for w in "GD"}
        modes = nets.G.training, nets.D.training
        nets.G.eval(), nets.D.eval()
        try:
            fg, fd, _ = fisher_information(nets.G, nets.D, latents, reals, names["G"], names["D"], generate)
        finally:
            nets.G.train(modes[0]), nets.D.train(modes[1])
        selection = select_filters(self.layout.layers, {"G": fg, "D": fd}, self.config["fisher_quantile"],
                                   self.config["prune_quantile"])  # fmt: skip
        self.apply(selection)
        return selection

    def apply(self, selection: Selection) -> None:
        """Frozen: the latest selection's; pruned: the union of every selection's, except that a spectrally
        normalized layer keeps its best newly pruned filter rather than lose them all (0 / 0)."""
        pruned = {w: merge_pruned(self.pruned[w], selection.prune[w]) for w in "GD"}
        for layer in self.layout.layers:
            if layer.normalized and len(pruned[layer.net][layer.weight]) >= layer.filters:
                new = sorted(
                    set(selection.prune[layer.net][layer.weight]) - set(self.pruned[layer.net].get(layer.weight, []))
                )
                keep = max(new, key=lambda i: selection.scores[layer.net][layer.weight][i])
                for name in layer.names():
                    pruned[layer.net][name] = [i for i in pruned[layer.net][name] if i != keep]
        self.frozen = {w: dict(selection.freeze[w]) for w in "GD"}
        self.pruned = pruned
        self.estimates += 1
        self.last = selection
        self._indices = {}

    # the masked updates ------------------------------------------------------------------------------------

    def _index(self, which: str, kind: str, name: str, device: torch.device) -> torch.Tensor:
        key = (which, kind, name)
        if key not in self._indices:
            chosen = (self.frozen if kind == "freeze" else self.pruned)[which].get(name, [])
            self._indices[key] = torch.tensor(chosen, dtype=torch.long, device=device)
        return self._indices[key]

    @torch.no_grad()
    def before_update(self, which, net, step):
        if step <= self.config["warmup"]:  # no update but D's last block and head (Adam skips grad-less ones)
            keep = self.layout.warmup if which == "D" else set()
            for name, p in net.named_parameters():
                if name not in keep:
                    p.grad = None
            return
        params = dict(net.named_parameters())
        self._held = []
        for name, dim in self.layout.dims[which].items():
            p = params[name]
            pruned = self._index(which, "prune", name, p.device)
            frozen = self._index(which, "freeze", name, p.device)
            if pruned.numel():
                p.index_fill_(dim, pruned, 0)
                if p.grad is not None:
                    p.grad.index_fill_(dim, pruned, 0)
            if frozen.numel():
                if p.grad is not None:
                    p.grad.index_fill_(dim, frozen, 0)
                self._held.append((p, dim, frozen, p.index_select(dim, frozen)))

    @torch.no_grad()
    def after_update(self, which, net, step):
        if step <= self.config["warmup"]:
            return
        for p, dim, index, values in self._held:  # exact under any optimizer (Adam's momentum moves them)
            p.index_copy_(dim, index, values)
        self._held = []
        params = dict(net.named_parameters())
        for name, dim in self.layout.dims[which].items():
            pruned = self._index(which, "prune", name, params[name].device)
            if pruned.numel():
                params[name].index_fill_(dim, pruned, 0)

    # state -------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.shots is None:
            return {}
        return {
            "frozen": {w: dict(v) for w, v in self.frozen.items()},
            "pruned": {w: dict(v) for w, v in self.pruned.items()},
            "estimates": self.estimates,
            "shots": self.shots,
            "latents": self.latents,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.frozen = {w: {k: list(v) for k, v in state["frozen"][w].items()} for w in "GD"}
        self.pruned = {w: {k: list(v) for k, v in state["pruned"][w].items()} for w in "GD"}
        self.estimates = int(state["estimates"])
        self.shots, self.latents = state["shots"], state["latents"]
        self.generator = torch.Generator()
        self.generator.set_state(state["generator"])
        self._indices = {}


@ganbench.hookimpl
def register_strategies(register):
    register(RICK)
