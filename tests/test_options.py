"""Options mean what they say: the command line overrides the config for every field, settings that would do
nothing are refused (or, switched off from the command line, ignored with a warning), and any config file
(Hypothesis-generated: encodings, wrong types, unknown and duplicate keys, nested tables, empty files, huge
ints, NaN, lists for scalars and back) gives the grid it says or one line naming the file or the key."""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_settings import FIXTURE_PLUGINS, TINY_GRID

from ganbench.errors import GanbenchError
from ganbench.grid.config import INT_MAX, Grid, load_config, make_grid

# ------------------------------------------------------------------------------------ the command line wins


def _config(tmp_path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_every_grid_setting_given_on_the_command_line_overrides_the_config(tmp_path):
    """Each field set in the config to one value and on the command line to another: the command line's wins."""
    pairs = {  # field -> (config value, command-line value as click passes it, what the grid holds)
        "name": ("a", "b", "b"), "arch": (["dcgan"], "resnet-sngan", ["resnet-sngan"]),
        "strategy": (["finetune"], "adapter", ["adapter"]), "source": (["digits"], "mnist5k", ["mnist5k"]),
        "target": (["digits"], "mnist5k", ["mnist5k"]), "shots": ([5], "7,8", [7, 8]), "seeds": ([1], "2", [2]),
        "metrics": (["fid"], "kid", ["kid"]), "augment": (["none"], "ada", ["ada"]), "baseline": (True, False, False),
        "resolution": (32, 64, 64), "channels": (1, 3, 3), "pretrain_steps": (5, 6, 6), "finetune_steps": (5, 6, 6),
        "batch_size": (5, 6, 6), "lr": (0.1, 0.2, 0.2), "eval_samples": (5, 6, 6), "eval_every": (5, 6, 6),
        "reference": ("all", "heldout", "heldout"), "reference_samples": (10, 20, 20), "select_on": ("final", "val", "val"),
        "val_samples": (0, 5, 5), "optimizer": ("stylegan2", "dcgan", "dcgan"), "betas": ([0.1, 0.2], "0.3,0.4", [0.3, 0.4]),
        "ema": (0.5, 0.9, 0.9), "r1_gamma": (1.0, 2.0, 2.0), "r1_every": (4, 8, 8), "precision": ("fp32", "bf16", "bf16"),
        "channels_last": (False, True, True), "compile": (False, True, True),
    }  # fmt: skip
    assert set(pairs) == {f.name for f in fields(Grid)} - {"pairs"}  # every field (pairs: below)
    config = {key: config_value for key, (config_value, _, _) in pairs.items()}
    grid = make_grid(config, **{key: cli for key, (_, cli, _) in pairs.items()})
    for key, (_, _, expected) in pairs.items():
        assert getattr(grid, key) == expected, key


@pytest.mark.parametrize(
    ("config", "overrides", "fragments"),
    [
        pytest.param('pairs = [["digits", "mnist5k"]]', {"target": "digits"},
                     ["--target cannot override the config's pairs", "remove them from it"], id="target-vs-pairs"),
        pytest.param('pairs = [["digits", "mnist5k"]]', {"source": "digits", "target": "mnist5k"},
                     ["--source / --target cannot override the config's pairs"], id="both-vs-pairs"),
        pytest.param('pairs = [["digits", "mnist5k"]]\nsource = ["digits"]', {},
                     ["the config sets both pairs and source", "would be ignored; keep one"], id="pairs-and-source"),
        pytest.param("val_samples = 10", {}, ["the config's val_samples has no effect without select_on = \"val\"",
                     "set select_on = \"val\" or drop val_samples"], id="config-val-samples-alone"),
        pytest.param("", {"val_samples": 10}, ["--val-samples has no effect without --select-on val"],
                     id="cli-val-samples-alone"),
        pytest.param('select_on = "final"', {"val_samples": 10}, ["--val-samples has no effect"],
                     id="cli-val-samples-against-config-select-on"),
        pytest.param("r1_every = 4", {}, ["the config's r1_every has no effect while R1 is off (r1_gamma = 0)"],
                     id="r1-every-without-r1"),
        pytest.param('strategy = ["scratch", "finetune"]\nbaseline = false', {},
                     ["the config's baseline has no effect when the strategies include scratch"], id="baseline"),
        pytest.param("[grid]\nseeds = [99999999999999999999999]", {}, ["seeds must be integers from 0 to 2147483647"],
                     id="seed-overflow"),
        pytest.param("seeds = [-1]", {}, ["seeds must be integers from 0 to 2147483647, got -1"], id="seed-negative"),
        pytest.param("r1_gamma = nan", {}, ["r1_gamma must be a finite number"], id="r1-gamma-nan"),
        pytest.param('name = "tab\\there"', {}, ["must be a plain folder name", "printable"], id="name-control"),
        pytest.param(f'name = "{"n" * 201}"', {}, ["at most 200 bytes"], id="name-too-long"),
        pytest.param("name = 5", {}, ["name must be text, got 5"], id="name-number"),
        pytest.param('betas = "a,b"', {}, ["betas must be two numbers, e.g. 0,0.99, got 'a,b'"], id="betas-text"),
        pytest.param('pairs = [[1, 2]]', {}, ["pairs must be a list of [source, target]"], id="pairs-numbers"),
        pytest.param("pairs = []", {}, ["pairs must be a list of [source, target]"], id="pairs-empty"),
        pytest.param('optimizer = ["dcgan"]', {}, ["unknown optimizer preset ['dcgan']"], id="optimizer-list"),
    ],
)  # fmt: skip
def test_settings_that_cannot_apply_are_refused_in_one_line(tmp_path, config, overrides, fragments):
    with pytest.raises(GanbenchError) as caught:
        make_grid(load_config(_config(tmp_path, config)), **overrides)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_config_setting_the_command_line_switches_off_is_ignored_with_a_warning(tmp_path, invoke):
    """A config as a template: its validation split, with --select-on final given, would only shrink the reference;
    it is dropped (the cells are those of the same grid without it) and the warning says so."""
    path = _config(tmp_path, '[grid]\nselect_on = "val"\nval_samples = 10\nr1_gamma = 1.0\nr1_every = 4\n')
    told = []
    grid = make_grid(load_config(path), warn=told.append, select_on="final", r1_gamma=0.0)
    assert grid.val_samples == 0 and grid.r1_every == Grid().r1_every
    assert told == ["the config's val_samples has no effect with --select-on final: ignored",
                    "the config's r1_every has no effect with --r1-gamma 0.0: ignored"]  # fmt: skip
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_GRID.items()]
    result = invoke("run", "matrix", "--config", path, *tiny, "--plugins-dir", FIXTURE_PLUGINS, "--select-on", "final",
                    "--dry-run", "--out", tmp_path / "runs")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Warning: the config's val_samples has no effect with --select-on final: ignored" in result.stderr
    plain = invoke("run", "matrix", *tiny, "--plugins-dir", FIXTURE_PLUGINS, "--r1-gamma", "1", "--r1-every", "4",
                   "--name", "grid",
                   "--dry-run", "--out", tmp_path / "runs")  # fmt: skip
    assert _run_dir(result.stdout) == _run_dir(plain.stdout)  # the same cells, so the same run folder


