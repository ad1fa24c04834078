"""Every code block of docs/writing-a-strategy.md, run in order in a fresh folder.

Python and TOML blocks start with a `# path` comment: files under examples/ must match the repository's
copy exactly; the others are written to that path. Bash lines are run: `ganbench` through click's runner
(a `run matrix` line with `--dry-run` added, since the full default budget takes minutes: a tiny real run
of the same strategy follows), `python -m pytest` in a subprocess; `pip install` of the example package is
checked as installed (the README's install line and .ci/run install it)."""

import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner

from ganbench.cli import cli
from ganbench.execute.driver import run_matrix
from ganbench.grid.config import make_grid

ROOT = Path(__file__).parents[1]
DOC = (ROOT / "docs" / "writing-a-strategy.md").read_text()
FIXTURES = Path(__file__).parent / "plugins_fixture"


def _blocks():
    return re.findall(r"```(\w+)\n(.*?)```", DOC, flags=re.S)


def _run_bash_line(line, cwd):
    args = shlex.split(line)
    if args[0] == "ganbench":
        if args[1:3] == ["run", "matrix"] and "--dry-run" not in args:
            args.append("--dry-run")
        result = CliRunner().invoke(cli, args[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
        return result.output
    if args[:3] == [sys.executable.rsplit("/", 1)[-1], "-m", "pytest"] or args[:3] == ["python", "-m", "pytest"]:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args[3:]],
                             cwd=cwd, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout
    if args[:3] == ["pip", "install", "-e"]:
        assert (ROOT / args[3] / "pyproject.toml").is_file()
        metadata.distribution(Path(args[3]).name)  # installed (raises if not)
        return ""
    raise AssertionError(f"the test does not know how to run: {line}")


def test_every_block_of_the_tutorial_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench,ganbench-l2sp")
    outputs = []
    for language, code in _blocks():
        if language in ("python", "toml"):
            header, _, body = code.partition("\n")
            path = header.removeprefix("# ").strip()
            if path.startswith("examples/"):
                assert (ROOT / path).read_text() == body, path
            else:
                (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / path).write_text(code)
        else:
            assert language == "bash"
            outputs += [_run_bash_line(line, tmp_path) for line in code.splitlines() if line.strip()]
    joined = "\n".join(outputs)
    assert "top-g" in joined and "my_plugins/top_g.py" in joined  # `ganbench plugins` shows it and its origin
    assert "ganbench_l2sp (ganbench-l2sp 0.1.0)" in joined
    assert "1 passed" in joined  # the tutorial's test file
    assert "feature-match" in joined


def test_the_tutorial_feature_strategy_passes_check_strategy_and_reads_the_loop_passes(tmp_path):
    import torch

    from ganbench.plugin.manager import load_registry
    from ganbench.testing import check_strategy, fake_images, fake_source, step_infos, tiny_nets

    (tmp_path / "my_plugins").mkdir()
    [code] = [c for lang, c in _blocks() if lang == "python" and c.startswith("# my_plugins/feature_match.py")]
    (tmp_path / "my_plugins" / "feature_match.py").write_text(code)
    registry = load_registry([tmp_path / "my_plugins"])
    strategy = registry.create(registry.resolve("strategy", "feature-match:block=1"))
    counts = check_strategy(strategy)
    assert counts["trainable"] == counts["total"]
    nets = strategy.adapt(tiny_nets(), fake_source())
    real = fake_images(4, seed=1).float() / 127.5 - 1
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(0))
    d_step, g_step = step_infos(strategy, nets, real, z)
    # the G step's fake features are D's block 1 on G(z), attached to G; the real ones are the D step's, detached
    expected = nets.D.blocks[1](nets.D.blocks[0](real))
    torch.testing.assert_close(g_step.d_real.features[1], expected.detach())
    assert not g_step.d_real.features[1].requires_grad and g_step.d_fake.features[1].requires_grad
    loss = strategy.generator_loss(nets, g_step)
    loss.backward()
    assert nets.G.blocks[0][0].weight.grad.abs().sum() > 0
    assert d_step.d_fake.features[1].grad_fn is not None and d_step.phase == "d" and g_step.phase == "g"


def test_the_tutorial_strategy_trains_in_a_grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_plugins").mkdir()
    [code] = [c for lang, c in _blocks() if lang == "python" and c.startswith("# my_plugins/top_g.py")]
    (tmp_path / "my_plugins" / "top_g.py").write_text(code)
    grid = make_grid(
        arch="dcgan:width=8", strategy="top-g:blocks=2,head_pull=0.1", source="digits:classes=2-4", target="tiny-digits",
        shots="8", pretrain_steps=10, finetune_steps=4, batch_size=4, eval_samples=8, eval_every=0, baseline=False,
    )  # fmt: skip
    summary = run_matrix(grid, tmp_path / "runs", plugins_dirs=[tmp_path / "my_plugins", FIXTURES], progress=False)
    [record] = summary.records
    assert record["status"] == "ok", record.get("error")
    assert record["trainable_g"] < record["total_g"] and record["trainable_d"] == record["total_d"]
