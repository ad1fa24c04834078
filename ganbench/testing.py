"""Checks for plugin authors: run them in your plugin's tests to know it honours ganbench's contracts.

    from ganbench.testing import check_strategy
    def test_my_strategy():
        check_strategy(MyStrategy())

Every check uses tiny sizes (32 px, batch 4, a few steps) and runs in seconds on a CPU. The project's own
test suite runs them over every registered plugin.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganbench.context import CheckpointPolicy
from ganbench.data.prepare import select_classes
from ganbench.errors import GanbenchError
from ganbench.execute.checkpoint import Checkpoints
from ganbench.execute.passes import StepPasses, build_source_generator, check_needs, hooks_on
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.plugin.contracts import (
    Architecture,
    Dataset,
    EvalContext,
    ImageSet,
    Metric,
    Nets,
    SourceCheckpoint,
    StepInfo,
    Strategy,
    StrategyModule,
    param_groups_of,
)
from ganbench.plugin.manager import load_registry
from ganbench.plugin.registry import PluginRef

TINY_ARCHITECTURE = "dcgan:width=4,z_dim=8"


def tiny_architecture() -> Architecture:
    """The built-in DCGAN 4 channels wide (``dcgan:width=4,z_dim=8``): 32 px in well under a second per step."""
    registry = load_registry()
    return registry.create(registry.resolve("architecture", TINY_ARCHITECTURE))


def fake_images(n: int = 16, channels: int = 1, resolution: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 images of soft random blobs (structured enough for a GAN step, cheap to make)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(low, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return (images * 255).round().to(torch.uint8)


def tiny_nets(arch: Architecture | None = None, resolution: int = 32, channels: int = 1, seed: int = 0) -> Nets:
    torch.manual_seed(seed)
    G, D = (arch or tiny_architecture()).build(resolution, channels)
    return Nets(G, D)


def refusal(
    strategy: Strategy, arch: Architecture | None = None, resolution: int = 32, channels: int = 1
) -> str | None:
    """The one line ``strategy.check`` refuses ``arch``'s tiny nets with (a W-space method on DCGAN), or None
    when the strategy applies to them. A refusal that is not one line fails."""
    try:
        strategy.check(tiny_nets(arch, resolution, channels))
    except GanbenchError as exc:
        message = str(exc)
        if not message or "\n" in message:
            raise _failure("check()", strategy, f"a refusal must be one line, got {message!r}") from exc
        return message
    return None


def step_infos(
    strategy: Strategy,
    nets: Nets,
    real: torch.Tensor,
    z: torch.Tensor,
    *,
    step: int = 1,
    source_G: torch.nn.Module | None = None,
) -> tuple[StepInfo, StepInfo]:
    """What ``strategy.discriminator_loss`` and ``generator_loss`` receive at one step of the training loop on
    these nets (real images in [-1, 1], latents ``z``), without training: the loop's own passes, with what the
    strategy's ``needs()`` asks for (``source_G``: the frozen source generator, for ``Needs(source=True)``; see
    ``ganbench.testing.source_generator``). For unit tests of a strategy's loss terms."""
    needs = strategy.needs()
    check_needs(needs, strategy, nets.G, nets.D)
    passes = StepPasses(strategy, needs, nets.G, nets.D, source_G=source_G)
    try:
        fake, kept = passes.generate(z)
        d_fake = passes.discriminate(fake.detach(), "fake", step)
        d_real = passes.discriminate(real, "real", step)
        info = passes.info(step, real, z, fake, kept, d_real, d_fake)
        info.source  # noqa: B018  # run now, while the taps are on
        return info, passes.for_generator(info, passes.discriminate(fake, "fake", step))
    finally:
        passes.remove()


def source_generator(source: SourceCheckpoint, arch: Architecture | None = None, resolution: int = 32,
                     channels: int = 1) -> torch.nn.Module:  # fmt: skip
    """The frozen source G a cell hands the loop for ``Needs(source=True)``."""
    return build_source_generator(arch or tiny_architecture(), source, resolution, channels)


