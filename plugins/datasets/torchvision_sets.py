"""The classic datasets torchvision knows, read from their standard files with numpy (no checksums, no
torchvision at load time), and downloaded through torchvision only when they are on no data root.

Files are looked for under the run context's data roots (``ganbench.data_roots()``: ``$GANBENCH_DATA`` or
``<cache>/data-downloads``, then ``--data-root`` folders, then ``/usr/share/datasets``), in torchvision's
own layout (``<root>/MNIST/raw/...``, ``<root>/cifar-10-batches-py/...``) or under the dataset's name
(``<root>/fashion-mnist/...``, Debian's layout). Labels are as the datasets define them, 0-based, except
EMNIST letters (1-26 for a-z, as EMNIST and torchvision give them); STL-10's unlabelled images get -1;
CelebA has no labels here (its attributes and identities are ignored).
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

import ganbench
from ganbench import (
    DataNotFound,
    GanbenchError,
    at_least,
    find_folder,
    not_found_message,
    offline,
    one_line,
    pick,
    try_download,
)

# --------------------------------------------------------------------------------------------------
# File formats
# --------------------------------------------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format: 2 zero bytes, a type byte, a dimension count, big-endian uint32 sizes,
    then the values), gzip-compressed or not."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path} is a damaged gzip file ({exc})") from exc
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES or data[3] == 0:
        raise ValueError(f"{path} is not an IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(shape))
    offset = 4 + 4 * ndim
    if len(data) < offset + count * dtype.itemsize:
        raise ValueError(f"{path} is truncated: its header announces {shape}")
    return np.frombuffer(data, dtype, count=count, offset=offset).reshape(shape)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only (CIFAR's batches), refusing any other global, so that a
    file found on a data root cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # numpy 2 renamed numpy.core
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: uint8 images ``(N, 3, 32, 32)`` and int64 labels."""
    with open(path, "rb") as f:
        try:
            batch = _ArraysOnly(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise ValueError(f"{path} is not a readable CIFAR batch ({exc})") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR batch (a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or label_key not in batch:
        raise ValueError(f"{path} has no 'data' and '{label_key}' entries")
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{path} holds {len(images)} images but {len(labels)} labels")
    return images, labels


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN's cropped-digits .mat: ``X`` (32, 32, 3, N) and ``y`` (N, 1) with 10 meaning digit 0."""
    from scipy.io import loadmat

    mat = loadmat(path)
    images = np.ascontiguousarray(np.asarray(mat["X"], dtype=np.uint8).transpose(3, 2, 0, 1))
    labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    labels[labels == 10] = 0
    return images, labels


def read_stl10(images_file: Path, labels_file: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """STL-10's binary files: uint8 images stored column-major (N, 3, 96, 96), labels 1-10 (made 0-9);
    without a labels file (the unlabelled split) every label is -1."""
    raw = np.fromfile(images_file, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise ValueError(f"{images_file} is not a whole number of 96x96 colour images")
    images = np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2))
    if labels_file is None:
        return images, np.full(len(images), -1, dtype=np.int64)
    labels = np.fromfile(labels_file, dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != len(images):
        raise ValueError(f"{images_file} holds {len(images)} images but {labels_file} {len(labels)} labels")
    return images, labels


# --------------------------------------------------------------------------------------------------
# The shared machinery: find, download, read
# --------------------------------------------------------------------------------------------------


class _Files(ganbench.Dataset):
    """A dataset read from files found under the data roots (downloaded through torchvision if missing)."""

    #: sub-folders of a data root the files may be in, in order ("" = the root itself)
    folders: ClassVar[tuple[str, ...]] = ()
    #: image count of each split
    sizes: ClassVar[dict[str, int]] = {}
    #: "all" and composite splits -> the splits they join
    joined: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: where the files come from: shown in messages; its server is what the download check tries
    url: ClassVar[str] = ""
    #: how to get the files by hand, beyond downloading them from ``url``
    how: ClassVar[str] = ""
    #: a package that installs the files, e.g. "apt-get install dataset-fashion-mnist"
    install: ClassVar[str] = ""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._found: Path | None = None

    def parts(self) -> tuple[str, ...]:
        split = self.config["split"]
        return self.joined.get(split, (split,))

    def required(self) -> list[tuple[str, ...]]:
        """The files (or folders) the configured split needs, each as its alternative names."""
        raise NotImplementedError

    def files_text(self) -> str:
        """The required files as a message names them."""
        names = [n[0] for n in self.required()]
        return f"{self.folders[0]}/{{{','.join(names)}}}" if self.folders[0] else "{" + ",".join(names) + "}"

    def read(self, folder: Path) -> ganbench.ImageSet:
        raise NotImplementedError

    def fetch(self, root: Path) -> None:
        """Download (through torchvision) into ``root``, in the layout :meth:`required` looks for."""
        raise NotImplementedError

    def size_hint(self) -> int:
        return sum(self.sizes[p] for p in self.parts())

    def _what(self) -> str:
        return f"{self.name} (split={self.config['split']})" if "split" in self.config else self.name

    def _missing(self, problem: str | None) -> DataNotFound:
        how = f"get them from {self.url}" + (f" ({self.how})" if self.how else "")
        if self.install:
            how += f", or {self.install}"
        hint = "not downloaded: GANBENCH_OFFLINE is set" if offline() else "downloaded on first use when online"
        hint += f"; or {self.install}" if self.install else f"; or from {self.url}"
        return DataNotFound(not_found_message(self._what(), self.files_text(), how, problem), hint)

    def locate(self) -> str:
        folder = find_folder(self.folders, self.required())
        if folder is None:
            raise self._missing(None)
        return str(folder)

    def load(self) -> ganbench.ImageSet:
        folder = find_folder(self.folders, self.required())
        if folder is None:
            problem = try_download(self.url, self.fetch)
            folder = find_folder(self.folders, self.required())
            if folder is None:
                raise self._missing(problem or "the download did not leave the expected files")
        self._found = folder
        try:
            return self.read(folder)
        except (OSError, EOFError, ValueError, KeyError, IndexError, pickle.UnpicklingError) as exc:
            reason = one_line(str(exc) or type(exc).__name__, 300)
            where = "" if str(folder) in reason else f" in {folder}"
            raise GanbenchError(
                f"{self._what()}: cannot read its files{where}: {reason}; replace them (or delete them to download again)"
            ) from exc

    def provenance(self) -> dict[str, Any]:
        return {"data_dir": str(self._found)} if self._found else {}


def _split(choices: Sequence[str], default: str = "train") -> ganbench.Option:
    return ganbench.Option("split", str, default, f"which part: {', '.join(choices)}", choices=tuple(choices))


def _image_set(images: np.ndarray, labels: np.ndarray | None) -> ganbench.ImageSet:
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    return ganbench.ImageSet(tensor, None if labels is None else torch.from_numpy(labels.astype(np.int64)))


# --------------------------------------------------------------------------------------------------
# MNIST family: IDX files
# --------------------------------------------------------------------------------------------------


class _Idx(_Files):
    options = (_split(("train", "test", "all")),)
    joined = {"all": ("train", "test")}
    prefix: ClassVar[str] = ""
    stems: ClassVar[dict[str, str]] = {"train": "train", "test": "t10k"}
    #: torchvision's class, for downloading
    torchvision_class: ClassVar[str] = ""
    transpose: ClassVar[bool] = False

    def _names(self, part: str, kind: str) -> tuple[str, str]:
        ndim = 3 if kind == "images" else 1
        name = f"{self.prefix}{self.stems[part]}-{kind}-idx{ndim}-ubyte"
        return name, name + ".gz"

    def required(self) -> list[tuple[str, ...]]:
        return [self._names(p, k) for p in self.parts() for k in ("images", "labels")]

    def files_text(self) -> str:
        names = ",".join(n[1] for n in self.required())
        return f"{{{names}}} (gzipped or not) in a folder {' or '.join(self.folders)}"

    def read(self, folder: Path) -> ganbench.ImageSet:
        images, labels = [], []
        for part in self.parts():
            x = read_idx(pick(folder, self._names(part, "images")))
            y = read_idx(pick(folder, self._names(part, "labels")))
            if x.ndim != 3 or x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"{folder}: {part} images {x.shape} and labels {y.shape} do not match")
            images.append(x.transpose(0, 2, 1) if self.transpose else x)
            labels.append(y.astype(np.int64))
        return _image_set(np.concatenate(images)[:, None], np.concatenate(labels))

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        for part in self.parts():
            getattr(tvd, self.torchvision_class)(str(root), train=part == "train", download=True)


class MNIST(_Idx):
    """MNIST handwritten digits, 28x28 grey (60,000 train / 10,000 test); labels 0-9."""

    name = "mnist"
    folders = ("MNIST/raw", "mnist", "MNIST")
    sizes = {"train": 60000, "test": 10000}
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    torchvision_class = "MNIST"


class FashionMNIST(_Idx):
    """Fashion-MNIST clothing, 28x28 grey (60,000 train / 10,000 test); labels 0-9."""

    name = "fashion-mnist"
    folders = ("FashionMNIST/raw", "fashion-mnist", "FashionMNIST", "fashion_mnist")
    sizes = {"train": 60000, "test": 10000}
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    install = "apt-get install dataset-fashion-mnist"
    torchvision_class = "FashionMNIST"


class KMNIST(_Idx):
    """Kuzushiji-MNIST cursive Japanese characters, 28x28 grey (60,000 train / 10,000 test); labels 0-9."""

    name = "kmnist"
    folders = ("KMNIST/raw", "kmnist", "KMNIST")
    sizes = {"train": 60000, "test": 10000}
    url = "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"
    torchvision_class = "KMNIST"


class EMNISTLetters(_Idx):
    """EMNIST letters, 28x28 grey (124,800 train / 20,800 test); labels 1-26 for a-z, as EMNIST gives them."""

    name = "emnist-letters"
    folders = ("EMNIST/raw", "emnist", "EMNIST")
    sizes = {"train": 124800, "test": 20800}
    url = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
    how = "the gzip.zip archive; its gzip/ folder holds these files"
    prefix = "emnist-letters-"
    stems = {"train": "train", "test": "test"}
    transpose = True  # EMNIST's files store each image transposed

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        tvd.EMNIST(str(root), split="letters", train=True, download=True)


# --------------------------------------------------------------------------------------------------
# CIFAR: python pickles
# --------------------------------------------------------------------------------------------------


class CIFAR10(_Files):
    """CIFAR-10, 32x32 colour (50,000 train / 10,000 test); labels 0-9."""

    name = "cifar10"
    options = (_split(("train", "test", "all")),)
    joined = {"all": ("train", "test")}
    folders = ("cifar-10-batches-py",)
    sizes = {"train": 50000, "test": 10000}
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    how = "extract it"
    batches: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
    }

    def label_key(self) -> str:
        return "labels"

    def required(self) -> list[tuple[str, ...]]:
        return [(name,) for part in self.parts() for name in self.batches[part]]

    def read(self, folder: Path) -> ganbench.ImageSet:
        pairs = [read_cifar_batch(folder / n, self.label_key()) for p in self.parts() for n in self.batches[p]]
        return _image_set(np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs]))

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        getattr(tvd, type(self).__name__)(str(root), train=True, download=True)


