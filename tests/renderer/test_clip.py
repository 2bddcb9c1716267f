"""Dreaming a video: frame count, rate and size kept, the dream carried along the flow, sound kept,
resume, and a clear error for each unusable input."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import audio_seconds, write_clip
from PIL import Image

from animator import config as config_module
from animator.cli import main
from animator.media import clip as clip_module
from animator.renderer import sources
from animator.renderer.loop import render
from animator.settings.errors import ConfigError, InputError, Interrupted

SIZE, FRAMES, FPS, SPEED, SIDE = (64, 48), 10, 10, 2, 24  # pixels, frames, 1/s, px/frame, px
SQUARE_TOP, SQUARE_LEFT = 12, 4
DREAM = {"model": "vgg16-hed", "octaves": 1, "steps": 3, "jitter": 8, "layers": {"block3_conv3": 1.0}}


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args],
                   check=True, capture_output=True)


def texture(rng, height: int, width: int, sigma: float) -> np.ndarray:
    from scipy import ndimage

    noise = ndimage.gaussian_filter(rng.uniform(0, 255, (height, width, 3)), (sigma, sigma, 0))
    return np.clip((noise - noise.mean()) / noise.std() * 50 + 128, 0, 255)


def square_frames() -> list[np.ndarray]:
    """A textured square moving right SPEED px a frame over a still textured background."""
    rng = np.random.default_rng(0)
    background = texture(rng, SIZE[1], SIZE[0], 1.5)
    square = texture(rng, SIDE, SIDE, 1.0)
    frames = []
    for i in range(FRAMES):
        frame = background.copy()
        left = SQUARE_LEFT + SPEED * i
        frame[SQUARE_TOP:SQUARE_TOP + SIDE, left:left + SIDE] = square
        frames.append(frame.astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def square_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "square.mp4", square_frames(), FPS)


@pytest.fixture(scope="module")
def sound_clip(square_clip) -> Path:
    """The square clip with a 440 Hz sine tone as long as the picture (1 s)."""
    out = square_clip.with_name("tone.mp4")
    ffmpeg("-i", str(square_clip), "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out))
    return out


def video_config(tmp_path: Path, video: Path, name: str = "out.mp4", **video_options):
    data = {"input": {"video": str(video)}, "seed": 1, "dream": DREAM, "video": video_options,
            "color": {"coherence": "none"}, "output": {"path": str(tmp_path / name)}}
    return config_module.from_mapping(data, tmp_path, source=str(tmp_path / "video.yaml"))


def png_frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p), np.float32) for p in sorted(folder.glob("[0-9]*.png"))]


@pytest.fixture(scope="module")
def carried(square_clip, tmp_path_factory):
    config = video_config(tmp_path_factory.mktemp("carried"), square_clip)
    return config, render(config)


@pytest.fixture(scope="module")
def scratch(square_clip, tmp_path_factory):
    config = video_config(tmp_path_factory.mktemp("scratch"), square_clip, blend=0)
    return config, render(config)


def test_the_output_keeps_the_clips_frame_count_rate_and_size(carried):
    config, result = carried
    assert result.frames == FRAMES and len(png_frames(config.frames_dir)) == FRAMES
    out = clip_module.probe(config.output_path)
    assert out.size == SIZE and out.fps == FPS and out.audio is None
    assert clip_module.count_frames(out) == FRAMES


def square_displacements(frames: list[np.ndarray]) -> list[float]:
    """How far the dream (output minus input) inside the square moves from frame to frame, in
    pixels to the right, by phase correlation over a window inside the square in both frames."""
    import cv2

    inputs = [f.astype(np.float32) for f in square_frames()]
    width, height = SIDE - 2 * SPEED - 4, SIDE - 4
    hanning = cv2.createHanningWindow((width, height), cv2.CV_64F)
    shifts = []
    for i in range(1, FRAMES - 1):
        left, top = SQUARE_LEFT + SPEED * i + 2, SQUARE_TOP + 2
        window = np.s_[top:top + height, left:left + width]
        a, b = ((frames[j] - inputs[j]).mean(-1)[window].astype(np.float64) for j in (i, i + 1))
        (dx, _), _ = cv2.phaseCorrelate(a, b, hanning)
        shifts.append(dx)
    return shifts


def background_change(frames: list[np.ndarray]) -> float:
    """Mean absolute change between consecutive frames, away from the square's path."""
    still = np.ones(frames[0].shape[:2], bool)
    still[SQUARE_TOP - 4:SQUARE_TOP + SIDE + 4, :SQUARE_LEFT + SPEED * FRAMES + SIDE + 4] = False
    return float(np.mean([np.abs(a - b)[still].mean() for a, b in zip(frames, frames[1:])]))


