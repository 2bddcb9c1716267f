"""GIF, MP4 and WebM writing: frame order, loop and timing, odd sizes, streaming and failures."""

from __future__ import annotations

import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import GifImagePlugin, Image

from animator.media import video
from animator.media.video import (
    GifWriter,
    Mp4Writer,
    WebmWriter,
    assemble,
    crf_for_quality,
    frame_order,
    gif_frame_duration,
    open_writer,
    vp9_crf_for_quality,
    write_gif,
)
from animator.settings.errors import ConfigError, InputError, OutputError

LEVELS = [0, 40, 80, 120, 160, 200]  # one flat grey level per frame makes the order visible


def flat(level, width=24, height=16):
    return np.full((height, width, 3), level, dtype=np.uint8)


@pytest.fixture
def frames_dir(tmp_path):
    """Six flat-grey frames named so that only natural sort puts them in order."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, level in enumerate(LEVELS):
        Image.fromarray(flat(level)).save(folder / f"frame{index}.png")
    os.rename(folder / "frame5.png", folder / "frame10.png")
    return folder


def gif_frames(path):
    """(mean grey level, duration ms) for each frame of a GIF, read back with Pillow."""
    with Image.open(path) as image:
        found = []
        for index in range(image.n_frames):
            image.seek(index)
            found.append((round(np.asarray(image.convert("RGB")).mean()), image.info["duration"]))
        return found


def mp4_frames(path):
    """((width, height), [mean grey level per frame]) of an MP4, decoded by ffmpeg."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    levels = [float(np.frombuffer(data, np.uint8).mean()) for data in reader]
    return meta["size"], levels


# --- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "reverse", "pingpong", "expected"),
    [
        (4, False, False, [0, 1, 2, 3]),
        (4, True, False, [3, 2, 1, 0]),
        (4, False, True, [0, 1, 2, 3, 2, 1]),
        (4, True, True, [3, 2, 1, 0, 1, 2]),
        (2, False, True, [0, 1]),
        (1, False, True, [0]),
        (0, True, True, []),
    ],
)
def test_frame_order(n, reverse, pingpong, expected):
    assert frame_order(n, reverse, pingpong) == expected


def test_pingpong_gives_2n_minus_2():
    assert all(len(frame_order(n, pingpong=True)) == 2 * n - 2 for n in range(2, 12))


@pytest.mark.parametrize(("fps", "ms"), [(10, 100), (25, 40), (30, 30), (15, 70), (60, 20),
                                         (200, 20), (0.5, 2000)])
def test_gif_frame_duration_in_whole_centiseconds(fps, ms):
    assert gif_frame_duration(fps) == ms


def test_quality_maps_to_crf_without_going_lossless():
    assert [crf_for_quality(q) for q in (0, 5, 8, 10)] == [38, 26, 18, 13]
    with pytest.raises(ConfigError, match="between 0 and 10, got 11"):
        crf_for_quality(11)


# --- GIF ---------------------------------------------------------------------------------------


def test_gif_has_every_frame_in_natural_order_looping_forever(frames_dir, tmp_path):
    out = tmp_path / "out.gif"
    assert assemble(frames_dir, out, fps=10) == 6
    assert gif_frames(out) == [(level, 100) for level in LEVELS]
    with Image.open(out) as image:
        assert image.info["loop"] == 0


def test_gif_loop_count_and_play_once(frames_dir, tmp_path):
    assemble(frames_dir, tmp_path / "three.gif", fps=10, loop=3)
    assemble(frames_dir, tmp_path / "once.gif", fps=10, loop=None)
    with Image.open(tmp_path / "three.gif") as three, Image.open(tmp_path / "once.gif") as once:
        assert three.info["loop"] == 3
        assert "loop" not in once.info


def test_gif_reverse(frames_dir, tmp_path):
    assemble(frames_dir, tmp_path / "back.gif", fps=10, reverse=True)
    assert [level for level, _ in gif_frames(tmp_path / "back.gif")] == LEVELS[::-1]


def test_gif_pingpong(frames_dir, tmp_path):
    assert assemble(frames_dir, tmp_path / "pp.gif", fps=20, pingpong=True) == 10
    found = gif_frames(tmp_path / "pp.gif")
    assert [level for level, _ in found] == LEVELS + LEVELS[-2:0:-1]
    assert {ms for _, ms in found} == {50}


