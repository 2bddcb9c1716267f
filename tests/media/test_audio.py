"""The soundtrack: beats and tempo of a click track, loudness and bands of tones, bad files, the
features as schedule variables checked at load, and the sound muxed into a render's MP4."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import audio_seconds, write_wav
from PIL import Image

from animator import cli
from animator import config as config_module
from animator.media import audio
from animator.settings.errors import ConfigError, InputError

pytest.importorskip("librosa")

RATE = 44_100


def tone(frequency: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(round(seconds * RATE)) / RATE)


def click_track(path: Path, bpm: float, seconds: float, first: float = 0.3) -> tuple[Path, np.ndarray]:
    """Short 2 kHz clicks every beat from `first` seconds on; returns the file and click times."""
    samples = np.zeros(round(seconds * RATE))
    clicks = np.arange(first, seconds - 0.2, 60 / bpm)
    length = int(0.01 * RATE)
    for at in clicks:
        start = round(at * RATE)
        samples[start:start + length] += 0.8 * np.hanning(length) * np.sin(
            2 * np.pi * 2000 * np.arange(length) / RATE)
    return write_wav(path, samples), clicks


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    return click_track(tmp_path_factory.mktemp("clicks") / "clicks.wav", 100, 15)


@pytest.fixture(scope="module")
def low_then_high(tmp_path_factory):
    path = tmp_path_factory.mktemp("bands") / "bands.wav"
    return write_wav(path, np.concatenate([tone(60, 2), tone(6000, 2)]))


def test_a_click_track_gives_its_beats_within_a_frame_and_its_tempo_within_one_percent(clicks):
    path, times = clicks
    features = audio.analyse(path, fps=24)
    assert features.tempo == pytest.approx(100, rel=0.01)
    expected = np.floor(times * 24).astype(int)
    assert len(features.beats) == len(expected)
    assert np.abs(features.beats - expected).max() <= 1, (features.beats, expected)
    beat = features.values["beat"]
    assert set(np.flatnonzero(beat == 1.0)) == set(features.beats)


def test_beat_falls_to_zero_over_the_declared_frames(clicks):
    path, _ = clicks
    features = audio.analyse(path, fps=24, beat_decay=3)
    first = int(features.beats[0])
    np.testing.assert_allclose(features.values["beat"][first:first + 4], [1, 2 / 3, 1 / 3, 0])


def test_without_frames_the_features_last_as_long_as_the_cut(clicks):
    features = audio.analyse(clicks[0], fps=10, start=2.0, end=6.5)
    assert features.frames == 45
    assert features.seconds == pytest.approx(4.5, abs=0.02)


def test_a_loudness_step_rises_at_its_frame_after_the_declared_attack(tmp_path):
    path = write_wav(tmp_path / "step.wav", np.concatenate([tone(440, 2, 0.1), tone(440, 2, 0.8)]))
    at_once = audio.analyse(path, fps=20, attack=0, release=0).values["loudness"]
    slow = audio.analyse(path, fps=20, attack=3, release=0).values["loudness"]
    assert at_once[38] < 0.2 and slow[38] < 0.2  # 0.1 of 0.8 before the step at 2 s
    # the step lands on its frame (the frame before hears it coming in 23 ms of its windows)
    assert at_once[39] < 0.5 < 0.9 < at_once[40]
    assert slow[40] < 0.7  # ...rising over the attack
    assert slow[41] < slow[42]
    assert slow[42] > 0.85  # 90% of the way after 3 frames
    assert slow[45] > 0.98


def test_bands_separate_a_low_tone_from_a_high_one(low_then_high):
    values = audio.analyse(low_then_high, fps=10, release=0).values
    low, high = slice(2, 18), slice(22, 38)  # away from the change at frame 20
    assert values["bass"][low].min() > 0.9 and values["bass"][high].max() < 0.05
    assert values["treble"][high].min() > 0.9 and values["treble"][low].max() < 0.05
    assert values["mid"][low].max() < 0.1 and values["mid"][high].max() < 0.1  # its peak: the cut


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "holds nothing"),
    (lambda p: p.write_text("not sound at all " * 50), "not a readable sound file"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, "PNG"), r"has no audio stream \(only video\)"),
])
def test_a_file_without_sound_is_one_clear_error(tmp_path, make, words):
    path = tmp_path / "track.wav"
    make(path)
    with pytest.raises(InputError, match=words):
        audio.analyse(path, fps=10)


def test_a_cut_past_the_end_is_refused(low_then_high):
    with pytest.raises(InputError, match=r"start 9 s is past the track's end \(4 s\)"):
        audio.analyse(low_then_high, fps=10, start=9)
    with pytest.raises(InputError, match=r"end 5 s is past the track's end"):
        audio.analyse(low_then_high, fps=10, end=5)


def test_the_audio_command_prints_length_tempo_and_a_table(clicks, capsys):
    assert cli.main(["audio", str(clicks[0]), "--fps", "10", "--end", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{clicks[0]}: 3.00 s of sound") and "BPM" in out[0]
    assert out[1].split() == ["frame", "seconds", *audio.FEATURES]
    assert len(out) == 2 + 30


def test_the_audio_command_writes_a_plot(clicks, tmp_path):
    plot = tmp_path / "plot.png"
    assert cli.main(["audio", str(clicks[0]), "--plot", str(plot), "-q"]) == 0
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width == 900


def test_bad_sound_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert cli.main(["audio", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds nothing" in err


# --- in a config ---------------------------------------------------------------------------------


def music_config(tmp_path: Path, track: Path, name: str = "out.mp4", **changes):
    data = {"input": {"noise": {"size": [64, 64], "seed": 3}}, "fps": 10, "seed": 1,
            "audio": {"path": str(track), "release": 0},
            "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 1, "jitter": 4,
                      "layers": {"block3_conv3": 1.0}},
            "transforms": [{"zoom": {"factor": "1.01 + 0.05*bass"}}],
            "output": {"path": str(tmp_path / name)}, **changes}
    return config_module.from_mapping(data, tmp_path, source=str(tmp_path / "music.yaml"))


def test_a_schedule_of_bass_is_range_checked_at_every_frame_at_load(low_then_high, tmp_path):
    bass = audio.analyse(low_then_high, fps=10, release=0).values["bass"]
    first = int(np.flatnonzero(1 - 2 * bass < 0)[0])
    with pytest.raises(ConfigError, match=rf"dream.step_size: must be >= 0, got -\S+ at frame {first}$"):
        music_config(tmp_path, low_then_high, dream={"step_size": "1 - 2*bass"})
    assert first < 20  # the bass is in the first half


def test_a_misspelled_feature_names_the_known_ones(low_then_high, tmp_path):
    with pytest.raises(ConfigError, match="unknown name 'bas'.*features are loudness, onset, "
                                          "beat, bass, mid, treble. Did you mean: bass"):
        music_config(tmp_path, low_then_high, transforms=[{"zoom": {"factor": "1 + bas"}}])


def test_a_feature_without_a_track_says_to_give_one(tmp_path):
    data = {"input": {"noise": {"size": [64, 64]}}, "dream": {"step_size": "1 + onset"}}
    with pytest.raises(ConfigError, match="'onset' is a feature of the soundtrack: give the config "
                                          "an `audio:` track"):
        config_module.from_mapping(data, tmp_path)


def test_without_frames_a_config_lasts_as_long_as_its_track(low_then_high, tmp_path):
    config = music_config(tmp_path, low_then_high, audio={"path": str(low_then_high), "start": 1,
                                                          "end": 3.5})
    assert config.frames == 25
    assert config.dream_settings(0).step_size == 1.5


def test_a_track_that_cannot_be_used_is_a_config_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"audio: audio '.*missing.wav' not found"):
        music_config(tmp_path, tmp_path / "missing.wav")


def test_the_fingerprint_follows_the_track_and_the_rate(low_then_high, clicks, tmp_path):
    base = music_config(tmp_path, low_then_high, frames=5).fingerprint()
    assert music_config(tmp_path, clicks[0], frames=5).fingerprint() != base
    assert music_config(tmp_path, low_then_high, frames=5, fps=12).fingerprint() != base
    assert music_config(tmp_path, low_then_high, frames=5).fingerprint() == base


def test_a_reversed_output_dreams_each_frame_with_the_sound_of_the_moment_it_is_seen(low_then_high,
                                                                                 tmp_path):
    """The sound plays forward under a reversed output: the frame rendered last is seen first, so
    it reads the track's first moment, and the picture still moves with what is heard."""
    forward = music_config(tmp_path, low_then_high, dream={"step_size": "1 + bass"})
    frames = forward.frames
    steps = [forward.dream_settings(t).step_size for t in range(frames)]
    assert steps[0] > steps[-1] + 0.5  # the bass is in the first half: not symmetric
    for pingpong in (False, True):
        reverse = music_config(tmp_path, low_then_high, dream={"step_size": "1 + bass"},
                               output={"path": str(tmp_path / "out.mp4"), "reverse": True,
                                       "pingpong": pingpong})
        assert [reverse.dream_settings(t).step_size for t in range(frames)] == steps[::-1]
    # the range check at load reports the frame rendered
    bass = audio.analyse(low_then_high, fps=10, release=0).values["bass"][::-1]
    first = int(np.flatnonzero(1 - 2 * bass < 0)[0])
    with pytest.raises(ConfigError, match=rf"dream.step_size: must be >= 0, got -\S+ at frame {first}$"):
        music_config(tmp_path, low_then_high, dream={"step_size": "1 - 2*bass"},
                     output={"path": str(tmp_path / "out.mp4"), "reverse": True})
    assert first >= frames // 2 - 1