def test_the_dream_moves_with_the_square(carried):
    shifts = square_displacements(png_frames(carried[0].frames_dir))
    assert np.mean(shifts) == pytest.approx(SPEED, abs=0.5), shifts


def test_the_still_background_flickers_a_third_as_much_as_dreaming_from_scratch(carried, scratch):
    carried_change = background_change(png_frames(carried[0].frames_dir))
    scratch_change = background_change(png_frames(scratch[0].frames_dir))
    assert scratch_change > 1.0  # the dream from scratch does change from frame to frame
    assert carried_change * 3 <= scratch_change, (carried_change, scratch_change)


def test_every_third_frame_dreamed_fully_the_rest_carried(square_clip, tmp_path, scratch):
    config = video_config(tmp_path, square_clip, every=3, carry_steps=0)
    assert render(config).frames == FRAMES
    frames = png_frames(config.frames_dir)
    assert background_change(frames) * 3 <= background_change(png_frames(scratch[0].frames_dir))
    assert np.mean(square_displacements(frames)) == pytest.approx(SPEED, abs=0.5)




@pytest.mark.parametrize("name, codec", [("out.mp4", "aac"), ("out.webm", "opus")])
def test_the_sound_is_kept_for_as_long_as_the_picture(sound_clip, tmp_path, name, codec):
    config = video_config(tmp_path, sound_clip, name=name)
    assert render(config).frames == FRAMES
    out = clip_module.probe(config.output_path)
    assert out.audio == codec
    assert audio_seconds(config.output_path) == pytest.approx(FRAMES / FPS, abs=0.05)


def test_start_and_end_trim_the_frames_and_the_sound(sound_clip, tmp_path):
    data = {"input": {"video": str(sound_clip), "start": 0.3, "end": 0.8}, "seed": 1,
            "dream": {**DREAM, "steps": 1}, "output": {"path": str(tmp_path / "cut.mp4")}}
    config = config_module.from_mapping(data, tmp_path)
    assert render(config).frames == 5
    first = png_frames(config.frames_dir)[0]
    inputs = square_frames()
    nearest = np.argmin([np.abs(first - f).mean() for f in inputs])
    assert nearest == 3  # 0.3 s at 10 fps
    assert audio_seconds(config.output_path) == pytest.approx(0.5, abs=0.05)


def test_a_stopped_video_render_resumes_to_the_uninterrupted_frames(square_clip, tmp_path, carried):
    config = video_config(tmp_path, square_clip)
    stop = threading.Event()

    def progress(done, total, start):
        if done >= 4:
            stop.set()

    with pytest.raises(Interrupted, match="stopped after 4 of 10"):
        render(config, progress=progress, stop=stop)
    result = render(config, resume=True)
    assert result.started_at == 4 and result.frames == FRAMES
    for a, b in zip(png_frames(carried[0].frames_dir), png_frames(config.frames_dir), strict=True):
        np.testing.assert_array_equal(a, b)


# --- inputs that cannot be dreamed --------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    junk = folder / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    tone = folder / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", str(tone))
    return {"junk": junk, "tone": tone, "folder": folder}


@pytest.mark.parametrize("case, message", [
    ("missing", r"input video '.*nothing\.mp4' not found: check the path"),
    ("folder", r"input video '.*' is a folder: give the path of one video file"),
    ("junk", r"input video '.*junk\.mp4' is not a readable video \(.*Invalid data.*\): "
             r"check the file, or re-encode it as MP4"),
    ("tone", r"input video '.*tone\.wav' has no video stream \(only audio\): give a video file"),
])
def test_an_unusable_file_is_refused_with_its_reason(bad_files, tmp_path, case, message):
    path = bad_files.get(case, tmp_path / "nothing.mp4")
    (tmp_path / "out.mp4").write_bytes(b"an earlier render")
    with pytest.raises(InputError, match=message):
        render(video_config(tmp_path, path), force=True)
    assert (tmp_path / "out.mp4").read_bytes() == b"an earlier render"  # nothing lost


def test_an_empty_clip_is_refused(tmp_path, square_clip):
    empty = tmp_path / "empty.mp4"
    ffmpeg("-i", str(square_clip), "-frames:v", "0", "-c:v", "libx264", str(empty))
    with pytest.raises(InputError, match="holds no frames.*give a clip with frames"):
        render(video_config(tmp_path, empty))


