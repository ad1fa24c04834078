import textwrap

import pytest

from ganbench.errors import GanbenchError
from ganbench.plugin.manager import load_registry
from ganbench.plugin.registry import BrokenPluginError

BUILTINS = {
    "architecture": {"dcgan"},
    "strategy": {"scratch", "finetune", "freeze-d", "adapter"},
    "dataset": {"mnist5k", "digits"},
    "metric": {"fid", "kid"},
}


def test_builtins_load_through_entry_points(registry):
    for kind, names in BUILTINS.items():
        assert names <= set(registry.names(kind)), kind
        for name in names:
            origin = registry.get(kind, name).origin
            assert origin.distribution == "ganbench"
            assert origin.module.startswith("ganbench_plugins.")
            assert origin.file is None
    assert registry.load_errors == []


def _write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


STRATEGY = """
    import ganbench

    class {cls}(ganbench.Strategy):
        \"\"\"A local strategy.\"\"\"
        name = "{name}"

    @ganbench.hookimpl
    def register_strategies(register):
        register({cls})
"""


def test_plugins_dir_file_is_discovered_with_its_file_origin(tmp_path):
    path = _write(tmp_path, "mine.py", STRATEGY.format(cls="Mine", name="mine"))
    registry = load_registry([tmp_path])
    entry = registry.get("strategy", "mine")
    assert entry.origin.file == str(path)
    assert "finetune" in registry.names("strategy")


def test_plugins_dir_from_environment(tmp_path, monkeypatch):
    _write(tmp_path, "envplug.py", STRATEGY.format(cls="EnvPlug", name="env-plug"))
    monkeypatch.setenv("GANBENCH_PLUGINS_DIR", str(tmp_path))
    assert "env-plug" in load_registry().names("strategy")


def test_duplicate_name_names_both_origins(tmp_path):
    path = _write(tmp_path, "clash.py", STRATEGY.format(cls="Clash", name="finetune"))
    with pytest.raises(GanbenchError) as err:
        load_registry([tmp_path])
    message = str(err.value)
    assert "two plugins register the strategy 'finetune'" in message
    assert "ganbench_plugins.strategies.finetune" in message and str(path) in message


def test_duplicate_between_two_local_files(tmp_path):
    _write(tmp_path, "a_one.py", STRATEGY.format(cls="One", name="same"))
    _write(tmp_path, "b_two.py", STRATEGY.format(cls="Two", name="same"))
    with pytest.raises(GanbenchError, match=r"a_one\.py and file .*b_two\.py"):
        load_registry([tmp_path])


def test_broken_plugin_is_reported_and_the_rest_load(tmp_path):
    _write(tmp_path, "broken.py", "import ganbench\nraise ImportError('missing dependency xyz')\n")
    registry = load_registry([tmp_path])
    assert "finetune" in registry.names("strategy")
    [(origin, message)] = registry.load_errors
    assert origin.file.endswith("broken.py") and "missing dependency xyz" in message
    with pytest.raises(GanbenchError, match="broken.py failed to load"):
        registry.get("strategy", "from-broken")


def test_misspelt_hook_fails_loudly(tmp_path):
    _write(tmp_path, "typo.py", "import ganbench\n\n@ganbench.hookimpl\ndef register_strategy(register):\n    pass\n")
    with pytest.raises(GanbenchError, match=r"typo\.py.*register_strategies"):
        load_registry([tmp_path])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("class Nope:\n    name = 'nope'\n", "not a subclass of ganbench.Strategy"),
        ("class Nope(ganbench.Strategy):\n    name = 'nope'\n    options = (ganbench.Option('k', int, -1, check=at_least(0)),)\n",
         "declaring option 'k' with an invalid default -1 (must be >= 0)"),
        ("class Nope(ganbench.Strategy):\n    name = 'nope'\n    options = ('k',)\n", "which is not a ganbench.Option"),
    ],
)  # fmt: skip
def test_a_plugin_that_registers_badly_is_unusable_but_the_rest_load(tmp_path, body, fragment):
    code = "import ganbench\nfrom ganbench import at_least\n\n" + body
    code += "\n@ganbench.hookimpl\ndef register_strategies(register):\n    register(Nope)\n"
    _write(tmp_path, "badplugin.py", code)
    registry = load_registry([tmp_path])
    assert "finetune" in registry.names("strategy") and "nope" not in registry.names("strategy")
    [(origin, message)] = registry.load_errors
    assert origin.file.endswith("badplugin.py") and fragment in message
    with pytest.raises(BrokenPluginError, match=r"strategy 'nope' is unusable: file .*badplugin\.py registered"):
        registry.get("strategy", "nope")


def test_invalid_name_is_a_load_error(tmp_path):
    _write(tmp_path, "badname.py", STRATEGY.format(cls="Bad", name="Bad Name"))
    registry = load_registry([tmp_path])
    [(origin, message)] = registry.load_errors
    assert "invalid name 'Bad Name'" in message


def test_blame_names_the_plugin_whose_method_raised(fixture_registry):
    from ganbench.testing import tiny_nets

    explodes = fixture_registry.create(fixture_registry.resolve("strategy", "explodes"))
    with pytest.raises(RuntimeError) as err:
        explodes.adapt(tiny_nets(), None)
    entry = fixture_registry.blame(err.value.__traceback__)
    # the fixture module registers a dataset and two strategies: the method's owner decides
    assert (entry.kind, entry.name) == ("strategy", "explodes")
    assert entry.origin.file.endswith("tiny_fixture.py")
    assert fixture_registry.blame(None) is None


def test_missing_plugins_dir_is_an_error(tmp_path):
    with pytest.raises(GanbenchError, match="does not exist"):
        load_registry([tmp_path / "nowhere"])
