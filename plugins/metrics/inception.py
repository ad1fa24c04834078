"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on NVIDIA's Inception features, computed
the clean-fid way ("clean" resizing, clean-fid's own formulas), in float64 on the evaluation device. Every
metric on Inception features shares one feature pass per evaluation."""

from __future__ import annotations

import ganbench
from ganbench import Column, Option, at_least


def two_each_side(metric: str, sizes: ganbench.EvalSizes) -> None:
    """FID and KID estimate a covariance (a kernel mean over pairs): 2 images on each side at least."""
    if sizes.generated < 2 or sizes.reference < 2:
        raise ganbench.GanbenchError(
            f"{metric} needs at least 2 generated and 2 reference images, got {sizes.generated} and {sizes.reference}; "
            "raise --eval-samples, or use fewer shots with --reference heldout"
        )


class FID(ganbench.InceptionMetric):
    """Frechet Inception Distance, clean-fid "clean" mode (lower is better)."""

    name = "fid"
    columns = (Column("fid", lower_is_better=True, label="FID", digits=2, help="Fréchet Inception Distance"),)

    def check(self, sizes):
        two_each_side("FID", sizes)

    def compute(self, ctx):
        return {"fid": ganbench.fid_from_features(self.features(ctx, "generated"), self.features(ctx, "reference"))}


class KID(ganbench.InceptionMetric):
    """Kernel Inception Distance, clean-fid's estimator; the subset size adapts to small sets."""

    name = "kid"
    options = (
        Option("subsets", int, 100, "number of random subsets averaged", check=at_least(1)),
        Option("max_subset_size", int, 1000, "subset size cap (smaller sets use all their images)", check=at_least(2)),
    )
    columns = (
        Column("kid", lower_is_better=True, label="KID", digits=4, help="Kernel Inception Distance"),
        Column("kid_subset_size", lower_is_better=None, label="KID subset", digits=0, help="images per KID subset"),
    )

    def prepare(self, device, cache_dir):
        return {**super().prepare(device, cache_dir), "kid_mode": ganbench.FID_MODE}

    def check(self, sizes):
        two_each_side("KID", sizes)

    def compute(self, ctx):
        gen, ref = self.features(ctx, "generated"), self.features(ctx, "reference")
        cap = self.config["max_subset_size"]
        kid = ganbench.kid_from_features(gen, ref, num_subsets=self.config["subsets"], max_subset_size=cap)
        return {"kid": kid, "kid_subset_size": ganbench.kid_subset_size(len(gen), len(ref), cap)}


@ganbench.hookimpl
def register_metrics(register):
    register(FID)
    register(KID)