def test_a_reversed_soundtrack_render_resumes_only_with_the_same_frame_count(low_then_high, tmp_path):
    def fingerprint(frames, reverse):
        output = {"path": str(tmp_path / "out.mp4"), "reverse": reverse}
        return music_config(tmp_path, low_then_high, frames=frames, output=output).fingerprint()

    assert fingerprint(5, False) == fingerprint(8, False)  # forward: frame i hears moment i
    assert fingerprint(5, True) != fingerprint(5, False)
    assert fingerprint(5, True) != fingerprint(8, True)  # reversed: frame i hears frames - 1 - i
    assert fingerprint(5, True) == fingerprint(5, True)
    silent = {"input": {"noise": {"size": [64, 64]}}, "frames": 5}
    assert config_module.from_mapping({**silent, "output": {"reverse": True}}, tmp_path).fingerprint() \
        == config_module.from_mapping(silent, tmp_path).fingerprint()


def frame_count(path: Path) -> int:
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]




@pytest.fixture(scope="module")
def short_track(tmp_path_factory):
    path = tmp_path_factory.mktemp("short") / "short.wav"
    return write_wav(path, np.concatenate([tone(60, 0.4), tone(6000, 0.4), tone(60, 0.4)]))


@pytest.fixture(scope="module")
def music_render(short_track, tmp_path_factory):
    from animator.renderer.loop import render

    config = music_config(tmp_path_factory.mktemp("render"), short_track)
    return config, render(config)