def fake_source(arch: Architecture | None = None, resolution: int = 32, channels: int = 1) -> SourceCheckpoint:
    """A 'pretrained' checkpoint: tiny nets trained for 3 steps on fake images.

    Trained once per process for each architecture (its class, options and provenance), size and torch
    setting that shapes the numbers (CPU threads, default dtype); later calls get copies of the same tensors
    and leave torch's global random generator where the training left it, exactly as a first call does."""
    arch = arch if arch is not None else tiny_architecture()
    key = _fake_source_key(arch, resolution, channels)
    made = _FAKE_SOURCES.get(key) if key is not None else None
    if made is None:
        made = _train_fake_source(arch, resolution, channels)
        if key is not None:
            _FAKE_SOURCES[key] = made
            while len(_FAKE_SOURCES) > _FAKE_SOURCES_KEPT:
                _FAKE_SOURCES.popitem(last=False)
    else:
        _FAKE_SOURCES.move_to_end(key)
        torch.manual_seed(123)  # what tiny_nets did (it seeds every device's generator) ...
        torch.set_rng_state(made[2])  # ... and where the 3 training steps left the CPU generator
    state_g, state_d, _ = made
    return SourceCheckpoint(_copied(state_g), _copied(state_d), key="fake", sha256="fake")


_FAKE_SOURCES: OrderedDict[tuple, tuple[dict, dict, torch.Tensor]] = OrderedDict()  # key -> (G, D, RNG after)
_FAKE_SOURCES_KEPT = 64  # tiny nets: a few MB at most


def _train_fake_source(arch: Architecture, resolution: int, channels: int) -> tuple[dict, dict, torch.Tensor]:
    nets = tiny_nets(arch, resolution, channels, seed=123)
    train_gan(
        nets, Strategy(), fake_images(16, channels, resolution, seed=1), TrainConfig(3, 4, 2e-4, 0), progress=False
    )
    state_g = {k: v.detach().clone() for k, v in nets.G.state_dict().items()}
    state_d = {k: v.detach().clone() for k, v in nets.D.state_dict().items()}
    return state_g, state_d, torch.get_rng_state()


def _fake_source_key(arch: Architecture, resolution: int, channels: int) -> tuple | None:
    """What determines a fake source, or None (never cached) for an architecture without plain options."""
    config = getattr(arch, "config", None)
    if not isinstance(config, dict):
        return None
    try:
        provenance = arch.provenance()
        described = repr(sorted(config.items(), key=lambda kv: str(kv[0]))), repr(sorted(provenance.items()))
    except Exception:  # an architecture whose options or provenance do not describe it: train it every time
        return None
    return type(arch), *described, resolution, channels, torch.get_num_threads(), torch.get_default_dtype()


def _copied(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in state.items()}


def _failure(what: str, plugin: Any, detail: str) -> AssertionError:
    return AssertionError(f"{type(plugin).__name__} ({getattr(plugin, 'name', '?')}): {what}: {detail}")


# --------------------------------------------------------------------------------------------------


def check_architecture(arch: Architecture, resolution: int = 32, channels: int = 1, batch: int = 4) -> dict[str, int]:
    """Shapes, value ranges, exposed blocks, gradient flow and seeded determinism of G and D."""
    nets = tiny_nets(arch, resolution, channels, seed=0)
    G, D = nets.G, nets.D
    again = tiny_nets(arch, resolution, channels, seed=0)  # compared before a forward pass moves BN statistics
    if not _same_state(G, again.G) or not _same_state(D, again.D):
        raise _failure("determinism", arch, "two builds under the same torch seed differ")
    for net, name in ((G, "G"), (D, "D")):
        blocks = getattr(net, "blocks", None)
        if not isinstance(blocks, (nn.ModuleList, nn.Sequential)) or len(blocks) == 0:
            raise _failure("contract", arch, f"{name}.blocks must be a non-empty nn.ModuleList")
    if not isinstance(getattr(D, "head", None), nn.Module):
        raise _failure("contract", arch, "D.head (the output layer) must be an nn.Module")
    if not isinstance(getattr(G, "z_dim", None), int) or G.z_dim < 1:
        raise _failure("contract", arch, "G.z_dim must be a positive int")
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0))
    images = G(z)
    if tuple(images.shape) != (batch, channels, resolution, resolution):
        raise _failure(
            "G output shape", arch, f"expected {(batch, channels, resolution, resolution)}, got {tuple(images.shape)}"
        )
    if not torch.isfinite(images).all() or images.min() < -1 - 1e-5 or images.max() > 1 + 1e-5:
        raise _failure("G output range", arch, "images must be finite and within [-1, 1]")
    logits = D(images)
    if tuple(logits.shape) != (batch,):
        raise _failure("D output shape", arch, f"expected ({batch},), got {tuple(logits.shape)}")
    logits.sum().backward()
    if not all(p.grad is None or torch.isfinite(p.grad).all() for p in G.parameters()):
        raise _failure("gradients", arch, "non-finite gradient reached G through D")
    if not any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters()):
        raise _failure("gradients", arch, "no gradient reached G's parameters through D")
    return {"params_g": sum(p.numel() for p in G.parameters()), "params_d": sum(p.numel() for p in D.parameters())}


