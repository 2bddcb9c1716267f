"""Bad input gets a clear one-line error, and interrupted work loses nothing.

Every case goes through the real command (`animator.cli.main`, in-process; a subprocess only where
a signal must be sent) and checks the exit status, that stderr ends in exactly one
`animator: error:` line without a traceback, and that no complete frame was lost or altered.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import with_changes
from PIL import Image

from animator.cli import main

PREFIX = "animator: error: "
TINY = {
    "input": {"noise": {"size": [64, 64], "seed": 3}},
    "frames": 6,
    "fps": 10,
    "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 2, "layers": {"block3_conv3": 1.0}},
    "transforms": [{"zoom": {"factor": 1.05}}],
    "output": {"path": "out/r.gif"},
}
# One dreamed frame of a small image: enough to show that an input is read and rendered.
ONE_FRAME = {**TINY, "frames": 1, "dream": {**TINY["dream"], "steps": 1}, "transforms": []}


def write_config(folder: Path, data: dict | str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def run(capsys, *argv) -> tuple[int, str]:
    """Run the command in-process; returns its exit status and its stderr."""
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    """The single error line, which must be stderr's last line; fails on tracebacks or repeats."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(PREFIX)]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], err
    return errors[0]


def fails(capsys, code: int, *argv, says: tuple[str, ...] = ()) -> str:
    """Run the command; check it fails with `code` and one error line containing each of `says`."""
    status, err = run(capsys, *argv)
    line = error_line(err)
    assert status == code, err
    for words in says:
        assert words in line, line
    return line


def frame_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("[0-9]*.png"))}


def frame_pixels(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("[0-9]*.png"))]


def assert_only_complete_frames(folder: Path) -> int:
    """Every frame in `folder` decodes, they run from 00000 without a gap, no temporaries remain."""
    names = sorted(p.name for p in folder.glob("[0-9]*.png"))
    assert names == [f"{i:05d}.png" for i in range(len(names))]
    for name in names:
        with Image.open(folder / name) as image:
            image.load()
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    return len(names)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted render of TINY; also shows that missing output folders are created."""
    folder = tmp_path_factory.mktemp("reference")
    config = write_config(folder, with_changes(TINY, output={"path": "deep/er/r.gif"}))
    assert main(["render", str(config)]) == 0
    assert (folder / "deep/er/r.gif").is_file()
    return folder / "deep/er/r.gif.frames"


def copy_of_reference(reference: Path, tmp_path: Path, output: str = "out/r.gif") -> Path:
    """TINY's config in `tmp_path` whose frames folder holds a copy of the reference render."""
    config = write_config(tmp_path, with_changes(TINY, output={"path": output}))
    shutil.copytree(reference, tmp_path / (output + ".frames"))
    return config


# --- config ---------------------------------------------------------------------------------


