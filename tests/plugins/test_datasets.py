"""File-backed datasets on small files written here in the real formats (IDX, CIFAR pickles, SVHN .mat,
STL-10 binaries, image folders): the parsing code users run, the data roots, the cache key, the CLI."""

import gzip
import json
import logging
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import write_images
from ganbench_plugins.datasets.folder import Folder
from ganbench_plugins.datasets.torchvision_sets import read_idx
from PIL import Image

import ganbench.context as context_module
from ganbench.data.prepare import prepare_dataset, prepared_path, select_shots
from ganbench.data.roots import DataNotFound, data_roots
from ganbench.errors import GanbenchError
from ganbench.testing import check_dataset

# --------------------------------------------------------------------------------------------------
# helpers: the formats, written from scratch
# --------------------------------------------------------------------------------------------------


def write_idx(path, array, gz=False):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)


def digits_like(n, seed=0, size=28):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_mnist(folder, gz, n_train=7, n_test=3, prefix="", stems=("train", "t10k"), labels_offset=0):
    train, test = digits_like(n_train, 1), digits_like(n_test, 2)
    for stem, (x, y) in zip(stems, (train, test)):
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}{stem}-images-idx3-ubyte{suffix}", x, gz)
        write_idx(folder / f"{prefix}{stem}-labels-idx1-ubyte{suffix}", y + labels_offset, gz)
    return train, test