def check_strategy(strategy: Strategy, arch: Architecture | None = None, steps: int = 3) -> dict[str, int]:
    """Adapts tiny nets, trains a few steps and checks: finite losses; frozen parameters unchanged and
    trainable ones moved; optimizer groups cover exactly the trainable parameters; the source checkpoint
    is never modified; the same seed gives the same result; the strategy's state round-trips (what
    ``state_dict()`` returns after some steps survives a checkpoint and, loaded into a fresh strategy after
    ``adapt``, gives the same state back, and a cell resumed from that checkpoint ends exactly as an
    uninterrupted one, nets and strategy modules alike). Also that ``adapt`` leaves no forward hooks on the nets
    (the loop's EMA copy and exports would not carry them: ask for features with ``needs()``) and that its
    modules hold none of G's or D's parameters. Returns trainable/total parameter counts (modules included)."""
    arch = arch or tiny_architecture()
    blank = _unused_copy(strategy)  # fresh strategy objects of the same configuration are copies of this one
    source = fake_source(arch) if strategy.uses_source else None
    pristine = copy.deepcopy(source)
    data = fake_images(16, seed=2)
    train = partial(_train, arch=arch, source=source, data=data)

    def adapt_and_train(seed: int) -> tuple[Nets, dict[str, torch.Tensor], dict[str, Any]]:
        nets = tiny_nets(arch, seed=seed)
        nets = strategy.adapt(nets, source)
        _check_adapted(strategy, nets)
        before = {f"{n}.{k}": v.detach().clone() for n, net in _trained(strategy, nets).items()
                  for k, v in net.named_parameters()}  # fmt: skip
        _check_groups(strategy, nets)
        train(strategy, nets, TrainConfig(steps, 4, 1e-3, seed))
        return nets, before, copy.deepcopy(strategy.state_dict())

    nets, before, _ = adapt_and_train(seed=0)
    trainable = total = 0
    moved = 0
    for net_name, net in _trained(strategy, nets).items():
        for key, param in net.named_parameters():
            total += param.numel()
            changed = not torch.equal(before[f"{net_name}.{key}"], param.detach())
            if param.requires_grad:
                trainable += param.numel()
                moved += changed
            elif changed:
                raise _failure(
                    "freezing", strategy, f"{net_name}.{key} has requires_grad=False but changed in training"
                )
    if trainable == 0:
        raise _failure("trainable parameters", strategy, "nothing trains after adapt()")
    if moved == 0:
        raise _failure("training", strategy, "no trainable parameter changed after training")
    if source is not None and not (
        _same_tensors(source.generator, pristine.generator)
        and _same_tensors(source.discriminator, pristine.discriminator)
    ):
        raise _failure("source checkpoint", strategy, "adapt() or training modified the source checkpoint's tensors")
    again, _, final_state = adapt_and_train(seed=0)
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(5))
    nets.G.eval(), again.G.eval()
    with torch.no_grad():
        if not torch.equal(nets.G(z), again.G(z)):
            raise _failure("determinism", strategy, "the same seed gave different generators")
    fresh, build = (lambda: copy.deepcopy(blank)), (lambda: tiny_nets(arch, seed=0))
    _check_state_round_trip(strategy, fresh, build, source, train, steps, _trained(strategy, again), final_state)
    return {"trainable": trainable, "total": total}


