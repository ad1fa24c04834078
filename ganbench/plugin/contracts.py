"""The contracts plugins implement, and the small value types passed between the core and plugins.

A plugin is a class with a ``name``, a tuple of declared :class:`~ganbench.plugin.options.Option` s, and a
docstring whose first line describes it. The core instantiates it with the resolved option values
(``self.config``), so one class serves every ``NAME:key=value`` variant.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.plugin.options import Option, parse_int_set
from ganbench.store.schema import Column  # the one column type: metrics declare it, records store it


class Plugin:
    name: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, **config: Any) -> None:
        defaults = {o.name: o.default for o in self.declared_options()}
        unknown = set(config) - set(defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(unknown)}")
        self.config: dict[str, Any] = {**defaults, **config}

    @classmethod
    def declared_options(cls) -> tuple[Option, ...]:
        return tuple(cls.options)


# --------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------


class Architecture(Plugin):
    """A GAN architecture: builds a fresh generator and discriminator.

    Contract (checked by :func:`ganbench.testing.check_architecture`):

    * ``G(z)`` maps ``(N, G.z_dim)`` latents to images ``(N, channels, resolution, resolution)`` in [-1, 1];
    * ``D(x)`` maps such images to logits of shape ``(N,)``;
    * ``G.blocks`` / ``D.blocks`` are the ordered stages (latent side first for G, input side first for D),
      so strategies can address "the first k blocks" of any architecture; ``D.head`` is D's output layer.

    Optional, for strategies that act on more than blocks:

    * ``G.styles``: an ``nn.ModuleList`` of the layers that turn the latent into per-channel style vectors
      (StyleGAN's affine layers). When present, ``scale-shift`` scales and shifts the styles and ``adapter``
      puts its low-rank updates on these layers, rather than on G's feature maps and convolutions.
    * ``G.modulated``: an ``nn.ModuleList`` of StyleGAN2's modulated convolutions (``.weight`` of shape
      ``(1, out, in, k, k)``, rosinality's layout); ``adapter`` adds its low-rank updates to them too.
    * ``G.mapping``: the module that maps ``z`` to StyleGAN's intermediate latent W (its output is what
      :meth:`Strategy.transform_w` receives); strategies that work in W refuse architectures without it.
    * Structure is made of modules and parametrizations, never forward hooks: the loop copies G for its EMA
      without hooks.
    * Parameters frozen by the architecture itself (a pretrained feature network inside D) are built with
      ``requires_grad=False`` and stay out of ``blocks``; they count as frozen in every record.
    """

    resolutions: ClassVar[tuple[int, ...]] = (32,)

    def build(self, resolution: int, channels: int) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def provenance(self) -> dict[str, Any]:
        """Where the weights an architecture brings with it come from (e.g. a pretrained backbone's source and
        sha256, or that it is random), recorded in every cell and part of the pretraining cache key. Must be
        cheap and must not depend on ``build``. Flat str/int/float/bool values; empty for plain nets."""
        return {}


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------


@dataclass
class Nets:
    """The generator and discriminator a cell trains."""

    G: nn.Module
    D: nn.Module

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}


@dataclass(frozen=True)
class SourceCheckpoint:
    """The pretrained source weights (read-only: strategies load them, never modify them)."""

    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    key: str
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    def load_into(self, nets: Nets) -> None:
        nets.G.load_state_dict(self.generator)
        if not self.discriminator:
            where = self.meta.get("file", f"source model {self.key}")
            raise GanbenchError(
                f"the source checkpoint {where} has no discriminator ('d'): this strategy fine-tunes the source D; "
                "use a checkpoint saved by rosinality's train.py (g, d and g_ema) or convert_weight.py --disc"
            )
        nets.D.load_state_dict(self.discriminator)


@dataclass(frozen=True)
class Needs:
    """What a strategy asks the training loop to compute or change at every step (:meth:`Strategy.needs`). The
    default asks for nothing, and then the loop runs exactly the passes it runs for plain fine-tuning.

    Block indices address ``G.blocks`` / ``D.blocks`` (latent side first for G, input side first for D)."""

    #: D blocks whose outputs the loop keeps, on each of its D passes (the real batch and the fake batch)
    d_features: tuple[int, ...] = ()
    #: G blocks whose outputs the loop keeps on the step's fake pass (attached to G's graph)
    g_features: tuple[int, ...] = ()
    #: also run the frozen source G on the step's latents (its images and the same ``g_features`` blocks), once
    #: per step, without gradients, when the strategy first reads ``StepInfo.source``
    source: bool = False
    #: D blocks whose outputs go through :meth:`Strategy.transform_d_features` on the loop's training passes
    transform_d: tuple[int, ...] = ()
    #: G's W latents (the output of ``G.mapping``) go through :meth:`Strategy.transform_w` on every pass of the
    #: adapted G and of its EMA copy, evaluation included (never on the source G)
    transform_w: bool = False
    #: the input of each of ``G.styles`` (the W each style layer receives) goes through
    #: :meth:`Strategy.transform_style_input`, on the same passes as ``transform_w`` (per-layer W offsets)
    transform_styles: bool = False

    def blocks_wanted(self) -> dict[str, tuple[int, ...]]:
        return {"D": tuple(sorted({*self.d_features, *self.transform_d})), "G": tuple(sorted(set(self.g_features)))}


@dataclass(frozen=True)
class DPass:
    """One pass of D the loop ran: the logits the loss uses (after :meth:`Strategy.discriminator_logits`), D's
    own output, and the outputs of the blocks :class:`Needs` named (after :meth:`Strategy.transform_d_features`)."""

    logits: torch.Tensor
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    raw_logits: torch.Tensor | None = None  # D's own (N,) output, when a strategy judges otherwise (patches)

    def detached(self) -> DPass:
        return DPass(self.logits.detach(), {k: v.detach() for k, v in self.features.items()},
                     None if self.raw_logits is None else self.raw_logits.detach())  # fmt: skip


@dataclass(frozen=True)
class GPass:
    """One pass of a generator on the step's latents: its images in [-1, 1] and the outputs of the G blocks
    :class:`Needs` named."""

    images: torch.Tensor
    features: dict[int, torch.Tensor] = field(default_factory=dict)


@dataclass
class StepInfo:
    """What the training loop hands to a strategy's loss terms at one step. Every field holds what one named
    pass computed, whichever of the strategy's methods reads it (no hook whose content depends on call order).

    In :meth:`Strategy.discriminator_loss`, ``d_real`` and ``d_fake`` are D's passes of the D step (``d_fake``
    on ``fake`` detached from G); in :meth:`Strategy.generator_loss`, ``d_fake`` is the G step's pass (attached
    to G's graph) and ``d_real`` the D step's, detached. ``g`` holds the adapted G's block outputs on this
    step's fake pass; ``source`` the frozen source G's pass on the same latents (with ``Needs(source=True)``).
    ``discriminate(images)`` runs D on other images exactly as the loop runs it on these (augmentation, the
    feature transform, the kept blocks)."""

    step: int
    real: torch.Tensor  # real images in [-1, 1]
    z: torch.Tensor
    fake: torch.Tensor  # G(z), attached to G's graph
    d_real: DPass | None = None
    d_fake: DPass | None = None
    g: dict[int, torch.Tensor] = field(default_factory=dict)
    phase: str = "d"  # "d" in discriminator_loss, "g" in generator_loss
    _source: Callable[[], GPass | None] | None = field(default=None, repr=False)
    _discriminate: Callable[[torch.Tensor, str], DPass] | None = field(default=None, repr=False)

    @property
    def source(self) -> GPass | None:
        """The frozen source G on this step's latents (computed once per step, at the first read)."""
        return self._source() if self._source is not None else None

    def discriminate(self, images: torch.Tensor, batch: str = "fake") -> DPass:
        """D on ``images`` as the loop's passes run it; ``batch`` ("real" or "fake") is what
        :meth:`Strategy.transform_d_features` is told."""
        if self._discriminate is None:
            raise GanbenchError("StepInfo.discriminate is only available inside the training loop")
        return self._discriminate(images, batch)


