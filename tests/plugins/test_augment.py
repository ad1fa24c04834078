import pytest
import torch
from ganbench_plugins.augmentations.diffaugment import color, cutout, translation

from ganbench.errors import GanbenchError
from ganbench.grid.config import make_grid
from ganbench.grid.expand import expand


def _augment(registry, spec):
    return registry.create(registry.resolve("augmentation", spec))


def test_none_is_the_identity(registry):
    x = torch.randn(2, 1, 8, 8)
    assert _augment(registry, "none")(x) is x


def test_diffaugment_is_differentiable_and_random(registry):
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32, requires_grad=True)
    y = _augment(registry, "diffaugment")(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.abs().sum() > 0
    assert not torch.equal(y, _augment(registry, "diffaugment")(x))


def test_translation_moves_content_by_at_most_an_eighth():
    torch.manual_seed(1)
    x = torch.zeros(16, 1, 16, 16)
    x[:, :, 8, 8] = 1
    y = translation(x)
    for image in y[:, 0]:
        [(row, col)] = image.nonzero().tolist()
        assert abs(row - 8) <= 2 and abs(col - 8) <= 2
    assert (y.sum(dim=(1, 2, 3)) == 1).all()


def test_cutout_zeroes_a_half_size_square():
    torch.manual_seed(2)
    y = cutout(torch.ones(32, 1, 16, 16))
    zeroed = (y == 0).sum(dim=(1, 2, 3))
    assert (zeroed <= 64).all() and (zeroed > 0).all()  # an 8 x 8 square, clipped at the borders
    assert (zeroed == 64).any()


def test_colour_keeps_grey_images_grey():
    torch.manual_seed(3)
    x = torch.rand(4, 3, 8, 8)
    x[:, 1] = x[:, 0]
    x[:, 2] = x[:, 0]
    y = color(x)
    torch.testing.assert_close(y[:, 0], y[:, 1])


def test_policy_option(registry):
    aug = _augment(registry, "diffaugment:policy=cutout")
    assert aug.config["policy"] == ("cutout",)
    with pytest.raises(GanbenchError, match="expected '\\+'-joined parts of color, translation, cutout"):
        registry.resolve("augmentation", "diffaugment:policy=flip")


def test_augment_is_a_grid_axis(registry):
    cells = expand(make_grid(augment="none,diffaugment"), registry)
    assert len(cells) == 8
    assert sorted({c.augment for c in cells}) == ["diffaugment:policy=color+translation+cutout", "none"]
    assert {c.labels["augment"] for c in cells} == {"none", "diffaugment"}


def test_ada_at_p_zero_is_the_identity_and_differentiable_above(registry):
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    ada = _augment(registry, "ada")
    assert torch.allclose(ada(x), x, atol=1e-5)
    ada = _augment(registry, "ada:p=1")
    torch.manual_seed(0)
    x.requires_grad_(True)
    y = ada(x)
    assert y.shape == x.shape and (y - x).abs().mean() > 0.05
    y.sum().backward()
    assert x.grad.abs().sum() > 0


def _fed(ada, sign: float, steps: int, batch: int = 4) -> None:
    for _ in range(steps):
        ada.observe(torch.full((batch,), sign))


def test_ada_adapts_p_from_the_sign_of_real_logits(registry):
    # kimg=0.016: 16 images move p from 0 to 1; interval 4 at batch 4: +1 per adjustment, clamped
    ada = _augment(registry, "ada:kimg=0.16,interval=4")
    _fed(ada, 1.0, 3)
    assert ada.p == 0.0  # no adjustment before `interval` steps
    _fed(ada, 1.0, 1)
    assert ada.p == pytest.approx(16 / 160)  # r_t = 1 > 0.6: up by batch * interval / (kimg * 1000)
    _fed(ada, -1.0, 4)
    assert ada.p == pytest.approx(0.0)  # r_t = -1 < 0.6: down again
    _fed(ada, -1.0, 8)
    assert ada.p == 0.0  # clamped
    _fed(ada, 1.0, 4 * 20)
    assert ada.p == 1.0
    state = ada.state_dict()
    again = _augment(registry, "ada:kimg=0.16,interval=4")
    again.load_state_dict(state)
    assert again.p == 1.0


def test_ada_counts_images_not_patches(registry):
    # a patch-level D (CDC) gives 16 logits per image: p still moves by images seen, the sign is their mean
    ada = _augment(registry, "ada:kimg=0.16,interval=4")
    for _ in range(4):
        ada.observe(torch.cat([torch.ones(4, 12), -torch.ones(4, 4)], dim=1))  # r_t = 0.5 < 0.6
    assert ada.p == 0.0
    ada.load_state_dict({**ada.state_dict(), "p": torch.tensor(0.5)})
    for _ in range(4):
        ada.observe(torch.cat([torch.ones(4, 14), -torch.ones(4, 2)], dim=1))  # r_t = 0.75 > 0.6
    assert ada.p == pytest.approx(0.5 + 16 / 160)


def test_the_training_loop_feeds_ada_and_records_p(tmp_path, tiny_grid, fixture_plugins):
    from ganbench import run_matrix

    grid = tiny_grid(strategy="finetune", baseline=False, augment="ada:kimg=0.01,interval=1", metrics="fid",
                     finetune_steps=4)  # fmt: skip
    summary = run_matrix(grid, out=tmp_path, progress=False, plugins_dirs=[fixture_plugins])
    [record] = [r for r in summary.records]
    assert record["status"] == "ok", record.get("error")
    assert record["augment_p"] is not None and 0.0 <= record["augment_p"] <= 1.0
    # batch 4, 10 images for a full swing, adjusted every step: p moves in steps of 0.4, clamped to [0, 1]
    assert any(abs(record["augment_p"] - v) < 1e-6 for v in (0.0, 0.4, 0.8, 1.0)), record["augment_p"]
