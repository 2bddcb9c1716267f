"""A render resumes after any kill or damage, its data stays whole, and no input makes unbounded work.

Grouped by family: resuming (a kill at any moment, a damaged frame, a changed file, a removed
folder, left temporaries), the data (assembly's frames, a variable-rate clip, a sweep's workers),
and bounded work (a sweep's grid, a frame's memory, a roll's group, many keyframes).
"""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import with_changes
from test_robustness import TINY, fails, frame_bytes, run, write_config

from animator import config as config_module
from animator.renderer.loop import render
from animator.renderer.state import FrameStore
from animator.settings.errors import OutputError

SIX = with_changes(TINY, output={"path": "out/r.gif", "checkpoint_every": 2})


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted render of SIX: its frames folder."""
    from animator.cli import main

    folder = tmp_path_factory.mktemp("whole")
    assert main(["render", str(write_config(folder, SIX))]) == 0
    return folder / "out/r.gif.frames"


def loaded(folder: Path, data: dict):
    return config_module.load(write_config(folder, data))


# --- resuming: a kill at any moment ------------------------------------------------------------


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs."""


def test_a_kill_right_after_frame_0_resumes(reference, tmp_path, capsys, monkeypatch):
    """Frame 0 is on disk, its resume point not yet: the start's resume point, written before any
    frame, lets the render resume."""
    config_path = write_config(tmp_path, SIX)
    real = FrameStore.save_state

    def dies_at_the_first_checkpoint(store, index, frame, rng_state):
        if index >= 1:
            raise Killed
        real(store, index, frame, rng_state)

    monkeypatch.setattr(FrameStore, "save_state", dies_at_the_first_checkpoint)
    with pytest.raises(Killed):
        render(config_module.load(config_path))
    frames = tmp_path / "out/r.gif.frames"
    assert "00000.png" in frame_bytes(frames)  # and no resume point after it
    monkeypatch.setattr(FrameStore, "save_state", real)
    code, err = run(capsys, "render", config_path, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)


# --- resuming: a damaged frame ----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "emptied", "not a png"])
def test_a_damaged_frame_in_the_middle_is_dreamed_again_on_resume(damage, reference, tmp_path, capsys):
    config_path = write_config(tmp_path, SIX)
    frames = tmp_path / "out/r.gif.frames"
    shutil.copytree(reference, frames)
    broken = frames / "00003.png"
    data = broken.read_bytes()
    broken.write_bytes({"truncated": data[: len(data) // 2], "emptied": b"",
                        "not a png": b"GIF89a" + data[6:]}[damage])
    code, err = run(capsys, "render", config_path, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)
    assert (tmp_path / "out/r.gif").is_file()


def test_damage_before_every_kept_resume_point_dreams_from_the_start(reference, tmp_path, capsys):
    config_path = write_config(tmp_path, SIX)
    frames = tmp_path / "out/r.gif.frames"
    shutil.copytree(reference, frames)
    (frames / "00001.png").write_bytes(b"")  # the kept points are at frames 4 and 6
    code, err = run(capsys, "render", config_path, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)


# --- resuming: what decides the pixels -----------------------------------------------------------


def guided(tmp_path: Path, where: str) -> dict:
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "guide.png")
    if where == "dream.guide":
        return with_changes(SIX, frames=3, dream__guide="guide.png")
    return with_changes(SIX, frames=3, dream__objective=[{"guide": "guide.png", "layers": ["block3_conv3"]}])


@pytest.mark.parametrize("where", ["dream.guide", "dream.objective[0].guide"])
def test_a_changed_guide_image_refuses_the_resume_naming_it(where, tmp_path, capsys):
    from PIL import Image

    config_path = write_config(tmp_path, guided(tmp_path, where))
    code, err = run(capsys, "render", config_path)
    assert code == 0, err
    frames = tmp_path / "out/r.gif.frames"
    before = frame_bytes(frames)
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "guide.png")
    fails(capsys, 2, "render", config_path, "--resume", "--frames", "4",
          says=("cannot resume", f"the content of {where}", "--force"))
    assert frame_bytes(frames) == before


def test_every_file_that_decides_the_pixels_is_digested(tmp_path):
    (tmp_path / "in.png").write_bytes(b"input")
    (tmp_path / "g.png").write_bytes(b"guide")
    (tmp_path / "w.weights.h5").write_bytes(b"weights")
    config = config_module.Config(config_module.Animation.model_validate(
        {"input": "in.png", "dream": {"guide": "g.png", "weights": "w.weights.h5",
                                      "objective": [{"guide": "g.png"}]}}), tmp_path, "x.yaml", None)
    digests = config.file_digests()
    assert set(digests) == {"input", "dream.guide", "dream.weights", "dream.objective[0].guide"}
    assert digests["dream.guide"] == config_module.file_digest(tmp_path / "g.png") is not None