@dataclass(frozen=True)
class MethodCard:
    """What a strategy is, for listings, leaderboards and reports: the paper, the code its implementation was
    checked against (repository@commit) and by which test, what trains and which losses it adds."""

    paper: str  # authors, title, venue
    year: int
    trains: str  # what is optimised, e.g. "all of G and D, a patch head on D"
    losses: str = "none"  # extra loss terms, e.g. "cross-domain consistency (KL of similarity distributions)"
    code: str | None = None  # the authors' repository and the commit read, e.g. "owner/repo@abc1234"
    parity: str | None = None  # the test that holds the implementation to the authors' numbers (a path)

    def describe(self) -> dict[str, Any]:
        return {"paper": self.paper, "year": self.year, "code": self.code, "trains": self.trains,
                "losses": self.losses, "parity": self.parity}  # fmt: skip

    def summary(self) -> str:
        """One line, as records and leaderboard notes carry it."""
        return f"{self.paper} ({self.year}); code: {self.code or 'none'}; parity test: {self.parity or 'none'}"


@dataclass
class StrategyModule:
    """An extra trainable module of a strategy (a projection head, a patch head, W-space offsets): optimised
    with the net whose loss trains it (``trains_with``: "G" or "D"), at that net's learning rate times
    ``lr_mult``; moved to the training device, saved in every checkpoint and restored on resume, and counted
    in that net's trainable/total parameter columns."""

    module: nn.Module
    trains_with: str = "D"
    lr_mult: float = 1.0

    def __post_init__(self) -> None:
        if self.trains_with not in ("G", "D"):
            raise ValueError(f"trains_with must be 'G' or 'D', got {self.trains_with!r}")
        if not isinstance(self.module, nn.Module):
            raise TypeError(f"StrategyModule wants an nn.Module, got {type(self.module).__name__}")


