"""Helpers strategies use to address a network's ordered blocks (``G.blocks``, ``D.blocks``) without
knowing the architecture: freeze the first k, watch their outputs, compare with source weights."""

from __future__ import annotations

import torch
from torch import nn

from ganbench.errors import GanbenchError


def freeze_first(blocks: nn.ModuleList, k: int, net_name: str, option: str) -> None:
    """Freeze ``blocks[:k]``; a clear error when the network has fewer blocks."""
    if k > len(blocks):
        raise GanbenchError(f"{option}={k} but {net_name} has only {len(blocks)} blocks; use {option} <= {len(blocks)}")
    for block in blocks[:k]:
        block.requires_grad_(False)


class BlockOutputs:
    """Records the output of every block on each forward pass (forward hooks; ``remove()`` detaches)."""

    def __init__(self, blocks: nn.ModuleList) -> None:
        self.outputs: list[torch.Tensor | None] = [None] * len(blocks)
        self._handles = [block.register_forward_hook(self._hook(i)) for i, block in enumerate(blocks)]

    def _hook(self, index: int):
        def record(module, inputs, output):
            # blocks that return several tensors (features, skip image, ...) expose their first: the features
            self.outputs[index] = output[0] if isinstance(output, (tuple, list)) else output

        return record

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@torch.no_grad()
def output_shapes(G: nn.Module, modules: nn.ModuleList) -> list[tuple[int, ...] | None]:
    """Per-sample output shape of each of ``modules`` (parts of G), from one forward pass of G in eval mode
    (batch-norm statistics are left untouched); None for a module the pass did not use."""
    watcher = BlockOutputs(modules)
    was_training = G.training
    device = next(G.parameters()).device
    try:
        G.eval()
        G(torch.zeros(2, G.z_dim, device=device))
    finally:
        G.train(was_training)
        watcher.remove()
    return [None if out is None else tuple(out.shape[1:]) for out in watcher.outputs]


def block_output_shapes(G: nn.Module) -> list[tuple[int, ...]]:
    """Per-sample output shape of each of G's blocks."""
    return output_shapes(G, G.blocks)


def source_parameters(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies (on the net's device) of the source values of ``net``'s parameters, by parameter name.
    Copies, so a strategy can never modify the cached checkpoint."""
    params = dict(net.named_parameters())
    missing = [name for name in params if name not in state]
    if missing:
        raise GanbenchError(f"the source checkpoint has no values for {missing[:3]}: adapt before adding modules")
    return {name: state[name].detach().to(p.device, copy=True) for name, p in params.items()}
