"""Geometric transforms: hand-checked cases, agreement with scipy, and the JAX backend."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT
from scipy import ndimage

from transforms import Context, build_chain
from transforms.geometric import rotate, stretch, translate, warp, zoom


def context(width, height, index=0):
    return Context(index=index, total=10, size=(width, height), rng=np.random.default_rng(0))


def run(function, frame, **params):
    height, width = frame.shape[:2]
    return np.asarray(function(frame, context(width, height), **params))


def square(size=41, side=11):
    frame = np.zeros((size, size, 3), np.float32)
    start = (size - side) // 2
    frame[start : start + side, start : start + side] = 255.0
    return frame


def smooth_image(height=40, width=48, seed=1):
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(2, 2, 0))
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255
    return smooth.astype(np.float32)


def width_through_centre(frame):
    """Width and height of the bright shape, in pixels, as its intensity along the centre lines."""
    middle = frame.shape[0] // 2
    return frame[middle, :, 0].sum() / 255.0, frame[:, middle, 0].sum() / 255.0


@pytest.mark.parametrize("factor", [1.5, 0.5])
def test_zoom_grows_a_centred_square_by_the_factor(factor):
    width, height = width_through_centre(run(zoom, square(), factor=factor, fill="constant"))
    assert width == pytest.approx(11 * factor, abs=0.5)
    assert height == pytest.approx(11 * factor, abs=0.5)


def test_zoom_of_one_is_identity():
    frame = smooth_image()
    np.testing.assert_allclose(run(zoom, frame, factor=1.0), frame, atol=1e-3)


def test_zoom_about_the_top_left_corner_keeps_that_corner():
    frame = smooth_image()
    out = run(zoom, frame, factor=2.0, center=(0.0, 0.0))
    np.testing.assert_allclose(out[0, 0], frame[0, 0], atol=1e-3)
    np.testing.assert_allclose(out[2, 4], frame[1, 2], atol=1e-3)  # pixel (x, y) from (x/2, y/2)


def test_stretch_vertical_leaves_each_rows_horizontal_profile_unchanged():
    rows = np.linspace(0, 100, 30)[:, None]
    columns = np.random.default_rng(0).uniform(0, 150, 20)[None, :]
    frame = np.repeat((rows + columns)[:, :, None], 3, axis=2).astype(np.float32)
    out = run(stretch, frame, vertical=1.1)
    np.testing.assert_allclose(out - out[:, :1], frame - frame[:, :1], atol=1e-3)
    assert not np.allclose(out, frame, atol=1.0)  # but the rows did move


def test_stretch_scales_each_axis_by_its_factor():
    width, height = width_through_centre(
        run(stretch, square(), vertical=1.5, horizontal=0.5, fill="constant")
    )
    assert width == pytest.approx(5.5, abs=0.5)
    assert height == pytest.approx(16.5, abs=0.5)


def test_rotate_90_is_numpy_rot90_counter_clockwise():
    frame = np.random.default_rng(0).uniform(0, 255, (9, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(run(rotate, frame, degrees=90), np.rot90(frame), atol=1e-3)
    np.testing.assert_allclose(run(rotate, frame, degrees=-90), np.rot90(frame, k=-1), atol=1e-3)


def test_translate_moves_right_and_down_by_whole_pixels():
    frame = smooth_image()
    out = run(translate, frame, dx=3, dy=2, fill="constant")
    np.testing.assert_allclose(out[2:, 3:], frame[:-2, :-3], atol=1e-3)
    assert np.all(out[:2] == 0) and np.all(out[:, :3] == 0)


@pytest.mark.parametrize("fill", ["reflect", "nearest", "wrap", "constant"])
def test_every_fill_mode_keeps_the_size_and_fills_the_border(fill):
    frame = smooth_image() + 1.0
    out = run(zoom, frame, factor=0.5, fill=fill)
    assert out.shape == frame.shape
    assert (out[0, 0, 0] == 0.0) == (fill == "constant")


def test_warp_refuses_projective_and_singular_matrices():
    frame = smooth_image()
    with pytest.raises(ValueError, match="affine matrix"):
        warp(frame, [[1, 0, 0], [0, 1, 0], [0.1, 0, 1]])
    with pytest.raises(ValueError, match="singular"):
        warp(frame, [[1, 2, 0], [2, 4, 0]])


# --- agreement with scipy.ndimage (order 1) -----------------------------------------------------


def scipy_warp(frame, forward):
    """scipy reference: sample input at inverse(forward) of each output pixel, (row, col) order."""
    inverse = np.linalg.inv(np.vstack([np.asarray(forward, float)[:2], [0, 0, 1]]))
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])  # (x, y) <-> (row, col)
    rc = swap @ inverse @ swap
    matrix = np.eye(3)
    matrix[:2, :2] = rc[:2, :2]
    offset = [rc[0, 2], rc[1, 2], 0.0]
    return ndimage.affine_transform(frame, matrix, offset=offset, order=1, mode="nearest")


def about_centre(linear, center, width, height):
    cx, cy = center[0] * (width - 1), center[1] * (height - 1)
    linear = np.asarray(linear, float)
    return np.hstack([linear, (np.array([cx, cy]) - linear @ [cx, cy])[:, None]])


CASES = [
    ("zoom", {"factor": 1.3, "center": [0.4, 0.6]}, lambda w, h: about_centre(
        np.diag([1.3, 1.3]), (0.4, 0.6), w, h)),
    ("zoom", {"factor": 0.8}, lambda w, h: about_centre(np.diag([0.8, 0.8]), (0.5, 0.5), w, h)),
    ("stretch", {"vertical": 1.2, "horizontal": 0.9}, lambda w, h: about_centre(
        np.diag([0.9, 1.2]), (0.5, 0.5), w, h)),
    ("translate", {"dx": 3.5, "dy": -2.25}, lambda w, h: [[1, 0, 3.5], [0, 1, -2.25]]),
    ("affine", {"matrix": [[1.1, 0.2, -3], [-0.1, 0.95, 2]]}, lambda w, h: [
        [1.1, 0.2, -3], [-0.1, 0.95, 2]]),
]  # fmt: skip


@pytest.mark.parametrize("name, params, forward", CASES, ids=[c[0] for c in CASES])
def test_geometric_builtins_agree_with_scipy_in_the_interior(name, params, forward):
    frame = smooth_image()
    height, width = frame.shape[:2]
    spec = [{name: {**params, "interpolation": "bilinear"}}]
    out = np.asarray(build_chain(spec).apply(frame, context(width, height)))
    expected = scipy_warp(frame, forward(width, height))
    interior = (slice(10, -10), slice(10, -10))
    assert np.max(np.abs(out[interior] - expected[interior])) <= 1.0


def test_rotate_agrees_with_scipy_rotate_in_the_interior():
    frame = smooth_image(41, 41)
    out = run(rotate, frame, degrees=17, interpolation="bilinear")
    expected = ndimage.rotate(frame, 17, reshape=False, order=1, mode="nearest")
    interior = (slice(8, -8), slice(8, -8))
    assert np.max(np.abs(out[interior] - expected[interior])) <= 1.0


# --- bicubic and Lanczos, against reference resamplers ------------------------------------------


def pil_zoom(frame, factor_x, factor_y, resample):
    """Pillow's resampling of the box that a zoom about the centre keeps (pixel centres at +0.5)."""
    from PIL import Image

    height, width = frame.shape[:2]
    cx, cy = (width - 1) / 2 + 0.5, (height - 1) / 2 + 0.5
    box = (cx - cx / factor_x, cy - cy / factor_y, cx - cx / factor_x + width / factor_x,
           cy - cy / factor_y + height / factor_y)
    channels = [Image.fromarray(frame[..., k], mode="F").resize((width, height), resample, box=box)
                for k in range(3)]
    return np.stack([np.asarray(c) for c in channels], axis=-1)


