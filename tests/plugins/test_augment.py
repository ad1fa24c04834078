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
