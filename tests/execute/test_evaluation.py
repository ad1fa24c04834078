"""What a cell's evaluation compares against (the reference, held-out and validation sets), the shared
feature pass, step selection on a validation split, and the record's account of them."""

from __future__ import annotations

import pytest
import torch

from ganbench.data.prepare import PreparedData
from ganbench.errors import GanbenchError
from ganbench.execute.evaluation import context_for, describe, select_step, set_key, target_parts
from ganbench.grid.cells import EvalProtocol
from ganbench.grid.config import make_grid
from ganbench.metrics.features import FeatureSpace, PixelSpace, eval_features


def target(n: int = 40) -> PreparedData:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return PreparedData(images, None, f"target-{n}", {})


SHOTS = torch.tensor([3, 7, 11, 30])


def as_set(index: torch.Tensor) -> set[int]:
    return set(index.tolist())


def test_the_default_reference_is_every_target_image_shots_included():
    parts = target_parts(EvalProtocol(), target(), SHOTS)
    assert as_set(parts.index["reference"]) == set(range(40)) == as_set(parts.index["pool"])
    assert as_set(parts.index["heldout"]) == set(range(40)) - as_set(SHOTS)
    assert "val" not in parts.index
    assert set_key(parts, "reference") == "target-40"  # the key reference features were always cached under


def test_heldout_reference_leaves_the_shots_out():
    parts = target_parts(EvalProtocol(reference="heldout"), target(), SHOTS)
    assert as_set(parts.index["reference"]) == set(range(40)) - as_set(SHOTS)
    assert set_key(parts, "reference") != "target-40"
    info = describe(EvalProtocol(reference="heldout"), parts)
    assert info["reference"] == "heldout" and info["n_ref"] == 36 and info["n_heldout"] == 36


def test_reference_samples_is_one_seeded_subset_shared_by_every_cell():
    protocol = EvalProtocol(reference_samples=10)
    a = target_parts(protocol, target(), SHOTS)
    b = target_parts(protocol, target(), torch.tensor([0, 1]))  # another seed's shots: the same pool
    assert len(a.index["pool"]) == 10 and torch.equal(a.index["pool"], b.index["pool"])
    assert torch.equal(a.index["reference"], a.index["pool"])
    assert as_set(a.index["heldout"]) == as_set(a.index["pool"]) - as_set(SHOTS)
    assert describe(protocol, a)["reference_samples"] == 10


def test_the_validation_split_is_disjoint_from_the_reference_and_the_shots():
    protocol = EvalProtocol(select_on="val", val_samples=8)
    for reference in ("all", "heldout"):
        parts = target_parts(EvalProtocol(reference, 0, "val", 8), target(), SHOTS)
        val, ref = as_set(parts.index["val"]), as_set(parts.index["reference"])
        assert len(val) == 8 and not val & ref and not val & as_set(SHOTS)
        assert val | ref | as_set(SHOTS) == set(range(40))
    assert describe(protocol, target_parts(protocol, target(), SHOTS))["n_val"] == 8


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"reference": "test"}, "reference must be one of all, heldout"),
        ({"select_on": "val"}, "needs a validation split"),
        ({"select_on": "best"}, "select_on must be 'final' or 'val'"),
        ({"reference_samples": -1}, "reference_samples must be 0 or more"),
    ],
)
def test_bad_protocols_are_refused_when_the_grid_is_made(settings, message):
    with pytest.raises(GanbenchError, match=message):
        make_grid(None, **settings)


def test_a_validation_split_too_large_for_the_target_is_refused():
    with pytest.raises(GanbenchError, match="val_samples=37 leaves fewer than 2"):
        target_parts(EvalProtocol(select_on="val", val_samples=37), target(), SHOTS)


def test_the_default_protocol_keeps_cell_ids_and_another_changes_them(registry):
    from ganbench.grid.expand import expand

    default = expand(make_grid(None, strategy="finetune"), registry)[0]
    heldout = expand(make_grid(None, strategy="finetune", reference="heldout"), registry)[0]
    assert "protocol" not in default.identity() and heldout.identity()["protocol"]["reference"] == "heldout"
    assert default.id != heldout.id


class Counting(FeatureSpace):
    """Pixel features that count the images they were asked for."""

    name = "counting"

    def __init__(self):
        self.seen = 0

    def identity(self):
        return {"extractor": "counting-test"}

    def __call__(self, images, device, desc=None):
        self.seen += len(images)
        return PixelSpace()(images, device)


def test_every_target_set_is_a_slice_of_one_pass_over_the_pool(tmp_path):
    data = target()
    parts = target_parts(EvalProtocol(val_samples=5, select_on="val"), data, SHOTS)
    generated = data.images[:6]
    ctx = context_for(parts, generated, torch.device("cpu"), tmp_path)
    space = Counting()
    for which in ("reference", "shots", "heldout", "val", "generated", "reference"):
        got = eval_features(ctx, space, which)
        assert torch.equal(got, PixelSpace()(ctx.images(which), torch.device("cpu")))
    assert space.seen == 40 + 6  # the pool once, the generated images once; everything else sliced or memoized
    again = context_for(parts, generated, torch.device("cpu"), tmp_path)
    eval_features(again, space, "reference")
    assert space.seen == 46  # the pool's features came from the disk cache
    assert ctx.timings["features"] > 0