PIL_CASES = [("bilinear", "BILINEAR"), ("bicubic", "BICUBIC"), ("lanczos3", "LANCZOS")]


@pytest.mark.parametrize("interpolation, pil", PIL_CASES, ids=[c[0] for c in PIL_CASES])
def test_zoom_and_stretch_match_pillows_resampling(interpolation, pil):
    from PIL import Image

    frame = smooth_image() * 0.8 + 20  # away from 0 and 255: nothing to clip
    interior = (slice(8, -8), slice(8, -8))  # Pillow renormalises its taps at the border
    out = run(zoom, frame, factor=1.3, interpolation=interpolation, sharpen=0)
    expected = pil_zoom(frame, 1.3, 1.3, getattr(Image.Resampling, pil))
    np.testing.assert_allclose(out[interior], expected[interior], atol=1e-2)
    out = run(stretch, frame, vertical=1.25, horizontal=1.1, interpolation=interpolation, sharpen=0)
    expected = pil_zoom(frame, 1.1, 1.25, getattr(Image.Resampling, pil))
    np.testing.assert_allclose(out[interior], expected[interior], atol=1e-2)


def reference_warp(frame, forward, interpolation, fill, sharpen=0.0):
    """Direct sum over the taps, in float64: kernel(x) kernel(y) at each source point, each
    kernel (1 + 2s) k(d) - s k(d - 1) - s k(d + 1) with s = sharpen · sin²(π · frac(source))."""
    lobes = {"bicubic": 2, "lanczos3": 3, "lanczos5": 5}[interpolation]

    def plain(d):
        d = np.abs(d)
        if interpolation == "bicubic":  # Keys, a = -0.5
            return np.where(d <= 1, 1.5 * d**3 - 2.5 * d**2 + 1,
                            np.where(d < 2, -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2, 0.0))
        return np.where(d < lobes, np.sinc(d) * np.sinc(d / lobes), 0.0)

    def weight(source, tap):
        s = sharpen * np.sin(np.pi * (source - np.floor(source))) ** 2
        d = source - tap
        return (1 + 2 * s) * plain(d) - s * plain(d - 1) - s * plain(d + 1)

    height, width = frame.shape[:2]
    mode = {"reflect": "symmetric", "wrap": "wrap", "nearest": "edge", "constant": "constant"}[fill]
    pad = 4 * lobes + max(height, width)
    padded = np.pad(frame.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode=mode)
    inverse = np.linalg.inv(np.vstack([np.asarray(forward, float)[:2], [0, 0, 1]]))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    sx = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
    sy = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
    out, total = np.zeros(frame.shape), np.zeros((height, width, 1))
    for j in range(-lobes, lobes + 2):
        for i in range(-lobes, lobes + 2):
            tx, ty = np.floor(sx) + i, np.floor(sy) + j
            w = (weight(sx, tx) * weight(sy, ty))[..., None]
            out += w * padded[ty.astype(int) + pad, tx.astype(int) + pad]
            total += w
    return np.clip(out / total, 0, 255)


