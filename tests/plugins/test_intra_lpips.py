"""intra-lpips: CDC's protocol against a brute force over the lpips package's own forward pass, hand cases, and
where the trunk's weights are looked for (a random AlexNet stands in for torchvision's ImageNet file)."""

import functools
import itertools
import json
import warnings

import lpips
import pytest
import torch
import torchvision
from builders import write_images
from ganbench_plugins.metrics.intra_lpips import IntraLPIPS

import ganbench.net
from ganbench.errors import GanbenchError
from ganbench.plugin.contracts import EvalContext
from ganbench.testing import check_metric, fake_images

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def alex_file(tmp_path_factory):
    """torchvision's AlexNet with random weights, saved like its checkpoint (the classifier left out: LPIPS
    never reads it, and it is 96% of the file)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "random-alexnet.pth"
    torch.save({k: v for k, v in state.items() if k.startswith("features.")}, path)
    return path


@pytest.fixture(autouse=True)
def no_weights_around(monkeypatch, tmp_path):
    """An empty torch hub, so that only the weights a test gives are found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@functools.cache
def reference_lpips(path):
    """``distance(a, b)``: the lpips package's own forward pass (its network with the trunk from ``path``) on
    aligned pairs of uint8 images, one distance per pair (a batch of pairs, so a busy CPU keeps up)."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision deprecates the `pretrained=` lpips passes it
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
        alexnet = torchvision.models.alexnet(weights=None)
    alexnet.load_state_dict(torch.load(path, weights_only=True), strict=False)  # the file has no classifier
    for i in range(model.net.N_slices):  # each slice holds torchvision's features[j] under the name "j"
        for name, layer in getattr(model.net, f"slice{i + 1}").named_children():
            layer.load_state_dict(alexnet.features[int(name)].state_dict())

    def distance(a, b):
        a, b = (x.float() / 127.5 - 1 for x in (a, b))
        a, b = (x.expand(-1, 3, -1, -1) for x in (a, b))  # grey is repeated to RGB
        with torch.no_grad():
            return model(a, b).flatten().tolist()

    return distance


def nearest_shots(distance, generated, shots):
    """Each generated image's nearest shot (the first of equals), by argmin over its distance to every shot."""
    n, k = len(generated), len(shots)
    table = torch.tensor(distance(generated.repeat_interleave(k, 0), shots.repeat(n, 1, 1, 1))).view(n, k)
    return table.argmin(1).tolist()


def cluster_pairs(nearest, k):
    """Per shot, every pair of the generated images nearest to it."""
    return [list(itertools.combinations([i for i, n in enumerate(nearest) if n == s], 2)) for s in range(k)]


def brute_force(distance, generated, shots):
    scores = []
    for pairs in cluster_pairs(nearest_shots(distance, generated, shots), len(shots)):
        if pairs:
            first, second = zip(*pairs)
            scores.append(sum(distance(generated[list(first)], generated[list(second)])) / len(pairs))
    return sum(scores) / len(scores), len(scores)


def evaluation(generated, shots, cache, **changes):
    return EvalContext(generated, generated[:0], "ref", CPU, cache, shots=shots, **changes)


@pytest.mark.parametrize("channels", [1, 3])
def test_equals_the_brute_force_over_lpips_pairs(alex_file, tmp_path, channels):
    generated = fake_images(20, channels, 32, seed=1)
    shots = fake_images(3, channels, 32, seed=2)
    metric = IntraLPIPS(backbone_weights=str(alex_file), samples=12)
    info = metric.prepare(CPU, tmp_path)
    assert info["lpips_backbone_weights"] == "option" and info["lpips_net"] == "alex"
    assert info["lpips_backbone_sha256"] == ganbench.file_sha256(alex_file)
    drawn = []

    def sample(n):
        drawn.append(n)
        return generated[:n]

    ctx = evaluation(generated[:8], shots, tmp_path, sample=sample)
    values = metric.compute(ctx)
    assert drawn == [12]  # its own sample count, from the evaluation's latents
    expected, clusters = brute_force(reference_lpips(alex_file), generated[:12], shots)
    assert clusters >= 2  # the case exercises the mean over clusters
    assert values["intra_lpips_clusters"] == clusters
    assert values["intra_lpips"] == pytest.approx(expected, rel=1e-5)
    assert ctx.timings["features"] > 0  # LPIPS's network passes count as feature time
    # without a sampler, the first `samples` generated images
    assert metric.compute(evaluation(generated[:12], shots, tmp_path)) == values


def test_a_cluster_cap_pairs_a_seeded_subset(alex_file, tmp_path):
    generated, shots = fake_images(12, 1, 32, seed=1), fake_images(2, 1, 32, seed=2)
    metric = IntraLPIPS(backbone_weights=str(alex_file), samples=12, cluster_size=2)
    capped = metric.compute(evaluation(generated, shots, tmp_path, seed=3))
    assert metric.compute(evaluation(generated, shots, tmp_path, seed=3)) == capped
    # with 2 members paired per cluster, each cluster scores the distance of one pair of its members
    distance = reference_lpips(alex_file)
    pair_distances = []
    for pairs in cluster_pairs(nearest_shots(distance, generated, shots), len(shots)):
        if pairs:
            first, second = zip(*pairs)
            pair_distances.append(distance(generated[list(first)], generated[list(second)]))
    assert max(map(len, pair_distances)) > 1  # a cluster has more than 2 members: the cap bites
    choices = itertools.product(*pair_distances)
    assert min(abs(sum(c) / len(c) - capped["intra_lpips"]) for c in choices) < 1e-5


