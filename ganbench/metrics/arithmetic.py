"""FID and KID from features, the clean-fid way: FID is clean-fid's Frechet distance computed through an SVD
instead of a 2048 x 2048 matrix square root (same value, a fraction of the time: see ``fid_from_features``);
KID is clean-fid's own ``kernel_distance``."""

from __future__ import annotations

import numpy as np
from cleanfid.fid import kernel_distance

from ganbench.errors import GanbenchError


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """clean-fid's Frechet distance, ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)``, computed
    without a 2048 x 2048 ``scipy.linalg.sqrtm`` (30-60 s on two CPU cores, per evaluation).

    With centred features ``A`` (n_a x d) and ``B`` (n_b x d), ``S_a S_b`` has the same non-zero eigenvalues
    as ``C C^T / ((n_a-1)(n_b-1))`` for ``C = A B^T``, so ``tr sqrt(S_a S_b)`` is the sum of C's singular values
    over ``sqrt((n_a-1)(n_b-1))``: an SVD of an n_a x n_b matrix. When both sets are larger than d, the
    symmetric form ``sqrt(S_a) S_b sqrt(S_a)`` is used instead. Both agree with clean-fid's ``fid_from_feats``
    to float64 rounding (tests hold it to 1e-4 relative against ``compute_fid``).
    """
    n_a, n_b = len(a), len(b)
    if min(n_a, n_b) < 2:
        raise GanbenchError("FID needs at least 2 images on each side")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    A, B = a - mu_a, b - mu_b
    trace_a, trace_b = (A * A).sum() / (n_a - 1), (B * B).sum() / (n_b - 1)
    if min(n_a, n_b) <= a.shape[1]:
        singular = np.linalg.svd(A @ B.T, compute_uv=False)
        trace_sqrt = singular.sum() / np.sqrt((n_a - 1) * (n_b - 1))
    else:
        w, v = np.linalg.eigh(A.T @ A / (n_a - 1))
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = root_a @ (B.T @ B / (n_b - 1)) @ root_a
        trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + trace_a + trace_b - 2 * trace_sqrt)


def kid_subset_size(n_a: int, n_b: int, max_subset_size: int = 1000) -> int:
    """clean-fid's KID draws subsets of min(n_a, n_b, max) images, so small sets still get a KID."""
    return min(n_a, n_b, max_subset_size)


def kid_from_features(
    a: np.ndarray, b: np.ndarray, *, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> float:
    """clean-fid's ``kernel_distance`` with a seeded subset draw (it uses NumPy's global generator, so
    the global state is saved and restored around it)."""
    if kid_subset_size(len(a), len(b), max_subset_size) < 2:
        raise GanbenchError("KID needs at least 2 images on each side")
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(kernel_distance(a, b, num_subsets=num_subsets, max_subset_size=max_subset_size))
    finally:
        np.random.set_state(state)