ROTATE_CASES = [("bicubic", "reflect", 0.0), ("lanczos3", "wrap", 0.0), ("lanczos5", "nearest", 0.0),
                ("lanczos3", "constant", 0.0), ("lanczos3", "reflect", 0.3), ("bicubic", "constant", 1.0)]


@pytest.mark.parametrize("interpolation, fill, sharpen", ROTATE_CASES)
def test_rotate_matches_a_direct_resampler_up_to_the_border(interpolation, fill, sharpen):
    frame = np.random.default_rng(3).uniform(0, 255, (24, 28, 3)).astype(np.float32)
    out = run(rotate, frame, degrees=23, fill=fill, interpolation=interpolation, sharpen=sharpen)
    forward = about_centre([[np.cos(np.radians(23)), np.sin(np.radians(23))],
                            [-np.sin(np.radians(23)), np.cos(np.radians(23))]], (0.5, 0.5), 28, 24)
    expected = reference_warp(frame, forward, interpolation, fill, sharpen)
    np.testing.assert_allclose(out, expected, atol=2e-2)


def test_sharpened_fractional_translate_is_lanczos_then_the_three_tap_filter():
    # Every output pixel samples at the same fractions (0.5 across, 0.75 down), so the sharpened
    # kernel is the plain one after [-s, 1 + 2s, -s] along each axis, s = sharpen · sin²(π · frac).
    frame = smooth_image() * 0.8 + 20  # away from 0 and 255: nothing to clip
    out = run(translate, frame, dx=0.5, dy=0.25, fill="wrap", interpolation="lanczos3", sharpen=0.6)
    plain = reference_warp(frame, [[1, 0, 0.5], [0, 1, 0.25]], "lanczos3", "wrap")
    expected = plain
    for axis, s in ((1, 0.6), (0, 0.6 * np.sin(0.75 * np.pi) ** 2)):
        expected = ndimage.correlate1d(expected, [-s, 1 + 2 * s, -s], axis=axis, mode="wrap")
    np.testing.assert_allclose(out, np.clip(expected, 0, 255), atol=1e-2)
    assert laplacian_energy(out) > 1.2 * laplacian_energy(plain)