def test_a_validation_context_never_sees_the_test_reference_features(tmp_path):
    parts = target_parts(EvalProtocol(val_samples=5, select_on="val"), target(), SHOTS)
    test = context_for(parts, parts.images[:4], torch.device("cpu"), tmp_path)
    space = PixelSpace()
    eval_features(test, space, "reference")
    val = context_for(parts, parts.images[:4], torch.device("cpu"), tmp_path, reference="val", memo=test.memo)
    assert torch.equal(eval_features(val, space, "reference"), space(parts.images[parts.index["val"]], "cpu"))


def test_select_step_takes_the_best_validation_score_in_its_direction():
    curve = [{"step": 100, "fid": 9.0, "val_fid": 5.0}, {"step": 200, "fid": 4.0, "val_fid": 3.0},
             {"step": 300, "fid": 2.0, "val_fid": 3.0}]  # fmt: skip
    assert select_step(curve, "fid", lower_is_better=True)["step"] == 200  # the earliest of equals
    assert select_step(curve, "fid", lower_is_better=False)["step"] == 100
    with pytest.raises(GanbenchError, match="no validation kid"):
        select_step(curve, "kid", lower_is_better=True)


def test_a_cell_records_every_metric_the_split_of_its_evaluation_time_and_the_selected_step(tiny_run, tmp_path):
    import json

    summary = tiny_run(tmp_path, strategy="finetune", baseline=False, metrics="fid,kid,prdc,memorization",
                       select_on="val", val_samples=8)  # fmt: skip
    (record,) = summary.records
    assert record["status"] == "ok", record.get("error")
    for column in ("fid", "kid", "precision", "recall", "density", "coverage", "authenticity", "copy_ratio",
                   "authenticity_px", "copy_ratio_px"):  # fmt: skip
        assert isinstance(record[column], float), column
    assert 0 <= record["precision"] <= 1 and 0 <= record["authenticity_px"] <= 1
    assert record["reference"] == "all" and record["n_target"] == 48 and record["n_val"] == 8
    assert record["n_ref"] == 40 and record["n_heldout"] == 32  # 48 images - 8 validation (- 8 shots)
    parts = record["eval_generate_s"] + record["eval_features_s"] + record["eval_metrics_s"]
    assert 0 < parts <= record["eval_s"] * 1.01
    assert record["selected_step"] in (2, 4) and record["selected"]["step"] == record["selected_step"]
    assert record["selected"]["val_fid"] == min(p["val_fid"] for p in record["curve"])
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    setup = manifest["evaluation_setup"]
    assert setup["warm_up_s"] > 0 and setup["reference_images"] == {"tiny-digits": 48}
    assert len(setup["warnings"]) == 1 and "fewer than 2048" in setup["warnings"][0]


def test_what_depends_on_the_reference_alone_outlives_an_evaluation():
    from ganbench.execute.evaluation import shared_memo

    memo = {"features:abc:generated": 1, "features:abc:pool": 2, "reference:radii": 3, "intra-lpips:own": 4}
    assert shared_memo(memo) == {"features:abc:pool": 2, "reference:radii": 3}


def test_sample_begins_with_the_evaluated_images_and_is_deterministic(tmp_path):
    from functools import partial

    from ganbench.execute.evaluation import Evaluator
    from ganbench.execute.training import generate
    from ganbench.testing import tiny_nets

    G = tiny_nets().G
    gen = partial(generate, seed=5)
    evaluator = Evaluator([], target_parts(EvalProtocol(), target(), SHOTS), EvalProtocol(), n=6, seed=0,
                          generate=gen, cache_dir=tmp_path, headline=None)  # fmt: skip
    first = gen(G, 6, device_output=True)
    more = evaluator._sample(G, first, 20)
    assert len(more) == 20 and torch.equal(more[:6], first) and torch.equal(more, evaluator._sample(G, first, 20))
    assert torch.equal(evaluator._sample(G, first, 4), first[:4])


def test_cells_of_a_target_with_released_shots_train_on_them_for_every_seed(tiny_run, tmp_path, invoke,
                                                                          assert_one_line_error):  # fmt: skip
    import numpy as np
    from PIL import Image
    from tiny_settings import TINY_OPTIONS

    rng = np.random.default_rng(0)
    (tmp_path / "full").mkdir()
    (tmp_path / "shots").mkdir()
    for i in range(20):
        image = Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8))
        image.save(tmp_path / "full" / f"{i:02d}.png")
        if i in (4, 11, 15):
            image.save(tmp_path / "shots" / f"shot-{i}.png")
    spec = f"folder:path={tmp_path / 'full'},shots_dir={tmp_path / 'shots'},size=16"
    summary = tiny_run(tmp_path / "runs", strategy="finetune", target=spec, shots=3, seeds="0,1", metrics="fid")
    records = [r for r in summary.records if r["strategy"] == "finetune"]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    assert {r["shots_from"] for r in records} == {"released"} and records[0]["n_target"] == 20
    assert records[0]["shots_key"] == records[1]["shots_key"]  # the same three images, whatever the seed
    drawn = tiny_run(tmp_path / "drawn", strategy="finetune", target=f"folder:path={tmp_path / 'full'},size=16",
                     shots=3, seeds="0,1", metrics="fid", baseline=False)  # fmt: skip
    assert {r["shots_from"] for r in drawn.records} == {"seed"}
    assert len({r["shots_key"] for r in drawn.records}) == 2 and records[0]["shots_key"] not in {
        r["shots_key"] for r in drawn.records
    }
    options = [o for o in TINY_OPTIONS if not o.startswith(("--target", "--shots"))]
    result = invoke("run", "matrix", *options, "--target", spec, "--shots", "5", "--dry-run", "--out", tmp_path / "x")
    assert_one_line_error(result, "comes with 3 released shots", "--shots 3 or fewer")
