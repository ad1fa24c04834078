"""The training loop's passes through a strategy's eyes: which block outputs it keeps on which pass, the
transforms a strategy applies to D's features and G's W latents, and copies of G without anyone's hooks.

Hooks are the loop's own, put on for the length of training and active only on the passes the loop marks
(``with tap.marked("real") as features: D(x)``), so what a strategy reads in ``StepInfo`` is what one named pass
computed, whichever method reads it and whatever ran in between (evaluation, a strategy's own forward passes).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.plugin.contracts import Architecture, DPass, GPass, Needs, SourceCheckpoint, StepInfo, Strategy


class BlockTap:
    """Forward hooks on some of one net's blocks: ``keep`` blocks' outputs are collected on marked passes;
    ``change`` blocks' outputs are replaced by ``transform(block, output, batch)`` on marked passes (blocks that
    return tuples: their first element, the features)."""

    def __init__(
        self,
        blocks: nn.ModuleList,
        keep: tuple[int, ...] = (),
        change: tuple[int, ...] = (),
        transform: Callable[[int, torch.Tensor, str], torch.Tensor] | None = None,
    ) -> None:
        self._slot: dict[int, torch.Tensor] | None = None
        self._batch = ""
        self._transform = transform
        wanted = sorted({*keep, *change})
        self._handles = [blocks[i].register_forward_hook(self._hook(i, i in keep, i in change)) for i in wanted]

    def _hook(self, index: int, keep: bool, change: bool):
        def hook(module, inputs, output):
            if self._slot is None:  # a pass the loop did not mark: evaluation, a strategy's own call
                return None
            first = output[0] if isinstance(output, (tuple, list)) else output
            if change and self._transform is not None:
                first = self._transform(index, first, self._batch)
                output = (first, *output[1:]) if isinstance(output, (tuple, list)) else first
            if keep:
                self._slot[index] = first
            return output if change else None

        return hook

    @contextmanager
    def marked(self, batch: str) -> Iterator[dict[int, torch.Tensor]]:
        """Collect (and transform) on the passes run inside; yields the dict the outputs land in."""
        outer = self._slot, self._batch
        self._slot, self._batch = {}, batch
        try:
            yield self._slot
        finally:
            self._slot, self._batch = outer

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def attached(self) -> bool:
        return bool(self._handles)


@contextmanager
def marked(tap: BlockTap | None, batch: str) -> Iterator[dict[int, torch.Tensor]]:
    """``tap.marked(batch)``, or an empty dict when there is no tap (the strategy asked for nothing)."""
    if tap is None:
        yield {}
    else:
        with tap.marked(batch) as kept:
            yield kept


class StepPasses:
    """The passes one training runs, as a strategy sees them: G on the step's latents, D on the real and the fake
    batch, the frozen source G. Puts the loop's taps on the nets (after the EMA copy is made) and takes them off
    in :meth:`remove`; ``G_fwd`` / ``D_fwd`` are the (possibly compiled) forwards of ``G`` / ``D``."""

    def __init__(
        self,
        strategy: Strategy,
        needs: Needs,
        G: nn.Module,
        D: nn.Module,
        *,
        G_fwd: nn.Module | None = None,
        D_fwd: nn.Module | None = None,
        source_G: nn.Module | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        autocast: Callable[[], object] = nullcontext,
    ) -> None:
        self.strategy, self.needs, self.G, self.D, self.source_G = strategy, needs, G, D, source_G
        self.G_fwd, self.D_fwd = G_fwd or G, D_fwd or D
        self.augment = augment or (lambda x: x)
        self.autocast = autocast
        changes_d = bool(needs.d_features or needs.transform_d)
        self.d_tap = (
            BlockTap(D.blocks, needs.d_features, needs.transform_d, strategy.transform_d_features)
            if changes_d
            else None
        )
        self.g_tap = BlockTap(G.blocks, needs.g_features) if needs.g_features else None
        wants_source = needs.source and needs.g_features and source_G is not None
        self.source_tap = BlockTap(source_G.blocks, needs.g_features) if wants_source else None
        self.judges = type(strategy).discriminator_logits is not Strategy.discriminator_logits

    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The step's fake batch ``G(z)`` and the kept G block outputs."""
        with self.autocast(), marked(self.g_tap, "fake") as kept:
            fake = self.G_fwd(z).float()
        return fake, kept

    def discriminate(self, images: torch.Tensor, batch: str, step: int, eager: bool = False) -> DPass:
        """D on ``images`` (augmented) as the loss sees it; call inside ``autocast()``. ``eager``: D itself, not
        its compiled forward (R1's double backward)."""
        tap, temporary = self.d_tap, None
        if tap is not None and not tap.attached:  # after training (a unit test's StepInfo): tap this call alone
            tap = temporary = BlockTap(self.D.blocks, self.needs.d_features, self.needs.transform_d,
                                       self.strategy.transform_d_features)  # fmt: skip
        try:
            with marked(tap, batch) as kept:
                logits = (self.D if eager else self.D_fwd)(self.augment(images)).float()
        finally:
            if temporary is not None:
                temporary.remove()
        passed = DPass(logits, kept)
        if self.judges:
            passed = DPass(self.strategy.discriminator_logits(passed, step).float(), kept, logits)
        return passed

    def source(self, z: torch.Tensor) -> Callable[[], GPass]:
        """The source G's pass on ``z``, run (without gradients) at the first call and kept."""
        made: list[GPass] = []

        def run() -> GPass:
            if not made:
                with torch.no_grad(), self.autocast(), marked(self.source_tap, "fake") as kept:
                    images = self.source_G(z).float()
                made.append(GPass(images, kept))
            return made[0]

        return run

    def info(
        self, step: int, real: torch.Tensor, z: torch.Tensor, fake: torch.Tensor, g: dict[int, torch.Tensor],
        d_real: DPass, d_fake: DPass,
    ) -> StepInfo:  # fmt: skip
        """What ``discriminator_loss`` gets at this step."""

        def discriminate(images: torch.Tensor, batch: str = "fake") -> DPass:
            with self.autocast():
                return self.discriminate(images, batch, step)

        source = self.source(z) if self.needs.source and self.source_G is not None else None
        return StepInfo(step, real, z, fake, d_real=d_real, d_fake=d_fake, g=g, phase="d", _source=source,
                        _discriminate=discriminate)  # fmt: skip

    @staticmethod
    def for_generator(info: StepInfo, d_fake: DPass) -> StepInfo:
        """What ``generator_loss`` gets: the G step's pass of D on the fake batch, the D step's real pass detached."""
        return replace(info, d_fake=d_fake, d_real=info.d_real.detached() if info.d_real else None, phase="g")

    def remove(self) -> None:
        for tap in (self.d_tap, self.g_tap, self.source_tap):
            if tap is not None:
                tap.remove()


