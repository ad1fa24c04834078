"""Sources loaded from rosinality-format checkpoint files: key-for-key loading that reproduces the saved nets'
images, the file's sha256 in the cell identity and the record, one-line errors for files that do not fit."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from tiny_settings import FIXTURE_PLUGINS, TINY_OPTIONS

from ganbench.errors import GanbenchError
from ganbench.execute.sources import load_checkpoint_source
from ganbench.grid.sources import parse_checkpoint_spec
from ganbench.store.cache import file_sha256

TINY_SG2 = "stylegan2:width=8,style_dim=16,n_mlp=2"


def _nets(seed: int = 0, resolution: int = 32, channels: int = 1, width: int = 8):
    from ganbench_plugins.architectures.stylegan2 import StyleGAN2

    torch.manual_seed(seed)
    return StyleGAN2(width=width, style_dim=16, n_mlp=2).build(resolution, channels)


def _write(path, G, D=None, G_ema=None, args=True):
    """A file as rosinality's train.py saves one: g, d, g_ema (+ its argparse.Namespace of options)."""
    data = {"g": G.state_dict(), "g_ema": (G_ema or G).state_dict(), "latent_avg": torch.zeros(16)}
    if D is not None:
        data["d"] = D.state_dict()
    if args:
        data["args"] = argparse.Namespace(size=32, channel_multiplier=2, iter=800000, path="lmdb")
    torch.save(data, path)
    return path


def test_a_saved_checkpoint_loads_key_for_key_and_reproduces_its_images(tmp_path):
    G, D = _nets(seed=1)
    G_ema, _ = _nets(seed=2)
    path = _write(tmp_path / "sg2.pt", G, D, G_ema)
    spec = parse_checkpoint_spec(f"checkpoint:path={path}")
    assert spec.sha256 == file_sha256(path) and spec.canonical == f"checkpoint:sha256={spec.sha256},generator=g_ema"
    fresh_G, fresh_D = _nets(seed=3)
    source = load_checkpoint_source(spec.path, spec.sha256, "g_ema", (fresh_G, fresh_D), "key")
    assert source.meta["args"]["size"] == 32 and source.meta["has_discriminator"]
    from ganbench import Nets

    source.load_into(Nets(fresh_G, fresh_D))
    z = torch.randn(6, 16, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        G_ema.eval(), fresh_G.eval()  # eval: the stored noise maps
        assert torch.equal(fresh_G(z), G_ema(z))
        assert torch.equal(fresh_D(x), D(x))
        with_g = load_checkpoint_source(spec.path, spec.sha256, "g", _nets(seed=4), "key")
        assert all(torch.equal(with_g.generator[k], v) for k, v in G.state_dict().items())


def test_files_that_do_not_fit_get_one_line(tmp_path):
    G, D = _nets()
    path = _write(tmp_path / "wide.pt", *_nets(width=16))
    spec = parse_checkpoint_spec(f"checkpoint:path={path}")
    with pytest.raises(GanbenchError) as info:
        load_checkpoint_source(spec.path, spec.sha256, "g_ema", (G, D), "key")
    message = str(info.value)
    assert "\n" not in message and "of other shape" in message and "conv1.conv.weight" in message
    bigger = _write(tmp_path / "64px.pt", *_nets(resolution=64))
    with pytest.raises(GanbenchError, match="18 unexpected"):
        load_checkpoint_source(str(bigger), file_sha256(bigger), "g_ema", (G, D), "key")
    torch.save({"state_dict": G.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(GanbenchError, match="not a rosinality-format checkpoint"):
        load_checkpoint_source(str(tmp_path / "other.pt"), file_sha256(tmp_path / "other.pt"), "g_ema", (G, D), "k")
    with pytest.raises(GanbenchError, match="does not exist"):
        parse_checkpoint_spec(f"checkpoint:path={tmp_path / 'absent.pt'}")
    with pytest.raises(GanbenchError, match="no option 'gen'"):
        parse_checkpoint_spec(f"checkpoint:path={path},gen=g")


def test_a_generator_only_checkpoint_refuses_strategies_that_need_its_d(tmp_path):
    G, D = _nets()
    path = _write(tmp_path / "g-only.pt", G, args=False)
    source = load_checkpoint_source(str(path), file_sha256(path), "g_ema", _nets(), "key")
    from ganbench import Nets

    with pytest.raises(GanbenchError, match=r"has no discriminator \('d'\)"):
        source.load_into(Nets(G, D))


def test_run_matrix_adapts_a_checkpoint_without_pretraining(tmp_path, invoke):
    path = _write(tmp_path / "sg2.pt", *_nets())
    options = [o for o in TINY_OPTIONS if not o.startswith(("--arch", "--source"))]
    out = tmp_path / "runs"
    args = ["run", "matrix", *options, "--arch", TINY_SG2, "--source", f"checkpoint:path={path}",
            "--strategy", "finetune,freeze-g", "--metrics", "fid", "--plugins-dir", FIXTURE_PLUGINS, "--quiet",
            "--out", out]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in out.glob("*/cells/*.json")]
    by_strategy = {r["strategy"].partition(":")[0]: r for r in records}
    assert set(by_strategy) == {"scratch", "finetune", "freeze-g"}
    sha = file_sha256(path)
    for name in ("finetune", "freeze-g"):
        record = by_strategy[name]
        assert record["status"] == "ok", record.get("error")
        assert record["source_checkpoint"] == sha and record["source"] == "checkpoint:sg2.pt"
        assert record["pretrain_s"] is None and record["fid"] > 0
    moved = tmp_path / "elsewhere.pt"
    path.rename(moved)  # the same file in another place: the same cells, nothing to run again
    again = invoke(*[a if not str(a).startswith("checkpoint:") else f"checkpoint:path={moved}" for a in args])
    assert again.exit_code == 0 and len(list(out.glob("*/cells/*.json"))) == 3
    assert len(list(out.iterdir())) == 1


def test_a_mismatched_checkpoint_fails_the_dry_run_in_one_line(tmp_path, invoke, assert_one_line_error):
    path = _write(tmp_path / "wide.pt", *_nets(width=16))
    options = [o for o in TINY_OPTIONS if not o.startswith(("--arch", "--source"))]
    result = invoke("run", "matrix", *options, "--arch", TINY_SG2, "--source", f"checkpoint:path={path}",
                    "--strategy", "finetune", "--plugins-dir", FIXTURE_PLUGINS, "--dry-run", "--out", tmp_path)  # fmt: skip
    assert_one_line_error(result, "does not fit the architecture", "wide.pt")