def test_gif_per_frame_palette_and_dither(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for index in range(3):
        path = tmp_path / f"f{index}.png"
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    for palette in ("shared", "per_frame"):
        out = tmp_path / f"{palette}.gif"
        assert write_gif(paths, out, fps=10, palette=palette, dither=True) == 3
        with Image.open(out) as image:
            assert (image.n_frames, image.size) == (3, (30, 20))


def test_gif_shared_palette_keeps_exact_colours_of_few_colour_frames(tmp_path):
    colours = [(255, 0, 0), (0, 128, 255), (12, 200, 34)]
    paths = []
    for index, colour in enumerate(colours):
        paths.append(tmp_path / f"f{index}.png")
        Image.new("RGB", (8, 8), colour).save(paths[-1])
    write_gif(paths, tmp_path / "out.gif", fps=10)
    with Image.open(tmp_path / "out.gif") as image:
        for index, colour in enumerate(colours):
            image.seek(index)
            assert image.convert("RGB").getpixel((3, 3)) == colour


def test_gif_frames_are_read_one_at_a_time_while_writing(frames_dir, tmp_path, monkeypatch):
    events = []
    open_frame, getdata = video._open_frame, GifImagePlugin.getdata
    monkeypatch.setattr(video, "_open_frame", lambda *a: events.append("read") or open_frame(*a))
    monkeypatch.setattr(GifImagePlugin, "getdata",
                        lambda *a, **k: events.append("write") or getdata(*a, **k))
    write_gif(sorted(frames_dir.iterdir()), tmp_path / "out.gif", fps=10)
    sampled = len(LEVELS)  # the shared palette reads up to 8 frames first
    assert events == ["read"] * sampled + ["read", "write"] * len(LEVELS)


def test_gif_writer_streams_frames_through_the_with_block(tmp_path):
    out = tmp_path / "new" / "live.gif"
    with open_writer(out, fps=10) as writer:
        assert isinstance(writer, GifWriter)
        for level in LEVELS:
            writer.write(flat(level).astype(np.float32))
    assert gif_frames(out) == [(level, 100) for level in LEVELS]
    assert os.listdir(out.parent) == ["live.gif"]  # spooled frames removed


def test_gif_writer_leaves_nothing_when_the_block_fails(tmp_path):
    out = tmp_path / "broken.gif"
    with pytest.raises(RuntimeError), open_writer(out, fps=10) as writer:
        writer.write(flat(10))
        raise RuntimeError("render failed")
    assert os.listdir(tmp_path) == []


def test_gif_of_frames_with_different_sizes_is_refused(tmp_path):
    Image.fromarray(flat(0)).save(tmp_path / "a1.png")
    Image.fromarray(flat(0, width=10)).save(tmp_path / "a2.png")
    with pytest.raises(InputError, match=r"'.*a2\.png' is 10×16 but the first frame is 24×16"):
        assemble(tmp_path, tmp_path / "out" / "x.gif", fps=10)
    assert os.listdir(tmp_path / "out") == []


# --- MP4 ---------------------------------------------------------------------------------------


def test_mp4_has_every_frame_in_order_at_its_size(frames_dir, tmp_path):
    out = tmp_path / "out.mp4"
    assert assemble(frames_dir, out, fps=12) == 6
    size, levels = mp4_frames(out)
    assert size == (24, 16)
    np.testing.assert_allclose(levels, LEVELS, atol=3)


def test_mp4_reverse_pingpong(frames_dir, tmp_path):
    out = tmp_path / "pp.mp4"
    assert assemble(frames_dir, out, fps=12, reverse=True, pingpong=True) == 10
    _, levels = mp4_frames(out)
    expected = LEVELS[::-1] + LEVELS[1:-1]
    np.testing.assert_allclose(levels, expected, atol=3)


def test_mp4_odd_size_is_padded_to_even_by_repeating_the_edge(tmp_path):
    frame = np.zeros((65, 63, 3), dtype=np.float32)
    frame[:, -1] = 250.0  # last column; the padding column must repeat it
    out = tmp_path / "odd.mp4"
    with open_writer(out, fps=5) as writer:
        assert isinstance(writer, Mp4Writer)
        for _ in range(3):
            writer.write(frame)
    reader = imageio_ffmpeg.read_frames(str(out))
    assert next(reader)["size"] == (64, 66)
    decoded = [np.frombuffer(data, np.uint8).reshape(66, 64, 3) for data in reader]
    assert len(decoded) == 3
    assert decoded[0][:, 62:].mean() > 200 and decoded[0][:, :60].mean() < 20


# --- WebM ---------------------------------------------------------------------------------------


def test_webm_has_every_frame_in_order_at_its_size_and_plays_them_back(frames_dir, tmp_path):
    out = tmp_path / "out.webm"
    assert assemble(frames_dir, out, fps=12, pingpong=True) == 10
    size, levels = mp4_frames(out)  # ffmpeg decodes either
    assert size == (24, 16)
    np.testing.assert_allclose(levels, LEVELS + LEVELS[-2:0:-1], atol=3)
    assert out.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"


def test_webm_odd_size_is_padded_and_its_settings_ride_in_its_metadata(tmp_path):
    out = tmp_path / "odd.webm"
    with open_writer(out, fps=5, preset="ultrafast") as writer:
        assert isinstance(writer, WebmWriter)
        writer.comment = "dream: {steps: 3}"
        for level in (0, 120, 240):
            writer.write(flat(level, width=63, height=65))
    reader = imageio_ffmpeg.read_frames(str(out))
    assert next(reader)["size"] == (64, 66)
    assert len(list(reader)) == 3
    import subprocess

    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)],
                           capture_output=True, text=True).stderr
    assert "vp9" in probe and "dream: {steps: 3}" in probe


