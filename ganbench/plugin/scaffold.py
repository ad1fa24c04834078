"""``ganbench new strategy NAME``: a working, commented one-file strategy plugin and a test for it."""

from __future__ import annotations

from pathlib import Path

from ganbench.errors import GanbenchError
from ganbench.plugin.manager import load_registry
from ganbench.plugin.options import valid_name

PLUGIN = '''"""{name}: a transfer strategy for ganbench (written by `ganbench new strategy {name}`).

Run it:    ganbench run matrix --plugins-dir {folder} --strategy {name}
Check it:  python -m pytest {folder}
"""

import ganbench
from ganbench import Option


class {cls}(ganbench.Strategy):
    """Fine-tune from the source with G's first `freeze` blocks frozen and an L2 pull of G to the source."""

    # The name used on the command line and in results. Lowercase letters, digits and '-'.
    name = "{name}"

    # Options are given as NAME:key=value,... (e.g. --strategy {name}:freeze=1,weight=0.01). Each has a type
    # and a default, so an unknown key or a bad value is refused before anything runs.
    options = (
        Option("freeze", int, 0, "G blocks, from the latent side, kept frozen"),
        Option("weight", float, 0.0, "weight of the L2 pull of G's weights towards the source"),
    )

    # Set to False for a strategy that starts from random weights: no source model is pretrained for it.
    uses_source = True

    def adapt(self, nets, source):
        """Called once per cell before training, with fresh nets and the (read-only) source checkpoint.
        Load weights, set requires_grad, add modules; return the nets to train."""
        nets = super().adapt(nets, source)  # loads the source weights into G and D
        ganbench.freeze_first(nets.G.blocks, self.config["freeze"], "the generator", "{name}:freeze")
        # copies of G's source weights for the penalty below (never modify `source` itself)
        self.anchor = {{n: p.detach().clone() for n, p in nets.G.named_parameters()}}
        return nets

    def generator_loss(self, nets, step):
        """Added to G's adversarial loss at every step (step.real, step.z, step.fake); None adds nothing."""
        if self.config["weight"] == 0:
            return None
        drift = sum(((p - self.anchor[n]) ** 2).sum() for n, p in nets.G.named_parameters() if p.requires_grad)
        return self.config["weight"] * drift

    # Also available (see docs/plugin-hooks.md):
    #   def discriminator_loss(self, nets, step): ...   an extra term for D's loss
    #   def param_groups(self, net, which): ...         optimizer groups of G or D; a group's "lr_mult" scales the lr
    #   def needs(self): ...                            features the loop hands over in `step` (ganbench.Needs)
    #   def modules(self): ...                          extra trainable modules (ganbench.StrategyModule)
    #   def begin_step(self, step, z): ...              the latents each step trains on (default: z)


@ganbench.hookimpl
def register_strategies(register):
    register({cls})
'''

TEST = '''"""Tests for the {name} strategy (written by `ganbench new strategy {name}`): python -m pytest {folder}"""

from pathlib import Path

import ganbench
from ganbench.testing import check_strategy

HERE = Path(__file__).parent


def test_{module}_passes_the_conformance_checks():
    registry = ganbench.load_registry([HERE])
    strategy = registry.create(registry.resolve("strategy", "{name}:freeze=1,weight=0.01"))
    counts = check_strategy(strategy)  # shapes, finite losses, frozen weights stay, determinism, ...
    assert 0 < counts["trainable"] < counts["total"]
'''


def new_strategy(name: str, folder: str | Path = ".") -> list[Path]:
    """Write ``<folder>/<name>.py`` and ``<folder>/test_<name>.py``; refuses to overwrite anything."""
    if not valid_name(name):
        raise GanbenchError(
            f"'{name}' is not a valid plugin name: use lowercase letters, digits and single '-' (e.g. 'my-strategy')"
        )
    registry = load_registry()
    if name in registry.names("strategy"):
        origin = registry.get("strategy", name).origin
        raise GanbenchError(f"a strategy named '{name}' already exists ({origin}); choose another name")
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    folder = Path(folder)
    files = {folder / f"{module}.py": PLUGIN, folder / f"test_{module}.py": TEST}
    for path in files:
        if path.exists():
            raise GanbenchError(f"{path} already exists; remove it or choose another name or --dir")
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, template in files.items():
            path.write_text(template.format(name=name, module=module, cls=cls, folder=folder))
            written.append(path)
    except OSError as exc:
        for path in written:  # the plugin without its test (or the reverse) is no use: leave nothing half-written
            path.unlink(missing_ok=True)
        raise GanbenchError(
            f"cannot write into {folder}: {exc.strerror or exc}; give --dir a folder you can write to"
        ) from None
    return list(files)
