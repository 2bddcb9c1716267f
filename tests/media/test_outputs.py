"""Outputs: animated WebP, unsupported suffixes refused, the settings travel with the output, and a
failed assembly's remedy worded by each front end from the error's facts."""

from __future__ import annotations

import shlex
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
import yaml
from helpers import with_changes
from PIL import Image
from test_robustness import TINY, fails, run, write_config

from animator import config as config_module
from animator.media import video
from animator.renderer.start import SETTINGS_KEY
from animator.settings.errors import ConfigError, OutputError


def frames_folder(folder, count=4, size=(24, 31)):
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((*size, 3), 30 * i + 20, np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def test_a_webp_loops_in_pillow_with_every_frame(tmp_path):
    frames = frames_folder(tmp_path / "frames")
    out = tmp_path / "loop.webp"
    assert video.assemble(frames, out, fps=5, pingpong=True) == 6
    with Image.open(out) as webp:
        assert webp.format == "WEBP" and webp.info["loop"] == 0 and webp.size == (31, 24)
        assert webp.n_frames == 6
        greys = []
        for i in range(webp.n_frames):
            webp.seek(i)
            greys.append(int(np.asarray(webp.convert("RGB"))[5, 5, 0]))
            assert webp.info["duration"] == 200
    assert [round(g / 10) for g in greys] == [2, 5, 8, 11, 8, 5]


def test_assemble_writes_a_webp_with_a_loop_count(tmp_path, capsys):
    frames = frames_folder(tmp_path / "frames", count=2)
    out = tmp_path / "twice.webp"
    code, err = run(capsys, "assemble", frames, "-o", out, "--loop", "2")
    assert code == 0, err
    with Image.open(out) as webp:
        assert webp.info["loop"] == 2 and webp.n_frames == 2


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_an_unsupported_output_suffix_is_refused_naming_the_supported_ones(tmp_path, capsys, suffix):
    config = write_config(tmp_path, TINY)
    line = fails(capsys, 2, "render", config, "-o", f"x{suffix}", "--dry-run",
                 says=(f"unsupported suffix '{suffix}'", ".gif, .webp, .mp4, .webm", "folder of frames"))
    assert "output.path" in line
    assert not (tmp_path / f"x{suffix}").exists() and not (tmp_path / f"x{suffix}.frames").exists()


def test_a_folder_output_without_suffix_is_still_a_folder_of_frames(tmp_path):
    spec = with_changes(TINY, output={"path": "out/frames_only"})
    assert config_module.from_mapping(spec, tmp_path).output_format == "frames"


@pytest.mark.parametrize("fmt", ["gif", "webp", "mp4", "webm"])
def test_the_default_output_is_named_for_its_format(tmp_path, fmt):
    spec = with_changes(TINY, output={"format": fmt})
    config = config_module.from_mapping(spec, tmp_path, source=str(tmp_path / "anim.yaml"))
    assert config.output_path == tmp_path / "out" / f"anim.{fmt}"
    assert config.output_format == fmt


@pytest.mark.parametrize("fmt, path", [("webp", "x.gif"), ("gif", "x.webp"), ("webp", "x.mp4"),
                                       ("mp4", "x.webp"), ("webm", "x.mp4"), ("mp4", "x.webm")])
def test_a_format_the_suffix_contradicts_is_refused(tmp_path, fmt, path):
    spec = with_changes(TINY, output={"format": fmt, "path": path})
    with pytest.raises(ConfigError) as caught:
        config_module.from_mapping(spec, tmp_path)
    suffix = path[path.index("."):]
    assert f"output: format {fmt} does not match the path's suffix {suffix} ('{path}')" in str(caught.value)


def pixels(folder):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("[0-9]*.png"))]


def test_the_settings_travel_with_the_output_and_render_it_again(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = with_changes(TINY, frames=3, transforms=[{"zoom": {"factor": 1.05}}, "sobel"])
    config = write_config(tmp_path, spec)
    code, err = run(capsys, "render", config)
    assert code == 0, err
    settings = tmp_path / "out/r.gif.yaml"
    effective = yaml.safe_load(settings.read_text())
    # every default filled in: the dream's, the output's and each transform's
    assert effective["dream"]["octave_scale"] == 1.4 and effective["output"]["palette"] == "shared"
    assert effective["transforms"][0]["zoom"]["center"] == [0.5, 0.5]
    assert effective["transforms"][1]["sobel"]["strength"] == 1.0
    first = tmp_path / "out/r.gif.frames/00000.png"
    with Image.open(first) as png:
        carried = yaml.safe_load(png.text[SETTINGS_KEY])
    assert carried["dream"] == effective["dream"] and carried["seed"] == effective["seed"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "again.yaml"
    copy.write_text(settings.read_text())
    code, err = run(capsys, "render", copy, "-o", elsewhere / "again.gif")
    assert code == 0, err
    again = pixels(elsewhere / "again.gif.frames")
    assert len(again) == 3
    assert all(np.array_equal(a, b) for a, b in zip(again, pixels(tmp_path / "out/r.gif.frames")))


def test_an_mp4_carries_the_settings_in_its_metadata_comment(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, with_changes(TINY, frames=2, output={"path": "out/r.mp4"}))
    code, err = run(capsys, "render", config)
    assert code == 0, err
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "out/r.mp4"))[0] == 2
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(tmp_path / "out/r.mp4"), "-f",
                           "ffmetadata", "-"], capture_output=True, text=True).stdout
    comment = info.split("comment=", 1)[1]
    assert comment.startswith("\\# The settings of r.mp4") and "octave_scale: 1.4" in comment, info


def test_a_failed_assembly_names_the_fix_in_each_front_ends_words(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise OutputError("ffmpeg failed while writing 'x' (broken on purpose)")

    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, with_changes(TINY, frames=2, output={"path": "out/r.gif", "loop": 3}))
    monkeypatch.setattr(video, "assemble", broken)
    line = fails(capsys, 2, "render", config, says=("every frame is kept",))
    command = shlex.split(line.split("`")[1])
    assert command[:5] == ["animator", "assemble", str(tmp_path / "out/r.gif.frames"), "-o",
                           str(tmp_path / "out/r.gif")]
    assert command[5:] == ["--fps", "10", "--loop", "3"]

    import animator

    with pytest.raises(OutputError) as caught:
        animator.render(str(config), resume=True)
    error = caught.value
    assert "animator.media.video.assemble(**error.facts)" in str(error) and "`animator" not in str(error)
    assert error.facts["loop"] == 3 and error.facts["fps"] == 10
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert video.assemble(**error.facts) == 2
    with Image.open(tmp_path / "out/r.gif") as gif:
        assert gif.n_frames == 2 and gif.info["loop"] == 3