def test_webm_quality_maps_to_vp9s_constant_quality_scale():
    assert [vp9_crf_for_quality(q) for q in (0, 5, 8, 10)] == [50, 32, 22, 15]
    with pytest.raises(ConfigError, match="between 0 and 10"):
        vp9_crf_for_quality(11)


def test_every_mp4_preset_is_a_vp9_speed():
    assert set(video.VP9_SPEEDS) == set(video.PRESETS)
    speeds = [video.VP9_SPEEDS[preset] for preset in video.PRESETS]  # fastest first
    assert [speed for _, speed in speeds] == sorted((speed for _, speed in speeds), reverse=True)


def test_mp4_writer_refuses_a_frame_of_another_size(tmp_path):
    out = tmp_path / "sizes.mp4"
    with pytest.raises(OutputError, match="frame 1 is 10×16 but .* is 24×16"):
        with open_writer(out, fps=5) as writer:
            writer.write(flat(0))
            writer.write(flat(0, width=10))
    assert os.listdir(tmp_path) == []


def test_mp4_writer_with_no_frames_is_an_error(tmp_path):
    with pytest.raises(OutputError, match=r"no frames were written to '.*empty\.mp4'"):
        with open_writer(tmp_path / "empty.mp4", fps=5):
            pass
    assert os.listdir(tmp_path) == []


def test_ffmpeg_failure_keeps_frames_and_says_how_to_assemble(tmp_path, monkeypatch):
    def broken_encoder(*args, **kwargs):
        yield
        raise OSError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND: ...")

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", broken_encoder)
    out = tmp_path / "out.mp4"
    with pytest.raises(OutputError) as caught:
        with open_writer(out, fps=5, frames_dir="run/frames") as writer:
            writer.write(flat(0))
    message = str(caught.value)
    assert "\n" not in message and "Broken pipe" in message
    # the facts that make the video later, worded by each front end (here: Python's)
    assert caught.value.facts == {"frames": "run/frames", "out": str(out)}
    assert caught.value.remedy == "assemble" and "animator.media.video.assemble(**error.facts)" in message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_ffmpeg_stopping_without_finishing_the_file_is_an_error(tmp_path, monkeypatch, suffix):
    def silent_encoder(path, *args, **kwargs):
        with open(path, "wb") as stream:  # a header, as ffmpeg writes first, and nothing after
            stream.write(b"\x1a\x45\xdf\xa3" if suffix == ".webm" else b"\0\0\0\x20ftypisom")
        while True:
            yield  # accepts frames but never finishes the file

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", silent_encoder)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(OutputError, match="stopped before finishing"):
        with open_writer(out, fps=5) as writer:
            writer.write(flat(0))
    assert os.listdir(tmp_path) == []