def test_a_render_lasts_as_its_track_and_its_mp4_carries_the_sound(music_render):
    config, result = music_render
    assert result.frames == 12
    assert frame_count(config.output_path) == 12
    assert audio_seconds(config.output_path) == pytest.approx(12 / 10, abs=1 / 10)
    assert config.features_file.is_file()
    kept = audio.Features.load(config.features_file)
    np.testing.assert_array_equal(kept.values["bass"], config.soundtrack.values["bass"])


def test_a_stopped_render_resumes_to_the_same_frames(music_render, tmp_path):
    from animator.renderer.loop import render
    from animator.settings.errors import Interrupted

    whole, _ = music_render
    config = music_config(tmp_path, Path(whole.audio_path))
    stop = threading.Event()
    with pytest.raises(Interrupted):
        render(config, stop=stop, progress=lambda done, *_: done >= 5 and stop.set())
    resumed = music_config(tmp_path, Path(whole.audio_path))
    assert render(resumed, resume=True).started_at == 5
    for name in [f"{i:05d}.png" for i in range(12)]:
        np.testing.assert_array_equal(np.asarray(Image.open(whole.frames_dir / name)),
                                      np.asarray(Image.open(config.frames_dir / name)))
    assert audio_seconds(config.output_path) == pytest.approx(12 / 10, abs=1 / 10)


