"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) of the generated
images against the reference, on the Inception features FID uses (one feature pass for all of them).

Each real (reference) feature gets a radius: the distance to its k-th nearest other real feature. Precision is
the fraction of generated images inside some real radius (fidelity), recall the fraction of real images inside
some generated radius (diversity); density counts, per generated image, how many real radii contain it (over
k, so that it is about 1 for matching distributions); coverage is the fraction of real images whose radius
contains a generated image. The formulas are those of the reference implementation (the ``prdc`` package),
which the tests hold ours to.
"""

from __future__ import annotations

import ganbench
from ganbench import Column, Option, at_least


class PRDC(ganbench.InceptionMetric):
    """Precision, recall, density and coverage on Inception features (higher is better)."""

    name = "prdc"
    options = (Option("k", int, 5, "nearest neighbours that set each feature's radius", check=at_least(1)),)
    columns = (
        Column("precision", lower_is_better=False, label="Precision", digits=3,
               help="fraction of generated images within the real images' k-NN radii (fidelity)"),
        Column("recall", lower_is_better=False, label="Recall", digits=3,
               help="fraction of real images within the generated images' k-NN radii (diversity)"),
        Column("density", lower_is_better=False, label="Density", digits=3,
               help="real k-NN radii containing each generated image, over k (about 1 when matched)"),
        Column("coverage", lower_is_better=False, label="Coverage", digits=3,
               help="fraction of real images whose k-NN radius contains a generated image"),
    )  # fmt: skip

    def check(self, sizes):
        k = self.config["k"]
        if sizes.generated <= k or sizes.reference <= k:
            raise ganbench.GanbenchError(
                f"prdc:k={k} needs more than {k} generated and more than {k} reference images per evaluation (each "
                f"image's radius is its k-th nearest other one), got {sizes.generated} generated and "
                f"{sizes.reference} reference; raise --eval-samples or use prdc:k={max(min(sizes.generated, sizes.reference) - 1, 1)}"
            )

    def compute(self, ctx):
        real, fake = self.features(ctx, "reference"), self.features(ctx, "generated")
        k = self.config["k"]
        # the reference's radii depend on it alone: "reference:" memo entries outlive one evaluation of a cell
        key = f"reference:prdc-radii:{k}:{ctx.reference_key}"
        if key not in ctx.memo:
            ctx.memo[key] = ganbench.knn_radii(real, k)
        return ganbench.prdc(real, fake, k=k, real_radii=ctx.memo[key])


@ganbench.hookimpl
def register_metrics(register):
    register(PRDC)
