import pytest

from ganbench.errors import GanbenchError
from ganbench.plugin.options import format_int_set, parse_int_set, parse_spec, split_spec_list


def test_parse_spec_keeps_values_as_text():
    assert parse_spec("freeze-d:layers=2") == ("freeze-d", {"layers": "2"})
    assert parse_spec(" adapter : rank=4 , alpha=2 ") == ("adapter", {"rank": "4", "alpha": "2"})
    assert parse_spec("scratch") == ("scratch", {})


def test_parse_spec_rejects_option_without_value():
    with pytest.raises(GanbenchError, match="key=value"):
        parse_spec("freeze-d:layers")


def test_split_spec_list_keeps_option_commas_with_their_spec():
    text = "freeze-d:layers=2,adapter:rank=4,alpha=2,scratch"
    assert split_spec_list(text) == ["freeze-d:layers=2", "adapter:rank=4,alpha=2", "scratch"]


@pytest.mark.parametrize(("text", "values"), [("0-4", (0, 1, 2, 3, 4)), ("1-3+7", (1, 2, 3, 7)), ("5", (5,))])
def test_int_sets_round_trip(text, values):
    assert parse_int_set(text) == values
    assert format_int_set(values) == text


@pytest.mark.parametrize("bad", ["4-0", "a-b", ""])
def test_int_set_rejects_bad_text(bad):
    with pytest.raises(ValueError):
        parse_int_set(bad)


def test_resolve_fills_defaults_and_types_values(registry):
    ref = registry.resolve("strategy", "freeze-d:layers=3")
    assert ref.config == {"layers": 3}
    assert ref.label == "freeze-d:layers=3"
    default = registry.resolve("strategy", "freeze-d")
    assert default.config == {"layers": 2}
    # the default written out is the same cell as the default left out
    assert default == registry.resolve("strategy", "freeze-d:layers=2")
    assert default.label == "freeze-d" and default.canonical == "freeze-d:layers=2"


def test_unknown_name_lists_closest_first(registry):
    with pytest.raises(GanbenchError) as err:
        registry.resolve("strategy", "frezee-d")
    message = str(err.value)
    assert "did you mean 'freeze-d'?" in message
    assert message.index("freeze-d,") < message.index("scratch")
    assert "\n" not in message


def test_unknown_option_lists_declared_options(registry):
    with pytest.raises(GanbenchError, match=r"strategy 'adapter' has no option 'rnak'; its options: rank \(int\)"):
        registry.resolve("strategy", "adapter:rnak=4")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [("freeze-d:layers=two", "expected an integer"), ("freeze-d:layers=-1", "must be >= 0"),
     ("adapter:alpha=x", "expected a number"), ("mnist5k:classes=9-1", "runs backwards")],
)  # fmt: skip
def test_bad_values_say_why(registry, spec, reason):
    kind = "dataset" if spec.startswith("mnist") else "strategy"
    with pytest.raises(GanbenchError, match=reason):
        registry.resolve(kind, spec)


def test_wildcard_listing(registry):
    assert registry.names("strategy", "freeze-*") == ["freeze-d", "freeze-g"]
    assert registry.names("dataset", "mnist*") == ["mnist", "mnist5k"]
    assert {"digits", "mnist5k"} <= set(registry.names("dataset"))


@pytest.mark.parametrize("spec", ["mnist5k", "mnist5k:classes=0-4", "digits:classes=1-3+7"])
def test_canonical_and_label_resolve_back_to_the_same_ref(registry, spec):
    ref = registry.resolve("dataset", spec)
    assert registry.resolve("dataset", ref.canonical) == ref
    assert registry.resolve("dataset", ref.label) == ref