def test_sharpen_is_declared_from_0_to_1_and_leaves_bilinear_plain():
    from animator.settings.errors import ConfigError

    with pytest.raises(ConfigError, match=r"rotate.sharpen: must be >= 0 and <= 1, got 1.5"):
        build_chain([{"rotate": {"sharpen": 1.5}}], frames=1)
    frame = smooth_image()
    plain = run(zoom, frame, factor=1.1, interpolation="bilinear", sharpen=0)
    np.testing.assert_array_equal(run(zoom, frame, factor=1.1, interpolation="bilinear"), plain)


def test_translate_by_whole_pixels_copies_pixels_with_every_interpolation():
    frame = np.random.default_rng(4).uniform(0, 255, (12, 14, 3)).astype(np.float32)
    for interpolation in ("bicubic", "lanczos3", "lanczos5", "bilinear", "nearest"):
        out = run(translate, frame, dx=-2, dy=3, fill="wrap", interpolation=interpolation)
        np.testing.assert_allclose(out, np.roll(frame, (3, -2), axis=(0, 1)), atol=1e-3)


def laplacian_energy(frame):
    return float(np.std(ndimage.laplace(frame.astype(np.float64) @ [0.299, 0.587, 0.114])))


def test_default_zoom_keeps_more_detail_than_bilinear_over_a_short_zoom():
    from skimage import data

    photo = data.astronaut()[100:196:2, 150:246:2].astype(np.float32)  # 48×48, the face
    energy = {}
    for interpolation in ("default", "bilinear"):
        frame = photo
        params = {} if interpolation == "default" else {"interpolation": "bilinear"}
        for _ in range(12):
            frame = run(zoom, frame, factor=1.03, **params)
        energy[interpolation] = laplacian_energy(frame)
    assert energy["default"] > 1.3 * energy["bilinear"]


# --- the JAX backend ----------------------------------------------------------------------------

JAX_SCRIPT = """
import json, sys
import numpy as np
import keras
import transforms
assert keras.backend.backend() == "jax", keras.backend.backend()
frame = np.load(sys.argv[1])
specs = json.loads(sys.argv[2])
ctx = transforms.Context(3, 10, (frame.shape[1], frame.shape[0]), np.random.default_rng(0))
out = {}
for key, spec in specs.items():
    result = transforms.build_chain(spec).apply(frame, ctx)
    assert "jax" in type(result).__module__, type(result)
    out[key] = np.asarray(result)
np.savez(sys.argv[3], **out)
"""

JAX_SPECS = {
    "zoom": [{"zoom": {"factor": 1.3, "center": [0.4, 0.6]}}],
    "rotate": [{"rotate": {"degrees": 90}}],
    "bicubic": [{"rotate": {"degrees": 17, "interpolation": "bicubic", "fill": "constant"}}],
    "bilinear": [{"zoom": {"factor": 0.8, "interpolation": "bilinear"}}],
    "stretch": [{"stretch": {"vertical": 1.2, "horizontal": 0.9, "fill": "wrap"}}],
    "translate": [{"translate": {"dx": 3.5, "dy": -2.25, "fill": "constant"}}],
    "affine": [{"affine": {"matrix": [[1.1, 0.2, -3], [-0.1, 0.95, 2]], "fill": "nearest"}}],
    "roll": [{"roll": {"shift": "n / 3 + t"}}],
    "stochastic": [{"stochastic_shift": {"low": -3, "high": 3, "axis": "rows"}}],
    "sobel": ["sobel"],
    "notebook": [{"sobel": {"look": "notebook"}}, {"roll": {"shift": "n / 15", "rounding": "truncate"}}],
    "blur": [{"blur": {"sigma": 1.5}}],
    "hue": [{"hue_shift": {"degrees": 40}}],
}


def test_transforms_run_on_the_jax_backend_and_match_tensorflow(tmp_path):
    frame = smooth_image(33, 33)
    np.save(tmp_path / "frame.npy", frame)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    arguments = [str(tmp_path / "frame.npy"), json.dumps(JAX_SPECS), str(tmp_path / "out.npz")]
    done = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, *arguments],
        env=env, cwd=ROOT, timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(results["rotate"], np.rot90(frame), atol=1e-3)
    ctx = Context(3, 10, (33, 33), np.random.default_rng(0))
    for key, spec in JAX_SPECS.items():
        here = np.asarray(build_chain(spec).apply(frame, ctx))
        interior = (slice(6, -6), slice(6, -6))
        assert np.max(np.abs(results[key][interior] - here[interior])) <= 1.0, key