def transform_w_hook(G: nn.Module, strategy: Strategy) -> torch.utils.hooks.RemovableHandle:
    """Puts ``strategy.transform_w`` on the output of ``G.mapping`` (every pass of this G)."""

    def hook(module, inputs, output):
        return strategy.transform_w(output)

    return G.mapping.register_forward_hook(hook)


def transform_styles_hooks(G: nn.Module, strategy: Strategy) -> list[torch.utils.hooks.RemovableHandle]:
    """Puts ``strategy.transform_style_input(k, w)`` on the input of every ``G.styles[k]`` (every pass of this G)."""

    def hook(index: int):
        def pre(module, args):
            return (strategy.transform_style_input(index, args[0]), *args[1:])

        return pre

    return [style.register_forward_pre_hook(hook(k)) for k, style in enumerate(G.styles)]


def check_needs(needs: Needs, strategy: Strategy, G: nn.Module, D: nn.Module) -> None:
    """One line when a strategy asks for blocks the nets do not have or for a W space G lacks."""
    name = getattr(strategy, "name", type(strategy).__name__)
    for which, net in (("D", D), ("G", G)):
        for index in needs.blocks_wanted()[which]:
            if not 0 <= index < len(net.blocks):
                raise GanbenchError(
                    f"strategy {name} asks for {which} block {index}, but this {which} has {len(net.blocks)} blocks "
                    f"(0-{len(net.blocks) - 1}); choose another block in its options or another architecture"
                )
    if needs.transform_styles and not isinstance(getattr(G, "styles", None), nn.ModuleList):
        raise GanbenchError(
            f"strategy {name} works on the W each style layer receives, but this generator has no style layers "
            "(G.styles); use it with stylegan2 or stylegan2-lite"
        )
    if needs.transform_w and not isinstance(getattr(G, "mapping", None), nn.Module):
        raise GanbenchError(
            f"strategy {name} works in StyleGAN's W space, but this generator has no mapping network (G.mapping); "
            "use it with stylegan2 or stylegan2-lite"
        )


def _modules_of(net: nn.Module) -> list[nn.Module]:
    """Every module of ``net``, with those its unregistered views (``blocks``, ``styles``, ``modulated``) hold."""
    found = {id(m): m for m in net.modules()}
    for view in ("blocks", "styles", "modulated"):
        held = net.__dict__.get(view)
        if isinstance(held, nn.Module):
            found.update({id(m): m for m in held.modules()})
    return list(found.values())


def hooks_on(net: nn.Module) -> int:
    """How many forward (pre-)hooks ``net`` and its views carry."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in _modules_of(net))


def copy_without_hooks(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` that carries no forward hooks (a strategy's or the loop's): the EMA generator."""
    twin = copy.deepcopy(net)
    for module in _modules_of(twin):
        for table in ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
                      "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs"):  # fmt: skip
            held = getattr(module, table, None)
            if held is not None:
                held.clear()
    return twin


def build_source_generator(
    arch: Architecture, source: SourceCheckpoint, resolution: int, channels: int, device: torch.device | str = "cpu"
) -> nn.Module:
    """The frozen source G that ``Needs(source=True)`` runs: the architecture's G with the source weights, built
    on a fork of torch's random stream (building draws initial weights the source's replace, and must not move
    the cell's stream), in training mode as the adapted G trains (batch statistics, fresh noise)."""
    with torch.random.fork_rng(devices=[]):
        G, _ = arch.build(resolution, channels)
    G.load_state_dict(source.generator)
    return G.to(device).requires_grad_(False).train()
