import subprocess
import sys
import textwrap

import pytest
import torch

from ganbench.context import RunContext
from ganbench.data.prepare import convert_channels, prepare_dataset, prepared_path, resize_images, select_shots
from ganbench.errors import GanbenchError


def test_shots_are_seeded_and_sorted():
    a, b, c = select_shots(100, 10, seed=0), select_shots(100, 10, seed=0), select_shots(100, 10, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 10 and a.tolist() == sorted(a.tolist())


def test_more_shots_than_images_is_an_error():
    with pytest.raises(GanbenchError, match="101 shots requested but only 100"):
        select_shots(100, 101, seed=0)


def test_class_selection_and_resizing(registry, context):
    data = prepare_dataset(registry.resolve("dataset", "mnist5k:classes=5-9"), registry, 32, 1, context)
    assert data.images.shape == (2500, 1, 32, 32) and data.images.dtype == torch.uint8
    assert sorted(set(data.labels.tolist())) == [5, 6, 7, 8, 9]
    digits = prepare_dataset(registry.resolve("dataset", "digits:classes=3"), registry, 32, 3, context)
    assert digits.images.shape[1:] == (3, 32, 32) and set(digits.labels.tolist()) == {3}
    assert len(digits) == 183  # scikit-learn's digits hold 183 threes


def test_prepared_data_is_cached(registry, context, monkeypatch):
    ref = registry.resolve("dataset", "digits:classes=0-1")
    first = prepare_dataset(ref, registry, 16, 1, context)
    cls = registry.get("dataset", "digits").cls
    monkeypatch.setattr(cls, "load", lambda self: pytest.fail("decoded again despite the cache"))
    second = prepare_dataset(ref, registry, 16, 1, context)
    assert torch.equal(first.images, second.images) and first.content_key == second.content_key


def test_selecting_missing_classes_says_which_exist(registry, context):
    with pytest.raises(GanbenchError, match="selects no images; its classes are 0-9"):
        prepare_dataset(registry.resolve("dataset", "digits:classes=11"), registry, 32, 1, context)


def test_resize_and_channel_conversion():
    images = torch.full((2, 1, 8, 8), 200, dtype=torch.uint8)
    big = resize_images(images, 32)
    assert big.shape == (2, 1, 32, 32) and int(big.min()) == 200 == int(big.max())
    rgb = convert_channels(big, 3)
    assert rgb.shape == (2, 3, 32, 32) and torch.equal(rgb[:, 0], rgb[:, 2])
    assert torch.equal(convert_channels(rgb, 1), big)


# prepares counting-digits into the cache argv[1] once argv[4] exists (data root argv[2], plugins argv[3])
PREPARE = """
import sys, time
from pathlib import Path
from ganbench.data.prepare import prepare_dataset
from ganbench.context import RunContext
from ganbench.plugin.manager import load_registry

context = RunContext.from_environment(cache_dir=sys.argv[1], data_roots=[sys.argv[2]], device="cpu")
registry = load_registry([sys.argv[3]], context)
print("ready", flush=True)
while not Path(sys.argv[4]).exists():
    time.sleep(0.005)
data = prepare_dataset(registry.resolve("dataset", "counting-digits:delay=0.5"), registry, 16, 1, context)
print(data.content_key, flush=True)
"""


@pytest.fixture
def counting(tmp_path):
    """A fresh cache and a data root where counting-digits notes its decodes (``loads.txt``)."""
    (tmp_path / "roots" / "counting-digits").mkdir(parents=True)
    context = RunContext.from_environment(cache_dir=tmp_path / "cache", data_roots=[tmp_path / "roots"], device="cpu")
    return context, tmp_path / "roots" / "counting-digits" / "loads.txt"


def decodes(loads) -> int:
    return len(loads.read_text().splitlines()) if loads.exists() else 0


def test_two_processes_preparing_one_dataset_decode_it_once(tmp_path, counting, fixture_plugins, fixture_registry):
    context, loads = counting
    args = [context.cache_root, tmp_path / "roots", fixture_plugins, tmp_path / "go"]
    code = textwrap.dedent(PREPARE)
    procs = [subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    (tmp_path / "go").touch()
    outputs = [proc.communicate(timeout=120)[0].splitlines() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert decodes(loads) == 1
    waited = [lines[0] for lines in outputs if len(lines) == 2]  # the one that waited said so, in one line
    assert len(waited) == 1 and waited[0].startswith("waiting for process ") and "counting-digits" in waited[0]
    ref = fixture_registry.resolve("dataset", "counting-digits:delay=0.5")
    here = prepare_dataset(ref, fixture_registry, 16, 1, context)
    assert [lines[-1] for lines in outputs] == [here.content_key] * 2 and decodes(loads) == 1


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def other_images(path):
    """Rewrite the entry with one pixel changed, its stored sha256 kept: a hand-edit, or a bit flipped on disk."""
    blob = torch.load(path, weights_only=True)
    blob["images"][0, 0, 0, 0] ^= 1
    torch.save(blob, path)


@pytest.mark.parametrize(
    "damage, why",
    [(truncate, "unreadable: "), (other_images, "its images do not match their sha256")],
    ids=["truncated", "edited"],
)
def test_a_damaged_prepared_file_is_reported_in_one_line_and_rebuilt(counting, fixture_registry, capsys, damage, why):
    context, loads = counting
    ref = fixture_registry.resolve("dataset", "counting-digits")
    first = prepare_dataset(ref, fixture_registry, 16, 1, context)
    path = prepared_path(ref, fixture_registry, 16, 1, context)
    damage(path)
    capsys.readouterr()
    again = prepare_dataset(ref, fixture_registry, 16, 1, context)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"warning: the prepared-data cache file {path} is damaged ({why}")
    assert line.endswith("); rebuilding it")
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert again.content_key == first.content_key and decodes(loads) == 2
    assert prepare_dataset(ref, fixture_registry, 16, 1, context).content_key == first.content_key
    assert decodes(loads) == 2 and capsys.readouterr().out == ""  # the rebuilt entry is whole
