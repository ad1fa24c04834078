"""Every read of a user's image, weights or checkpoint file goes through one boundary, and every command reads
images with one loader (:mod:`ganbench.data.images`): the folder dataset (``run matrix``, ``datasets
prepare``), ``ganbench fid`` and ``ganbench score``. A bad file is one line naming it (exit 2), never a
traceback, a plugin's fault or a wrong number; a good one decodes to the pixels it holds.

The property test at the bottom writes small folders of images in every mode PIL writes (and a hand-written
16-bit RGB PNG), with odd names, truncations and links, and checks each command's reader against pixels
computed here from the arrays written.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganbench.data.images import decode_image, decode_images, image_files
from ganbench.files import UserFileError, show_path
from ganbench.metrics import folders as fid_folders
from ganbench.metrics.folders import load_image_folder

# --------------------------------------------------------------------------------------------------
# helpers: files written here, the pixels they must decode to, the folder as it was
# --------------------------------------------------------------------------------------------------


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None) -> bytes:
    """A PNG written by hand (PIL cannot write 16-bit RGB): ``rows`` unfiltered, or no image data at all (a
    header is all PIL reads before it checks the size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
    if rows is not None:
        out += chunk(b"IDAT", zlib.compress(rows))
    return out + chunk(b"IEND", b"")


def rgb16_png(values: np.ndarray) -> bytes:
    h, w, _ = values.shape
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    return png_bytes(w, h, 16, 2, rows)


def write_image(path: Path | bytes, mode: str, w: int, h: int, seed: int, orientation: int = 1) -> np.ndarray:
    """Write a ``w`` x ``h`` image of random pixels in ``mode`` to ``path``; return the uint8 RGB pixels it holds,
    computed from the written array (not by decoding the file): 16-bit values / 257, transparency on white,
    CMYK as (255 - C)(255 - K) / 255, EXIF orientation applied."""
    rng = np.random.default_rng(seed)
    fmt, exif = "PNG", None
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
    if mode == "1":
        bits = rng.random((h, w)) > 0.5
        img, rgb = Image.fromarray(bits), np.repeat(bits[..., None] * 255, 3, 2)
    elif mode == "L":
        grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
        img, rgb = Image.fromarray(grey), np.repeat(grey[..., None], 3, 2)
    elif mode == "I;16":
        grey = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        img, rgb = Image.fromarray(grey), np.repeat(np.rint(grey / 257.0)[..., None], 3, 2)
    elif mode in ("P", "P+t"):
        palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
        index = rng.integers(0, 16, (h, w), dtype=np.uint8)
        img = Image.frombytes("P", (w, h), index.tobytes())
        img.putpalette(palette.ravel().tolist())
        rgb = palette[index].astype(np.float64)
        if mode == "P+t":
            img.info["transparency"] = 0
            rgb[index == 0] = 255
    elif mode in ("RGB", "RGB16", "CMYK"):
        top = 65536 if mode == "RGB16" else 256
        values = rng.integers(0, top, (h, w, 4 if mode == "CMYK" else 3), dtype=np.uint16 if top > 256 else np.uint8)
        if mode == "RGB16":
            img, rgb = None, np.rint(values / 257.0)
        elif mode == "CMYK":
            img, fmt = Image.frombytes("CMYK", (w, h), values.tobytes()), "TIFF"
            c, k = values[..., :3].astype(np.float64), values[..., 3:].astype(np.float64)
            rgb = (255 - c) * (255 - k) / 255
        else:
            img, rgb = Image.fromarray(values), values
    elif mode in ("RGBA", "LA"):
        colour = rng.integers(0, 256, (h, w, 3 if mode == "RGBA" else 1), dtype=np.uint8)
        alpha = rng.choice(np.array([0, 255, 90], dtype=np.uint8), (h, w, 1))
        img = Image.frombytes(mode, (w, h), np.concatenate([colour, alpha], axis=2).tobytes())
        rgb = np.repeat(colour, 3 // colour.shape[2], 2) * (alpha / 255) + 255 * (1 - alpha / 255)
    else:
        raise AssertionError(mode)
    if img is None:  # written by hand, without EXIF
        Path(os.fsdecode(path)).write_bytes(rgb16_png(values))
        orientation = 1
    else:
        # CMYK as LZW: Pillow 13 turns an uncompressed CMYK TIFF with orientation 5-8 the wrong way (its bug)
        extra = {"compression": "tiff_lzw"} if fmt == "TIFF" else {}
        ascii_name = Path(os.fsdecode(path)).with_name("writing.tmp")  # libtiff cannot write other names
        img.save(ascii_name, fmt, **extra, **({"exif": exif} if exif is not None else {}))
        ascii_name.rename(os.fsdecode(path))
    rgb = np.asarray(rgb, dtype=np.float64)
    upright = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
               5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
               7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}  # fmt: skip
    return upright[orientation](rgb)


def as_rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, 2) if array.ndim == 2 else array


