"""FID arithmetic: clean-fid's sqrtm-based Frechet distance against ganbench's SVD form, side by side on
the same features, in one process. Prints seconds, the speed ratio and the relative difference.

    python benchmarks/fid_arithmetic.py [--n-gen 250] [--n-ref 2500] [--repeats 2]

The features are synthetic (low-rank structure plus noise, 2048-d, like Inception pool features); the
arithmetic cost depends only on the shapes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cleanfid.fid import fid_from_feats

from ganbench.metrics.arithmetic import fid_from_features


def features(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    basis = np.random.default_rng(0).normal(size=(64, 2048))
    return (rng.normal(size=(n, 64)) @ basis * 0.1 + rng.normal(size=(n, 2048)) * 0.05 + shift).astype(np.float32)


def best_of(fn, repeats: int) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-gen", type=int, default=250)
    parser.add_argument("--n-ref", type=int, default=2500)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    a, b = features(rng, args.n_gen, 0.0), features(rng, args.n_ref, 0.02)
    ours_s, ours = best_of(lambda: fid_from_features(a, b), args.repeats)
    theirs_s, theirs = best_of(lambda: fid_from_feats(a, b), args.repeats)
    print(f"features: {args.n_gen} vs {args.n_ref} x 2048 (best of {args.repeats})")
    print(f"clean-fid fid_from_feats (sqrtm): {theirs_s:8.2f} s   FID {theirs:.6f}")
    print(f"ganbench fid_from_features (SVD): {ours_s:8.2f} s   FID {ours:.6f}")
    print(f"speed-up {theirs_s / ours_s:.1f}x   relative difference {abs(ours - theirs) / abs(theirs):.2e}")


if __name__ == "__main__":
    main()