class CIFAR100(CIFAR10):
    """CIFAR-100, 32x32 colour (50,000 train / 10,000 test); labels 0-99 (labels=coarse: 0-19)."""

    name = "cifar100"
    options = (
        _split(("train", "test", "all")),
        ganbench.Option("labels", str, "fine", "fine (100 classes) or coarse (20 superclasses)", ("fine", "coarse")),
    )
    folders = ("cifar-100-python",)
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    batches = {"train": ("train",), "test": ("test",)}

    def label_key(self) -> str:
        return f"{self.config['labels']}_labels"


# --------------------------------------------------------------------------------------------------
# SVHN (.mat) and STL-10 (raw binary)
# --------------------------------------------------------------------------------------------------


class SVHN(_Files):
    """SVHN house-number digits, 32x32 colour (73,257 train / 26,032 test / 531,131 extra); labels 0-9."""

    name = "svhn"
    options = (_split(("train", "test", "extra", "train+extra")),)
    joined = {"train+extra": ("train", "extra")}
    folders = ("", "svhn", "SVHN")
    sizes = {"train": 73257, "test": 26032, "extra": 531131}
    url = "http://ufldl.stanford.edu/housenumbers/"

    def required(self) -> list[tuple[str, ...]]:
        return [(f"{p}_32x32.mat",) for p in self.parts()]

    def files_text(self) -> str:
        return "{" + ",".join(n[0] for n in self.required()) + "} directly in a root or in svhn/"

    def read(self, folder: Path) -> ganbench.ImageSet:
        pairs = [read_svhn_mat(folder / f"{p}_32x32.mat") for p in self.parts()]
        return _image_set(np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs]))

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        for part in self.parts():
            tvd.SVHN(str(root), split=part, download=True)