def test_a_changed_input_image_names_its_content(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "in.png")
    config_path = write_config(tmp_path, with_changes(SIX, input="in.png", frames=2))
    assert run(capsys, "render", config_path)[0] == 0
    Image.fromarray(np.full((64, 64, 3), 91, np.uint8)).save(tmp_path / "in.png")
    fails(capsys, 2, "render", config_path, "--resume", "--frames", "3",
          says=("the content of input",))


def test_max_pixels_does_not_block_a_resume(reference, tmp_path, capsys):
    config_path = write_config(tmp_path, SIX)
    frames = tmp_path / "out/r.gif.frames"
    shutil.copytree(reference, frames)
    (frames / "00005.png").unlink()
    code, err = run(capsys, "render", config_path, "--resume", "--set", "max_pixels=100000")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)


PLUGIN = ("import numpy as np\nfrom transforms import register\n\n\n@register('flaky', numpy=True)\n"
          "def flaky(frame, ctx):\n    return {body}\n")


def test_a_plugin_changed_after_a_good_render_refuses_the_resume(tmp_path, capsys):
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="frame"))
    config_path = write_config(tmp_path, with_changes(SIX, frames=2, transforms=["flaky.py:flaky"]))
    assert run(capsys, "render", config_path)[0] == 0
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="frame * 0.5"))
    fails(capsys, 2, "render", config_path, "--resume", "--frames", "3",
          says=("cannot resume", "the content of flaky.py", "--force"))


# --- resuming: the folder removed ----------------------------------------------------------------


def removed(folder):
    """Remove `folder` as a user would while frames are still being written into it: a write in
    flight may add a file after the listing, so remove again until it is gone."""
    while folder.exists():
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("what", ["the output folder", "frames"])
def test_a_folder_removed_mid_render_is_an_error_not_an_empty_render(what, tmp_path):
    config = loaded(tmp_path, SIX)

    def removes(done, total, started_at):
        if done == 2:
            if what == "frames":
                for path in config.frames_dir.glob("0000[01].png"):
                    path.unlink()
            else:
                removed(tmp_path / "out")

    with pytest.raises(OutputError, match="was removed"):
        render(config, progress=removes)
    assert not (tmp_path / "out/r.gif").exists()
    if what == "the output folder":
        assert not (tmp_path / "out").exists()  # not made again by a later frame's write


def test_a_folder_removed_mid_render_is_one_line_from_the_command(tmp_path, capsys, monkeypatch):
    config_path = write_config(tmp_path, SIX)
    real = FrameStore.write_frame

    def removing(store, index, pixels):
        if index == 2:
            removed(tmp_path / "out")
        real(store, index, pixels)

    monkeypatch.setattr(FrameStore, "write_frame", removing)
    fails(capsys, 2, "render", config_path, says=("frames folder", "was removed", "render it again"))


# --- resuming: temporaries a kill left --------------------------------------------------------


def test_the_temporaries_a_kill_left_are_removed(reference, tmp_path, capsys):
    config_path = write_config(tmp_path, SIX)
    frames = tmp_path / "out/r.gif.frames"
    shutil.copytree(reference, frames)
    (frames / "00005.png").unlink()
    stale = [tmp_path / "out/.r.gif.yaml.0123abcd.tmp", frames / ".00005.png.89abcdef.tmp",
             frames / ".state-1.npz.00ff00ff.tmp"]
    for path in stale:
        path.write_bytes(b"half written")
    kept = [tmp_path / "out/.notes.yaml.0123abcd.tmp", frames / "notes.txt"]
    for path in kept:
        path.write_bytes(b"the user's")
    code, err = run(capsys, "render", config_path, "--resume")
    assert code == 0, err
    assert [path for path in stale if path.exists()] == []
    assert all(path.exists() for path in kept)


# --- data: assembly ---------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["cover.png", "thumb.jpg", "frame.png"])
def test_another_image_neither_hides_a_gap_nor_becomes_a_frame(other, reference, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "frames"
    shutil.copytree(reference, folder)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / other)
    code, err = run(capsys, "assemble", folder, "-o", tmp_path / "a.gif")
    assert code == 0, err
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 6
    (folder / "00002.png").unlink()
    fails(capsys, 2, "assemble", folder, "-o", tmp_path / "b.gif",
          says=("has a gap", "frame 2 is missing"))


def test_a_frame_number_given_twice_is_refused(reference, tmp_path, capsys):
    folder = tmp_path / "frames"
    shutil.copytree(reference, folder)
    shutil.copy(folder / "00001.png", folder / "1.png")
    fails(capsys, 2, "assemble", folder, "-o", tmp_path / "a.gif", says=("frame 1 twice",))


# --- data: a variable-frame-rate clip -----------------------------------------------------------


def vfr_clip(path: Path) -> Path:
    """21 frames over 1.9 s: ten 0.02 s apart, then eleven 0.19 s apart (probed at 100 tbr)."""
    import imageio_ffmpeg

    times = "if(lt(N,10),N*0.02,0.2+(N-10)*0.19)"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2.1",
                    "-vf", f"settb=1/1000,setpts='{times}/TB'", "-fps_mode", "vfr",
                    "-enc_time_base", "1:1000", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