def test_failed_encode_keeps_the_previous_video(frames_dir, tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    assemble(frames_dir, out, fps=12)
    before = out.read_bytes()

    def broken_encoder(*args, **kwargs):
        yield
        raise OSError("broken pipe")

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", broken_encoder)
    with pytest.raises(OutputError):
        assemble(frames_dir, out, fps=12)
    assert out.read_bytes() == before


# --- arguments and outputs ---------------------------------------------------------------------


def test_unknown_suffix_lists_the_supported_ones(frames_dir, tmp_path):
    with pytest.raises(OutputError, match=r"unknown video suffix '\.avi': use one of \.gif, \.webp, \.mp4, "
                       r"\.webm"):
        assemble(frames_dir, tmp_path / "out.avi", fps=10)


def test_format_argument_overrides_the_suffix(tmp_path):
    with open_writer(tmp_path / "clip.video", fps=10, format="gif") as writer:
        writer.write(flat(0))
    with Image.open(tmp_path / "clip.video") as image:
        assert image.format == "GIF"


def test_output_folder_is_created(frames_dir, tmp_path):
    out = tmp_path / "a" / "b" / "out.gif"
    assemble(frames_dir, out, fps=10)
    assert out.is_file()


def test_output_that_is_a_folder_is_refused(frames_dir, tmp_path):
    (tmp_path / "taken.gif").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        assemble(frames_dir, tmp_path / "taken.gif", fps=10)


def test_unwritable_output_folder_is_an_output_error(frames_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match=r"cannot write '.*out\.mp4'"):
        assemble(frames_dir, blocker / "out.mp4", fps=10)


def test_missing_frames_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        assemble(tmp_path / "nowhere", tmp_path / "out.gif", fps=10)


@pytest.mark.parametrize("fps", [0, -1, float("nan"), "10", 0.001, 1e-300, 241])
def test_bad_fps_is_refused(fps, frames_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"fps must be a number of frames per second >= 0.01 and <= 240"):
        assemble(frames_dir, tmp_path / "out.gif", fps=fps)


def test_bad_palette_is_refused(frames_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"\['shared', 'per_frame'\], got 'web'"):
        assemble(frames_dir, tmp_path / "out.gif", fps=10, palette="web")


def test_assemble_takes_a_list_of_files(frames_dir, tmp_path):
    paths = [frames_dir / "frame3.png", frames_dir / "frame0.png"]
    assert assemble(paths, tmp_path / "two.gif", fps=10) == 2
    assert [level for level, _ in gif_frames(tmp_path / "two.gif")] == [120, 0]


def test_a_slower_mp4_preset_makes_a_smaller_file_of_the_same_frames(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (96, 128, 3)).astype(np.float32)
    sizes = {}
    for preset in ("ultrafast", "medium"):
        with Mp4Writer(tmp_path / f"{preset}.mp4", 10, preset=preset) as writer:
            for shift in range(6):  # a textured picture panning: motion search pays off
                writer.write(np.roll(base, 3 * shift, axis=1))
        sizes[preset] = (tmp_path / f"{preset}.mp4").stat().st_size
    assert sizes["medium"] < 0.9 * sizes["ultrafast"]
    with pytest.raises(ConfigError, match="preset must be one of ultrafast, .*veryslow, got 'quick'"):
        Mp4Writer(tmp_path / "x.mp4", 10, preset="quick")


def test_mp4_keeps_the_colours_of_its_frames(tmp_path):
    """The frames reach the encoder as yuv420p planes made here (BT.601, limited range): decoded,
    flat patches of saturated and mixed colours come back within a few levels."""
    colours = [(230, 20, 20), (20, 200, 40), (30, 40, 220), (128, 128, 128), (250, 220, 60),
               (16, 16, 16)]
    frame = np.concatenate([np.full((32, 32, 3), colour, np.uint8) for colour in colours], axis=1)
    out = tmp_path / "colours.mp4"
    with Mp4Writer(out, fps=5, quality=10) as writer:
        for _ in range(3):
            writer.write(frame)
    reader = imageio_ffmpeg.read_frames(str(out))
    next(reader)
    decoded = [np.frombuffer(data, np.uint8).reshape(32, 192, 3) for data in reader]
    assert len(decoded) == 3
    for index, colour in enumerate(colours):
        patch = decoded[-1][8:24, 32 * index + 8:32 * index + 24].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(patch, colour, atol=4, err_msg=f"patch {index}")