@dataclass
class ProbeContext:
    """What a strategy's probing phase (:meth:`Strategy.probe`) may use: the shots (float in [-1, 1], on the
    training device), its step budget, the cell's batch size and learning rate, and seeded generators of its
    own (the training streams are not touched: a probe never changes what training draws)."""

    shots: torch.Tensor
    steps: int
    batch_size: int
    lr: float
    device: torch.device
    data_generator: torch.Generator  # CPU: for batch indices
    z_generator: torch.Generator  # on the device: for latents
    augment: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda x: x)

    def real_batch(self, n: int | None = None) -> torch.Tensor:
        idx = torch.randint(len(self.shots), (n or self.batch_size,), generator=self.data_generator)
        return self.shots[idx.to(self.shots.device)]

    def latents(self, z_dim: int, n: int | None = None) -> torch.Tensor:
        return torch.randn(n or self.batch_size, z_dim, device=self.device, generator=self.z_generator)


class Strategy(Plugin):
    """A transfer strategy: how the source model is adapted and trained on the target.

    The training loop is generic: it trains every parameter with ``requires_grad=True`` after
    :meth:`adapt` (and the :meth:`modules` a strategy adds), and adds the strategy's extra loss terms. Behaviour
    lives here, not in the loop. See docs/plugin-hooks.md for the order the loop calls these in.
    """

    #: False for strategies that start from random weights (``scratch``): no pretraining is scheduled.
    uses_source: ClassVar[bool] = True
    #: the method's paper, the code it was checked against, what trains, its losses (None: not a published method)
    card: ClassVar[MethodCard | None] = None

    def adapt(self, nets: Nets, source: SourceCheckpoint | None) -> Nets:
        """Load source weights, freeze, add modules; return the nets to train (may be new objects)."""
        if source is not None:
            source.load_into(nets)
        return nets

    def check(self, nets: Nets) -> None:
        """Raise :class:`GanbenchError` (one line saying what to change) when this strategy's options do not fit
        these nets, e.g. ``freeze-d:layers=99`` on a D of 4 blocks. The planner calls it for every (architecture,
        strategy) of a grid before anything trains, dry run or not, on nets built for the check alone at the
        cells' resolution and channels (random weights, on the CPU, thrown away after: the check may change
        them, e.g. run the part of :meth:`adapt` that validates). ``adapt`` still gets only nets that passed.
        Default: nothing to check."""

    def needs(self) -> Needs:
        """What the loop computes for this strategy at every step (called after :meth:`adapt`). Default: nothing."""
        return Needs()

    def modules(self) -> dict[str, StrategyModule]:
        """Extra trainable modules, by name (called after :meth:`adapt`, which creates them). Default: none."""
        return {}

    def param_groups(self, net: nn.Module, which: str | None = None) -> list[dict[str, Any]]:
        """Optimizer parameter groups for one net (``which``: "G" or "D"; the loop always says); by default its
        trainable parameters at the base lr. A group's ``lr_mult`` scales the learning rate."""
        params = [p for p in net.parameters() if p.requires_grad]
        return [{"params": params}] if params else []

    def probe_steps(self) -> int:
        """The step budget of :meth:`probe` (0, the default: no probing phase)."""
        return 0

    def probe(self, nets: Nets, probe: ProbeContext) -> None:
        """A phase before training, on the target's shots (importance probing: AdAM, RICK): may train copies or
        temporary modules for ``probe.steps`` steps and decide what trains. Timed apart (``probe_s``). What it
        decides must be in :meth:`state_dict`: a resumed cell does not probe again."""

    def begin_step(self, step: int, z: torch.Tensor) -> torch.Tensor:
        """Called at the start of every training step with the loop's latent draw (standard normal, from the
        cell's seeded stream); returns the latents the step trains on. A strategy whose steps differ switches
        its modes here (CDC alternates anchor latents judged by the image-level D with random latents judged
        by a patch-level D). Default: ``z`` unchanged."""
        return z

    def transform_w(self, w: torch.Tensor) -> torch.Tensor:
        """With ``Needs(transform_w=True)``: the W latents (output of ``G.mapping``) the adapted G synthesizes
        from, e.g. ``w + offset`` (WeditGAN). Default: unchanged."""
        return w

    def transform_style_input(self, index: int, w: torch.Tensor) -> torch.Tensor:
        """With ``Needs(transform_styles=True)``: the W latent style layer ``G.styles[index]`` turns into its style
        (``(N, w_dim)``), e.g. ``w + delta[index]`` (WeditGAN's per-layer offsets). Default: unchanged."""
        return w

    def transform_d_features(self, block: int, features: torch.Tensor, batch: str) -> torch.Tensor:
        """With ``Needs(transform_d=...)``: the output of D block ``block`` on a training pass over the
        ``batch`` ("real" or "fake") that the rest of D sees instead (masked discrimination). Default: unchanged."""
        return features

    def discriminator_logits(self, d: DPass, step: int) -> torch.Tensor:
        """The logits the adversarial loss uses for one D pass (``d.logits``: D's own output, ``d.features``: the
        blocks :class:`Needs` named); CDC returns a patch head's logits on its patch steps. Default: D's output."""
        return d.logits

    def generator_loss(self, nets: Nets, step: StepInfo) -> torch.Tensor | dict[str, torch.Tensor] | None:
        """An extra term added to G's loss (regularizers such as EWC), or None. Each cell's loss curves log it
        as ``g_<strategy name>``; a dict of named terms is added term by term and logged as ``g_<name>``."""
        return None

    def discriminator_loss(self, nets: Nets, step: StepInfo) -> torch.Tensor | dict[str, torch.Tensor] | None:
        """An extra term added to D's loss, or None (a dict of named terms: each is added, and logged apart)."""
        return None

    def before_update(self, which: str, net: nn.Module, step: int) -> None:
        """Called after the backward pass of ``which`` ("G" or "D") and before its optimizer step: where a
        strategy changes which parameters train from step to step (RICK's filter selection), e.g. by zeroing
        the gradients of the filters it holds. Zeroed gradients stop Adam's update only when its first beta is
        0; to hold values exactly under any optimizer, put them back in :meth:`after_update`. Default: nothing."""

    def after_update(self, which: str, net: nn.Module, step: int) -> None:
        """Called right after the optimizer step of ``which`` ("G" or "D"): e.g. restore the values of the
        parameters (or filters) this step holds, or zero pruned ones. Default: nothing."""

    def state_dict(self) -> dict[str, Any]:
        """State that changes during training and lives outside the nets' parameters and buffers (a running
        statistic, a schedule's position, what :meth:`probe` decided): saved with every checkpoint, tensors and
        plain data only. The parameters of :meth:`modules` are saved apart. What ``adapt`` derives from the
        source model is not state: a resumed cell runs ``adapt`` again."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called after ``adapt`` when a cell resumes)."""