def test_copies_of_one_image_score_zero(alex_file, tmp_path):
    one = fake_images(1, 3, 32, seed=4)
    metric = IntraLPIPS(backbone_weights=str(alex_file), samples=12)
    values = metric.compute(evaluation(one.expand(12, -1, -1, -1), fake_images(3, 3, 32, seed=2), tmp_path))
    assert values == {"intra_lpips": 0.0, "intra_lpips_clusters": 1}


def test_small_images_are_upsampled_to_32_pixels(alex_file, tmp_path):
    metric = IntraLPIPS(backbone_weights=str(alex_file), samples=6)
    values = metric.compute(evaluation(fake_images(6, 1, 16, seed=1), fake_images(2, 1, 16, seed=2), tmp_path))
    assert values["intra_lpips"] > 0


def test_without_shots_it_says_so_in_one_line(alex_file, tmp_path):
    metric = IntraLPIPS(backbone_weights=str(alex_file))
    generated = fake_images(12, 1, 32)
    with pytest.raises(GanbenchError) as caught:
        metric.compute(EvalContext(generated, generated, "ref", CPU, tmp_path))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("intra-lpips needs the training shots: ")
    with pytest.raises(GanbenchError, match="and this evaluation has none"):
        metric.compute(evaluation(generated, generated[:0], tmp_path))


def test_fewer_samples_than_shots_all_apart_is_one_line(alex_file, tmp_path):
    shots = fake_images(3, 1, 32, seed=2)
    metric = IntraLPIPS(backbone_weights=str(alex_file), samples=2)
    with pytest.raises(GanbenchError, match=r"no shot has 2 of the 2 samples nearest to it; use intra-lpips:samples"):
        metric.compute(evaluation(shots[:2], shots, tmp_path))


def test_no_weights_offline_is_one_line_at_prepare(context, tmp_path, monkeypatch):
    monkeypatch.setattr(ganbench.net, "unreachable", lambda *a, **k: pytest.fail("probed the network offline"))
    with context.replace(offline=True).active(), pytest.raises(GanbenchError) as caught:
        IntraLPIPS().prepare(CPU, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in ("alexnet-owt-7be5be79.pth", "GANBENCH_OFFLINE", "intra-lpips:backbone_weights=PATH",
                     str(tmp_path / "weights"), str(tmp_path / "torch-home" / "hub" / "checkpoints")):  # fmt: skip
        assert fragment in message


def test_online_but_unreachable_says_why(context, tmp_path, monkeypatch):
    monkeypatch.setattr(ganbench.net, "unreachable", lambda url, *a: "download.pytorch.org unreachable (no route)")
    with context.replace(offline=False).active(), pytest.raises(GanbenchError, match="download impossible"):
        IntraLPIPS(net="vgg").prepare(CPU, tmp_path)


def test_the_torch_hub_copy_and_the_cache_are_looked_in_and_checked(alex_file, tmp_path, context):
    hub = tmp_path / "torch-home" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached = tmp_path / "weights" / "alexnet-owt-7be5be79.pth"
    for place in (cached, hub):  # the hub first: found where torchvision would have put it
        place.parent.mkdir(parents=True, exist_ok=True)
        place.write_bytes(alex_file.read_bytes())  # random weights under torchvision's name: refused
        with context.replace(offline=True).active(), pytest.raises(GanbenchError) as caught:
            IntraLPIPS().prepare(CPU, tmp_path)
        assert f"{place} is damaged: its sha256 starts" in str(caught.value)


def test_a_given_file_that_is_missing_or_does_not_fit(tmp_path):
    with pytest.raises(GanbenchError, match=r"backbone_weights=.*nope\.pth is not a file; point it at alexnet-owt"):
        IntraLPIPS(backbone_weights=str(tmp_path / "nope.pth")).prepare(CPU, tmp_path)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(GanbenchError, match=r"features\.0\.weight is of shape \(64, 3, 3, 3\), \(64, 3, 11, 11\)"):
        IntraLPIPS(backbone_weights=str(wrong)).prepare(CPU, tmp_path)
    torch.save({}, wrong)
    with pytest.raises(GanbenchError, match=r"features\.0\.weight is missing"):
        IntraLPIPS(backbone_weights=str(wrong)).prepare(CPU, tmp_path)


def test_passes_the_metric_conformance_check_given_weights(alex_file, tmp_path):
    values = check_metric(IntraLPIPS(backbone_weights=str(alex_file)), tmp_path)
    assert set(values) == {"intra_lpips", "intra_lpips_clusters"} and values["intra_lpips"] > 0


def test_the_score_command_says_it_in_one_line(alex_file, tmp_path, invoke, assert_one_line_error, monkeypatch):
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    for name, seed in (("generated", 1), ("reference", 2)):
        write_images(tmp_path / name, fake_images(6, 1, 32, seed=seed), "{i}.png")
    folders = [tmp_path / "generated", tmp_path / "reference", "--cache", tmp_path / "cache"]
    result = invoke("score", *folders, "--shots", tmp_path / "reference", "--metrics", "intra-lpips")
    assert_one_line_error(result, "alexnet-owt-7be5be79.pth", "intra-lpips:backbone_weights=PATH")
    spec = f"intra-lpips:backbone_weights={alex_file}"
    result = invoke("score", *folders, "--shots", tmp_path / "reference", "--metrics", spec, "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert scored["intra_lpips"] > 0 and scored["lpips_backbone_weights"] == "option"
    result = invoke("score", *folders, "--metrics", spec)  # no --shots
    assert_one_line_error(result, "intra-lpips needs the training shots")
