"""Filters: Sobel and Prewitt edges, Gaussian blur, colour matching and hue shift."""

import numpy as np
import pytest
from scipy import ndimage

from transforms import Context, build_chain, match_color
from transforms.filters import blur, color_match, hue_rotation, hue_shift, prewitt, sobel


def context(frame, first_frame=None):
    height, width = frame.shape[:2]
    return Context(0, 10, (width, height), np.random.default_rng(0), first_frame)


def run(function, frame, **params):
    return np.asarray(function(frame, context(frame), **params))


def step_edge(height=8, width=16, column=8):
    frame = np.zeros((height, width, 3), np.float32)
    frame[:, column:] = 255.0
    return frame


@pytest.mark.parametrize("edge", [sobel, prewitt])
def test_edges_of_a_step_are_zero_away_from_it_and_full_on_it(edge):
    out = run(edge, step_edge())
    assert np.all(out[:, :7] == 0) and np.all(out[:, 9:] == 0)
    np.testing.assert_allclose(out[:, 7:9], 255.0, atol=1e-3)  # a full step gives 255
    np.testing.assert_array_equal(out[..., 0], out[..., 2])  # grey


@pytest.mark.parametrize("edge", [sobel, prewitt])
def test_edges_of_a_flat_frame_are_zero_up_to_the_border(edge):
    assert np.all(run(edge, np.full((6, 7, 3), 123.0, np.float32)) == 0)


def test_sobel_of_a_ramp_is_its_slope():
    ramp = np.repeat(np.tile(np.arange(10.0) * 5, (6, 1))[:, :, None], 3, axis=2)
    out = run(sobel, ramp.astype(np.float32))
    np.testing.assert_allclose(out[:, 1:-1], 10.0, atol=1e-3)  # central difference of 5/pixel


def test_sobel_keep_color_keeps_the_colour_on_edges_and_blacks_flat_areas():
    frame = step_edge()
    frame[:, 8:] = [200.0, 100.0, 50.0]
    out = run(sobel, frame, keep_color=True)
    assert np.all(out[:, :7] == 0) and np.all(out[:, 10:] == 0)
    np.testing.assert_allclose(out[:, 8, 1] / out[:, 8, 0], 0.5, atol=1e-4)


def test_sobel_strength_zero_is_identity_and_half_mixes():
    frame = step_edge()
    np.testing.assert_array_equal(run(sobel, frame, strength=0.0), frame)
    np.testing.assert_allclose(run(sobel, frame, strength=0.5)[:, 12], 127.5, atol=1e-3)


def test_blur_matches_scipy_gaussian_filter_with_mirrored_edges():
    frame = np.random.default_rng(0).uniform(0, 255, (12, 15, 3)).astype(np.float32)
    out = run(blur, frame, sigma=1.0)
    expected = ndimage.gaussian_filter(frame, sigma=(1.0, 1.0, 0), mode="reflect", truncate=3.0)
    np.testing.assert_allclose(out, expected, atol=1e-2)


def test_blur_keeps_flat_frames_and_zero_sigma_is_identity():
    flat = np.full((5, 6, 3), 77.0, np.float32)
    np.testing.assert_allclose(run(blur, flat, sigma=2.0), flat, atol=1e-3)
    frame = step_edge()
    np.testing.assert_array_equal(run(blur, frame, sigma=0.0), frame)


def test_match_color_takes_the_reference_mean_and_spread():
    rng = np.random.default_rng(0)
    frame = rng.uniform(50, 100, (20, 20, 3)).astype(np.float32)
    reference = rng.normal([120, 60, 200], [20, 10, 15], (30, 25, 3)).astype(np.float32)
    out = np.asarray(match_color(frame, reference))
    np.testing.assert_allclose(out.mean(axis=(0, 1)), reference.mean(axis=(0, 1)), atol=0.05)
    np.testing.assert_allclose(out.std(axis=(0, 1)), reference.std(axis=(0, 1)), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(match_color(frame, reference, 0.0)), frame, atol=1e-3)


def test_color_match_uses_the_first_frame_and_is_identity_without_one():
    frame = np.full((4, 4, 3), 10.0, np.float32)
    frame[0, 0] = 30.0
    first = np.full((4, 4, 3), 100.0, np.float32)
    first[0, 0] = 140.0
    np.testing.assert_array_equal(np.asarray(color_match(frame, context(frame))), frame)
    out = np.asarray(color_match(frame, context(frame, first_frame=first)))
    np.testing.assert_allclose(out, first, atol=1e-3)


def test_hue_shift_turns_red_into_green_at_120_degrees_and_keeps_greys():
    frame = np.array([[[255, 0, 0], [0, 255, 0], [90, 90, 90]]], np.float32)
    out = run(hue_shift, frame, degrees=120)
    np.testing.assert_allclose(out, [[[0, 255, 0], [0, 0, 255], [90, 90, 90]]], atol=1e-3)
    np.testing.assert_allclose(run(hue_shift, frame, degrees=360), frame, atol=1e-3)
    np.testing.assert_allclose(hue_rotation(0), np.eye(3), atol=1e-12)


def test_filters_run_in_a_chain_with_scheduled_parameters():
    frame = step_edge()
    chain = build_chain([{"blur": {"sigma": {0: 0.0, 10: 2.0}}}, "sobel"])
    out = np.asarray(chain.apply(frame, context(frame)))
    assert out.shape == frame.shape and np.all(out[:, :6] == 0)


# --- the DeepDream notebook's look --------------------------------------------------------------


def photo(step=4):
    from skimage import data

    return data.astronaut()[::step, ::step].astype(np.float32)  # 128×128 RGB


@pytest.mark.parametrize("edge, scipy_filter", [(sobel, ndimage.sobel), (prewitt, ndimage.prewitt)])
def test_notebook_look_is_scipys_3d_filter_hypot_clipped(edge, scipy_filter):
    frame = photo()
    out = run(edge, frame, look="notebook")
    expected = np.clip(np.hypot(scipy_filter(frame, axis=0), scipy_filter(frame, axis=1)), 0, 255)
    inside = (slice(1, -1), slice(1, -1))
    assert np.max(np.abs(out[inside] - expected[inside])) <= 1.0
    assert expected.mean() > 100  # saturated colour edges, not the normalised grey map
    assert run(edge, frame).mean() < 50


def test_notebook_look_smooths_across_the_colour_axis():
    frame = step_edge()
    frame[:, 8:] = [255.0, 0.0, 0.0]  # a red step: scipy's 3-D sobel spills it into green
    out = run(sobel, frame, look="notebook")
    expected = np.clip(np.hypot(ndimage.sobel(frame, 0), ndimage.sobel(frame, 1)), 0, 255)
    np.testing.assert_allclose(out, expected, atol=1e-3)
    assert out[4, 8, 1] > 0 and out[4, 8, 2] == 0


def test_notebook_look_refuses_keep_color_when_the_config_loads():
    from animator.settings.errors import ConfigError

    with pytest.raises(ConfigError, match="keep_color: applies to look: grey only"):
        build_chain([{"sobel": {"look": "notebook", "keep_color": True}}])