def _train(strategy: Strategy, nets: Nets, config: TrainConfig, *, arch: Architecture, source: SourceCheckpoint | None,
           data: torch.Tensor, **options: Any) -> Any:  # fmt: skip
    """``train_gan`` as a cell calls it: with the frozen source G when the strategy asks for it."""
    source_G = None
    if strategy.needs().source:
        if source is None:
            raise _failure("needs()", strategy, "asks for the source generator but uses no source (uses_source=False)")
        source_G = build_source_generator(arch, source, data.shape[-1], data.shape[1])
    return train_gan(nets, strategy, data, config, progress=False, source_G=source_G, **options)


def _trained(strategy: Strategy, nets: Nets) -> dict[str, torch.nn.Module]:
    """G, D and the strategy's modules, by name (``module.NAME`` for modules)."""
    modules = {f"module.{name}": m.module for name, m in strategy.modules().items()}
    return {**nets.modules(), **modules}


def _check_adapted(strategy: Strategy, nets: Nets) -> None:
    for name, net in nets.modules().items():
        if hooks_on(net):
            raise _failure(
                "hooks", strategy, f"adapt() left {hooks_on(net)} forward hook(s) on {name}: the EMA copy the loop "
                "evaluates and exported models do not carry hooks; ask the loop for block outputs with needs() "
                "(they arrive in StepInfo), or change the structure with modules",
            )  # fmt: skip
    try:
        modules = strategy.modules()
    except Exception as exc:
        raise _failure("modules()", strategy, f"raised {type(exc).__name__}: {exc}") from exc
    owned = {id(p) for net in nets.modules().values() for p in net.parameters()}
    for name, module in modules.items():
        if not isinstance(module, StrategyModule):
            raise _failure(
                "modules()", strategy, f"{name!r} must be a ganbench.StrategyModule, got {type(module).__name__}"
            )
        if any(id(p) in owned for p in module.module.parameters()):
            raise _failure("modules()", strategy, f"module {name!r} holds parameters of G or D: they would be "
                           "optimised twice; a module holds only what the strategy adds")  # fmt: skip