def test_a_variable_rate_clip_is_decoded_at_its_real_frames_and_times(tmp_path):
    from animator.media import clip

    video = clip.probe(vfr_clip(tmp_path / "vfr.mp4"))
    count = clip.count_frames(video)
    frames = list(clip.decode(video))
    assert count == len(frames) == 21
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))  # none repeated
    config = config_module.from_mapping({"input": {"video": "vfr.mp4"}, "dream": {"steps": 1}},
                                        tmp_path, source=str(tmp_path / "v.yaml"))
    from animator.renderer import sources

    starts = sources.open_video(config)
    starts.close()
    resolved = starts.config
    assert resolved.frames == 21
    assert resolved.frames / resolved.fps == pytest.approx(video.duration, rel=0.1)


# --- data: a sweep's workers --------------------------------------------------------------------


HOLDER = textwrap.dedent("""
    import sys, time
    from animator.sweep.executors import _ProcessExecutor
    executor = _ProcessExecutor(2, None)
    running = [executor.pool.submit(time.sleep, 120) for _ in range(2)]
    time.sleep(3)
    pids = [*executor.pool._processes, executor.manager._process.pid]
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(120)
""")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sweeps_workers_die_with_it(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[1])
    try:
        pids = [int(word) for word in parent.stdout.readline().split()]
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if alive(pid)] == []


# --- bounded work ------------------------------------------------------------------------------


def test_a_huge_sweep_grid_is_counted_before_it_is_made(tmp_path, capsys, monkeypatch):
    from animator.sweep import model

    monkeypatch.setattr(model.itertools, "product",
                        lambda *axes: pytest.fail("the grid was made before it was counted"))
    axes = ["seed", "fps", "frames", "dream.steps", "dream.jitter", "dream.octaves",
            "dream.step_size", "dream.octave_scale", "transforms.0.zoom.factor"]
    grid = {key: [1 + index / 100 if "." in key else index + 1 for index in range(10)] for key in axes}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"base": TINY, "grid": grid}))
    line = fails(capsys, 2, "sweep", tmp_path / "s.yaml",
                 says=("10 × 10 × 10", "1,000,000,000 variants", "more than 1000"))
    assert len(line) < 300


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says `width`×`height` (Pillow reads the size without decoding)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.mark.timeout(300)  # without the check, a 16384² frame would be dreamed for hours
@pytest.mark.parametrize("what", ["input", "size"])
def test_frames_too_large_for_the_memory_are_refused_before_decoding(what, tmp_path, capsys, monkeypatch):
    from animator.engine import backend

    monkeypatch.setattr(backend, "host_memory", lambda: 8 << 30)
    if what == "input":
        header_only_png(tmp_path / "huge.png", 12000, 12000)  # under Pillow's own limit
        data = with_changes(SIX, input="huge.png", max_pixels=12000 * 12000)
    else:
        data = with_changes(SIX, size=[16384, 16384])
    config_path = write_config(tmp_path, data)
    side = 12000 if what == "input" else 16384
    line = fails(capsys, 2, "render", config_path,
                 says=(f"{side}x{side}", "GB of memory", "8.6 GB available", "smaller `size:`"))
    assert len(line) < 300
    assert not (tmp_path / "out/r.gif.frames").exists()


@pytest.mark.parametrize("transform", ["roll", "stochastic_shift"])
def test_a_huge_group_is_one_group_not_materialised(transform):
    from transforms import Context
    from transforms.shifts import roll, stochastic_shift

    frame = np.arange(8 * 6 * 3, dtype=np.float32).reshape(8, 6, 3)

    def shifted(group):
        ctx = Context(0, 1, (6, 8), np.random.default_rng(4), None)
        if transform == "roll":
            return np.asarray(roll(frame, ctx, shift=3.0, group=group))
        return np.asarray(stochastic_shift(frame, ctx, low=1, high=5, group=group))

    whole = shifted(6)  # a group of every column: one shift for all
    assert np.array_equal(shifted(10**15), whole)
    assert any(np.array_equal(np.roll(frame, shift, axis=0), whole) for shift in range(1, 6))


def test_a_schedule_of_18000_keyframes_looks_up_by_bisection(monkeypatch):
    from animator.settings import schedule

    keys = {i * 5: float(i % 7) for i in range(18000)}
    parsed = schedule.parse(keys, "dream.step_size")
    monkeypatch.setattr(schedule.np, "searchsorted",
                        lambda *a, **k: pytest.fail("each lookup copied the keyframes"))
    assert parsed(0) == 0.0
    assert parsed(7) == pytest.approx(1.4)  # between frame 5 (1.0) and 10 (2.0)
    assert parsed(5 * 17999 + 100) == float(17999 % 7)
    assert schedule.first_outside(parsed, lambda v: v <= 6.0, 90000) is None
    t, value = schedule.first_outside(parsed, lambda v: v <= 5.0, 90000)
    assert (t, value) == (26, pytest.approx(5.2))
