"""RSSA (Xiao, Li, Wang, Zha & Huang, CVPR 2022, "Few Shot Generative Model Adaption via Relaxed Spatial
Structural Alignment").

Fine-tunes every weight of G and D, with CDC's anchor regions and patch-level D, and adds three parts:

* **Self-correlation consistency** (weight ``self_corr``, 0.8, every step). A fresh batch of ``feat_batch``
  latents goes through the frozen source G and the adapted G (each with the latent projection below and the
  stored noise maps). On each synthesis block's feature map of side 1/4 of the image or more (64, 128 and 256
  px at 256 px), every pixel vector is L2-normalised over channels, the map is 2x2 average-pooled, and the Gram
  matrix of the pixel vectors in each window of a 2x2 grid (and in one centred window of the same size) is
  compared between source and adapted with a smooth L1 loss; summed over blocks and both passes.
* **Disturbance-correlation consistency** (weight ``dis_corr``, 0.4, every ``dis_corr_every``-th step, 6, from
  the first). A fresh batch of latents, without the projection. On each synthesis block's map of side at most
  1/2 of the image (split into a 4x4 grid of windows from side 1/4 up; smaller maps are one window), for each
  pair of samples j < k and window, the softmax (over k's pixels) of the dot products of j's pixel vectors with
  k's is compared between source and adapted (L1, the authors' scaling: the sum over a pair's windows divided by
  windows x window pixels), summed over pairs and blocks, divided by 6.
* **Latent projection** (``projection``, on architectures with a W space: stylegan2, stylegan2-lite). Before
  training, each shot is inverted into W+ through the frozen source G (``probe_steps`` Adam steps, lr
  ``invert_lr``, halved every 1000, from the mean w of 5120 mapped latents; MSE, or LPIPS(vgg) + MSE with
  ``invert_loss=lpips+mse``): the probing phase, its codes kept in ``state_dict()``. Then on every pass of the
  adapted G (and its EMA copy, evaluation included) and of the source G in the consistency term, the w each
  style layer receives is projected onto the span of the shots' codes of its W+ layer (least squares),
  rescaled to w's norm, and mixed in with the layer's weight: ``sub * proj(w) + (1 - sub) * w``. ``sub`` gives
  one weight per octave from the image side down (the last for every lower octave): at 256 px the authors'
  0.85 (256 px layers), 0.65 (128), 0.45 (64), 0.05 (32, 16), 0 (8, 4). W+ layers are rosinality's: a to-RGB
  layer shares its latent with the next octave's first convolution, and so its weight.
* **Anchors and patch-level D** (``patch``, CDC's): ``anchors`` latents drawn once; every ``anchor_every``-th
  step, from the first, trains on latents drawn around anchors picked at random (std ``anchor_std``) with the
  image-level D, the others with a patch head on the D block at 1/8 of the image side (a 3x3 equalized-lr
  convolution to one channel, then bias + leaky ReLU(0.2) x sqrt 2, as the authors' ``Extra``), trained with D.

``rssa:projection=false`` keeps the structural losses alone, on any architecture; without a W space the
projection is refused in one line.

Checked against the authors' code, StevenShaw1999/RSSA at commit 47f570115f040d31f0f6621aeb20493aad88e00a
(train_face_proj.py, model.py's ``Projection_module``, invert_gan.py); tests/plugins/test_rssa.py holds
:func:`self_correlation`, :func:`disturbance_correlation` and :func:`project_latents` to numbers their code
computed. Deviations from their code (the architecture-independent version):

* features: the synthesis blocks' outputs (one per resolution: the second convolution); theirs: every
  StyledConv output (both convolutions per resolution; dis-corr stops after the first 128-px one);
* sides relative to the image: self-correlation from 1/4 of the side up, dis-corr up to 1/2, its 4x4 windows
  from 1/4 up (theirs: 64..256, up to 128, and 64 / 128 px; batch 4 and the channels hard-coded);
* no style mixing (theirs draws it, but with ``input_is_latent`` it never acts); the anchors: one draw for the D
  and the G step (theirs: one each);
* inversion: MSE alone by default (theirs: LPIPS(vgg) + MSE, here ``invert_loss=lpips+mse`` where torchvision's
  vgg16 file is on the machine); every shot inverted (theirs: files chosen by hand per task), up to 16 at once
  (each with its own code and loss: the same Adam updates); G's output as the architecture returns it
  (stylegan2 clamps to [-1, 1]; theirs unclamped); at the grid's resolution;
* projection: a pseudo-inverse (theirs: ``torch.inverse`` of A^T A; the same where the codes are independent,
  defined where they are not); stylegan2-lite's style layers take the sub of their rosinality W+ layer;
* the patch head reads a D block's output at 1/8 of the image side (theirs: the residual branch inside the
  32 px ResBlock);
* the source G of the consistency terms is a frozen copy this strategy keeps (the loop's source G takes no W
  transform): one more G in memory;
* left to the loop: path-length regularization, the EMA decay, lazy R1's weighting, Adam's betas; on nets
  with batch norm (projection=false), the consistency passes update its running statistics.

As theirs: weights 0.8 and 0.4 / 6, dis-corr and anchor steps counted from the first (their i % 6, i % 4 from
i = 0), fresh latents of their own for each term (``feat_batch`` 4), the same latents and stored noise maps for
source and adapted G, the projection on every G pass but the dis-corr ones, anchor std 0.1 picked with
replacement, the patch head's form, CDC's KL term unused, ``probe_steps`` 4001 (the Adam steps of their saved
code, step 4000 of 4002).
"""

