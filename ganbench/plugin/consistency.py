"""Pieces the CDC line of methods shares (CDC, MaskDis and their successors): the distributions of pairwise
feature similarities and the cross-domain consistency term over them, and the D block a patch-level head reads.
Public API (``ganbench.row_consistency`` ...), so built-in and third-party strategies use one implementation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganbench.errors import GanbenchError
from ganbench.plugin.blocks import BlockOutputs
from ganbench.plugin.contracts import Nets


def similarity_distributions(features: torch.Tensor) -> torch.Tensor:
    """(N, ...) features -> (N, N-1) softmax over each sample's cosine similarity to the others."""
    flat = F.normalize(features.flatten(1), dim=1)
    sim = flat @ flat.T
    n = sim.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    return F.softmax(sim[off_diagonal].view(n, n - 1), dim=1)


def row_consistency(
    source: list[torch.Tensor], adapted: list[torch.Tensor], layer_of_row: list[int], reduction: str = "mean"
) -> torch.Tensor:
    """The authors' form of the consistency term: row i's distribution (softmax over its cosine similarity to
    every other sample) is taken in layer ``layer_of_row[i]``, for the source and the adapted features alike,
    and ``KL(source || adapted)`` is averaged over all ``N (N - 1)`` entries (``reduction="mean"``, as torch's
    ``KLDivLoss()`` in their code) or summed per row and averaged over rows (``"batchmean"``)."""
    rows_s, rows_a = [], []
    for i, layer in enumerate(layer_of_row):
        rows_s.append(similarity_distributions(source[layer])[i])
        rows_a.append(similarity_distributions(adapted[layer])[i])
    target, log_adapted = torch.stack(rows_s), torch.stack(rows_a).log()
    total = F.kl_div(log_adapted, target, reduction="sum")  # torch's own "mean" is deprecated: divide here
    return total / (target.numel() if reduction == "mean" else len(target))


@torch.no_grad()
def block_feature_shapes(nets: Nets) -> tuple[list[tuple[int, ...] | None], int]:
    """Per-sample output shape of each D block on two generated images (both nets in eval mode), and the
    images' side in pixels."""
    modes = nets.G.training, nets.D.training
    watcher = BlockOutputs(nets.D.blocks)
    try:
        nets.G.eval(), nets.D.eval()
        device = next(nets.G.parameters()).device
        images = nets.G(torch.zeros(2, nets.G.z_dim, device=device))
        nets.D(images)
        return [None if out is None else tuple(out.shape[1:]) for out in watcher.outputs], images.shape[-1]
    finally:
        watcher.remove()
        nets.G.train(modes[0]), nets.D.train(modes[1])


def patch_block(
    shapes: list[tuple[int, ...] | None], side: int, chosen: int | None, strategy: str, instead: str = ""
) -> int:
    """The D block a patch head reads (CDC and its successors): ``chosen``, or the first whose map is at most
    ``side / 8`` wide. ``strategy`` names the option in the refusal; ``instead`` is what else the user can set."""
    alternative = f" or set {instead}" if instead else ""
    maps = [i for i, shape in enumerate(shapes) if shape is not None and len(shape) == 3]
    if chosen is not None:
        if chosen not in maps:
            raise GanbenchError(
                f"{strategy}:patch_block={chosen}: D block {chosen} does not output a feature map; choose one of "
                f"{', '.join(map(str, maps)) or '(none)'}{alternative}"
            )
        return chosen
    if not maps:
        raise GanbenchError(
            f"{strategy}: no block of this D outputs a feature map for the patch head"
            + (f"; use {instead}" if instead else "")
        )
    small = [i for i in maps if shapes[i][-1] <= max(side // 8, 1)]
    return small[0] if small else maps[-1]