# what the property test below found in the first version (each an internal error, a refusal of a good file or a
# setting silently ignored), kept as plain cases
@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param("[grid]\nshots = [8]\n".encode("utf-16"), ["is UTF-16 text; save it as UTF-8"], id="utf-16"),
        pytest.param('[grid]\nname = "grïd"\n'.encode("latin-1"), ["is not UTF-8 text (byte 17 is 0xef)"],
                     id="latin-1"),
        pytest.param(b"stray = 1\n[grid]\nshots = [8]\n", ["settings outside its [grid] table (stray)",
                     "put every setting under [grid]"], id="key-outside-the-grid-table"),
    ],
)  # fmt: skip
def test_config_files_the_property_test_found_refused(tmp_path, data, fragments, invoke, assert_one_line_error):
    path = tmp_path / "grid.toml"
    path.write_bytes(data)
    result = invoke("run", "matrix", "--config", path, "--dry-run", "--out", tmp_path / "runs")
    assert_one_line_error(result, str(path), *fragments)
    assert not (tmp_path / "runs").exists()


def test_a_config_with_a_utf8_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_bytes(b"\xef\xbb\xbf[grid]\nshots = [8]\n")
    assert make_grid(load_config(path)).shots == [8]


def test_pairs_given_over_a_config_with_source_and_target_replace_them():
    grid = make_grid({"source": ["digits"], "target": ["mnist5k"]}, pairs=[["mnist5k", "digits"]])
    assert grid.pair_list() == [("mnist5k", "digits")]