def write_pickle(path, obj):
    """Protocol 2, with numpy's module written 'numpy.core' as in the real (Python 2) CIFAR files."""
    data = pickle.dumps(obj, protocol=2).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def cifar_batch(n, seed, labels_key="labels", n_classes=10):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return {"batch_label": f"batch {seed}", labels_key: [int(v) for v in rng.integers(0, n_classes, n)], "data": data}


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Empty download root and system root, one --data-root folder, offline: returns the --data-root."""
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path / "downloads"))
    monkeypatch.setattr(context_module, "SYSTEM_DATA_ROOT", str(tmp_path / "usr-share-datasets"))
    extra = tmp_path / "extra"
    extra.mkdir()
    monkeypatch.setenv("GANBENCH_DATA_ROOTS", str(extra))
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    return extra


def create(registry, spec):
    return registry.create(registry.resolve("dataset", spec))


# --------------------------------------------------------------------------------------------------
# MNIST family: IDX
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_are_parsed_gzipped_or_not(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x", images, gz)
    write_idx(tmp_path / "y", np.array([7, -2], dtype=">i4"), gz)
    assert np.array_equal(read_idx(tmp_path / "x"), images)
    assert read_idx(tmp_path / "y").tolist() == [7, -2]


def test_idx_rejects_other_and_truncated_files(tmp_path):
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "text")
    write_idx(tmp_path / "x", np.zeros((4, 5, 5), np.uint8))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "x")


def test_mnist_in_torchvision_layout_on_a_data_root(registry, roots):
    train, test = write_mnist(roots / "MNIST" / "raw", gz=False)
    data = create(registry, "mnist").load()
    assert data.images.shape == (7, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(train[0]))
    assert data.labels.tolist() == train[1].tolist()
    both = create(registry, "mnist:split=all").load()
    assert len(both) == 10 and torch.equal(both.images[7:, 0], torch.from_numpy(test[0]))
    dataset = create(registry, "mnist:split=test")
    assert dataset.locate() == str(roots / "MNIST" / "raw")
    assert len(dataset.load()) == 3 and dataset.provenance() == {"data_dir": str(roots / "MNIST" / "raw")}


def test_debian_layout_of_fashion_mnist_is_found(registry, roots, tmp_path):
    system = tmp_path / "usr-share-datasets"
    train, _ = write_mnist(system / "fashion-mnist", gz=True)
    assert data_roots()[-1] == system
    dataset = create(registry, "fashion-mnist")
    assert dataset.locate() == str(system / "fashion-mnist")
    data = dataset.load()
    assert torch.equal(data.images[:, 0], torch.from_numpy(train[0])) and data.labels.tolist() == train[1].tolist()
    # the download root comes first: a copy there wins
    write_mnist(tmp_path / "downloads" / "FashionMNIST" / "raw", gz=False, n_train=2)
    assert len(create(registry, "fashion-mnist").load()) == 2


def test_the_real_debian_fashion_mnist_when_installed(registry, monkeypatch, tmp_path):
    if not (Path(context_module.SYSTEM_DATA_ROOT) / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    data = create(registry, "fashion-mnist:split=test").load()
    assert data.images.shape == (10000, 1, 28, 28) and torch.bincount(data.labels).tolist() == [1000] * 10


def test_emnist_letters_are_transposed_upright_with_labels_1_to_26(registry, roots):
    folder = roots / "EMNIST" / "raw"
    train, _ = write_mnist(folder, gz=False, prefix="emnist-letters-", stems=("train", "test"), labels_offset=1)
    data = create(registry, "emnist-letters").load()
    assert torch.equal(data.images[:, 0], torch.from_numpy(train[0]).transpose(1, 2))
    assert data.labels.tolist() == (train[1] + 1).tolist() and data.labels.min() >= 1


def test_damaged_files_are_named_in_one_line(registry, roots):
    folder = roots / "MNIST" / "raw"
    write_mnist(folder, gz=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    damaged = r"mnist \(split=train\): cannot read .*train-images-idx3-ubyte.gz is a damaged gzip file"
    with pytest.raises(GanbenchError, match=damaged) as info:
        create(registry, "mnist").load()
    assert "\n" not in str(info.value)


def test_missing_dataset_says_which_files_go_where(registry, roots):
    with pytest.raises(DataNotFound) as info:
        create(registry, "fashion-mnist:split=test").load()
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(roots), "--data-root",
                     "apt-get install dataset-fashion-mnist", "GANBENCH_OFFLINE"):  # fmt: skip
        assert fragment in message, fragment
    with pytest.raises(DataNotFound, match=r"cifar-10-batches-py/\{data_batch_1,.*data_batch_5\}.*kriz"):
        create(registry, "cifar10").load()


# --------------------------------------------------------------------------------------------------
# CIFAR pickles, SVHN .mat, STL-10 binaries
# --------------------------------------------------------------------------------------------------


def test_cifar10_python_batches(registry, roots):
    folder = roots / "cifar-10-batches-py"
    batches = {f"data_batch_{i}": cifar_batch(2, i) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(3, 9)
    for name, batch in batches.items():
        write_pickle(folder / name, batch)
    write_pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072})
    data = create(registry, "cifar10").load()
    expected = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert data.images.shape == (10, 3, 32, 32) and np.array_equal(data.images.numpy(), expected)
    assert data.labels.tolist() == sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    test = create(registry, "cifar10:split=test").load()
    assert len(test) == 3 and test.labels.tolist() == batches["test_batch"]["labels"]
    picked = check_dataset(_Sized(create(registry, "cifar10:split=all"), 13))
    assert picked == {"images": 13, "channels": 3}


class _Sized:
    """A dataset whose size_hint matches the small files the test wrote."""

    def __init__(self, dataset, n):
        self._dataset, self._n = dataset, n

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    def size_hint(self):
        return self._n


def test_cifar100_fine_and_coarse_labels(registry, roots):
    folder = roots / "cifar-100-python"
    train = cifar_batch(4, 1, "fine_labels", 100)
    train["coarse_labels"] = [v // 5 for v in train["fine_labels"]]
    write_pickle(folder / "train", train)
    write_pickle(folder / "test", {**cifar_batch(2, 2, "fine_labels", 100), "coarse_labels": [0, 1]})
    write_pickle(folder / "meta", {"fine_label_names": ["x"] * 100, "coarse_label_names": ["y"] * 20})
    assert create(registry, "cifar100").load().labels.tolist() == train["fine_labels"]
    assert create(registry, "cifar100:labels=coarse").load().labels.tolist() == train["coarse_labels"]


def test_a_pickle_that_would_run_code_is_refused(registry, roots):
    folder = roots / "cifar-10-batches-py"
    for i in range(1, 6):
        write_pickle(folder / f"data_batch_{i}", cifar_batch(1, i))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}, protocol=2))
    refused = r"data_batch_3 is not a readable CIFAR batch \(refusing to load .*print"
    with pytest.raises(GanbenchError, match=refused):
        create(registry, "cifar10").load()


def test_svhn_mat_files(registry, roots):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    labels = np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)
    savemat(roots / "train_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": labels})
    data = create(registry, "svhn").load()
    assert np.array_equal(data.images.numpy(), images) and data.labels.tolist() == [0, 1, 2, 0, 9]


def test_stl10_binaries_are_read_upright(registry, roots):
    folder = roots / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    images.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")  # STL-10 stores each plane column-major
    np.array([1, 10], np.uint8).tofile(folder / "train_y.bin")
    images[:1].transpose(0, 1, 3, 2).tofile(folder / "unlabeled_X.bin")
    data = create(registry, "stl10").load()
    assert np.array_equal(data.images.numpy(), images) and data.labels.tolist() == [0, 9]
    assert create(registry, "stl10:split=train+unlabeled").load().labels.tolist() == [0, 9, -1]


# --------------------------------------------------------------------------------------------------
# folder
# --------------------------------------------------------------------------------------------------


def _gradient(w, h, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_mixed_folder(root):
    """Two classes of mixed formats, sizes and modes."""
    cats, dogs = root / "cats", root / "dogs" / "nested"
    cats.mkdir(parents=True)
    dogs.mkdir(parents=True)
    Image.fromarray(_gradient(40, 30)).save(cats / "a.png")  # RGB, landscape
    Image.fromarray(_gradient(20, 50, 1)).save(cats / "b.jpg", quality=90)  # L JPEG, portrait
    rgba = Image.fromarray(np.dstack([_gradient(16, 16), np.full((16, 16), 0, np.uint8)]), "RGBA")
    rgba.save(cats / "c.png")  # fully transparent: white
    Image.fromarray(_gradient(33, 33)).convert("P").save(dogs / "d.gif")
    Image.fromarray(_gradient(24, 24)).convert("CMYK").save(dogs / "e.jpg")
    Image.fromarray(np.full((10, 12), 65535, np.uint16)).save(root / "dogs" / "f.png")  # I;16, white
    Image.fromarray(_gradient(64, 48)).save(root / "dogs" / "g.bmp")
    Image.fromarray(_gradient(30, 30)).save(root / "dogs" / "h.webp")
    (root / "dogs" / "notes.txt").write_text("not an image, ignored")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(b"ignored too")


def test_folder_of_mixed_images_with_classes_from_subfolders(registry, tmp_path):
    write_mixed_folder(tmp_path / "pets")
    dataset = create(registry, f"folder:path={tmp_path / 'pets'},size=16")
    data = dataset.load()
    assert data.images.shape == (8, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]  # cats/a,b,c; dogs/f,g,h, then dogs/nested/d,e
    assert (data.images[2] == 255).all()  # the transparent image, composited onto white
    assert (data.images[3] == 255).all()  # 16-bit white stays white (scaled, not clipped)
    assert torch.equal(data.images[1, 0], data.images[1, 2])  # grey repeated into RGB
    assert dataset.provenance()["classes"] == "0=cats, 1=dogs"
    assert dataset.provenance()["skipped_files"] == 0 and dataset.size_hint() == 8
    picked = prepare_dataset(registry.resolve("dataset", f"folder:path={tmp_path / 'pets'},classes=1"), registry, 8, 1)
    assert picked.images.shape == (5, 1, 8, 8) and set(picked.labels.tolist()) == {1}


def test_folder_without_subfolders_is_unlabelled_and_grey_when_all_grey(registry, tmp_path):
    for i, size in enumerate([(20, 10), (8, 8), (13, 31)]):
        Image.fromarray(_gradient(*size, channels=1, seed=i)).save(tmp_path / f"{i}.png")
    Image.fromarray(np.dstack([_gradient(9, 9, 1)] * 3)).save(tmp_path / "rgb-but-grey.png")
    dataset = create(registry, f"folder:path={tmp_path},size=12")
    assert check_dataset(dataset) == {"images": 4, "channels": 1}
    assert dataset.load().labels is None and "classes" not in dataset.provenance()
    square = dataset.load().images[1, 0].numpy()
    expected = np.asarray(Image.fromarray(_gradient(8, 8, 1, seed=1)).resize((12, 12), Image.Resampling.BICUBIC))
    assert np.array_equal(square, expected)
    assert create(registry, f"folder:path={tmp_path},mode=rgb,size=12").load().images.shape == (4, 3, 12, 12)
    with pytest.raises(GanbenchError, match="no classes and classes= cannot select"):
        create(registry, f"folder:path={tmp_path},classes=0").load()


def test_folder_crop_keeps_the_center_and_squash_keeps_everything(registry, tmp_path):
    image = np.zeros((10, 30), np.uint8)
    image[:, 10:20] = 255  # white center, black sides
    Image.fromarray(image).save(tmp_path / "wide.png")
    cropped = create(registry, f"folder:path={tmp_path},size=10").load().images[0, 0]
    squashed = create(registry, f"folder:path={tmp_path},size=10,crop=false").load().images[0, 0]
    assert (cropped == 255).all() and squashed[:, 0].max() == 0


def test_unreadable_files_are_named_or_skipped_and_counted(registry, tmp_path, caplog):
    Image.fromarray(_gradient(8, 8)).save(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with open(tmp_path / "cut.png", "wb") as f:
        buffer = tmp_path / "full.png"
        Image.fromarray(_gradient(64, 64)).save(buffer)
        f.write(buffer.read_bytes()[:200])
    buffer.unlink()
    with pytest.raises(GanbenchError) as info:
        create(registry, f"folder:path={tmp_path}").load()
    message = str(info.value)
    assert "2 unreadable image file(s)" in message and "broken.jpg" in message and "cut.png" in message
    assert "skip_bad=true" in message and "\n" not in message
    dataset = create(registry, f"folder:path={tmp_path},skip_bad=true")
    with caplog.at_level(logging.WARNING):
        assert len(dataset.load()) == 1
    assert "skipped 2 unreadable image file(s)" in caplog.text
    assert dataset.provenance()["skipped_files"] == 2 and dataset.provenance()["files"] == 3
    data = prepare_dataset(registry.resolve("dataset", f"folder:path={tmp_path},skip_bad=true"), registry, 16, 3)
    assert data.provenance["skipped_files"] == 2  # kept with the cached tensor


def _write_target_with_released_shots(root, n=12, size=8, external=1, classes=False):
    """A full set of ``n`` random images and a shots folder holding 3 of them, re-saved under other names,
    and ``external`` images that are not in the full set; with ``classes``, both in class subfolders (image i
    in c{i % 2}, the shots in c1)."""
    images = [_gradient(size, size, seed=i) for i in range(n + external)]
    for i in range(n):
        folder = root / "full" / (f"c{i % 2}" if classes else "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"{i:03d}.png")
    (root / "shots" / ("c1" if classes else "")).mkdir(parents=True, exist_ok=True)
    for j, i in enumerate([9, 3, 5]):  # saved as BMP: other bytes, the same pixels
        Image.fromarray(images[i]).save(root / "shots" / ("c1" if classes else "") / f"shot{j}.bmp")
    for k in range(external):
        Image.fromarray(images[n + k]).save(root / "shots" / ("c1" if classes else "") / f"z-extra{k}.png")
    return images


def test_released_shots_are_found_among_the_full_set_or_added(registry, tmp_path):
    images = _write_target_with_released_shots(tmp_path)
    dataset = create(registry, f"folder:path={tmp_path / 'full'},shots_dir={tmp_path / 'shots'},size=8")
    data = dataset.load()
    assert len(data) == 13  # 12 + the one shot that is not in the full set
    assert data.shots.tolist() == [9, 3, 5, 12]  # in the shots folder's (sorted) file order
    for position, original in zip(data.shots.tolist(), [9, 3, 5, 12]):
        assert np.array_equal(data.images[position].permute(1, 2, 0).numpy(), images[original])
    assert dataset.provenance()["shots"] == 4 and dataset.provenance()["shots_added"] == 1
    assert dataset.size_hint() is None  # unknown until the shots are matched
    plain = create(registry, f"folder:path={tmp_path / 'full'},size=8").load()
    assert plain.shots is None and torch.equal(plain.images, data.images[:12])


def test_released_shots_survive_preparation_and_class_selection(registry, tmp_path):
    _write_target_with_released_shots(tmp_path, classes=True)
    spec = f"folder:path={tmp_path / 'full'},shots_dir={tmp_path / 'shots'},size=8"
    whole = prepare_dataset(registry.resolve("dataset", spec), registry, 8, 3)
    assert whole.shots.tolist() == [10, 7, 8, 12]  # c0: images 0, 2, ..., 10; c1: 1, 3, ..., 11; the added one
    assert whole.labels[whole.shots].tolist() == [1, 1, 1, 1]
    again = prepare_dataset(registry.resolve("dataset", spec), registry, 8, 3)  # from the cache
    assert torch.equal(again.shots, whole.shots)
    odd = prepare_dataset(registry.resolve("dataset", spec + ",classes=1"), registry, 8, 3)
    assert len(odd) == 7 and odd.shots.tolist() == [4, 1, 2, 6]  # c1's 6 images, then the added one
    assert torch.equal(odd.images[odd.shots], whole.images[whole.shots])
    with pytest.raises(GanbenchError, match="4 released shots are not in the selected classes"):
        prepare_dataset(registry.resolve("dataset", spec + ",classes=0"), registry, 8, 3)


def test_a_released_shot_outside_every_class_and_a_missing_shots_dir_are_one_line(registry, tmp_path):
    _write_target_with_released_shots(tmp_path, classes=True)
    Image.fromarray(_gradient(8, 8, seed=99)).save(tmp_path / "shots" / "loose.png")
    with pytest.raises(GanbenchError, match="loose.png is not among the folder's images"):
        create(registry, f"folder:path={tmp_path / 'full'},shots_dir={tmp_path / 'shots'},size=8").load()
    with pytest.raises(DataNotFound, match="shots_dir .* does not exist"):
        create(registry, f"folder:path={tmp_path / 'full'},shots_dir={tmp_path / 'nope'}").locate()


def test_cells_train_on_the_released_shots_whatever_the_seed():
    released = torch.tensor([40, 3, 17])
    for seed in range(4):
        assert select_shots(50, 3, seed, released).tolist() == [3, 17, 40]
    subsets = {tuple(select_shots(50, 2, seed, released).tolist()) for seed in range(8)}
    assert len(subsets) > 1 and all(set(s) <= {3, 17, 40} for s in subsets)
    assert select_shots(50, 2, 5, released).tolist() == select_shots(50, 2, 5, released).tolist()
    with pytest.raises(GanbenchError, match="comes with 3 released shots; use --shots 3 or fewer"):
        select_shots(50, 4, 0, released)


def test_folder_missing_or_empty_is_one_line(registry, tmp_path):
    with pytest.raises(DataNotFound, match="does not exist"):
        create(registry, f"folder:path={tmp_path / 'nope'}").load()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataNotFound, match="holds no image files"):
        create(registry, f"folder:path={tmp_path / 'empty'}").load()
    with pytest.raises(DataNotFound, match="needs a directory: write folder:path=DIR"):
        create(registry, "folder").load()


# --------------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------------


def test_existing_datasets_keep_their_cache_keys(registry, session_cache):
    from ganbench.data.prepare import PREPROCESS_VERSION
    from ganbench.store.cache import stable_hash

    ref = registry.resolve("dataset", "digits:classes=0-1")
    old = {"dataset": ref.canonical, "version": "1", "res": 16, "ch": 1, "pre": PREPROCESS_VERSION}
    expected = session_cache / "data" / f"digits-{stable_hash(old)[:16]}.pt"
    assert prepared_path(ref, registry, 16, 1) == expected


def test_a_second_prepare_never_decodes(registry, roots, monkeypatch):
    write_mnist(roots / "MNIST" / "raw", gz=True)
    ref = registry.resolve("dataset", "mnist:classes=0-4")
    first = prepare_dataset(ref, registry, 16, 1)
    cls = registry.get("dataset", "mnist").cls
    monkeypatch.setattr(cls, "load", lambda self: pytest.fail("decoded again despite the cache"))
    second = prepare_dataset(ref, registry, 16, 1)
    assert torch.equal(first.images, second.images) and second.provenance == first.provenance


def test_folder_content_changes_change_the_cache_key(registry, tmp_path, monkeypatch):
    images = write_images(tmp_path / "imgs", [_gradient(12, 12, seed=i) for i in range(3)], "{i}.png")
    ref = registry.resolve("dataset", f"folder:path={images},size=12")
    first = prepare_dataset(ref, registry, 8, 3)
    fingerprint = Folder(path=str(images)).fingerprint()
    real_load = Folder.load
    monkeypatch.setattr(Folder, "load", lambda self: pytest.fail("decoded again although nothing changed"))
    assert torch.equal(prepare_dataset(ref, registry, 8, 3).images, first.images)
    assert Folder(path=str(images)).fingerprint() == fingerprint
    monkeypatch.setattr(Folder, "load", real_load)
    Image.fromarray(_gradient(12, 12, seed=7)).save(images / "3.png")
    assert Folder(path=str(images)).fingerprint() != fingerprint
    assert len(prepare_dataset(ref, registry, 8, 3)) == 4
    (images / "0.png").unlink()
    Image.fromarray(_gradient(12, 12, seed=9)).save(images / "0.png")  # same name, new content and mtime
    os.utime(images / "0.png", ns=(1, 1))
    again = prepare_dataset(ref, registry, 8, 3)
    assert len(again) == 4 and not torch.equal(again.images[0], first.images[0])
    # a worker without the folder uses the content this cache last prepared, without decoding
    images.rename(tmp_path / "moved")
    monkeypatch.setattr(Folder, "load", lambda self: pytest.fail("decoded on a machine without the folder"))
    assert torch.equal(prepare_dataset(ref, registry, 8, 3).images, again.images)


# --------------------------------------------------------------------------------------------------
# the command line and a tiny run
# --------------------------------------------------------------------------------------------------


def test_datasets_lists_where_each_dataset_is(roots, tmp_path, invoke):
    write_mnist(tmp_path / "usr-share-datasets" / "fashion-mnist", gz=True)
    write_mnist(tmp_path / "elsewhere" / "MNIST" / "raw", gz=True)
    result = invoke("datasets", "--json", "--data-root", str(tmp_path / "elsewhere"))
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    builtin = {"mnist", "fashion-mnist", "kmnist", "emnist-letters", "cifar10", "cifar100", "svhn", "stl10",
               "celeba", "flowers102", "folder", "mnist5k", "digits"}  # fmt: skip
    assert builtin <= set(rows)
    assert rows["fashion-mnist"]["where"] == str(tmp_path / "usr-share-datasets" / "fashion-mnist")
    assert rows["mnist"]["where"] == str(tmp_path / "elsewhere" / "MNIST" / "raw") and rows["mnist"]["found"]
    assert not rows["cifar10"]["found"] and rows["cifar10"]["images"] == 50000
    assert rows["celeba"]["labels"] is False and rows["digits"]["where"] == "built in"
    assert (
        "GANBENCH_DATA_ROOTS" not in os.environ or str(tmp_path / "elsewhere") not in os.environ["GANBENCH_DATA_ROOTS"]
    )
    text = invoke("datasets")
    assert text.exit_code == 0 and "not found (not downloaded: GANBENCH_OFFLINE is set" in text.output
    assert "Data roots, in order:" in text.output


def test_missing_dataset_fails_the_run_in_one_line_before_training(roots, tmp_path, invoke, assert_one_line_error):
    result = invoke("run", "matrix", "--target", "cifar10", "--out", str(tmp_path / "runs"), "--quiet")
    assert_one_line_error(result, "cifar10 (split=train) not found", "data_batch_1", "GANBENCH_OFFLINE")
    assert not (tmp_path / "runs").exists()
    assert_one_line_error(invoke("datasets", "prepare", "svhn:split=test"), "test_32x32.mat")
    assert_one_line_error(invoke("datasets", "prepare", "mnist:split=nope"), "bad value 'nope' for option 'split'")


def test_datasets_prepare_caches_ahead_of_a_run(registry, roots, tmp_path, session_cache, invoke):
    write_mnist(tmp_path / "data" / "KMNIST" / "raw", gz=False)
    result = invoke("datasets", "prepare", "kmnist:classes=0-3", "--resolution", "16", "--data-root",
                    str(tmp_path / "data"))  # fmt: skip
    assert result.exit_code == 0, result.output
    path = prepared_path(registry.resolve("dataset", "kmnist:classes=0-3"), registry, 16, 1)
    assert path.is_file() and str(path) in result.output and "4 images (1x16x16, classes 0-3)" in result.output
    assert f"data_dir: {tmp_path / 'data' / 'KMNIST' / 'raw'}" in result.output
    again = invoke("datasets", "prepare", "kmnist:classes=0-3", "--resolution", "16", "--json")
    assert again.exit_code == 0, again.output  # no --data-root needed any more: it comes from the cache
    assert json.loads(again.output)[0]["was_cached"] is True
    # --data-root and --cache given to the group apply to prepare too
    other = tmp_path / "other-cache"
    test = invoke(
        "datasets", "--data-root", str(tmp_path / "data"), "--cache", str(other), "prepare", "kmnist:split=test"
    )
    assert test.exit_code == 0, test.output
    assert "3 images (1x32x32, classes 0-2)" in test.output and str(other / "data") in test.output


def test_a_folder_is_a_target_in_a_tiny_grid(tmp_path, invoke):
    for label in ("a", "b"):
        images = [_gradient(20, 24, 1, seed=i + (label == "b") * 10) for i in range(6)]
        write_images(tmp_path / "imgs" / label, images, "{i}.png")
    target = f"folder:path={tmp_path / 'imgs'},classes=1"
    result = invoke("run", "matrix", "--arch", "dcgan:width=8", "--source", "digits:classes=2-4", "--target", target,
                    "--shots", "4", "--pretrain-steps", "6", "--finetune-steps", "2", "--batch-size", "4",
                    "--eval-samples", "6", "--strategy", "finetune", "--no-baseline", "--out", str(tmp_path / "r"),
                    "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("*/cells/*.json")]
    assert record["status"] == "ok" and record["n_ref"] == 6 and record["fid"] > 0


def test_a_folder_of_png_and_jpeg_is_a_source_in_a_tiny_grid(tmp_path, invoke):
    (tmp_path / "src").mkdir()
    for i in range(12):
        image = Image.fromarray(_gradient(30 + i, 26, 3, seed=i))  # mixed sizes, colour
        image.save(tmp_path / "src" / (f"{i}.png" if i % 2 else f"{i}.jpg"))
    # a small target keeps the reference features cheap
    write_images(tmp_path / "tgt", [_gradient(28, 28, 1, seed=100 + i) for i in range(6)], "{i}.png")
    source, target = f"folder:path={tmp_path / 'src'}", f"folder:path={tmp_path / 'tgt'}"
    result = invoke("run", "matrix", "--arch", "dcgan:width=8", "--source", source, "--target", target,
                    "--shots", "4", "--pretrain-steps", "4", "--finetune-steps", "2", "--batch-size", "4",
                    "--eval-samples", "6", "--strategy", "finetune", "--no-baseline", "--out", str(tmp_path / "r"),
                    "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("*/cells/*.json")]
    assert record["status"] == "ok" and record["source"] == source and record["pretrain_cache_hit"] is False
    assert record["fid"] > 0
