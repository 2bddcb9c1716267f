"""Reading start images, fitting sizes, noise starts, atomic PNG writes and frame listing."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

import animator.media.images
from animator.media.images import (
    encode_png,
    fit_size,
    list_frames,
    noise_image,
    read_image,
    rgb_uint8,
    to_uint8,
    write_png_atomic,
)
from animator.settings.errors import InputError, OutputError


def gradient(height=6, width=8):
    """A uint8 RGB image where every pixel differs from its neighbours."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 30, y * 40, (x + y) * 10], axis=2).astype(np.uint8)


def save(tmp_path, name, image, **params):
    path = tmp_path / name
    image.save(path, **params)
    return path


# --- read_image: failures -------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"input image '.*x\.jpg' not found"):
        read_image(tmp_path / "x.jpg")


def test_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


def test_truncated_png_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = save(tmp_path, "cut.png", Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"'.*cut\.png' is not a readable image"):
        read_image(path)


def test_text_file_named_png_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(InputError, match=r"'.*notes\.png' is not a readable image"):
        read_image(path)


def test_huge_image_refused_with_its_size(tmp_path):
    path = save(tmp_path, "big.png", Image.new("RGB", (20, 10)))
    with pytest.raises(InputError, match=r"20×10 .*over the limit of 199 pixels.*size:"):
        read_image(path, max_pixels=199)


def test_image_at_the_limit_is_read(tmp_path):
    path = save(tmp_path, "ok.png", Image.new("RGB", (20, 10)))
    assert read_image(path, max_pixels=200).pixels.shape == (10, 20, 3)


def test_decompression_bomb_becomes_input_error(tmp_path, monkeypatch):
    path = save(tmp_path, "bomb.png", Image.new("RGB", (20, 10)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    with pytest.raises(InputError, match=r"'.*bomb\.png' is too large"):
        read_image(path, max_pixels=10_000)


# --- read_image: modes ----------------------------------------------------------------------


def test_rgb_png_is_read_exactly(tmp_path):
    pixels = gradient()
    path = save(tmp_path, "rgb.png", Image.fromarray(pixels))
    image, notes = read_image(path)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, pixels)
    assert notes == []


def test_sixteen_bit_png_is_scaled_to_8_bits(tmp_path):
    grey = np.array([[0, 65535], [257 * 100, 257 * 3]], dtype=np.uint16)
    path = save(tmp_path, "deep.png", Image.fromarray(grey))
    image, notes = read_image(path)
    np.testing.assert_allclose(image[:, :, 0], [[0, 255], [100, 3]], atol=1e-3)
    np.testing.assert_array_equal(image[:, :, 0], image[:, :, 2])
    assert notes == ["16-bit image: scaled to 8 bits"]


def test_greyscale_becomes_three_equal_channels(tmp_path):
    grey = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    image, _ = read_image(save(tmp_path, "grey.png", Image.fromarray(grey)))
    assert image.shape == (2, 2, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], grey)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0]]], dtype=np.uint8)
    image, notes = read_image(save(tmp_path, "alpha.png", Image.fromarray(rgba)))
    np.testing.assert_array_equal(image, [[[10, 20, 30], [255, 255, 255]]])
    assert notes == ["transparent areas composited on white"]


def test_grey_with_alpha_is_composited_on_white(tmp_path):
    grey_alpha = Image.fromarray(np.array([[[40, 255], [40, 0]]], dtype=np.uint8), mode="LA")
    image, _ = read_image(save(tmp_path, "la.png", grey_alpha))
    np.testing.assert_array_equal(image, [[[40, 40, 40], [255, 255, 255]]])


def test_palette_image_gives_its_colours(tmp_path):
    indexed = Image.fromarray(np.array([[0, 1], [2, 0]], dtype=np.uint8), mode="P")
    indexed.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    image, _ = read_image(save(tmp_path, "palette.png", indexed))
    np.testing.assert_array_equal(
        image, [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 0, 0]]]
    )