def test_the_largest_seed_works_wherever_seeds_go():
    """Seeds reach torch's and NumPy's generators with offsets added (the evaluation latents: 1,000,003 + seed)."""
    import numpy as np
    import torch

    from ganbench.execute.cell import EVAL_SEED
    from ganbench.execute.evaluation import POOL_SEED

    assert make_grid(None, seeds=str(INT_MAX)).seeds == [INT_MAX]
    for seed in (INT_MAX + max(EVAL_SEED, POOL_SEED + 1, 1), 0):
        torch.Generator().manual_seed(seed)
        np.random.seed(seed)


# ------------------------------------------------------------------------------- configs, generated at random

TINY_SHOWN = {"pretrain_steps": 10, "finetune_steps": 4, "batch_size": 4, "eval_samples": 8, "eval_every": 2,
              "shots": [8], "seeds": [0]}  # fmt: skip
# good values: ones the tiny grid can run (its data prepared as it is, so a dry run stays cheap)
GOOD = {
    "name": st.sampled_from(["small", "grïd", "a b", "x" * 200]),
    "shots": st.one_of(st.integers(2, 40), st.lists(st.integers(2, 40), min_size=1, max_size=3)),
    "seeds": st.one_of(st.integers(0, 3), st.just(INT_MAX), st.lists(st.integers(0, 3), min_size=1, max_size=2)),
    "pretrain_steps": st.integers(1, INT_MAX),
    "finetune_steps": st.integers(1, INT_MAX),
    "batch_size": st.integers(1, 64),
    "eval_samples": st.integers(6, 12),
    "eval_every": st.integers(0, 10),
    "lr": st.floats(1e-5, 1.0),
    "strategy": st.lists(st.sampled_from(["finetune", "freeze-d:layers=1", "freeze-g"]), min_size=1, max_size=2,
                         unique=True),
}  # fmt: skip
WRONG_INT = [True, 2.5, "abc", [1], {"a": 1}, 10**30, -5, math.nan, math.inf]
BAD = {
    **{key: st.sampled_from(WRONG_INT) for key in ("pretrain_steps", "finetune_steps", "batch_size", "eval_samples",
                                                   "eval_every", "resolution", "channels")},
    "shots": st.sampled_from([True, 2.5, "abc", [[1]], {"a": 1}, [10**30], [-5], math.nan, [], [1.5], [0]]),
    "seeds": st.sampled_from([True, "abc", [[1]], {"a": 1}, [10**30], [-1], math.nan, [], [1.5], 2**31]),
    "lr": st.sampled_from([True, "fast", [0.1], {"a": 1}, math.nan, math.inf, -1.0, 0]),
    "strategy": st.sampled_from([3, [1, 2], {"a": 1}, [], [{"name": "x"}], True, "", "nope", ["freeze-d:layers=99"]]),
    "name": st.sampled_from([5, ["a"], {"a": 1}, "", ".hidden", "a/b", "x" * 201, "tab\there"]),
    "baseline": st.sampled_from(["yes", 1, [True]]),
    "select_on": st.sampled_from(["best", 1, ["val"]]),
    "shot": st.integers(),  # unknown keys: misspelt, or of another program
    "colour": st.text(max_size=3),
}  # fmt: skip


