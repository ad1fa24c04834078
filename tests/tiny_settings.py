"""Settings the end-to-end tests share, importable from any test module (``from tiny_settings import ...``:
pytest puts this folder on the path), unlike the conftest files, whose module name several folders share."""

from pathlib import Path

FIXTURE_PLUGINS = Path(__file__).parent / "plugins_fixture"

# The tiny grid most end-to-end tests run: a 48-image target (cheap reference statistics), 4 fine-tuning steps.
TINY_GRID = {
    "arch": "dcgan:width=8", "source": "digits:classes=2-4", "target": "tiny-digits", "shots": 8, "seeds": "0",
    "pretrain_steps": 10, "finetune_steps": 4, "batch_size": 4, "eval_samples": 8, "eval_every": 2,
}  # fmt: skip
# The same as command-line options.
TINY_OPTIONS = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_GRID.items()]

# Architecture options that make every built-in architecture tiny (each takes the keys it declares).
TINY_ARCH_OPTIONS = {"width": 4, "d_width": 4, "z_dim": 8, "w_dim": 8, "generator_width": 4, "head_width": 4,
                     "style_dim": 8, "n_mlp": 2}  # fmt: skip

# Strategy options that keep every strategy's own phases tiny in the every-strategy tests (probing steps, Fisher
# samples): each strategy takes the keys it declares, and runs at its defaults otherwise.
TINY_STRATEGY_OPTIONS = {"probe_steps": 2, "fisher_samples": 4}


def tiny_strategy(entry):
    """A registry entry's strategy with the tiny options it declares."""
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY_STRATEGY_OPTIONS.items() if k in declared})
