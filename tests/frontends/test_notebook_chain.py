"""configs/notebook.yaml: each step of its chain is the DeepDream zoom notebook's scipy formula."""


import numpy as np
import pytest
from helpers import ROOT
from scipy import ndimage

from animator import config as config_module
from transforms import Context


@pytest.fixture(scope="module")
def notebook():
    """The config's chain, and a photo at the config's size (512×512)."""
    from skimage import data

    config = config_module.load(ROOT / "configs" / "notebook.yaml")
    width, height = config.animation.size
    photo = data.astronaut().astype(np.float32)
    assert photo.shape == (height, width, 3)
    return config.chain, photo


def step(chain, name, frame):
    (found,) = [s for s in chain.steps if s.name == name]
    ctx = Context(0, 10, (frame.shape[1], frame.shape[0]), np.random.default_rng(0))
    return found, np.asarray(found.run(frame, ctx))


def inside(frame):
    return frame[2:-2, 2:-2]


def test_the_chain_is_zoom_stretch_roll_edges_in_the_notebooks_order(notebook):
    chain, _ = notebook
    assert [s.name for s in chain.steps] == ["zoom", "stretch", "roll", "sobel"]


def test_zoom_is_the_notebooks_affine_transform_order_1(notebook):
    chain, photo = notebook
    found, out = step(chain, "zoom", photo)
    s = 1 - 1 / found.arguments(0)["factor"]  # factor = 1 / (1 - s)
    h, w = photo.shape[:2]
    expected = ndimage.affine_transform(photo, [1 - s, 1 - s, 1], [h * s / 2, w * s / 2, 0], order=1)
    assert s == pytest.approx(0.05, abs=1e-6)
    assert np.max(np.abs(inside(out) - inside(expected))) < 0.05


def test_stretch_is_the_notebooks_vertical_affine_transform(notebook):
    chain, photo = notebook
    found, out = step(chain, "stretch", photo)
    v = 1 - 1 / found.arguments(0)["vertical"]
    h = photo.shape[0]
    expected = ndimage.affine_transform(photo, [1 - v, 1, 1], [h * v / 2, 0, 0], order=1)
    assert np.max(np.abs(inside(out) - inside(expected))) < 0.05


def test_roll_is_the_notebooks_int_n_over_15_column_roll(notebook):
    chain, photo = notebook
    _, out = step(chain, "roll", photo)
    expected = photo.copy()
    for n in range(photo.shape[1]):
        expected[:, n] = np.roll(expected[:, n], int(n / 15), axis=0)
    np.testing.assert_array_equal(out, expected)


def test_edges_are_the_notebooks_sobel_hypot_mixed_at_the_configs_strength(notebook):
    chain, photo = notebook
    found, out = step(chain, "sobel", photo)
    edges = np.clip(np.hypot(ndimage.sobel(photo, 0), ndimage.sobel(photo, 1)), 0, 255)
    strength = found.arguments(0)["strength"]
    expected = (1 - strength) * photo + strength * edges
    assert np.max(np.abs(inside(out) - inside(expected))) <= 1.0