def test_a_start_past_the_end_is_refused(tmp_path, square_clip):
    data = {"input": {"video": str(square_clip), "start": 5}, "output": {"path": "x.mp4"}}
    with pytest.raises(InputError, match=r"start 5 s is past its end \(1 s\)"):
        render(config_module.from_mapping(data, tmp_path))


def test_an_end_before_the_start_is_a_config_error(tmp_path):
    data = {"input": {"video": "clip.mp4", "start": 2, "end": 1}}
    with pytest.raises(ConfigError, match=r"input: .*end must be after input.start \(2 s\), got 1"):
        config_module.from_mapping(data, tmp_path)


def test_the_video_command_says_one_line_and_exits_2(tmp_path, capsys):
    code = main(["video", str(tmp_path / "nothing.mp4"), "-o", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "input video" in err[0] and "not found" in err[0]


def test_the_video_command_dreams_a_clip_with_a_config(square_clip, tmp_path, capsys):
    config = tmp_path / "dream.yaml"
    config.write_text("dream: {model: vgg16-hed, octaves: 1, steps: 1, layers: block3_conv3}\n"
                      "video: {blend: 0.2}\noutput: {path: ignored.gif}\n")
    out = tmp_path / "dreamed.mp4"
    code = main(["video", str(square_clip), "-o", str(out), "--config", str(config),
                 "--blend", "0.6", "--every", "2", "--start", "0.5"])
    assert code == 0, capsys.readouterr().err
    assert clip_module.count_frames(clip_module.probe(out)) == FRAMES // 2
    record = (tmp_path / "dreamed.mp4.frames" / "render.json").read_text()
    assert '"blend": 0.6' in record and '"every": 2' in record


def test_a_dry_run_counts_the_clips_frames_and_the_carried_steps(square_clip, tmp_path, capsys):
    config = tmp_path / "dry.yaml"
    config.write_text(f"input: {{video: '{square_clip}', start: 0.5}}\nvideo: {{every: 2}}\n"
                      "dream: {octaves: 1, steps: 4}\n")
    assert main(["render", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "frames: 5 at 10 fps" in out
    assert "cost: 16 gradient steps" in out  # frames 0, 2, 4: 4 steps; 1, 3 carried: 2


def test_an_interrupted_video_names_the_video_command_to_resume():
    from animator.cli import _advice, build_parser

    args = build_parser().parse_args(["video", "my clip.mp4", "-o", "out.mp4", "--blend", "0.5",
                                      "--start", "1"])
    error = Interrupted("stopped after 2 of 9 frames", remedy="resume")
    assert error.worded(_advice(args)) == ("stopped after 2 of 9 frames: continue with animator "
                                           "video 'my clip.mp4' -o out.mp4 --blend 0.5 --start 1.0 "
                                           "--resume")


def test_a_video_given_as_an_image_input_says_how_to_dream_it(tmp_path):
    with pytest.raises(ConfigError, match=r"input: 'clip.mp4' is a video: write input: "
                                          r"\{video: clip.mp4\} to dream each of its frames"):
        config_module.from_mapping({"input": "clip.mp4"}, tmp_path)


def test_a_gif_of_a_clip_with_sound_says_the_sound_is_left_out(sound_clip, tmp_path):
    notes = []
    config = video_config(tmp_path, sound_clip, name="out.gif")
    assert render(config, note=notes.append).frames == FRAMES
    assert [note for note in notes if not note.startswith("precision ")] == \
        ["tone.mp4: its sound is left out: a gif output has none (write .mp4 or .webm to hear it)"]


def test_with_no_flow_the_carried_dream_is_mixed_in_unwarped(square_clip, tmp_path, monkeypatch):
    from keras import ops

    from animator.renderer import flow

    frames = sources.open_video(video_config(tmp_path, square_clip, flow="none"))
    carried = ops.convert_to_tensor(square_frames()[5].astype(np.float32))
    with frames:
        frames.begin(0, note=None)
        following, step = frames.upcoming.result()
        warped = flow.warp(carried, step.source)  # the identity warp it used to make

        def no_warp(frame, source):
            raise AssertionError("flow: none needs no warp")

        monkeypatch.setattr(flow, "warp", no_warp)
        start = ops.convert_to_numpy(frames.next_start(1, carried))
    weight = ops.convert_to_numpy(frames.weight)
    assert weight.min() == weight.max() == np.float32(frames.config.animation.video.blend)
    np.testing.assert_array_equal(start, ops.convert_to_numpy(flow.mix(following, carried, weight)))
    np.testing.assert_array_equal(start, ops.convert_to_numpy(flow.mix(following, warped, weight)))