def _check_state_round_trip(
    strategy: Strategy,
    fresh: Callable[[], Strategy],
    build: Callable[[], Nets],
    source: SourceCheckpoint | None,
    train: Callable[..., Any],
    steps: int,
    uninterrupted: dict[str, torch.nn.Module],
    final_state: dict[str, Any],
) -> None:
    """A cell checkpointed after ``cut`` steps and resumed as the runner resumes one (a fresh strategy object,
    ``adapt`` on fresh nets, then the checkpoint: nets, optimizers, ``load_state_dict``, random streams) must
    give back the saved state and end exactly as ``uninterrupted`` (``steps`` steps from the same seed, which
    ended in the strategy state ``final_state``)."""
    cut = max(1, steps // 2)
    with tempfile.TemporaryDirectory(prefix="ganbench-check-strategy-") as folder:
        path = Path(folder) / "cell.pt"

        def checkpoints() -> Checkpoints:
            policy = CheckpointPolicy(every_steps=0, every_seconds=0)  # at the run's last step only
            return Checkpoints(path, policy, {"check": "strategy state"}, progress=False)

        first = fresh()
        train(first, first.adapt(build(), source), TrainConfig(cut, 4, 1e-3, 0), checkpoints=checkpoints())
        saved = first.state_dict()
        try:
            stored = torch.load(path, weights_only=True, map_location="cpu")["strategy"]
        except Exception as exc:
            raise _failure(
                "state_dict()", strategy, f"a checkpoint holding its state cannot be loaded back "
                f"({type(exc).__name__}: {exc}); the state must be tensors and plain data (dicts, lists, numbers)"
            ) from exc  # fmt: skip
        restored = fresh()
        restored.adapt(build(), source)
        if stored:  # as the runner: an empty state is never handed to load_state_dict()
            restored.load_state_dict(stored)
        difference = _data_difference(saved, restored.state_dict())
        if difference is not None:
            raise _failure(
                "state round trip", strategy, f"state_dict() after {cut} training step(s), saved in a checkpoint and "
                f"loaded with load_state_dict() into a fresh strategy after adapt(), gives back another state: "
                f"{difference}",
            )  # fmt: skip
        if cut >= steps:
            return
        resumed = fresh()
        nets = resumed.adapt(build(), source)
        try:
            result = train(resumed, nets, TrainConfig(steps, 4, 1e-3, 0), checkpoints=checkpoints())
        except Exception as exc:  # e.g. the optimizers' groups differ: other parameters train after the resume
            raise _failure(
                "state round trip", strategy, f"a run resumed after step {cut} of {steps} failed ({type(exc).__name__}: "
                f"{exc}): after a resume, the same parameters must train as before it (what probe() decided belongs "
                "in state_dict(); load_state_dict() must re-apply it)",
            ) from exc  # fmt: skip
        if result.resumed.resumes != 1:
            raise _failure("state round trip", strategy, f"the checkpoint after step {cut} could not be resumed from")
        for name, net in _trained(resumed, nets).items():
            if name not in uninterrupted or not _same_state(net, uninterrupted[name]):
                raise _failure(
                    "state round trip", strategy, f"a run resumed after step {cut} of {steps} ends with another {name} "
                    "than the uninterrupted run: state that changes in training is missing from state_dict() (or "
                    "load_state_dict() does not restore it)",
                )  # fmt: skip
        difference = _data_difference(final_state, resumed.state_dict())
        if difference is not None:
            raise _failure(
                "state round trip", strategy, f"a run resumed after step {cut} of {steps} ends in another strategy "
                f"state than the uninterrupted run: {difference}",
            )  # fmt: skip


def _data_difference(a: Any, b: Any, where: str = "state") -> str | None:
    """Where two states (dicts, lists, tensors, plain values) first differ, or None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where} has keys {sorted(map(str, a))}, then {sorted(map(str, b))}"
        return next((d for k in a if (d := _data_difference(a[k], b[k], f"{where}[{k!r}]")) is not None), None)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where} has {len(a)} items, then {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := _data_difference(x, y, f"{where}[{i}]"))), None)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where} is a {a.dtype} tensor {tuple(a.shape)}, then a {b.dtype} tensor {tuple(b.shape)}"
        return None if torch.equal(a.cpu(), b.cpu()) else f"{where} holds other values"
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return f"{where} is {a!r}, then {b!r}"
    try:
        same = bool(a == b) or (isinstance(a, float) and a != a and b != b)  # NaN equals NaN here
    except Exception:  # not comparable (an array, an object): not plain data
        same = False
    return None if same else f"{where} is {a!r}, then {b!r}"


def _unused_copy(strategy: Strategy) -> Strategy:
    """A copy of ``strategy`` as it is now; a new object of its class and options if it cannot be copied."""
    try:
        return copy.deepcopy(strategy)
    except Exception:
        return type(strategy)(**getattr(strategy, "config", {}))


def _check_groups(strategy: Strategy, nets: Nets) -> None:
    for name, net in nets.modules().items():
        grouped = [p for g in param_groups_of(strategy, net, name) for p in g["params"]]
        wanted = [p for p in net.parameters() if p.requires_grad]
        if {id(p) for p in grouped} != {id(p) for p in wanted} or len(grouped) != len(wanted):
            raise _failure("param_groups", strategy, f"{name}'s groups must hold each trainable parameter once")


def check_dataset(dataset: Dataset, max_images: int | None = None) -> dict[str, int]:
    """``load()`` returns uint8 N x C x H x W (C of 1 or 3) with matching int64 labels when the dataset has
    labels; loading twice gives the same content; the core's class selection works on it."""
    first = dataset.load()
    if not isinstance(first, ImageSet):
        raise _failure("load()", dataset, f"must return ganbench.ImageSet, got {type(first).__name__}")
    if first.images.shape[1] not in (1, 3) or len(first) == 0:
        raise _failure(
            "images", dataset, f"need at least one 1- or 3-channel image, got shape {tuple(first.images.shape)}"
        )
    if dataset.has_labels:
        if first.labels is None or first.labels.dtype != torch.int64:
            raise _failure("labels", dataset, "has_labels is True, so load() must return int64 labels")
        some = int(first.labels[0])
        ref = PluginRef("dataset", dataset.name, (("classes", (some,)),))
        picked = select_classes(first, ref)
        if not (picked.labels == some).all() or len(picked) != int((first.labels == some).sum()):
            raise _failure("class selection", dataset, "selecting one class returned other images")
    hint = dataset.size_hint()
    if hint is not None and hint != len(first):
        raise _failure("size_hint()", dataset, f"says {hint} but load() returned {len(first)} images")
    second = dataset.load()
    if not torch.equal(first.images, second.images):
        raise _failure("determinism", dataset, "two loads returned different images")
    return {"images": len(first), "channels": first.images.shape[1]}


def check_metric(metric: Metric, cache_dir: str | Path, device: str = "cpu", n: int = 12) -> dict[str, float]:
    """``compute`` returns exactly the declared columns, finite, deterministically, and (for metrics that
    compare with the reference) its first scored column rates the reference set against itself better than
    against unrelated noise, in its declared direction. The context has shots and held-out images too."""
    dev = torch.device(device)
    metric.prepare(dev, Path(cache_dir))
    reference = fake_images(n, 1, 32, seed=10)
    noise = torch.randint(0, 256, (n, 1, 32, 32), generator=torch.Generator().manual_seed(11), dtype=torch.uint8)

    shots, heldout = fake_images(4, 1, 32, seed=12), fake_images(n, 1, 32, seed=13)

    def score(generated: torch.Tensor) -> dict[str, float]:
        sets = {"shots": shots, "heldout": heldout, "seed": 0, "sample": lambda k: generated[:k]}
        ctx = EvalContext(generated, reference, "check-metric-reference", dev, Path(cache_dir), **sets)
        metric.reference(EvalContext(reference[:0], reference, "check-metric-reference", dev, Path(cache_dir), **sets))
        return metric.compute(ctx)

    same, other, again = score(reference), score(noise), score(noise)
    declared = [c.name for c in metric.columns]
    if set(other) != set(declared):
        raise _failure("columns", metric, f"compute() returned {sorted(other)} but the metric declares {declared}")
    if not all(isinstance(v, (int, float)) and v == v and abs(v) != float("inf") for v in other.values()):
        raise _failure("compute()", metric, f"must return finite numbers, got {other}")
    if other != again:
        raise _failure("determinism", metric, f"{other} then {again} for the same images")
    headline = next((c for c in metric.columns if c.lower_is_better is not None), None)
    if headline is not None and metric.compares_with_reference:
        key = headline.name
        better = same[key] < other[key] if headline.lower_is_better else same[key] > other[key]
        if not better:
            raise _failure(
                "sanity", metric, f"{key}: reference vs itself ({same[key]}) is not better than vs noise ({other[key]})"
            )
    return other


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    return _same_tensors(a.state_dict(), b.state_dict())


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@contextlib.contextmanager
def cleanfid_on_weights(weights_path: str | Path, folder: str | Path) -> Iterator[None]:
    """Inside the block, clean-fid's own Inception wrapper (``InceptionV3W``: its class, normalization and
    all) loads the network at ``weights_path`` instead of downloading NVIDIA's file: the network is written to
    ``folder`` in the layout clean-fid expects (a ``.layers`` submodule). For comparisons with clean-fid on the
    same weights (tests, benchmarks)."""
    import cleanfid.features

    module = torch.jit.load(str(weights_path)).eval()
    net = getattr(module, "layers", module)

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = net

        def forward(self, x):
            return self.layers(x)

    torch.jit.script(Wrapped()).save(str(Path(folder) / "inception-2015-12-05.pt"))
    original = cleanfid.features.InceptionV3W

    def from_folder(path, download=True, resize_inside=False):
        return original(str(folder), download=False, resize_inside=resize_inside)

    cleanfid.features.InceptionV3W = from_folder
    try:
        yield
    finally:
        cleanfid.features.InceptionV3W = original