from __future__ import annotations

import copy
import math
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import BlockOutputs, Option, at_least

COMMIT = "47f570115f040d31f0f6621aeb20493aad88e00a"
SQRT2 = math.sqrt(2.0)
MEAN_W_SAMPLES = 5120  # invert_gan.py's find_avg_latent
LR_HALVING = 1000  # invert_gan.py's StepLR(1000, gamma=0.5)
INVERT_CHUNK = 16  # shots inverted at once (each its own code and loss: chunking changes no update)
DIS_CORR_DIVISOR = 6  # train_face_proj.py: dis_corr_loss / 6
VGG_FILE = "vgg16-397923af.pth"  # torchvision's checkpoint of LPIPS(vgg)'s trunk


# --------------------------------------------------------------------------------------------------
# The authors' three terms, on tensors
# --------------------------------------------------------------------------------------------------


def _window_grams(feat: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, windows, window^2, window^2): the Gram matrix of the pixel vectors in each window."""
    b, c = feat.shape[:2]
    cols = F.unfold(feat, (window, window), stride=stride)  # (B, C * window^2, windows)
    cols = cols.reshape(b, c, window * window, -1).permute(0, 3, 2, 1)  # (B, windows, window^2, C)
    return cols @ cols.transpose(-1, -2)


def self_correlation_layer(source: torch.Tensor, adapted: torch.Tensor) -> torch.Tensor:
    """One feature map's self-correlation term (train_face_proj.py's per-layer arithmetic): pixels L2-normalised
    over channels, pooled to half the side, Gram matrices over a 2x2 grid of windows and over the centred
    window, each compared by smooth L1 (beta 1, mean)."""
    side = source.shape[-1]
    half = side // 2
    window = half // 2
    crop = window // 2
    total = source.new_zeros(())
    views = [F.adaptive_avg_pool2d(F.normalize(f, dim=1), half) for f in (source, adapted)]
    for _ in range(2):
        grams = [_window_grams(f, window, window) for f in views]
        total = total + F.smooth_l1_loss(grams[1], grams[0], beta=1.0)
        views = [f[:, :, crop : half - crop, crop : half - crop] for f in views]
    return total


def self_correlation(source: list[torch.Tensor], adapted: list[torch.Tensor]) -> torch.Tensor:
    """The self-correlation loss: :func:`self_correlation_layer` summed over the given maps (before its
    weight, 0.8 in theirs)."""
    return sum((self_correlation_layer(s, a) for s, a in zip(source, adapted, strict=True)), source[0].new_zeros(()))


def _pixel_windows(feat: torch.Tensor, split: bool) -> torch.Tensor:
    """(B, C, S, S), L2-normalised pixels -> (B, windows, pixels, C): a 4x4 grid of S/4 windows, or one."""
    b, c, side = feat.shape[0], feat.shape[1], feat.shape[-1]
    if not split:
        return feat.reshape(b, 1, c, -1).transpose(-1, -2)
    window = side // 4
    cols = F.unfold(feat, (window, window), stride=window)  # (B, C * window^2, 16)
    return cols.reshape(b, c, window * window, -1).permute(0, 3, 2, 1)


def disturbance_correlation(source: list[torch.Tensor], adapted: list[torch.Tensor], split: list[bool]) -> torch.Tensor:
    """The disturbance-correlation loss (train_face_proj.py's arithmetic, the final ``/ 6`` included, before its
    weight, 0.4 in theirs). Per map (``split``: cut into a 4x4 grid of windows), per pair of samples j < k and
    window: ``softmax_q(<x_jp, x_kq>)`` over k's pixels q, source vs adapted; each pair's absolute differences
    summed and divided by (windows x window pixels), as their ``L1Loss() * (B - 1 - j) * pixels``."""
    total = source[0].new_zeros(())
    for fs, fa, cut in zip(source, adapted, split, strict=True):
        xs, xa = (_pixel_windows(F.normalize(f, dim=1), cut) for f in (fs, fa))
        windows, pixels = xs.shape[1], xs.shape[2]
        for j in range(xs.shape[0] - 1):
            cs = F.softmax(xs[j : j + 1] @ xs[j + 1 :].transpose(-1, -2), dim=-1)  # (pairs, windows, p, p)
            ca = F.softmax(xa[j : j + 1] @ xa[j + 1 :].transpose(-1, -2), dim=-1)
            total = total + (cs - ca).abs().sum() / (windows * pixels)
    return total / DIS_CORR_DIVISOR


def projection_bases(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverted codes (K, L, D) -> per W+ layer the codes ``A_l`` (L, K, D) and their pseudo-inverses
    ``pinv(A_l)`` (L, D, K), computed in float64: ``w @ pinv(A_l) @ A_l`` projects w onto the span of the codes."""
    basis = codes.transpose(0, 1)  # (L, K, D)
    return basis, torch.linalg.pinv(basis.double()).to(codes.dtype)