def test_cmyk_is_converted_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))
    cmyk.putpixel((1, 0), (255, 0, 0, 0))
    image, _ = read_image(save(tmp_path, "cmyk.tif", cmyk))
    np.testing.assert_array_equal(image, [[[255, 255, 255], [0, 255, 255]]])


def test_animated_gif_gives_first_frame_and_a_note(tmp_path):
    colours = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    frames = [Image.new("RGB", (4, 4), colour) for colour in colours]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    image, notes = read_image(path)
    np.testing.assert_array_equal(image[0, 0], [255, 0, 0])
    assert notes == ["animated image: using its first frame of 3"]


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    pixels = gradient(height=2, width=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path = save(tmp_path, "turned.png", Image.fromarray(pixels), exif=exif)
    image, _ = read_image(path)
    np.testing.assert_array_equal(image, np.rot90(pixels, k=-1))


# --- fit_size, noise_image, to_uint8 ------------------------------------------------------------


def test_fit_size_resize_stretches_to_exact_size():
    image = np.full((10, 20, 3), 80.0, dtype=np.float32)
    out = fit_size(image, (7, 9), "resize")
    assert out.shape == (9, 7, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 80.0, atol=1e-3)


def test_fit_size_fit_keeps_aspect_inside_box():
    image = np.zeros((10, 20, 3), dtype=np.float32)
    assert fit_size(image, (10, 10), "fit").shape == (5, 10, 3)


def test_fit_size_crop_cuts_the_sides_evenly():
    image = np.repeat(np.repeat(np.arange(20, dtype=np.float32)[None, :, None], 10, 0), 3, 2)
    out = fit_size(image * 10, (10, 10), "crop")  # same scale: the centre 10 columns
    np.testing.assert_allclose(out, image[:, 5:15] * 10, atol=1e-3)


def test_fit_size_crop_scales_to_cover():
    assert fit_size(np.zeros((10, 20, 3), np.float32), (4, 6), "crop").shape == (6, 4, 3)


def test_fit_size_keeps_floats_and_returns_same_size_unchanged():
    image = np.full((4, 4, 3), 100.25, dtype=np.float32)
    np.testing.assert_array_equal(fit_size(image, (4, 4)), image)


def test_fit_size_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'stretch'"):
        fit_size(np.zeros((2, 2, 3), np.float32), (1, 1), "stretch")


def test_noise_image_is_deterministic_and_grey_around_the_middle():
    first, again = noise_image((32, 16), seed=7), noise_image((32, 16), seed=7)
    assert first.shape == (16, 32, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, noise_image((32, 16), seed=8))
    assert 120 < first.mean() < 135 and first.min() >= 0 and first.max() <= 255


def test_noise_image_is_smoother_than_white_noise():
    image = noise_image((64, 64), seed=1)
    white = np.random.default_rng(1).uniform(-24, 24, image.shape)
    assert np.abs(np.diff(image, axis=1)).mean() < 0.5 * np.abs(np.diff(white, axis=1)).mean()


def test_to_uint8_rounds_and_clips():
    frame = np.array([[[-5.0, 0.4, 0.6], [254.6, 300.0, np.nan]]], dtype=np.float32)
    np.testing.assert_array_equal(to_uint8(frame), [[[0, 0, 1], [255, 255, 0]]])
    assert to_uint8(frame).dtype == np.uint8
    # halves go to the even neighbour (np.rint); infinities clip; float64 and views are accepted
    edge = np.array([0.5, 1.5, 2.5, 254.5, np.inf, -np.inf], dtype=np.float64)
    np.testing.assert_array_equal(to_uint8(edge), [0, 2, 2, 254, 255, 0])
    np.testing.assert_array_equal(to_uint8(frame[:, ::-1]), [[[255, 255, 0], [0, 0, 1]]])
    assert frame[0, 1, 2] != frame[0, 1, 2]  # the input is left as it was (NaN kept)


# --- write_png_atomic -------------------------------------------------------------------------


def test_write_png_atomic_round_trips_and_leaves_no_temp_file(tmp_path):
    pixels = gradient()
    path = tmp_path / "frames" / "frame0001.png"
    write_png_atomic(path, pixels.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels)
    assert os.listdir(path.parent) == ["frame0001.png"]


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (48, 64), (67, 129)])
def test_encode_png_decodes_to_exactly_the_frame(shape, deflate, monkeypatch):
    import io as stdlib_io
    import zlib

    if deflate == "zlib":  # the fallback where no isal wheel exists
        monkeypatch.setattr(animator.media.images, "_deflate", zlib)
    else:
        pytest.importorskip("isal")
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    pixels[::2, ::3] = [0, 255, 1]  # runs and wraps (255 - 0, 0 - 255) in the "up" filter
    data = encode_png(pixels)
    with Image.open(stdlib_io.BytesIO(data)) as image:
        image.verify()  # chunk CRCs and structure
    with Image.open(stdlib_io.BytesIO(data)) as image:
        assert image.mode == "RGB" and image.size == (shape[1], shape[0])
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_encode_png_rounds_float_frames_like_to_uint8():
    import io as stdlib_io

    frame = np.array([[[-5.0, 0.5, 1.5], [254.6, 300.0, np.nan]]], dtype=np.float32)
    with Image.open(stdlib_io.BytesIO(encode_png(frame))) as image:
        np.testing.assert_array_equal(np.asarray(image), to_uint8(frame))


