"""`run matrix --dry-run` refuses exactly what the real run refuses, with the same line: every check that
depends only on the inputs (settings, each metric's needs against the sets' sizes, each strategy's options
against the built nets, plugin files that do not load) runs before anything trains, in both. The real runs of
the good grids stop where training would begin (the driver's locked phase is replaced), so nothing trains."""

from __future__ import annotations

import re

import pytest
from tiny_settings import FIXTURE_PLUGINS, TINY_OPTIONS

WRONG_PLUGIN = (
    "import ganbench\n\nclass Wrong:\n    name = 'wrong'\n\n"
    "@ganbench.hookimpl\ndef register_strategies(register):\n    register(Wrong)\n"
)


def _files(tmp_path):
    """Files the bad grids point at: plugin folders with a file that does not parse / registers a non-plugin,
    a config with pairs, one saved as UTF-16."""
    (tmp_path / "typo").mkdir()
    (tmp_path / "typo" / "typo.py").write_text("def broken(:\n")
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "wrong.py").write_text(WRONG_PLUGIN)
    (tmp_path / "pairs.toml").write_text('[grid]\npairs = [["digits:classes=2-4", "tiny-digits"]]\n')
    (tmp_path / "utf16.toml").write_text("[grid]\nshots = [8]\n", encoding="utf-16")


BAD = [
    pytest.param(["--seeds", "99999999999999999999999"], ["seeds must be integers from 0 to 2147483647"],
                 id="seed-overflows"),
    pytest.param(["--seeds=-1"], ["seeds must be integers from 0 to 2147483647, got -1"], id="seed-negative"),
    pytest.param(["--batch-size", "99999999999999999999999"], ["batch_size must be at most 2147483647"],
                 id="size-overflows"),
    pytest.param(["--metrics", "prdc", "--eval-samples", "2"], ["prdc:k=5 needs more than 5 generated",
                 "got 2 generated and 48 reference", "use prdc:k=1"], id="prdc-k-above-eval-samples"),
    pytest.param(["--metrics", "prdc:k=8"], ["prdc:k=8 needs more than 8", "got 8 generated"], id="prdc-k-equal"),
    pytest.param(["--metrics", "prdc", "--select-on", "val", "--val-samples", "5"],
                 ["prdc:k=5 needs more than 5", "and 5 reference"], id="prdc-headline-on-a-small-validation-split"),
    pytest.param(["--shots", "1"], ["memorization needs at least 2 shots", "got 1"], id="memorization-one-shot"),
    pytest.param(["--shots", "48"], ["memorization needs at least 1 target image that is neither a shot"],
                 id="memorization-no-heldout"),
    pytest.param(["--strategy", "freeze-d:layers=99"], ["freeze-d:layers=99 but the discriminator has only 3 "
                 "blocks; use freeze-d:layers <= 3"], id="freeze-d-beyond-blocks"),
    pytest.param(["--strategy", "freeze-g:layers=5"], ["freeze-g:layers=5 but the generator has only 4 blocks"],
                 id="freeze-g-beyond-blocks"),
    pytest.param(["--strategy", "cdc:patch_block=99"], ["cdc:patch_block=99: D block 99 does not output a feature "
                 "map"], id="cdc-patch-block-missing"),
    pytest.param(["--val-samples", "5"], ["--val-samples has no effect without --select-on val",
                 "add --select-on val or drop --val-samples"], id="val-samples-without-select-on-val"),
    pytest.param(["--r1-every", "4"], ["--r1-every has no effect while R1 is off"], id="r1-every-without-r1"),
    pytest.param(["--strategy", "scratch,finetune", "--no-baseline"], ["--baseline has no effect when the strategies "
                 "include scratch", "drop --no-baseline"], id="baseline-with-scratch"),
    pytest.param(["--plugins-dir", "{tmp}/typo"], ["plugin file", "typo.py failed to load: SyntaxError",
                 "fix it or move it out of the plugins folder"], id="plugin-file-does-not-parse"),
    pytest.param(["--plugins-dir", "{tmp}/wrong"], ["plugin file", "wrong.py registered",
                 "not a subclass of ganbench.Strategy"], id="plugin-file-registers-a-non-plugin"),
    pytest.param(["--config", "{tmp}/pairs.toml", "--target", "digits"], ["--target cannot override the config's "
                 "pairs"], id="target-against-config-pairs"),
    pytest.param(["--config", "{tmp}/utf16.toml"], ["utf16.toml is UTF-16 text; save it as UTF-8"],
                 id="config-utf-16"),
]  # fmt: skip

GOOD = [
    pytest.param([], id="tiny-grid"),
    pytest.param(["--strategy", "freeze-d:layers=3,freeze-g:layers=4,cdc"], id="strategies-at-their-limits"),
    pytest.param(["--metrics", "fid,prdc:k=7", "--shots", "2"], id="prdc-k-below-eval-samples"),
    pytest.param(["--select-on", "val", "--val-samples", "4"], id="validation-split"),
]  # fmt: skip


def _run(invoke, tmp_path, args, *, dry: bool):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    mode = ["--dry-run"] if dry else ["--quiet"]
    return invoke("run", "matrix", *TINY_OPTIONS, "--plugins-dir", FIXTURE_PLUGINS, *args, *mode,
                  "--out", tmp_path / "runs")  # fmt: skip


@pytest.mark.parametrize(("args", "fragments"), BAD)
def test_the_dry_run_refuses_what_the_real_run_refuses(tmp_path, args, fragments, invoke, assert_one_line_error):
    _files(tmp_path)
    dry, real = _run(invoke, tmp_path, args, dry=True), _run(invoke, tmp_path, args, dry=False)
    assert_one_line_error(dry, *fragments)
    assert_one_line_error(real, *fragments)
    assert dry.output == real.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args", GOOD)
def test_the_dry_run_accepts_what_the_real_run_accepts(tmp_path, args, invoke, monkeypatch):
    from ganbench.execute import driver

    reached = []

    def training_would_start(plan, *rest):  # the real run got past every check
        reached.append(len(plan.cells))
        return driver.RunSummary(plan.run_dir, plan.cells, [], skipped=0)

    monkeypatch.setattr(driver, "_run_locked", training_would_start)
    dry, real = _run(invoke, tmp_path, args, dry=True), _run(invoke, tmp_path, args, dry=False)
    assert dry.exit_code == 0 and "Nothing was run." in dry.output, dry.output
    assert real.exit_code == 0, real.output
    cells = int(re.search(r"(\d+) cells -> ", dry.output).group(1))
    assert reached == [cells] and "Error" not in dry.output + real.output