def project_layer(w: torch.Tensor, basis: torch.Tensor, pinv: torch.Tensor, sub: float) -> torch.Tensor:
    """One W+ layer: w (..., D) -> ``sub * orth + (1 - sub) * w``, ``orth`` the least-squares projection of w onto
    the span of ``basis`` (K, D) rescaled to w's norm."""
    orth = (w @ pinv.to(w.dtype)) @ basis.to(w.dtype)
    scale = w.norm(dim=-1, keepdim=True) / orth.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return sub * (orth * scale) + (1.0 - sub) * w


def project_latents(w: torch.Tensor, codes: torch.Tensor, sub: list[float] | torch.Tensor) -> torch.Tensor:
    """model.py's ``Projection_module.modulate``: w (N, D), repeated to every W+ layer, or W+ (N, L, D), with
    codes (K, L, D) and one weight per layer -> (N, L, D)."""
    layers = codes.shape[1]
    if w.ndim == 2:
        w = w.unsqueeze(1).expand(-1, layers, -1)
    basis, pinv = projection_bases(codes)
    return torch.stack([project_layer(w[:, i], basis[i], pinv[i], float(sub[i])) for i in range(layers)], dim=1)


def layer_weights(image_side: int, per_octave: tuple[float, ...]) -> list[float]:
    """The ``sub`` weight of each rosinality W+ layer of a G of this side: layer l drives the convolutions of
    side ``min(4 * 2^ceil(l / 2), image_side)``; octave d below the image side takes ``per_octave[d]`` (the last
    entry for every lower octave)."""
    octaves = int(math.log2(image_side))
    weights = []
    for layer in range(2 * octaves - 2):
        side = min(4 * 2 ** math.ceil(layer / 2), image_side)
        weights.append(float(per_octave[min(octaves - int(math.log2(side)), len(per_octave) - 1)]))
    return weights