CONFIG_CASES = {
    "not-yaml": ("input: [unclosed\nframes: 3\n", "not valid YAML"),
    "tab-indent": ("frames: 3\n\tfps: 2\n", "not valid YAML"),
    "a-list": ("- input\n- frames\n", "expected a mapping"),
    "empty": ("", "expected a mapping"),
    "unknown-key": (with_changes(TINY, frmes=5), "frmes: unknown key; did you mean: frames"),
    "unknown-nested-key": (with_changes(TINY, dream__stepz=2),
                           "dream.stepz: unknown key; did you mean: steps"),
    "wrong-type": (with_changes(TINY, frames="many"), "frames: input should be a valid integer"),
    "wrong-nested-type": (with_changes(TINY, dream__octaves=[1]), "dream.octaves"),
    "frames-zero": (with_changes(TINY, frames=0), "frames: must be > 0 and <= 1,000,000, got 0"),
    "frames-negative": (with_changes(TINY, frames=-3), "frames: must be > 0"),
    "octave-scale-one": (with_changes(TINY, dream__octave_scale=1.0), "dream.octave_scale: must be > 1"),
    "fps-zero": (with_changes(TINY, fps=0), "fps: must be >= 0.01"),
    "step-size-negative": (with_changes(TINY, dream__step_size=-0.5), "dream.step_size: must be >= 0"),
    "too-small-for-octaves": (with_changes(TINY, dream__octaves=4),
                              "use octaves <= 3 or a size whose short side is at least"),
    "too-small-for-one-octave": (with_changes(TINY, input={"noise": {"size": [16, 16]}}),
                                 "use a size whose short side is at least 32 px"),
    "bad-keyframe": (with_changes(TINY, dream__step_size={0: 1.0, "x": 2.0}),
                     "dream.step_size: keyframe 'x' is not a frame number"),
    "bad-expression": (with_changes(TINY, dream__step_size="1 + foo(t)"),
                       "dream.step_size: call of 'foo' not allowed"),
    "expression-syntax": (with_changes(TINY, dream__step_size="1 +"), "dream.step_size: invalid expression"),
    "expression-escape": (with_changes(TINY, dream__step_size="__import__('os').getcwd()"),
                          "dream.step_size"),
    "object-tag": ("!!python/object/apply:os.system ['touch pwned']\n", "YAML tags that build objects"),
    "nested-object-tag": (yaml.safe_dump(TINY) + "seed: !!python/object/apply:os.system ['touch pwned']\n",
                          "YAML tags that build objects"),
    "unknown-transform": (with_changes(TINY, transforms=[{"zooom": {"factor": 1.1}}]),
                          "transforms[0]: unknown transform 'zooom'. Did you mean: zoom?"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_config_is_one_line_naming_the_key(case, tmp_path, capsys, monkeypatch):
    text, says = CONFIG_CASES[case]
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, text)
    fails(capsys, 2, "render", config, says=(says,))
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


@pytest.mark.parametrize("case", ["unknown-key", "bad-expression", "too-small-for-octaves"])
def test_a_dry_run_finds_the_same_problems(case, tmp_path, capsys):
    text, says = CONFIG_CASES[case]
    fails(capsys, 2, "render", write_config(tmp_path, text), "--dry-run", says=(says,))


def test_a_config_that_is_not_text(tmp_path, capsys):
    config = tmp_path / "r.yaml"
    config.write_bytes(b"\xff\xfe\x00\x01 binary")
    fails(capsys, 2, "render", config, says=("is not a text file",))


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, frames=0, fps=-1, dream__octave_scale=0.5))
    line = fails(capsys, 2, "render", config)
    assert "frames:" in line and "fps:" in line and "dream.octave_scale:" in line


# --- input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)


def render_input(tmp_path: Path, capsys, name: str, **changes) -> tuple[int, str]:
    config = write_config(tmp_path, with_changes(ONE_FRAME, input=name, **changes))
    return run(capsys, "render", config)


def test_a_missing_input(tmp_path, capsys):
    write_config(tmp_path, with_changes(ONE_FRAME, input="nothere.png"))
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("nothere.png' not found", "check the path"))


def test_an_input_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "pics").mkdir()
    write_config(tmp_path, with_changes(ONE_FRAME, input="pics"))
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("is a folder", "one image file"))


@pytest.mark.parametrize("kind", ["truncated", "text", "empty"])
def test_an_unreadable_input(kind, tmp_path, capsys, rgb):
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path)
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "text": b"hello", "empty": b""}[kind])
    write_config(tmp_path, with_changes(ONE_FRAME, input="in.png"))
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("is not a readable image", "re-save it"))


def _save_16_bit(rgb, path):
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)