def assert_pixels(decoded: np.ndarray, expected: np.ndarray, tolerance: float = 1.0) -> None:
    """Equal to within one level (PIL rounds compositing and CMYK; 16-bit RGB keeps the high byte); two after
    a bicubic resize of those."""
    got = as_rgb(np.asarray(decoded)).astype(np.float64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert np.abs(got - expected).max() <= tolerance


def snapshot(root: Path) -> dict:
    """Everything under ``root`` as it is on disk (links not followed): what no reader may change."""
    seen = {}
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st_ = os.lstat(path)
            data = os.readlink(path) if os.path.islink(path) else None
            if data is None and os.path.isfile(path):
                data = Path(os.fsdecode(path)).read_bytes()
            seen[path] = (st_.st_mode, st_.st_size, st_.st_mtime_ns, data)
    return seen


def folder_dataset(registry, spec: str):
    return registry.create(registry.resolve("dataset", spec))


def good_folder(root: Path, n: int = 3, size: int = 8) -> list[np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    return [write_image(root / f"im{i}.png", "RGB", size, size, seed=i) for i in range(n)]


@pytest.fixture
def cheap_fid(monkeypatch):
    """``ganbench fid`` with a deterministic stand-in for Inception: per-image channel means and spreads."""

    class Weights:
        def provenance(self):
            return {"inception_weights": "stand-in"}

    class Extractor:
        def features(self, images, batch_size=None, desc=None):
            return np.stack([np.r_[a.reshape(-1, 3).mean(0), a.reshape(-1, 3).std(0)] for a in images])

    monkeypatch.setattr(fid_folders, "resolve_inception_weights", lambda cache_dir=None: Weights())
    monkeypatch.setattr(fid_folders, "get_extractor", lambda weights, device: Extractor())


# --------------------------------------------------------------------------------------------------
# the cases of issue 23, as plain tests
# --------------------------------------------------------------------------------------------------


def test_a_dangling_link_is_an_unreadable_file_skipped_and_counted(tmp_path, registry, invoke, assert_one_line_error):
    expected = good_folder(tmp_path / "d")
    os.symlink("missing.png", tmp_path / "d" / "dangling.png")
    dataset = folder_dataset(registry, f"folder:path={tmp_path / 'd'},size=8,skip_bad=true")
    assert len(dataset.fingerprint()) == 64  # the fingerprint lstat()s what it cannot stat()
    data = dataset.load()
    assert dataset.provenance()["skipped_files"] == 1 and dataset.provenance()["files"] == 4
    assert len(data.images) == 3 and all(
        np.array_equal(data.images[i].permute(1, 2, 0).numpy(), expected[i]) for i in range(3)
    )
    result = invoke("datasets", "prepare", f"folder:path={tmp_path / 'd'},size=8", "--resolution", "32")
    assert_one_line_error(result, "1 unreadable image file(s): dangling.png (it is a symlink to missing.png, "
                          "which does not exist)", "skip_bad=true")  # fmt: skip


def test_a_name_that_is_not_utf8_is_read_like_any_other(tmp_path, registry, cheap_fid, invoke):
    expected = good_folder(tmp_path / "d", n=2)
    odd = os.fsencode(tmp_path / "d") + b"/\xff\xfe.png"
    expected.append(write_image(odd, "L", 8, 8, seed=7))  # sorts last: it is listed as '\udcff\udcfe.png'
    dataset = folder_dataset(registry, f"folder:path={tmp_path / 'd'},size=8")
    other = folder_dataset(registry, f"folder:path={tmp_path / 'd'},size=8").fingerprint()
    assert dataset.fingerprint() == other
    images = dataset.load().images
    assert len(images) == 3
    for got, want in zip(images, expected):
        assert_pixels(got.permute(1, 2, 0).numpy(), want)
    for got, want in zip(load_image_folder(tmp_path / "d"), expected):
        assert_pixels(got, want)
    result = invoke("fid", tmp_path / "d", tmp_path / "d", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n_a"] == 3


def test_a_non_utf8_name_that_is_bad_is_named_printably(tmp_path, invoke, assert_one_line_error, cheap_fid):
    good_folder(tmp_path / "d", n=2)
    (tmp_path / "d" / os.fsdecode(b"caf\xe9.png")).write_bytes(b"not a png")
    result = invoke("fid", tmp_path / "d", tmp_path / "d")
    assert_one_line_error(result, "caf\\xe9.png: it is not an image file PIL can decode")


def test_a_file_link_that_loops_is_an_unreadable_file(tmp_path, registry, invoke, assert_one_line_error):
    good_folder(tmp_path / "d")
    os.symlink("a.png", tmp_path / "d" / "a.png")
    dataset = folder_dataset(registry, f"folder:path={tmp_path / 'd'},size=8,skip_bad=true")
    dataset.fingerprint()
    assert len(dataset.load().images) == 3 and dataset.provenance()["skipped_files"] == 1
    result = invoke("datasets", "prepare", f"folder:path={tmp_path / 'd'},size=8", "--resolution", "32")
    assert_one_line_error(result, "a.png (it is a symlink loop)")


def test_a_folder_link_back_to_an_ancestor_is_skipped_once_with_a_warning(tmp_path, caplog):
    good_folder(tmp_path / "d" / "cls", n=2)
    os.symlink("..", tmp_path / "d" / "cls" / "up")
    os.symlink(tmp_path / "d", tmp_path / "d" / "root")
    with caplog.at_level("WARNING"):
        files = image_files(tmp_path / "d")
        assert image_files(tmp_path / "d") == files
    assert [f.relative_to(tmp_path / "d").as_posix() for f in files] == ["cls/im0.png", "cls/im1.png"]
    loops = [r.getMessage() for r in caplog.records if "a loop" in r.getMessage()]
    assert len(loops) == 2 and any("cls/up" in m for m in loops) and any("d/root" in m for m in loops)


def test_folder_links_that_leave_the_folder_are_followed_and_fingerprinted(tmp_path, registry):
    """Class folders linked from elsewhere are read; the fingerprint follows the link to what it points to."""
    elsewhere = good_folder(tmp_path / "store" / "cats", n=2)
    good_folder(tmp_path / "d" / "dogs", n=1)
    os.symlink(tmp_path / "store" / "cats", tmp_path / "d" / "cats")
    os.symlink(tmp_path / "store" / "cats" / "im0.png", tmp_path / "d" / "dogs" / "linked.png")
    spec = f"folder:path={tmp_path / 'd'},size=8"
    dataset = folder_dataset(registry, spec)
    before = dataset.fingerprint()
    data = dataset.load()
    assert data.labels.tolist() == [0, 0, 1, 1] and dataset.provenance()["classes"] == "0=cats, 1=dogs"
    assert np.array_equal(data.images[0].permute(1, 2, 0).numpy(), elsewhere[0])
    write_image(tmp_path / "store" / "cats" / "im0.png", "RGB", 9, 9, seed=5)  # both links now see new content
    assert folder_dataset(registry, spec).fingerprint() != before


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch):
    good_folder(tmp_path / "d" / "cls", n=1)
    (tmp_path / "d" / "locked").mkdir()
    scandir = os.scandir

    def denied(path):  # what a folder without read permission gives a user who is not root
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(UserFileError, match="cannot list folder .*locked: permission denied; make it readable"):
        image_files(tmp_path / "d")


@pytest.fixture
def small_bomb_limit(monkeypatch):
    """PIL's decompression-bomb limit at 100 pixels, so that a 16 x 16 image is a bomb."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)


@pytest.mark.parametrize("side", [11, 16], ids=["over-the-limit-warned", "over-twice-the-limit-refused"])
def test_images_over_the_bomb_limit_are_refused_in_words(tmp_path, small_bomb_limit, side):
    write_image(tmp_path / "big.png", "L", side, side, seed=1)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _, bad = decode_images([tmp_path / "big.png"], None)
        with pytest.raises(ValueError, match="over PIL's decompression-bomb limit of 100"):
            decode_image(tmp_path / "big.png", 8)
    assert not seen, [str(w.message) for w in seen]  # PIL's warning is the loader's error, not printed
    assert warnings.filters == filters and Image.MAX_IMAGE_PIXELS == 100  # no global state changed
    assert f"{side * side} pixels" in bad[tmp_path / "big.png"] and "downscale it" in bad[tmp_path / "big.png"]


def test_a_decompression_bomb_given_to_fid_is_one_line(tmp_path, invoke, assert_one_line_error, cheap_fid):
    good_folder(tmp_path / "a", n=2)
    good_folder(tmp_path / "b", n=2)
    (tmp_path / "a" / "bomb.png").write_bytes(png_bytes(12000, 12000, 8, 0, None))  # the header is enough
    result = invoke("fid", tmp_path / "a", tmp_path / "b")
    assert_one_line_error(result, "bomb.png: it is 12000x12000 = 144000000 pixels, over PIL's decompression-bomb "
                          f"limit of {Image.MAX_IMAGE_PIXELS}", "downscale it")  # fmt: skip


def test_16_bit_pngs_read_as_their_8_bit_copies_by_fid_score_and_the_folder_dataset(tmp_path, registry, cheap_fid):
    from ganbench.execute.score import folder_tensor

    rng = np.random.default_rng(0)
    eight = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(3)]
    colour = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    for name in "abc":
        (tmp_path / name).mkdir()
    for i, (g, c) in enumerate(zip(eight, colour)):
        Image.fromarray(g).save(tmp_path / "a" / f"{i}.png")
        Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "b" / f"{i}.png")
        (tmp_path / "c" / f"{i}.png").write_bytes(rgb16_png(c.astype(np.uint16) * 257))
    assert Image.open(tmp_path / "b" / "0.png").mode == "I;16"
    assert compare_fid(tmp_path / "a", tmp_path / "b") == pytest.approx(0.0, abs=1e-6)
    assert torch.equal(folder_tensor(tmp_path / "a"), folder_tensor(tmp_path / "b"))
    assert np.array_equal(np.stack(load_image_folder(tmp_path / "c")), np.stack(colour))
    data = folder_dataset(registry, f"folder:path={tmp_path / 'b'},size=8").load()
    assert np.array_equal(data.images[:, 0].numpy(), np.stack(eight))


def compare_fid(a: Path, b: Path) -> float:
    return fid_folders.compare_folders(a, b, torch.device("cpu"), progress=False)["fid"]


def test_exif_orientation_is_applied_by_every_reader(tmp_path, registry):
    (tmp_path / "d").mkdir()
    expected = write_image(tmp_path / "d" / "portrait.png", "RGB", 12, 8, seed=3, orientation=6)
    assert expected.shape == (12, 8, 3)  # 12 wide, 8 high, turned a quarter: 8 wide, 12 high
    assert_pixels(load_image_folder(tmp_path / "d")[0], expected)
    data = folder_dataset(registry, f"folder:path={tmp_path / 'd'},size=8").load()
    top = expected[2:10]  # center crop of the upright picture: rows 2..9
    assert_pixels(data.images[0].permute(1, 2, 0).numpy(), top)


def test_alpha_palette_and_cmyk_in_fid_are_the_folder_datasets_pixels(tmp_path):
    (tmp_path / "d").mkdir()
    expected = [write_image(tmp_path / "d" / f"{i}-{m}.{'tif' if m == 'CMYK' else 'png'}", m, 7, 5, seed=i)
                for i, m in enumerate(["RGBA", "LA", "P+t", "CMYK"])]  # fmt: skip
    for got, want in zip(load_image_folder(tmp_path / "d"), expected):
        assert_pixels(got, want)


def test_intra_lpips_weights_that_do_not_unpickle_are_one_line(tmp_path):
    from ganbench_plugins.metrics.intra_lpips import TrunkWeights, lpips_model

    bad = tmp_path / "alexnet.pth"
    bad.write_bytes(b"\x80\x02garbage that is not a pickle")
    with pytest.raises(UserFileError, match="cannot read intra-lpips's alex weights .*alexnet.pth: it is not a "
                       "file torch.save wrote, or it is damaged; give torchvision's alexnet-owt-7be5be79.pth"):  # fmt: skip
        lpips_model(TrunkWeights("alex", bad, "0" * 64, "option"), "cpu")
    torch.save(torch.zeros(3), bad)
    with pytest.raises(UserFileError, match="holds a Tensor, not a state dict"):
        lpips_model(TrunkWeights("alex", bad, "1" * 64, "option"), "cpu")


def test_ganbench_inception_not_nvidias_file_is_one_line(tmp_path, invoke, assert_one_line_error, monkeypatch):
    good_folder(tmp_path / "a", n=2)
    torch.save({"not": torch.zeros(1)}, tmp_path / "inception.pt")
    monkeypatch.setenv("GANBENCH_INCEPTION", str(tmp_path / "inception.pt"))
    result = invoke("fid", tmp_path / "a", tmp_path / "a")
    assert_one_line_error(result, f"GANBENCH_INCEPTION={tmp_path / 'inception.pt'} is not NVIDIA's Inception "
                          "network", "point GANBENCH_INCEPTION at NVIDIA's inception-2015-12-05.pt")  # fmt: skip


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"plain text, not torch"],
                         ids=["empty", "truncated", "not-torch"])  # fmt: skip
def test_a_bad_checkpoint_source_is_one_line_naming_it(tmp_path, content):
    from ganbench.execute.sources import read_checkpoint

    path = tmp_path / "g.pt"
    path.write_bytes(content)
    with pytest.raises(UserFileError, match=f"cannot read the source checkpoint {path}: it is not a file torch.save "
                       "wrote, or it is (truncated|damaged); give the file rosinality"):  # fmt: skip
        read_checkpoint(path)


def test_a_checkpoint_source_keeps_its_args_namespace(tmp_path):
    import argparse

    from ganbench.execute.sources import read_checkpoint

    torch.save({"g_ema": {"w": torch.ones(2)}, "args": argparse.Namespace(size=32)}, tmp_path / "g.pt")
    assert read_checkpoint(tmp_path / "g.pt")["args"].size == 32


# --------------------------------------------------------------------------------------------------
# the property: exit 0 with the right pixels, or one line naming a bad file; nothing on disk changed
# --------------------------------------------------------------------------------------------------

MODES = ("1", "L", "I;16", "P", "P+t", "RGB", "RGB16", "RGBA", "LA", "CMYK")
NAMES = ("img", "Ümlaut", "日本語", "two words", b"\xff\xfe", b"caf\xe9")
KINDS = ("good", "good", "good", "good", "truncated", "garbage", "empty", "dangling", "loop", "outside")

image_spec = st.fixed_dictionaries({
    "mode": st.sampled_from(MODES), "w": st.integers(1, 40), "h": st.integers(1, 40), "seed": st.integers(0, 99),
    "name": st.sampled_from(NAMES), "kind": st.sampled_from(KINDS), "orientation": st.sampled_from((1, 1, 3, 6, 8)),
    "upper": st.booleans(),
})  # fmt: skip


def write_case(root: Path, outside: Path, specs: list[dict]) -> list[tuple[str, np.ndarray | None]]:
    """The files of ``specs`` under ``root``, sorted as the loader lists them: (name, expected RGB or None)."""
    written = []
    for i, spec in enumerate(specs):
        base = spec["name"] if isinstance(spec["name"], bytes) else spec["name"].encode()
        suffix = b".tif" if spec["mode"] == "CMYK" else b".png"
        name = b"%02d-" % i + base + (suffix.upper() if spec["upper"] else suffix)
        path, kind = os.fsencode(root) + b"/" + name, spec["kind"]
        mode = "RGB" if kind == "truncated" else spec["mode"]
        expected = None
        if kind in ("good", "truncated"):
            expected = write_image(path, mode, spec["w"], spec["h"], spec["seed"], spec["orientation"])
        if kind == "truncated":
            data = Path(os.fsdecode(path)).read_bytes()
            Path(os.fsdecode(path)).write_bytes(data[: len(data) // 2])
            expected = None
        elif kind in ("garbage", "empty"):
            Path(os.fsdecode(path)).write_bytes(b"" if kind == "empty" else bytes(range(spec["seed"] + 1)))
        elif kind == "dangling":
            os.symlink(b"nowhere.png", path)
        elif kind == "loop":
            os.symlink(name, path)
        elif kind == "outside":
            target = outside / f"{i}.png"
            expected = write_image(target, spec["mode"] if spec["mode"] != "CMYK" else "RGB", spec["w"], spec["h"],
                                   spec["seed"])  # fmt: skip
            os.symlink(target, path)
        written.append((os.fsdecode(name), expected))
    return sorted(written, key=lambda item: item[0])


def crop_resize(expected: np.ndarray, size: int) -> np.ndarray:
    """What the folder dataset makes of an image whose decoded pixels are ``expected`` (the spec: center crop,
    PIL bicubic), from the expected pixels."""
    h, w = expected.shape[:2]
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    square = np.rint(expected[top : top + side, left : left + side]).astype(np.uint8)
    grey = (square[..., 0] == square[..., 1]).all() and (square[..., 1] == square[..., 2]).all()
    img = Image.fromarray(square[..., 0] if grey else square)
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)


def one_line_naming(message: str, names: list[str]) -> bool:
    return "\n" not in message and any(show_path(name) in message for name in names)


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL's palette-with-transparency note
@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(specs=st.lists(image_spec, min_size=1, max_size=5))
def test_every_reader_gives_the_pixels_or_one_line_naming_the_file(specs, registry, invoke, cheap_fid):
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = Path(tmp, "images"), Path(tmp, "outside")
        root.mkdir()
        outside.mkdir()
        files = write_case(root, outside, specs)
        good = [(n, e) for n, e in files if e is not None]
        bad = [n for n, e in files if e is None]
        before = snapshot(Path(tmp))

        # fid and score: every image at its own size, or one line naming the first bad file
        try:
            arrays = load_image_folder(root)
        except UserFileError as exc:
            assert bad and one_line_naming(str(exc), [bad[0]]), str(exc)
        else:
            assert not bad and len(arrays) == len(good)
            for array, (_, expected) in zip(arrays, good):
                assert_pixels(array, expected)

        # the folder dataset (run matrix, datasets prepare): skipped and counted, or refused naming them
        size = 8
        dataset = folder_dataset(registry, f"folder:path={root},size={size},skip_bad=true")
        assert len(dataset.fingerprint()) == 64
        if not good:
            with pytest.raises(Exception, match="none of its .* image files could be read"):
                dataset.load()
        else:
            images = dataset.load().images
            assert dataset.provenance()["skipped_files"] == len(bad) and len(images) == len(good)
            for image, (_, expected) in zip(images, good):
                want = crop_resize(expected, size)
                assert_pixels(image.permute(1, 2, 0).numpy().squeeze(-1) if image.shape[0] == 1
                              else image.permute(1, 2, 0).numpy(), as_rgb(want), tolerance=2.0)  # fmt: skip
        strict = folder_dataset(registry, f"folder:path={root},size={size}")
        try:
            strict.load()
        except Exception as exc:
            assert bad and "unreadable image file(s)" in str(exc) and one_line_naming(str(exc), bad), str(exc)
        else:
            assert not bad

        # the fid command end to end (Inception replaced): exit 0 with the count, or one line
        result = invoke("fid", root, root, "--json")
        if bad or len(good) < 2:
            assert result.exit_code == 2 and result.output.startswith("Error: "), result.output
            assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
        else:
            assert result.exit_code == 0, result.output
            assert json.loads(result.output)["n_a"] == len(good)
        assert snapshot(Path(tmp)) == before