def style_latent_layers(n_styles: int) -> list[int]:
    """rosinality's W+ layer of each style layer in synthesis order (4x4: conv, to-RGB; then per octave: up-conv,
    conv, to-RGB): the to-RGB layer of an octave shares its latent with the next octave's up-conv."""
    return [k if k < 2 else 2 * ((k - 2) // 3 + 1) - 1 + (k - 2) % 3 for k in range(n_styles)]


def _per_octave(text: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in str(text).split("+") if v.strip())
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError("expected '+'-joined weights in [0, 1], one per octave from the image side down")
    return values


_per_octave.type_name = "weights"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------
# CDC's parts as RSSA's code has them (anchors, the patch head)
# --------------------------------------------------------------------------------------------------


class PatchHead(nn.Module):
    """The authors' ``Extra`` head: 3x3 equalized-lr convolution to one channel without bias (weight N(0, 1) times
    1 / sqrt(C * 9) at run time), then bias, leaky ReLU (0.2) and a gain of sqrt 2 (FusedLeakyReLU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(1))
        self.scale = 1 / math.sqrt(channels * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight * self.scale, padding=1)
        return F.leaky_relu(out + self.bias.view(1, -1, 1, 1), 0.2) * SQRT2


@torch.no_grad()
def _shapes(nets: ganbench.Nets) -> tuple[list, list, int, int | None]:
    """Per-sample output shapes of G's and D's blocks on two generated images (nets in eval mode), the image
    side, and the G block whose output is the image itself (None: none is)."""
    modes = nets.G.training, nets.D.training
    g_watch, d_watch = BlockOutputs(nets.G.blocks), BlockOutputs(nets.D.blocks)
    try:
        nets.G.eval(), nets.D.eval()
        device = next(nets.G.parameters()).device
        images = nets.G(torch.zeros(2, nets.G.z_dim, device=device))
        nets.D(images)
        image_block = next((i for i, out in enumerate(g_watch.outputs)
                            if out is not None and out.shape == images.shape and torch.equal(out, images)), None)  # fmt: skip
        shapes = [[None if o is None else tuple(o.shape[1:]) for o in w.outputs] for w in (g_watch, d_watch)]
        return shapes[0], shapes[1], images.shape[-1], image_block
    finally:
        g_watch.remove(), d_watch.remove()
        nets.G.train(modes[0]), nets.D.train(modes[1])


def _maps(shapes: list) -> dict[int, int]:
    """{block: side} of the blocks that output square feature maps."""
    return {i: s[-1] for i, s in enumerate(shapes) if s is not None and len(s) == 3 and s[-1] == s[-2]}


def _lpips_weights(given: str | None) -> Path:
    """torchvision's vgg16 file for LPIPS: ``given``, else torch hub's cache; never downloaded."""
    path = Path(given).expanduser() if given else Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE
    if not path.is_file():
        raise ganbench.GanbenchError(
            f"rssa:invert_loss=lpips+mse needs torchvision's {VGG_FILE} ({path} not found): give "
            "rssa:lpips_weights=PATH or use invert_loss=mse"
        )
    try:
        import lpips  # noqa: F401
    except ImportError:
        raise ganbench.GanbenchError("rssa:invert_loss=lpips+mse needs the lpips package: pip install lpips, "
                                     "or use invert_loss=mse") from None  # fmt: skip
    return path


def _lpips_net(path: Path, device: torch.device) -> nn.Module:
    """The lpips package's LPIPS(vgg) (its linear layers ship with it), its trunk loaded from torchvision's file."""
    import lpips

    state = ganbench.load_torch_file(path, "rssa's vgg16 weights for LPIPS", f"give torchvision's {VGG_FILE}")
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision deprecates the `pretrained=` lpips passes it
        net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    trunk = {}
    for key, wanted in net.net.state_dict().items():
        tv_key = "features." + key.split(".", 1)[1]  # sliceK.I.weight -> features.I.weight
        if tv_key not in state or tuple(state[tv_key].shape) != tuple(wanted.shape):
            raise ganbench.GanbenchError(f"rssa: {path} is not torchvision's vgg16 ({tv_key} missing or misshaped)")
        trunk[key] = state[tv_key]
    net.net.load_state_dict(trunk)
    return net.to(device).eval().requires_grad_(False)


@contextmanager
def _styles_replaced(G: nn.Module, replace):
    """Inside: the input of each ``G.styles[k]`` is ``replace(k, w)`` (hooks on G, removed after)."""

    def hook(k):
        return lambda module, args: (replace(k, args[0]), *args[1:])

    handles = [style.register_forward_pre_hook(hook(k)) for k, style in enumerate(G.styles)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _run(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G on z with its stored noise maps where it has them (their ``randomize_noise=False``)."""
    return G(z, noise_mode="const") if hasattr(G, "noise_mode") else G(z)


class RSSA(ganbench.Strategy):
    """Fine-tune all weights with self- and disturbance-correlation consistency against the frozen source G,
    the latent space projected toward the shots' inverted codes, and CDC's anchors / patch-level D (Xiao et al.
    2022)."""

    name = "rssa"
    card = ganbench.MethodCard(
        paper="Xiao, Li, Wang, Zha & Huang: Few Shot Generative Model Adaption via Relaxed Spatial Structural Alignment (RSSA), CVPR",
        year=2022,
        trains="all of G and D, a patch head on one D block",
        losses="self-correlation consistency (windowed Gram matrices of pixel-normalised G features, adapted vs source); disturbance-correlation consistency (cross-sample pixel-affinity softmaxes, every 6th step); patch-level adversarial loss away from the anchors; W projected toward the span of the shots' inverted codes (an inversion phase before training)",
        code=f"StevenShaw1999/RSSA@{COMMIT[:7]}",
        parity="tests/plugins/test_rssa.py",
    )
    options = (
        Option("self_corr", float, 0.8, "weight of the self-correlation loss (every step)", check=at_least(0)),
        Option("dis_corr", float, 0.4, "weight of the disturbance-correlation loss", check=at_least(0)),
        Option("dis_corr_every", int, 6, "the disturbance-correlation loss on every N-th step, from the first",
               check=at_least(1)),
        Option("feat_batch", int, 4, "latents of each consistency term's own passes", check=at_least(2)),
        Option("projection", bool, True, "project W toward the shots' inverted codes (needs G.mapping)"),
        Option("sub", _per_octave, (0.85, 0.65, 0.45, 0.05, 0.05, 0.0), "projection weight per octave from the "
               "image side down, '+'-joined (the last for every lower octave)"),
        Option("probe_steps", int, 4001, "Adam steps inverting the shots into W+ (theirs: 4001 before the saved "
               "code)", check=at_least(1)),
        Option("invert_lr", float, 0.1, "the inversion's learning rate (halved every 1000 steps)", check=at_least(0)),
        Option("invert_loss", str, "mse", "the inversion's loss: mse, or lpips+mse (theirs; needs the lpips "
               "package and torchvision's vgg16 weights on this machine)", choices=("mse", "lpips+mse")),
        Option("lpips_weights", str, None, f"torchvision's {VGG_FILE} for invert_loss=lpips+mse (default: torch "
               "hub's cache)"),
        Option("patch", bool, True, "anchor regions + patch-level D (CDC's; false: image-level D always)"),
        Option("anchors", int, 10, "anchor latents (theirs: one per training image)", check=at_least(1)),
        Option("anchor_every", int, 4, "every N-th step, from the first, trains on anchor latents with the "
               "image-level D", check=at_least(1)),
        Option("anchor_std", float, 0.1, "radius (std) of each anchor region in z", check=at_least(0)),
        Option("patch_block", int, None, "D block the patch head reads (default: the first at most 1/8 of the "
               "image side)", check=at_least(0)),
    )  # fmt: skip

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.patch_head: PatchHead | None = None
        self.codes: torch.Tensor | None = None
        self.anchor_z: torch.Tensor | None = None
        self.patch_level = False
        self._bypass = False
        self._basis = self._pinv = None

    # ---------------------------------------------------------------------------------------- layout
    def _layout(self, nets: ganbench.Nets) -> None:
        """Blocks, sides and the W+ layout these nets give; one-line refusals where the options do not fit."""
        g_shapes, d_shapes, side, image_block = _shapes(nets)
        maps = {i: s for i, s in _maps(g_shapes).items() if i != image_block}
        self.side = side
        self.self_blocks = [i for i, s in maps.items() if side // 4 <= s <= side]
        self.dis_blocks = [i for i, s in maps.items() if s <= side // 2]
        self.dis_split = [maps[i] >= max(side // 4, 4) for i in self.dis_blocks]
        if self.config["self_corr"] > 0 and not self.self_blocks:
            raise ganbench.GanbenchError(f"rssa: no G block outputs a feature map of side {side // 4} to {side} for "
                                         "the self-correlation loss; use rssa:self_corr=0")  # fmt: skip
        if self.config["dis_corr"] > 0 and not self.dis_blocks:
            raise ganbench.GanbenchError(f"rssa: no G block outputs a feature map of side {side // 2} or less for "
                                         "the disturbance-correlation loss; use rssa:dis_corr=0")  # fmt: skip
        if self.config["projection"]:
            self._w_layout(nets.G, side)
        if self.config["projection"] and self.config["invert_loss"] == "lpips+mse":
            _lpips_weights(self.config["lpips_weights"])
        self.block = None
        if self.config["patch"]:
            self.block = self._patch_block(d_shapes, side)
            self.patch_channels = d_shapes[self.block][0]

    def _w_layout(self, G: nn.Module, side: int) -> None:
        if not isinstance(getattr(G, "mapping", None), nn.Module) or not isinstance(getattr(G, "styles", None),
                                                                                   nn.ModuleList):  # fmt: skip
            raise ganbench.GanbenchError("rssa: the latent projection works in StyleGAN's W space and this generator "
                                         "has none (no G.mapping / G.styles): use rssa:projection=false, or stylegan2 "
                                         "/ stylegan2-lite")  # fmt: skip
        octaves = int(math.log2(side)) - 1
        owners = [next((b for b, block in enumerate(G.blocks[1:]) if any(m is s for m in block.modules())), None)
                  for s in G.styles]  # fmt: skip
        expected = [0, 0] + [b for b in range(1, octaves) for _ in range(3)]
        if owners != expected:
            raise ganbench.GanbenchError("rssa: the projection needs StyleGAN2's style layers (per synthesis block: "
                                         "4x4 conv and to-RGB, then up-conv, conv, to-RGB); this G differs: use "
                                         "rssa:projection=false")  # fmt: skip
        self.style_layers = style_latent_layers(len(G.styles))
        self.sub = layer_weights(side, self.config["sub"])
        self.n_latent = 2 * octaves

    def _patch_block(self, shapes: list, side: int) -> int:
        maps = [i for i, s in enumerate(shapes) if s is not None and len(s) == 3]
        chosen = self.config["patch_block"]
        if chosen is not None:
            if chosen not in maps:
                raise ganbench.GanbenchError(f"rssa:patch_block={chosen}: D block {chosen} outputs no feature map; "
                                             f"choose one of {', '.join(map(str, maps)) or '(none)'} or set patch=false")  # fmt: skip
            return chosen
        if not maps:
            raise ganbench.GanbenchError("rssa: no D block outputs a feature map for the patch head; use "
                                         "rssa:patch=false")  # fmt: skip
        small = [i for i in maps if shapes[i][-1] <= max(side // 8, 1)]
        return small[0] if small else maps[-1]

    def check(self, nets):
        self._layout(nets)

    # ---------------------------------------------------------------------------------------- setup
    def adapt(self, nets, source):
        if source is None:
            raise ganbench.GanbenchError("rssa needs a source model")
        nets = super().adapt(nets, source)
        self._layout(nets)
        self.codes, self._basis, self._pinv = None, None, None
        self.patch_level, self._bypass = False, False
        self.source_G = copy.deepcopy(nets.G).requires_grad_(False)  # frozen: the consistency terms' reference
        self.patch_head, self.anchor_z = None, None
        if self.block is not None:
            device = next(nets.D.parameters()).device
            self.patch_head = PatchHead(self.patch_channels).to(device)
            self.anchor_z = torch.randn(self.config["anchors"], nets.G.z_dim, device=device)
        return nets

    def needs(self):
        patch = (self.block,) if self.block is not None else ()
        return ganbench.Needs(d_features=patch, transform_styles=bool(self.config["projection"]))

    def modules(self):
        return {"patch_head": ganbench.StrategyModule(self.patch_head, "D")} if self.patch_head is not None else {}

    # ---------------------------------------------------------------------------------------- inversion
    def probe_steps(self) -> int:
        return self.config["probe_steps"] if self.config["projection"] else 0

    def probe(self, nets, probe):
        devices = [probe.device] if probe.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            codes = self.invert(probe.shots, probe.steps, probe.latents(nets.G.z_dim, MEAN_W_SAMPLES))
        self._set_codes(codes)

    def invert(self, shots: torch.Tensor, steps: int, z: torch.Tensor) -> torch.Tensor:
        """W+ codes (K, layers, w) of ``shots`` through the frozen source G (its stored noise maps), each from the
        mean w of ``z``: Adam (lr ``invert_lr``, halved every 1000 steps) on MSE (+ LPIPS(vgg))."""
        G = self.source_G
        was_training = G.training
        G.eval()
        lpips_net = None
        if self.config["invert_loss"] == "lpips+mse":
            lpips_net = _lpips_net(_lpips_weights(self.config["lpips_weights"]), shots.device)
        with torch.no_grad():
            w_mean = G.mapping(z).mean(0)
        chunks = []
        try:
            for start in range(0, len(shots), INVERT_CHUNK):
                target = shots[start : start + INVERT_CHUNK]
                code = w_mean.expand(len(target), self.n_latent, -1).clone().requires_grad_(True)
                opt = torch.optim.Adam([code], lr=self.config["invert_lr"])
                sched = torch.optim.lr_scheduler.StepLR(opt, LR_HALVING, gamma=0.5)
                blank = torch.zeros(len(target), G.z_dim, device=shots.device)
                with _styles_replaced(G, lambda k, w, code=code: code[:, self.style_layers[k]]):
                    for _ in range(steps):
                        out = _run(G, blank)
                        loss = (out - target).square().flatten(1).mean(1).sum()  # MSE per image, one code each
                        if lpips_net is not None:  # LPIPS per image (grey images as three equal channels)
                            loss = loss + lpips_net(*(x.expand(-1, 3, -1, -1) for x in (out, target))).sum()
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        sched.step()
                chunks.append(code.detach())
        finally:
            G.train(was_training)
        return torch.cat(chunks)

    def _set_codes(self, codes: torch.Tensor) -> None:
        self.codes = codes
        self._basis, self._pinv = projection_bases(codes.float())

    def project(self, k: int, w: torch.Tensor) -> torch.Tensor:
        """The w style layer ``k`` receives, projected toward the codes of its W+ layer (unchanged before the
        inversion, with a weight of 0, and in the disturbance term's own passes)."""
        if self._basis is None or self._bypass:
            return w
        layer = self.style_layers[k]
        sub = self.sub[layer]
        if sub == 0:
            return w
        if self._basis.device != w.device:
            self._basis, self._pinv = self._basis.to(w.device), self._pinv.to(w.device)
        return project_layer(w, self._basis[layer], self._pinv[layer], sub)

    def transform_style_input(self, index, w):
        return self.project(index, w)

    # ---------------------------------------------------------------------------------------- training
    def begin_step(self, step, z):
        if self.patch_head is None:
            return z
        anchored = (step - 1) % self.config["anchor_every"] == 0  # their i % subspace_freq == 0, i from 0
        self.patch_level = not anchored
        if not anchored:
            return z
        self.anchor_z = self.anchor_z.to(z.device)
        pick = torch.randint(len(self.anchor_z), (len(z),)).to(z.device)  # with replacement, as their get_subspace
        return self.anchor_z[pick] + self.config["anchor_std"] * z

    def discriminator_logits(self, d, step):
        return self.patch_head(d.features[self.block]).flatten(1) if self.patch_level else d.logits

    def features(self, G: nn.Module, z: torch.Tensor, blocks: list[int], projected: bool) -> list[torch.Tensor]:
        """The outputs of ``blocks`` of ``G`` (the adapted G or the frozen source) on ``z``, with the stored noise
        maps, with or without the latent projection."""
        watcher = BlockOutputs(G.blocks)
        own = G is self.source_G and projected and self._basis is not None
        self._bypass = not projected
        try:
            if own:  # the loop transforms the adapted G's styles; the source copy's are transformed here
                with _styles_replaced(G, self.project):
                    _run(G, z)
            else:
                _run(G, z)
        finally:
            self._bypass = False
            watcher.remove()
        return [watcher.outputs[b] for b in blocks]

    def generator_loss(self, nets, step):
        G, device = nets.G, step.z.device
        self.source_G.train(G.training)
        terms = {}
        projected = bool(self.config["projection"])
        if self.config["self_corr"] > 0:
            z = torch.randn(self.config["feat_batch"], G.z_dim, device=device)
            with torch.no_grad():
                source = self.features(self.source_G, z, self.self_blocks, projected)
            adapted = self.features(G, z, self.self_blocks, projected)
            terms["self_corr"] = self.config["self_corr"] * self_correlation(source, adapted)
        if self.config["dis_corr"] > 0:
            if (step.step - 1) % self.config["dis_corr_every"] == 0:
                z = torch.randn(self.config["feat_batch"], G.z_dim, device=device)
                with torch.no_grad():
                    source = self.features(self.source_G, z, self.dis_blocks, projected=False)
                adapted = self.features(G, z, self.dis_blocks, projected=False)
                terms["dis_corr"] = self.config["dis_corr"] * disturbance_correlation(source, adapted, self.dis_split)
            else:  # logged every step: 0 between its steps
                terms["dis_corr"] = torch.zeros((), device=device)
        return terms or None

    # ---------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = {}
        if self.anchor_z is not None:
            state["anchor_z"] = self.anchor_z.cpu()
        if self.codes is not None:
            state["codes"] = self.codes.cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "anchor_z" in state:
            self.anchor_z = state["anchor_z"]
        if "codes" in state:
            self._set_codes(state["codes"])


@ganbench.hookimpl
def register_strategies(register):
    register(RSSA)
