"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on NVIDIA's Inception features, computed
the clean-fid way ("clean" resizing, clean-fid's own formulas). Both share one feature pass."""

from __future__ import annotations

import ganbench
from ganbench import Column, Option, at_least


class FID(ganbench.Metric):
    """Frechet Inception Distance, clean-fid "clean" mode (lower is better)."""

    name = "fid"
    columns = (Column("fid", lower_is_better=True, label="FID", digits=2, help="Fréchet Inception Distance"),)

    def prepare(self, device, cache_dir):
        return ganbench.resolve_inception_weights(cache_dir).provenance()

    def reference(self, ctx):
        weights = ganbench.resolve_inception_weights(ctx.cache_dir)
        ganbench.reference_features(ctx.reference, ctx.reference_key, weights, ctx.device, ctx.cache_dir, ctx.progress)

    def compute(self, ctx):
        gen, ref = ganbench.inception_features(ctx)
        return {"fid": ganbench.fid_from_features(gen, ref)}


class KID(ganbench.Metric):
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
        return {**ganbench.resolve_inception_weights(cache_dir).provenance(), "kid_mode": ganbench.FID_MODE}

    reference = FID.reference

    def compute(self, ctx):
        gen, ref = ganbench.inception_features(ctx)
        cap = self.config["max_subset_size"]
        kid = ganbench.kid_from_features(gen, ref, num_subsets=self.config["subsets"], max_subset_size=cap)
        return {"kid": kid, "kid_subset_size": ganbench.kid_subset_size(len(gen), len(ref), cap)}


@ganbench.hookimpl
def register_metrics(register):
    register(FID)
    register(KID)