class STL10(_Files):
    """STL-10, 96x96 colour (5,000 train / 8,000 test / 100,000 unlabelled); labels 0-9, -1 when unlabelled."""

    name = "stl10"
    options = (_split(("train", "test", "unlabeled", "train+unlabeled")),)
    joined = {"train+unlabeled": ("train", "unlabeled")}
    folders = ("stl10_binary",)
    sizes = {"train": 5000, "test": 8000, "unlabeled": 100000}
    url = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
    how = "extract it"

    def _files_of(self, part: str) -> tuple[str, str | None]:
        return f"{part}_X.bin", None if part == "unlabeled" else f"{part}_y.bin"

    def required(self) -> list[tuple[str, ...]]:
        return [(n,) for p in self.parts() for n in self._files_of(p) if n]

    def read(self, folder: Path) -> ganbench.ImageSet:
        pairs = []
        for part in self.parts():
            images, labels = self._files_of(part)
            pairs.append(read_stl10(folder / images, folder / labels if labels else None))
        return _image_set(np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs]))

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        tvd.STL10(str(root), split="test", download=True)


# --------------------------------------------------------------------------------------------------
# CelebA and Flowers-102: folders of JPEGs, cropped and resized as the folder dataset does
# --------------------------------------------------------------------------------------------------