def test_a_reversed_render_refuses_to_resume_into_another_moment_of_its_sound(short_track, tmp_path):
    from animator.renderer.loop import render
    from animator.settings.errors import Interrupted

    def config(frames=5, reverse=True):
        return music_config(tmp_path, short_track, frames=frames,
                            output={"path": str(tmp_path / "out.mp4"), "reverse": reverse})

    stop = threading.Event()
    with pytest.raises(Interrupted):
        render(config(), stop=stop, progress=lambda done, *_: done >= 2 and stop.set())
    for changed, names in ((config(reverse=False), "frames, output.reverse"), (config(frames=7), "frames")):
        with pytest.raises(ConfigError, match=rf"cannot resume: the config changed .*\({names}\)"):
            render(changed, resume=True)
    assert render(config(), resume=True).frames == 5


def test_a_webm_render_carries_the_sound_as_opus_as_long_as_its_video(short_track, tmp_path):
    from animator.renderer.loop import render

    config = music_config(tmp_path, short_track, "out.webm", frames=6)
    render(config)
    assert config.output_path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # made live, then muxed
    assert frame_count(config.output_path) == 6
    assert audio_seconds(config.output_path) == pytest.approx(6 / 10, abs=1 / 10)
    assert "Audio: opus" in ffmpeg_says(config.output_path)


def test_a_pingpong_keeps_its_whole_picture_with_the_sound_under_it(short_track, tmp_path):
    from animator.renderer.loop import render

    config = music_config(tmp_path, short_track, "pp.mp4", frames=5, output={
        "path": str(tmp_path / "pp.mp4"), "pingpong": True})
    render(config)
    assert frame_count(config.output_path) == 8  # 5 forward, 3 back: none cut by the sound
    assert audio_seconds(config.output_path) == pytest.approx(8 / 10, abs=1 / 10)


def ffmpeg_says(path: Path) -> str:
    import subprocess

    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


def test_a_gif_says_once_it_has_no_sound(short_track, tmp_path):
    from animator.renderer.loop import render

    notes = []
    render(music_config(tmp_path, short_track, "out.gif", frames=2), note=notes.append)
    assert [n for n in notes if "sound" in n] == ["short.wav: its sound is left out: a gif output "
                                                  "has none (write .mp4 or .webm to hear it)"]


def test_render_audio_gives_a_config_its_track_keeping_its_cut(low_then_high, clicks, tmp_path, capsys):
    path = tmp_path / "music.yaml"
    path.write_text(f"input: {{noise: {{size: [64, 64]}}}}\nfps: 10\naudio: {{path: {low_then_high}, "
                    "start: 1}\ntransforms: [{zoom: {factor: '1 + 0.01*beat'}}]\n")
    assert cli.main(["render", str(path), "--dry-run"]) == 0
    assert "frames: 30 at 10 fps" in capsys.readouterr().out
    assert cli.main(["render", str(path), "--audio", str(clicks[0]), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"audio: {clicks[0]} (14.0 s from 1 s" in said and "frames: 140 at 10 fps" in said


@pytest.mark.parametrize("changes, words", [
    ({"frames": -1}, "frames: must be > 0"),
    ({"frames": 10**12}, "frames: must be > 0 and <= 1,000,000"),
    ({"fps": 10**9}, "fps: must be >= 0.01 and <= 240"),
])
def test_a_bad_frame_count_or_rate_beside_a_track_is_the_usual_error(low_then_high, tmp_path,
                                                                      changes, words):
    with pytest.raises(ConfigError, match=words):
        music_config(tmp_path, low_then_high, **changes)


def test_a_setting_out_of_its_declared_range_on_the_audio_command_is_exit_2(clicks, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["audio", str(clicks[0]), "--beat-decay", "0"])
    assert exit.value.code == 2
    assert capsys.readouterr().err.strip() == ("animator audio: error: argument --beat-decay: must be >= 1 "
                                               "and <= 1000, got 0: see `animator audio --help`")