def test_fast_png_writes_are_atomic_and_exact(tmp_path):
    pixels = gradient(33, 21)
    path = tmp_path / "00000.png"
    write_png_atomic(path, pixels, fast=True)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels)
    assert os.listdir(tmp_path) == ["00000.png"]


def test_written_frame_has_ordinary_permissions(tmp_path):
    write_png_atomic(tmp_path / "frame.png", gradient())
    (tmp_path / "plain.txt").write_text("")
    mode = (tmp_path / "frame.png").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777


def test_disk_full_raises_output_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    path = tmp_path / "frame0001.png"
    with pytest.raises(OutputError, match=r"disk full while writing '.*frame0001\.png'.*resume=True"):
        write_png_atomic(path, gradient())
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "frame0001.png"
    write_png_atomic(path, gradient())
    before = path.read_bytes()

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputError):
        write_png_atomic(path, np.zeros((6, 8, 3), np.uint8))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["frame0001.png"]


def test_permission_denied_says_not_writable(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(animator.media.images, "temp_beside", denied)
    with pytest.raises(OutputError, match=r"'.*frame\.png': the folder is not writable"):
        write_png_atomic(tmp_path / "frame.png", gradient())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_unwritable_folder_raises_output_error(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            write_png_atomic(folder / "frame.png", gradient())
    finally:
        folder.chmod(0o700)


# --- list_frames ------------------------------------------------------------------------------


def test_list_frames_natural_order_skipping_others(tmp_path):
    for name in ("frame10.png", "frame2.png", "frame1.png", "Frame3.JPG", "notes.txt",
                 ".frame4.png.abc123.tmp", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    names = [path.name for path in list_frames(tmp_path)]
    assert names == ["frame1.png", "frame2.png", "Frame3.JPG", "frame10.png"]


def test_list_frames_missing_folder(tmp_path):
    with pytest.raises(InputError, match=r"frames folder '.*nowhere' not found"):
        list_frames(tmp_path / "nowhere")


def test_list_frames_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    with pytest.raises(InputError, match="has no frames"):
        list_frames(tmp_path)


def test_rgb_uint8_refuses_a_frame_that_is_not_rgb():
    with pytest.raises(ValueError, match=r"H×W×3 RGB, got shape \(2, 2\)"):
        rgb_uint8(np.zeros((2, 2), np.float32))
