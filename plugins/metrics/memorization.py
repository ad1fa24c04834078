"""Did the generator copy its training shots? Two scores, each in Inception feature space and in pixel space,
with the cell's training shots as the training set:

- ``authenticity`` (Alaa et al. 2022, "How faithful is your synthetic data?"): the fraction of generated images
  farther from their nearest shot than that shot is from its own nearest other shot. A copy of a shot scores 0.
- ``copy_ratio``: the mean distance from generated images to their nearest shot, over the mean distance from
  held-out target images (real images the generator never saw) to their nearest shot. Below 1, the generated
  images are closer to the shots than unseen real images are: a sign of memorization.

Both are "higher is better" in the sense of "less copying"; neither says anything about image quality.
"""

from __future__ import annotations

import ganbench
from ganbench import Column


class Memorization(ganbench.InceptionMetric):
    """Authenticity and copy ratio against the training shots, on Inception features and on pixels."""

    name = "memorization"
    compares_with_reference = False  # it compares with the shots
    columns = (
        Column("authenticity", lower_is_better=False, label="Authenticity", digits=3,
               help="fraction of generated images farther from their nearest shot than it is from the next shot"),
        Column("copy_ratio", lower_is_better=False, label="Copy ratio", digits=3,
               help="distance to the nearest shot, generated over held-out real images (< 1: copying)"),
        Column("authenticity_px", lower_is_better=False, label="Authenticity (px)", digits=3,
               help="authenticity in pixel space"),
        Column("copy_ratio_px", lower_is_better=False, label="Copy ratio (px)", digits=3,
               help="copy ratio in pixel space"),
    )  # fmt: skip

    def check(self, sizes):
        if sizes.shots < 2:
            raise ganbench.GanbenchError(
                f"memorization needs at least 2 shots (authenticity compares each with its nearest other shot), got "
                f"{sizes.shots}; use --shots 2 or more, or leave memorization out of --metrics"
            )
        if sizes.heldout < 1:
            raise ganbench.GanbenchError(
                "memorization needs at least 1 target image that is neither a shot nor a validation image (the copy "
                "ratio compares with them), and there are none; use fewer shots (or a smaller --val-samples), or "
                "leave memorization out of --metrics"
            )

    def compute(self, ctx):
        values = {}
        for space, suffix in ((ganbench.InceptionSpace(cache_dir=ctx.cache_dir), ""), (ganbench.PixelSpace(), "_px")):
            shots = ganbench.eval_features(ctx, space, "shots")
            generated = ganbench.eval_features(ctx, space, "generated")
            if shots.shape[1] != generated.shape[1]:
                raise ganbench.GanbenchError(
                    "memorization compares pixels, so the shots and generated images must have the same size "
                    f"(got {tuple(ctx.images('shots').shape[1:])} and {tuple(ctx.generated.shape[1:])})"
                )
            heldout = ganbench.eval_features(ctx, space, "heldout")
            values[f"authenticity{suffix}"] = ganbench.authenticity(shots, generated)
            values[f"copy_ratio{suffix}"] = ganbench.copy_ratio(shots, generated, heldout)
        return values


@ganbench.hookimpl
def register_metrics(register):
    register(Memorization)