def param_groups_of(strategy: Strategy, net: nn.Module, which: str) -> list[dict[str, Any]]:
    """``strategy.param_groups(net, which)``; a strategy written before ``which`` existed (its override takes
    the net alone) is called the old way, with a deprecation warning."""
    method = strategy.param_groups
    try:
        params = inspect.signature(method).parameters.values()
        takes_which = len(params) >= 2 or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    except (TypeError, ValueError):  # a builtin or C callable: assume the current signature
        takes_which = True
    if takes_which:
        return method(net, which)
    warnings.warn(
        f"{type(strategy).__name__}.param_groups(self, net) is deprecated: define param_groups(self, net, which), "
        "which is told 'G' or 'D'",
        DeprecationWarning,
        stacklevel=2,
    )
    return method(net)  # type: ignore[call-arg]


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------


@dataclass
class ImageSet:
    """uint8 images ``(N, C, H, W)`` and, when the dataset has them, int64 labels ``(N,)``.

    ``shots``: for a dataset that comes with its own training images (the 10 images a few-shot paper released
    beside its full evaluation set), their positions among ``images``, distinct int64; every cell then trains
    on those instead of a seeded draw. None (the default): shots are drawn by each cell's seed.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    shots: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")
        if self.shots is not None:
            shots = self.shots
            if shots.ndim != 1 or shots.dtype != torch.int64 or len(shots) == 0:
                raise ValueError(f"shots must be a non-empty 1-D int64 tensor, got {shots.dtype} {tuple(shots.shape)}")
            if int(shots.min()) < 0 or int(shots.max()) >= len(self.images) or len(shots.unique()) != len(shots):
                raise ValueError(f"shots must be distinct positions among the {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)


CLASSES = Option("classes", parse_int_set, None, "class labels to keep, e.g. 0-4 or 1-3+7 (default: all)")


class Dataset(Plugin):
    """A source of real images at their native size.

    ``load()`` returns every image (uint8, any size, 1 or 3 channels) with labels when there are any. Class
    selection (the ``classes`` option every labelled dataset gets), resizing, channel conversion and n-shot
    subsampling are done once by the core, identically for every dataset, and cached.
    """

    has_labels: ClassVar[bool] = True
    #: bump when the content ``load()`` returns changes, so cached tensors are rebuilt
    version: ClassVar[str] = "1"

    @classmethod
    def declared_options(cls) -> tuple[Option, ...]:
        return tuple(cls.options) + ((CLASSES,) if cls.has_labels else ())

    def load(self) -> ImageSet:
        raise NotImplementedError

    def size_hint(self) -> int | None:
        """Number of images before class selection, when known without loading."""
        return None

    def fingerprint(self) -> str:
        """A cheap summary of the data on disk (e.g. a hash of every file's path, size and mtime), for datasets
        whose content can change under the same spec, such as a folder of the user's images. It is part of the
        key the prepared tensor is cached under, so a change means decoding again. ``""`` (the default) for
        datasets whose content is fixed by their name, options and ``version``."""
        return ""

    def locate(self) -> str | None:
        """Where ``load()`` will read from (a folder or file), found without loading or downloading anything.
        Raises :class:`ganbench.DataNotFound`, saying what to put where or what to install, when the
        data is not on this machine. None (the default): nothing to find (data shipped inside a package)."""
        return None

    def provenance(self) -> dict[str, Any]:
        """Called after ``load()``: where the data came from and what ``load()`` decided (e.g. files skipped),
        stored with the prepared tensor. Flat str/int/float/bool values; empty by default."""
        return {}


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSizes:
    """How many images each set of a cell's evaluations holds, known before anything trains: what
    :meth:`Metric.check` holds its own needs against."""

    generated: int  # images generated per evaluation (the grid's eval_samples)
    reference: int  # the reference (with select_on = val, also checked with the validation split as reference)
    shots: int  # the training images
    heldout: int  # target images featurized that are neither shots nor validation images


class Metric(Plugin):
    """An evaluation metric over generated images and the target's reference images.

    ``columns`` declares every number ``compute`` returns (see :class:`Column`). ``prepare`` runs once before
    the grid starts, so a missing resource (weights) fails before any training; it returns provenance to
    record (e.g. the weights hash). ``compute`` returns ``{column name: number}`` for exactly the declared
    columns.
    """

    columns: ClassVar[tuple[Column, ...]] = ()
    #: False for metrics that score something other than closeness to the reference (copying of the shots,
    #: diversity): ``ganbench.testing.check_metric`` then skips its reference-vs-noise sanity check
    compares_with_reference: ClassVar[bool] = True

    def prepare(self, device: torch.device, cache_dir: Path) -> dict[str, Any]:
        return {}

    def check(self, sizes: EvalSizes) -> None:
        """Raise :class:`GanbenchError` (one line saying what to change) when this metric cannot be computed on
        sets of these sizes, e.g. ``prdc:k=5`` with 2 generated images. The planner calls it for every cell
        before anything trains, dry run or not, so such a grid is refused instead of failing every cell.
        Default: nothing to check."""

    def reference(self, ctx: EvalContext) -> None:
        """Precompute (and cache) what depends on the reference set alone; ``ctx.generated`` is empty.
        The runner calls it once per target before any cell, so cells' evaluation times exclude it."""

    def warm_up(self, device: torch.device, cache_dir: Path) -> None:
        """Load models and run them once, so that no cell's evaluation time pays for it. The runner calls it
        once per process before the first cell and records the time in the run's manifest."""

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        raise NotImplementedError


@dataclass(frozen=True)
class TargetParts:
    """How one evaluation's image sets index a single target dataset, so that each feature space featurizes
    the target once (cached by content) and every set is a slice of it. ``index`` maps a set's name
    (``reference``, ``shots``, ``heldout``, ``val``) to int64 positions in ``images``."""

    images: torch.Tensor  # uint8 (T, C, H, W): every image of the target, in the dataset's order
    key: str  # content hash of ``images``
    index: dict[str, torch.Tensor]


@dataclass
class EvalContext:
    """One evaluation: generated images, the reference set (and, in a cell, the training shots and the target
    images held out from them), and a memo so that every metric of the evaluation shares one feature pass per
    feature space (``ganbench.eval_features(ctx, space, which)``)."""

    generated: torch.Tensor  # uint8 (N, C, H, W)
    reference: torch.Tensor  # uint8 (M, C, H, W)
    reference_key: str  # content hash of the reference images, for caching their statistics
    device: torch.device
    cache_dir: Path
    memo: dict[str, Any] = field(default_factory=dict)
    progress: bool = False  # whether long work (reference features) may draw a progress bar
    shots: torch.Tensor | None = None  # uint8: the images the generator was adapted on (None outside a cell)
    heldout: torch.Tensor | None = None  # uint8: target images that are not shots (real images never trained on)
    #: ``sample(n)``: n generated images from fixed latents (the first ``len(generated)`` are ``generated``),
    #: for metrics that take their own sample count; None where only ``generated`` exists
    sample: Callable[[int], torch.Tensor] | None = None
    seed: int = 0  # for metrics that draw random subsets
    parts: TargetParts | None = None  # set by the runner: the sets above as slices of one target
    timings: dict[str, float] = field(default_factory=dict)  # seconds, e.g. ``features``: spent in feature passes

    def images(self, which: str) -> torch.Tensor:
        """The images of one set by name: ``generated``, ``reference``, ``shots``, ``heldout`` (or ``val``)."""
        if which == "generated":
            return self.generated
        if self.parts is not None and which in self.parts.index:
            return self.parts.images[self.parts.index[which]]
        found = {"reference": self.reference, "shots": self.shots, "heldout": self.heldout}.get(which)
        if found is None:
            raise GanbenchError(f"this evaluation has no '{which}' images (cells have shots and held-out images; "
                                "`ganbench score` has them with --shots DIR)")  # fmt: skip
        return found


# --------------------------------------------------------------------------------------------------
# Augmentations
# --------------------------------------------------------------------------------------------------


class Augmentation(Plugin):
    """A differentiable augmentation applied to every image the discriminator sees, real and generated
    alike (so G is trained through it). A grid axis: every strategy runs with every augmentation."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], (N, C, H, W) -> augmented images of the same shape; draws from torch's RNG."""
        raise NotImplementedError

    def observe(self, real_logits: torch.Tensor) -> None:
        """Called by the training loop at every D step with D's logits on the (augmented) real images, detached:
        ``(N,)``, or ``(N, patches)`` when a strategy judges patches (CDC). What an adaptive augmentation (ADA)
        adjusts its strength from. Keep it on the device (no ``.item()``), so the loop never synchronizes per
        step. The default ignores them."""

    def state_dict(self) -> dict[str, Any]:
        """State that changes during training (an adaptive probability), saved with every checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, when a cell resumes."""


BASE_CLASS: dict[str, type] = {
    "architecture": Architecture,
    "strategy": Strategy,
    "dataset": Dataset,
    "metric": Metric,
    "augmentation": Augmentation,
}