def _save_animated(rgb, path):
    frames = [Image.fromarray(np.roll(rgb, i, axis=0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def _save_exif_rotated(rgb, path):
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    image.save(path, exif=exif)


IMAGE_KINDS = {
    "16-bit.png": (_save_16_bit, "16-bit image"),
    "grey.png": (lambda rgb, path: Image.fromarray(rgb[..., 0]).save(path), None),
    "rgba.png": (lambda rgb, path: Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(path),
                 "transparent"),
    "palette.png": (lambda rgb, path: Image.fromarray(rgb).convert("P").save(path), None),
    "animated.gif": (_save_animated, "using its first frame of 3"),
    "rotated.jpg": (_save_exif_rotated, None),
}


@pytest.mark.parametrize("name", list(IMAGE_KINDS))
def test_any_common_image_is_converted_and_rendered(name, tmp_path, capsys, rgb):
    save, note = IMAGE_KINDS[name]
    save(rgb, tmp_path / name)
    code, err = render_input(tmp_path, capsys, name)
    assert code == 0, err
    assert "Traceback" not in err and PREFIX not in err
    if note:
        assert f"note: {name}: " in err and note in err
    with Image.open(tmp_path / "out/r.gif.frames/00000.png") as frame:
        # 48 wide, 40 high; the EXIF orientation turns the JPEG upright: 40 wide, 48 high
        assert frame.size == ((40, 48) if name == "rotated.jpg" else (48, 40))
        assert frame.mode == "RGB"


def test_a_huge_input_is_refused_before_decoding(tmp_path, capsys, rgb):
    Image.fromarray(rgb).save(tmp_path / "big.png")
    write_config(tmp_path, with_changes(ONE_FRAME, input="big.png", max_pixels=1000))
    fails(capsys, 2, "render", tmp_path / "r.yaml",
          says=("48×40", "over the limit of 1,000 pixels", "max_pixels to 1,920", "size:"))


def test_a_huge_input_is_refused_by_dream_too(tmp_path, capsys, rgb):
    Image.fromarray(rgb).save(tmp_path / "big.png")
    fails(capsys, 2, "dream", tmp_path / "big.png", "-o", tmp_path / "d.png", "--max-pixels", 100,
          says=("over the limit of 100 pixels",))


# --- model ----------------------------------------------------------------------------------


def test_an_unknown_model_lists_the_close_names(tmp_path, capsys):
    write_config(tmp_path, with_changes(TINY, dream__model="vgg61"))
    fails(capsys, 2, "render", tmp_path / "r.yaml",
          says=("unknown model 'vgg61'", "Did you mean: vgg19, vgg16", "Available:"))


def test_an_unknown_layer_lists_the_close_names(tmp_path, capsys):
    write_config(tmp_path, with_changes(TINY, dream__layers={"block3_conv33": 1.0}))
    fails(capsys, 2, "render", tmp_path / "r.yaml",
          says=("no layer 'block3_conv33'", "Did you mean: block3_conv3", "animator layers vgg16-hed"))


def test_imagenet_weights_offline_name_the_alternatives(tmp_path, capsys, monkeypatch):
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    write_config(tmp_path, with_changes(TINY, dream__model="vgg16", dream__weights="imagenet"))
    fails(capsys, 2, "render", tmp_path / "r.yaml",
          says=("could not download the imagenet weights of vgg16", "vgg16-hed", "weights: PATH"))


@pytest.mark.parametrize("kind", ["other-model", "not-hdf5"])
def test_a_weights_file_that_does_not_fit(kind, tmp_path, capsys):
    import h5py

    path = tmp_path / "w.weights.h5"
    if kind == "not-hdf5":
        path.write_text("not weights")
    else:
        with h5py.File(path, "w") as weights:
            weights["dense/kernel"] = np.zeros((3, 4), np.float32)
    write_config(tmp_path, with_changes(TINY, dream__weights="w.weights.h5"))
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("w.weights.h5' does not match model vgg16-hed",))


# --- output ---------------------------------------------------------------------------------


def test_a_missing_output_folder_is_created(reference):
    assert assert_only_complete_frames(reference) == 6


def test_an_output_under_a_file(tmp_path, capsys):
    (tmp_path / "somefile").write_text("x")
    write_config(tmp_path, with_changes(TINY, output={"path": "somefile/out.gif"}))
    fails(capsys, 2, "render", tmp_path / "r.yaml",
          says=("part of the path is a file, not a folder", "choose another output path"))
    assert (tmp_path / "somefile").read_text() == "x"


def test_an_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if mode == os.W_OK else
                        real_access(path, mode))
    write_config(tmp_path, TINY)
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("not writable", "choose another output"))


def test_the_output_may_not_be_the_input(tmp_path, capsys, rgb):
    Image.fromarray(rgb).save(tmp_path / "in.png")
    before = (tmp_path / "in.png").read_bytes()
    write_config(tmp_path, with_changes(ONE_FRAME, input="in.png",
                                        output={"path": "in.png", "format": "gif"}))
    fails(capsys, 2, "render", tmp_path / "r.yaml", "--force", says=("is the input image",))
    assert (tmp_path / "in.png").read_bytes() == before