def _toml(value) -> str:
    """A value as TOML writes it (strings as JSON's escapes, which TOML's basic strings share)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"


@st.composite
def configs(draw):
    """(file bytes, {key: value} of the good settings, the bad keys, whether the file itself is bad): about half
    the files good, the others with a bad value or two, or bad as a file."""
    good = draw(st.dictionaries(st.sampled_from(sorted(GOOD)), st.none(), max_size=4))
    good = {key: draw(GOOD[key]) for key in good}
    wrong = draw(st.sampled_from(["none", "none", "value", "values", "file"]))
    bad = {}
    if wrong in ("value", "values"):
        for key in draw(st.lists(st.sampled_from(sorted(BAD)), min_size=1, max_size=1 if wrong == "value" else 2)):
            bad[key] = draw(BAD[key])
            good.pop(key, None)
    entries = list({**good, **bad}.items())
    header = draw(st.booleans())
    lines = ["[grid]"] if header else []
    lines += [f"{key} = {_toml(value)}" for key, value in entries]
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"] if wrong == "file" else
                                    ["utf-8", "utf-8-sig", "latin-1"]))  # fmt: skip
    file_bad = encoding == "utf-16"
    if wrong == "file" and not file_bad:
        how = draw(st.sampled_from(["twice", "table", "stray"] if entries else ["table", "stray"]))
        if how == "twice":  # a key twice
            lines.append(lines[-1])
        elif how == "table":  # a table inside: an unknown setting
            lines += ["[grid.extra]" if header else "[extra]", "x = 1"]
            bad["extra"] = None
        else:  # a setting outside [grid]
            lines = ["stray = 1", *(lines if header else ["[grid]", *lines])]
        file_bad = how != "table"
    text = "\n".join(lines) + ("\n" if lines else "")
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:  # not every text has a latin-1 form
        data, encoding = text.encode("utf-8"), "utf-8"
    file_bad |= encoding == "latin-1" and not text.isascii()
    return data, good, set(bad), file_bad


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _run_dir(output: str) -> str:
    return Path(re.search(r"cells -> (.+?) \(device", output).group(1)).name


CASES: list[str] = []  # what each generated case came to, for the report


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=configs())
def test_any_config_gives_its_grid_or_one_line_naming_the_file_or_the_key(case, invoke, tmp_path_factory):
    data, good, bad, file_bad = case
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    path = folder / "cfg.toml"
    path.write_bytes(data)
    (folder / "runs").mkdir()
    (folder / "runs" / "kept.txt").write_text("written before")
    unset = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_GRID.items() if k not in good and k not in bad]
    result = invoke("run", "matrix", "--config", path, *unset, "--plugins-dir", FIXTURE_PLUGINS, "--dry-run",
                    "--out", folder / "runs")  # fmt: skip
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert sorted(p.name for p in (folder / "runs").iterdir()) == ["kept.txt"]
    assert (folder / "runs" / "kept.txt").read_text() == "written before" and path.read_bytes() == data
    if file_bad or bad:
        CASES.append("refused")
        assert result.exit_code == 2, (data, result.output)
        [line] = result.output.strip().splitlines()
        named = [str(path), *bad, *(f"--{k.replace('_', '-')}" for k in bad)]
        assert line.startswith("Error: ") and any(n in line for n in named), (data, line)
        return
    CASES.append("accepted")
    assert result.exit_code == 0, (data, result.output)
    expected = {**TINY_SHOWN, **good}
    budget = (f"budgets: pretrain {expected['pretrain_steps']} steps, fine-tune {expected['finetune_steps']} steps, "
              f"batch {expected['batch_size']}, {expected['eval_samples']} samples per evaluation every "
              f"{expected['eval_every'] or expected['finetune_steps']} steps")  # fmt: skip
    assert budget in result.output, result.output
    assert _run_dir(result.output).startswith(f"{good.get('name', 'cfg')}-")
    grid = make_grid(load_config(path), **{k: v for k, v in TINY_GRID.items() if k not in good})
    assert grid.shots == _as_list(expected["shots"]) and grid.seeds == _as_list(expected["seeds"])
    assert grid.lr == good.get("lr", Grid().lr) and grid.strategy == good.get("strategy", Grid().strategy)
