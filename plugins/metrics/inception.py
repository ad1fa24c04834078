"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on NVIDIA's Inception features, computed
the clean-fid way ("clean" resizing, clean-fid's own formulas). Both share one feature pass."""

from __future__ import annotations

import ganbench
from ganbench import Option
from ganbench.fid import (
    MODE,
    evaluation_features,
    fid_from_features,
    kid_from_features,
    kid_subset_size,
    reference_features,
    resolve_inception_weights,
)
from ganbench.registry import at_least


class FID(ganbench.Metric):
    """Frechet Inception Distance, clean-fid "clean" mode (lower is better)."""

    name = "fid"

    def prepare(self, device, cache_dir):
        return resolve_inception_weights(cache_dir).provenance()

    def reference(self, ctx):
        weights = resolve_inception_weights(ctx.cache_dir)
        reference_features(ctx.reference, ctx.reference_key, weights, ctx.device, ctx.cache_dir, ctx.progress)

    def compute(self, ctx):
        gen, ref = evaluation_features(ctx)
        return {"fid": fid_from_features(gen, ref)}


class KID(ganbench.Metric):
    """Kernel Inception Distance, clean-fid's estimator; the subset size adapts to small sets."""

    name = "kid"
    options = (
        Option("subsets", int, 100, "number of random subsets averaged", check=at_least(1)),
        Option("max_subset_size", int, 1000, "subset size cap (smaller sets use all their images)", check=at_least(2)),
    )

    def prepare(self, device, cache_dir):
        return {**resolve_inception_weights(cache_dir).provenance(), "kid_mode": MODE}

    reference = FID.reference

    def compute(self, ctx):
        gen, ref = evaluation_features(ctx)
        cap = self.config["max_subset_size"]
        kid = kid_from_features(gen, ref, num_subsets=self.config["subsets"], max_subset_size=cap)
        return {"kid": kid, "kid_subset_size": kid_subset_size(len(gen), len(ref), cap)}


@ganbench.hookimpl
def register_metrics(register):
    register(FID)
    register(KID)