def test_an_existing_output_needs_force_or_resume(reference, tmp_path, capsys):
    config = copy_of_reference(reference, tmp_path)
    (tmp_path / "out/r.gif").write_bytes(b"GIF89a")
    before = frame_bytes(tmp_path / "out/r.gif.frames")
    fails(capsys, 2, "render", config, says=("exists", "--resume", "--force"))
    assert frame_bytes(tmp_path / "out/r.gif.frames") == before
    code, err = run(capsys, "render", config, "--resume")  # all frames done: only assembles
    assert code == 0, err
    assert frame_bytes(tmp_path / "out/r.gif.frames") == before
    assert Image.open(tmp_path / "out/r.gif").n_frames == 6


def test_an_unfinished_render_needs_force_or_resume(reference, tmp_path, capsys):
    config = copy_of_reference(reference, tmp_path)
    fails(capsys, 2, "render", config, says=("unfinished render (6 frames)", "--resume"))


def test_force_keeps_the_old_frames_when_the_new_render_cannot_start(reference, tmp_path, capsys):
    copy_of_reference(reference, tmp_path)
    before = frame_bytes(tmp_path / "out/r.gif.frames")
    write_config(tmp_path, with_changes(TINY, dream__layers={"nope": 1.0}))
    fails(capsys, 2, "render", tmp_path / "r.yaml", "--force", says=("no layer 'nope'",))
    assert frame_bytes(tmp_path / "out/r.gif.frames") == before


def test_a_full_disk_keeps_every_frame_and_resume_finishes(reference, tmp_path, capsys, monkeypatch):
    from animator.renderer.state import FrameStore

    write_frame = FrameStore.write_frame

    def fills_up(store, index, pixels):
        if index >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        write_frame(store, index, pixels)

    monkeypatch.setattr(FrameStore, "write_frame", fills_up)
    config = write_config(tmp_path, TINY)
    fails(capsys, 2, "render", config, says=("disk full", "free some space", "--resume"))
    frames = tmp_path / "out/r.gif.frames"
    assert assert_only_complete_frames(frames) == 3
    assert frame_bytes(frames) == {k: v for k, v in frame_bytes(reference).items() if k < "00003"}

    monkeypatch.setattr(FrameStore, "write_frame", write_frame)
    code, err = run(capsys, "render", config, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)


def test_a_failing_ffmpeg_keeps_the_frames_and_says_how_to_assemble(reference, tmp_path, capsys,
                                                                    monkeypatch):
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'ffmpeg: broken on purpose' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(broken))
    config = copy_of_reference(reference, tmp_path, output="out/r.mp4")
    line = fails(capsys, 2, "render", config, "--resume", says=("every frame is kept", "animator assemble"))
    assert frame_bytes(tmp_path / "out/r.mp4.frames") == frame_bytes(reference)
    assert not (tmp_path / "out/r.mp4").exists()

    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    command = shlex.split(line.split("`")[1])
    assert command[0] == "animator" and "--fps" in command
    code, err = run(capsys, *command[1:])
    assert code == 0, err
    assert (tmp_path / "out/r.mp4").stat().st_size > 0


# --- plugins --------------------------------------------------------------------------------


PLUGIN = """\
import numpy as np
from transforms import register

@register("flaky", numpy=True)
def flaky(frame, ctx):
    if ctx.index < 1:
        return frame
    {body}
"""
PLUGIN_FAULTS = {
    "raises": ("raise ValueError('boom')", "failed: ValueError: boom"),
    "wrong-shape": ("return frame[:10]", "returned shape (10, 64, 3); expected (64, 64, 3)"),
    "nan": ("return frame * np.nan", "non-finite"),
    "infinity": ("return frame + np.inf", "non-finite"),
}


def plugin_config(tmp_path: Path, body: str) -> Path:
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body=body))
    return write_config(tmp_path, with_changes(TINY, frames=3, dream__steps=1, plugins=["flaky.py"],
                                               transforms=["flaky"]))


def test_a_missing_plugin_file(tmp_path, capsys):
    write_config(tmp_path, with_changes(TINY, plugins=["nope.py"]))
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("plugin 'nope.py': file not found",))