def _decode_all(paths: list[Path], size: int, desc: str) -> np.ndarray:
    arrays, bad = ganbench.decode_images(paths, size, crop=True, desc=desc)
    if bad:
        path, why = next(iter(bad.items()))
        raise ValueError(f"{len(bad)} unreadable image(s), e.g. {path} ({why})")
    return ganbench.stack_images(arrays, "rgb").numpy()


class CelebA(_Files):
    """CelebA faces (aligned), center-cropped to a square and resized to size px (162,770 train); no labels."""

    name = "celeba"
    has_labels = False
    options = (
        _split(("train", "valid", "test", "all")),
        ganbench.Option("size", int, 64, "side of the square every face is cropped and resized to", check=at_least(8)),
    )
    folders = ("celeba",)
    sizes = {"train": 162770, "valid": 19867, "test": 19962, "all": 202599}
    partition = {"train": "0", "valid": "1", "test": "2"}
    url = "https://drive.google.com/drive/folders/0B7EVK8r0v71pWEZsZE9oNnFzTm8"
    how = "img_align_celeba.zip, extracted, and list_eval_partition.txt; see mmlab.ie.cuhk.edu.hk/projects/CelebA.html"

    def parts(self) -> tuple[str, ...]:
        return (self.config["split"],)

    def required(self) -> list[tuple[str, ...]]:
        need = [("img_align_celeba",)]
        return need if self.config["split"] == "all" else [*need, ("list_eval_partition.txt",)]

    def read(self, folder: Path) -> ganbench.ImageSet:
        images = folder / "img_align_celeba"
        split = self.config["split"]
        if split == "all":
            names = sorted(p.name for p in images.iterdir() if p.suffix.lower() == ".jpg")
        else:
            lines = (folder / "list_eval_partition.txt").read_text().split("\n")
            names = [f for f, part in (line.split() for line in lines if line.strip()) if part == self.partition[split]]
        if not names:
            raise ValueError(f"no images of split {split} in {images}")
        return _image_set(_decode_all([images / n for n in names], self.config["size"], "decode celeba"), None)

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        tvd.CelebA(str(root), split="all", target_type=[], download=True)


class Flowers102(_Files):
    """Oxford 102 flowers, center-cropped to a square and resized to size px (1,020 train); labels 0-101."""

    name = "flowers102"
    options = (
        _split(("train", "val", "test", "all")),
        ganbench.Option(
            "size", int, 128, "side of the square every image is cropped and resized to", check=at_least(8)
        ),
    )
    folders = ("flowers-102", "flowers102")
    sizes = {"train": 1020, "val": 1020, "test": 6149, "all": 8189}
    url = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
    how = "102flowers.tgz, extracted (jpg/), imagelabels.mat and setid.mat"
    set_keys = {"train": "trnid", "val": "valid", "test": "tstid"}

    def parts(self) -> tuple[str, ...]:
        return (self.config["split"],)

    def required(self) -> list[tuple[str, ...]]:
        return [("jpg",), ("imagelabels.mat",), ("setid.mat",)]

    def read(self, folder: Path) -> ganbench.ImageSet:
        from scipy.io import loadmat

        labels = np.asarray(loadmat(folder / "imagelabels.mat")["labels"], dtype=np.int64).reshape(-1) - 1
        split = self.config["split"]
        if split == "all":
            ids = np.arange(1, len(labels) + 1)
        else:
            ids = np.sort(np.asarray(loadmat(folder / "setid.mat")[self.set_keys[split]], dtype=np.int64).reshape(-1))
        paths = [folder / "jpg" / f"image_{i:05d}.jpg" for i in ids]
        images = _decode_all(paths, self.config["size"], "decode flowers102")
        return _image_set(images, labels[ids - 1])

    def fetch(self, root: Path) -> None:
        import torchvision.datasets as tvd

        tvd.Flowers102(str(root), split="train", download=True)


DATASETS = (MNIST, FashionMNIST, KMNIST, EMNISTLetters, CIFAR10, CIFAR100, SVHN, STL10, CelebA, Flowers102)


@ganbench.hookimpl
def register_datasets(register):
    for cls in DATASETS:
        register(cls)