def test_a_plugin_with_a_syntax_error(tmp_path, capsys):
    (tmp_path / "bad.py").write_text("def broken(:\n    pass\n")
    write_config(tmp_path, with_changes(TINY, plugins=["bad.py"]))
    fails(capsys, 2, "render", tmp_path / "r.yaml", says=("plugin 'bad.py': syntax error at line 1",))


@pytest.mark.parametrize("fault", list(PLUGIN_FAULTS))
def test_a_failing_transform_names_itself_and_keeps_the_frames(fault, tmp_path, capsys):
    body, says = PLUGIN_FAULTS[fault]
    config = plugin_config(tmp_path, body)
    fails(capsys, 2, "render", config,
          says=("transform 'flaky' (plugin flaky.py) at frame 1", says, "--resume"))
    frames = tmp_path / "out/r.gif.frames"
    assert assert_only_complete_frames(frames) == 2
    if fault != "raises":
        return
    kept = frame_bytes(frames)
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="return frame"))
    code, err = run(capsys, "render", config, "--resume")
    assert code == 0, err
    assert "note: plugin flaky.py changed since the last run: frames from 1 on" in err
    assert assert_only_complete_frames(frames) == 3
    assert {k: v for k, v in frame_bytes(frames).items() if k in kept} == kept


def test_a_transform_file_changed_after_a_good_render_refuses_the_resume(tmp_path, capsys):
    """A transform named `file.py:name` loads its file as a plugin: its code is digested too, and
    only a plugin's failure lets its code change on resume."""
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="return frame"))
    config = write_config(tmp_path, with_changes(TINY, frames=2, dream__steps=1,
                                                 transforms=["flaky.py:flaky"]))
    code, err = run(capsys, "render", config)
    assert code == 0, err
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="return frame * 0.5"))
    fails(capsys, 2, "render", config, "--resume", "--frames", "3",
          says=("cannot resume", "the content of flaky.py"))
    assert assert_only_complete_frames(tmp_path / "out/r.gif.frames") == 2


# --- interruption ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_after_the_frame_and_resume_continues(signum, reference, tmp_path, capsys):
    config = write_config(tmp_path, TINY)
    frames = tmp_path / "out/r.gif.frames"
    command = [sys.executable, "-m", "animator", "render", str(config), "--frames", "40"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (frames / "00001.png").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    line = error_line(err)
    assert process.returncode == 130, err
    assert "--resume" in line
    done = assert_only_complete_frames(frames)
    assert 2 <= done < 40
    with Image.open(tmp_path / "out/r.gif") as gif:
        assert gif.n_frames == done

    code, err = run(capsys, "render", config, "--resume", "--frames", max(done, 6))
    assert code == 0, err
    for resumed, uninterrupted in zip(frame_pixels(frames), frame_pixels(reference)):
        np.testing.assert_array_equal(resumed, uninterrupted)


def test_ctrl_c_in_a_terminal_leaves_the_mp4_encoded_so_far_playable(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: ffmpeg must not die with the render."""
    import imageio.v3 as iio

    config = write_config(tmp_path, {**TINY, "output": {"path": "out/r.mp4"}})
    frames = tmp_path / "out/r.mp4.frames"
    command = [sys.executable, "-m", "animator", "render", str(config), "--frames", "40"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (frames / "00001.png").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "a playable r.mp4 holds them" in error_line(err)
    done = assert_only_complete_frames(frames)
    assert 2 <= done < 40
    assert len(list(iio.imiter(tmp_path / "out/r.mp4"))) == done
    assert not list((tmp_path / "out").glob(".r.mp4.*"))


@pytest.mark.parametrize("torn", ["last-frame", "newest-state", "both-states-and-frame"])
def test_a_torn_write_is_redone_on_resume(torn, reference, tmp_path, capsys):
    config = copy_of_reference(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    # after 6 frames the newest resume point (index 6) is in state-0, the one before in state-1
    torn_files = {"last-frame": ["00005.png"], "newest-state": ["state-0.npz"],
                  "both-states-and-frame": ["state-0.npz", "00005.png"]}[torn]
    for name in torn_files:
        data = (frames / name).read_bytes()
        (frames / name).write_bytes(data[: len(data) // 2])
    code, err = run(capsys, "render", config, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)
    with Image.open(tmp_path / "out/r.gif") as gif:
        assert gif.n_frames == 6
