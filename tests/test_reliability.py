"""Nothing a user types loses a render: resume, force, a second render and damaged files.

Each case runs the real command in-process (`animator.cli.main`) on a tiny render (64 px, one
octave, two steps) and checks the exit status, the one error line and the bytes kept on disk.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from helpers import with_changes
from PIL import Image
from test_robustness import TINY, error_line, fails, frame_bytes, run, write_config

from animator.renderer.state import FIRST_FILE, LOCK_FILE

# colour coherence makes every frame after the first depend on first.npz
COHERENT = with_changes(TINY, frames=4, color={"coherence": "match_first", "strength": 1.0})


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted render of COHERENT: its frames folder."""
    folder = tmp_path_factory.mktemp("reliable")
    from animator.cli import main

    assert main(["render", str(write_config(folder, COHERENT))]) == 0
    return folder / "out/r.gif.frames"


def copied(reference: Path, tmp_path: Path, with_output: bool = True) -> Path:
    """COHERENT's config in `tmp_path`, its frames folder (and GIF) a copy of the reference's."""
    config = write_config(tmp_path, COHERENT)
    shutil.copytree(reference, tmp_path / "out/r.gif.frames")
    if with_output:
        shutil.copy(reference.parent / "r.gif", tmp_path / "out/r.gif")
    return config


def tear(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- 1. --resume with nothing to resume ------------------------------------------------------


def test_resume_with_no_frames_never_replaces_the_output(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    shutil.rmtree(tmp_path / "out/r.gif.frames")
    before = (tmp_path / "out/r.gif").read_bytes()
    fails(capsys, 2, "render", config, "--resume", "--set", "dream.steps=3",
          says=("cannot resume", "r.gif' exists", "--force"))
    assert (tmp_path / "out/r.gif").read_bytes() == before
    assert not (tmp_path / "out/r.gif.frames").exists()


def test_resume_never_overwrites_a_file_that_is_not_a_video(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("my notes")
    config = write_config(tmp_path, with_changes(TINY, output={"path": "notes.txt", "format": "mp4"}))
    fails(capsys, 2, "render", config, "--resume", says=("cannot resume", "--force"))
    assert (tmp_path / "notes.txt").read_text() == "my notes"


def test_resume_with_nothing_there_starts_the_render(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, frames=1, transforms=[]))
    code, err = run(capsys, "render", config, "--resume")
    assert code == 0, err
    assert len(frame_bytes(tmp_path / "out/r.gif.frames")) == 1


def test_force_and_resume_together_are_refused(tmp_path, capsys):
    config = write_config(tmp_path, TINY)
    fails(capsys, 2, "render", config, "--resume", "--force", says=("resume", "force", "choose one"))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- 2. --resume without an intact resume point ----------------------------------------------


def test_resume_without_a_state_refuses_a_changed_config(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    for name in ("state-0.npz", "state-1.npz"):
        tear(frames / name)
    before = frame_bytes(frames)
    fails(capsys, 2, "render", config, "--resume", "--set", "dream.steps=1",
          says=("config changed", "dream.steps", "--force"))
    assert frame_bytes(frames) == before


def test_resume_without_a_state_keeps_frames_it_cannot_vouch_for(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    for name in ("state-0.npz", "state-1.npz"):
        (frames / name).unlink()
    before = frame_bytes(frames)
    fails(capsys, 2, "render", config, "--resume",
          says=("no intact resume point", "4 frames kept", "--force"))
    assert frame_bytes(frames) == before
    code, err = run(capsys, "render", config, "--force")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)


# --- 3. two renders of one output -------------------------------------------------------------


def test_a_second_render_of_a_running_output_is_refused_even_with_force(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    before = frame_bytes(frames)
    with FileLock(frames / LOCK_FILE, timeout=0):  # what a live render holds
        line = fails(capsys, 2, "render", config, "--force", "--set", "seed=99", "--frames", "3",
                     says=("another render of", "is running"))
    assert len(line) < 300
    assert frame_bytes(frames) == before


def test_the_lock_of_a_killed_render_does_not_block_the_next(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    tear(frames / "state-0.npz")  # the last frame is dreamed again
    kill_holder = ("import os, signal, sys; from filelock import FileLock; "
                   "FileLock(sys.argv[1], timeout=0).acquire(); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", kill_holder, str(frames / LOCK_FILE)], check=False)
    assert (frames / LOCK_FILE).exists()
    code, err = run(capsys, "render", config, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)


def test_assembly_refuses_a_frames_folder_with_a_gap(reference, tmp_path, capsys):
    folder = tmp_path / "frames"
    shutil.copytree(reference, folder)
    (folder / "00001.png").unlink()
    (folder / "00002.png").unlink()
    fails(capsys, 2, "assemble", folder, "-o", tmp_path / "a.gif",
          says=("has a gap", "frame 1 to 2 is missing", "00000.png", "00003.png"))
    assert not (tmp_path / "a.gif").exists()


# --- 4. first.npz ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "torn"])
def test_a_damaged_first_frame_is_dreamed_again_on_resume(damage, reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    tear(frames / "state-0.npz")  # resume from frame 3: it depends on the first frame's pixels
    (frames / "00003.png").unlink()
    if damage == "missing":
        (frames / FIRST_FILE).unlink()
    else:
        tear(frames / FIRST_FILE)
    code, err = run(capsys, "render", config, "--resume")
    assert code == 0, err
    assert frame_bytes(frames) == frame_bytes(reference)
    first = np.load(frames / FIRST_FILE)["frame"]
    np.testing.assert_array_equal(np.load(reference / FIRST_FILE)["frame"], first)


def test_a_first_frame_that_cannot_be_dreamed_again_is_refused(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    frames = tmp_path / "out/r.gif.frames"
    tear(frames / "state-0.npz")
    (frames / FIRST_FILE).unlink()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(frames / "00000.png")  # not frame 0's pixels
    before = frame_bytes(frames)
    fails(capsys, 2, "render", config, "--resume", says=(FIRST_FILE, "missing or damaged", "--force"))
    assert frame_bytes(frames) == before


# --- 14. smaller ------------------------------------------------------------------------------


def test_fewer_frames_than_a_finished_render_say_so(reference, tmp_path, capsys):
    config = copied(reference, tmp_path)
    code, err = run(capsys, "render", config, "--resume", "--frames", "2")
    assert code == 0, err
    assert "holds 4 frames, more than the 2 asked for" in err
    assert "Traceback" not in err


def test_a_failed_start_leaves_no_empty_frames_folder(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, input="nothere.png"))
    line = error_line(run(capsys, "render", config)[1])
    assert "not found" in line
    assert not (tmp_path / "out/r.gif.frames").exists()


# --- 13. the resume hint ----------------------------------------------------------------------


def test_the_resume_hint_is_the_whole_command_that_continues_this_render(tmp_path, capsys, monkeypatch):
    from test_robustness import PLUGIN

    monkeypatch.chdir(tmp_path)
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="raise ValueError('boom')"))
    config = write_config(tmp_path, with_changes(TINY, transforms=["flaky"], plugins=["flaky.py"]))
    line = fails(capsys, 2, "render", config, "-o", "other dir/v3.gif", "--set", "dream.steps=1",
                 "--frames", "3", says=("then continue with",))
    command = shlex.split(line.split("then continue with ", 1)[1])
    assert command[:3] == ["animator", "render", str(config)] and command[-1] == "--resume"
    assert {"-o", "other dir/v3.gif", "--set", "dream.steps=1", "--frames", "3"} <= set(command)
    (tmp_path / "flaky.py").write_text(PLUGIN.format(body="return frame"))
    code, err = run(capsys, *command[1:])
    assert code == 0, err
    assert len(frame_bytes(tmp_path / "other dir/v3.gif.frames")) == 3
    assert not (tmp_path / "out").exists()


# --- 5-9. hangs and memory --------------------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes of YAML standing for 9**levels strings."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    return "\n".join(lines)


BOMB_TARGETS = {
    "transforms": "transforms: *a8",
    "layers": "dream: {layers: *a8}",
    "plugins": "plugins: *a8",
    "input": "input: *a8",
    "parameter": "dream: {steps: *a8}",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target", list(BOMB_TARGETS))
def test_a_yaml_alias_bomb_is_refused_at_once(target, tmp_path, capsys):
    # the bomb's anchors sit in keys the config does not know: the size check comes first
    text = f"{alias_bomb()}\nframes: 2\n{BOMB_TARGETS[target]}\n"
    if target != "input":
        text += "input: {noise: {size: [64, 64]}}\n"
    assert len(text) < 600
    line = fails(capsys, 2, "render", write_config(tmp_path, text), "--dry-run",
                 says=("over 100,000 values", "aliases"))
    assert len(line) < 300


@pytest.mark.timeout(60)
def test_an_excerpt_of_a_big_bad_value_is_quoted(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, fps=list(range(20_000))))
    line = fails(capsys, 2, "render", config, "--dry-run", says=("fps:", "[0, 1, 2, 3, 4, 5, ...]"))
    assert len(line) < 300


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["long", "deep"])
def test_an_oversized_config_is_refused(kind, tmp_path, capsys):
    from animator.config import MAX_CONFIG_BYTES

    if kind == "long":
        text = "input: {noise: {size: [64, 64]}}\nplugins:\n" + "  - x\n" * (MAX_CONFIG_BYTES // 6 + 1)
        says = ("bytes, over the limit of",)
    else:
        text = "input: {noise: {size: [64, 64]}}\ntransforms: " + "[" * 500 + "]" * 500 + "\n"
        says = ("nested", "deep")
    fails(capsys, 2, "render", write_config(tmp_path, text), "--dry-run", says=says)


@pytest.mark.timeout(60)
def test_a_billion_frames_are_refused(tmp_path, capsys):
    fails(capsys, 2, "render", write_config(tmp_path, TINY), "--frames", "1000000000", "--dry-run",
          says=("frames: must be > 0 and <= 1,000,000, got 1000000000",))


@pytest.mark.timeout(60)
def test_a_million_frames_are_checked_without_visiting_each(tmp_path, capsys):
    # octaves turn to 4 (too many for 64 px) at one keyframe late in the render: found anyway
    ok = with_changes(TINY, frames=1_000_000, dream__steps="2 + (t > 500000)",
                      dream__step_size={0: 1.0, 700_000: 2.0})
    code, err = run(capsys, "render", write_config(tmp_path, ok), "--dry-run")
    assert code == 0, err
    bad = with_changes(ok, dream__octaves={"keyframes": {0: 1, 987_654: 4, 987_655: 1},
                                           "interpolation": "step"})
    fails(capsys, 2, "render", write_config(tmp_path, bad), "--dry-run",
          says=("dream.octaves: 4 octaves", "frame 987654"))


EXPRESSIONS = {
    "2000-term sum": "+".join(["sin(t)"] * 2000),
    "100000 minus signs": "-" * 100_000 + "t",
    "3000-term power chain": "**".join(["1"] * 3000),
    "nested calls": "sin(" * 80 + "t" + ")" * 80,
    "500-term sum": "+".join(["t"] * 500),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(EXPRESSIONS))
def test_a_huge_expression_is_refused(case, tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, dream__step_size=EXPRESSIONS[case]))
    line = fails(capsys, 2, "render", config, "--dry-run", says=("dream.step_size: expression",))
    assert len(line) < 300


@pytest.mark.timeout(60)
@pytest.mark.parametrize("what", ["input", "config", "video"])
def test_a_pipe_is_refused_not_waited_on(what, tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "pipe")
    source = {"video": "pipe"} if what == "video" else "pipe"
    config = write_config(tmp_path, with_changes(TINY, input=source))
    fails(capsys, 2, "render", tmp_path / "pipe" if what == "config" else config,
          says=("pipe", "not a regular file"))


def test_a_long_octave_runs_in_short_compiled_calls(monkeypatch):
    from animator.engine import dream
    from animator.engine.dream import Dreamer, DreamSettings

    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    settings = DreamSettings(octaves=1, steps=45, jitter=4)
    dreamer = Dreamer(model="vgg16-hed", layers={"block1_conv2": 1.0})
    calls = []
    octave = dreamer._octave

    def counting(image, shifts, *rest):
        calls.append(len(shifts))
        return octave(image, shifts, *rest)

    monkeypatch.setattr(dreamer, "_octave", counting)
    chunked, losses = dreamer.dream_frame(image, settings, np.random.default_rng(1))
    assert calls == [15, 15, 15] and len(losses) == 45  # one program, not 20, 20 and 5
    monkeypatch.setattr(dream, "OCTAVE_CHUNK_STEPS", 1000)
    whole, _ = dreamer.dream_frame(image, settings, np.random.default_rng(1))
    assert calls[3:] == [45]
    np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), atol=1e-3)

    def interrupted(image, shifts, *rest):  # a second Ctrl-C arrives during the second run
        calls.append(len(shifts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return octave(image, shifts, *rest)

    monkeypatch.setattr(dream, "OCTAVE_CHUNK_STEPS", 20)
    monkeypatch.setattr(dreamer, "_octave", interrupted)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        dreamer.dream_frame(image, DreamSettings(octaves=1, steps=3000), np.random.default_rng(1))
    assert calls == [20, 20]



def test_run_lengths_split_an_octave_into_compiled_calls():
    from animator.engine.dream import run_lengths

    assert run_lengths(45) == [15, 15, 15] and run_lengths(50) == [17, 17, 16]
    assert run_lengths(10) == [10] and run_lengths(0) == []
    assert run_lengths(10, short=True) == [2, 2, 2, 2, 2]
    assert run_lengths(7, short=True) == [2, 2, 2, 1]
    assert run_lengths(1, short=True) == [1]


def test_an_unrolled_octave_dreams_its_first_frame_in_short_runs(monkeypatch):
    # XLA on a CPU unrolls the octave: the first frame in 2-step programs (quick to load), the
    # next frames whole, to the same pixels.
    from animator.engine.dream import Dreamer, DreamSettings

    image = np.random.default_rng(0).uniform(0, 255, (48, 48, 3)).astype(np.float32)
    settings = DreamSettings(octaves=2, steps=5, jitter=4)
    dreamer = Dreamer(model="vgg16-hed", layers={"block1_conv2": 1.0}, xla=True)
    calls, octave = [], dreamer._octave
    assert octave.unroll

    def counting(image, shifts, *rest):
        calls.append(len(shifts))
        return octave(image, shifts, *rest)

    monkeypatch.setattr(dreamer, "_octave", counting)
    first, first_losses = dreamer.dream_frame(image, settings, np.random.default_rng(1))
    assert calls == [2, 2, 1, 2, 2, 1] and len(first_losses) == 10
    second, second_losses = dreamer.dream_frame(image, settings, np.random.default_rng(1))
    assert calls[6:] == [5, 5]
    np.testing.assert_allclose(np.asarray(first), np.asarray(second), atol=1e-3)
    np.testing.assert_allclose(list(first_losses), list(second_losses), rtol=1e-4)

# --- 10-14. wrong results and wrong advice ----------------------------------------------------


def test_output_format_decides_the_container_of_a_path_without_suffix(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, frames=2, transforms=[],
                                                 output={"path": "out/anim", "format": "gif"}))
    code, err = run(capsys, "render", config)
    assert code == 0, err
    with Image.open(tmp_path / "out/anim") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2


def test_output_format_and_a_contrary_suffix_are_refused_at_load(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, output={"path": "named.mp4", "format": "gif"}))
    fails(capsys, 2, "render", config, "--dry-run",
          says=("output: format gif does not match the path's suffix .mp4",))


def test_a_model_file_is_found_beside_the_config_from_any_folder(tmp_path, capsys, monkeypatch):
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)).save(
        tmp_path / "plain_here.keras")
    config = write_config(tmp_path, with_changes(TINY, frames=1, transforms=[],
                                                 dream={"octaves": 1, "steps": 1, "model": "plain_here.keras",
                                                        "layers": {"c2": 1.0}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, err = run(capsys, "render", config)
    assert code == 0, err
    assert len(frame_bytes(tmp_path / "out/r.gif.frames")) == 1


def test_assemble_refuses_an_existing_output_without_force(reference, tmp_path, capsys):
    out = tmp_path / "a.gif"
    out.write_bytes(b"mine")
    fails(capsys, 2, "assemble", reference, "-o", out, says=("exists", "--force"))
    assert out.read_bytes() == b"mine"
    code, err = run(capsys, "assemble", reference, "-o", out, "--force")
    assert code == 0, err
    assert Image.open(out).n_frames == 4


@pytest.mark.parametrize("case", ["suffix", "read-only"])
def test_dream_checks_its_output_before_dreaming(case, tmp_path, capsys, monkeypatch):
    import os

    from animator.engine.dream import Dreamer

    monkeypatch.setattr(Dreamer, "__init__", lambda *a, **k: pytest.fail("dreamed before the check"))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "in.png")
    if case == "suffix":
        fails(capsys, 2, "dream", tmp_path / "in.png", "-o", tmp_path / "x.xyz",
              says=("unknown image suffix '.xyz'", ".png"))
    else:
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real(p, mode))
        fails(capsys, 2, "dream", tmp_path / "in.png", "-o", tmp_path / "x.png", says=("not writable",))


def test_a_killed_mp4_render_leaves_no_temporary_after_the_next_run(tmp_path, capsys):
    config = write_config(tmp_path, with_changes(TINY, frames=1, transforms=[],
                                                 output={"path": "out/r.mp4"}))
    (tmp_path / "out").mkdir()
    stale = [tmp_path / "out/.r.mp4.0123abcd.mp4", tmp_path / "out/.r.mp4.frames-x1y2"]
    stale[0].write_bytes(b"half an mp4")
    stale[1].mkdir()
    (tmp_path / "out/.other.mp4.0123abcd.mp4").write_bytes(b"not ours")
    code, err = run(capsys, "render", config)
    assert code == 0, err
    assert not any(path.exists() for path in stale)
    assert (tmp_path / "out/.other.mp4.0123abcd.mp4").exists()


def test_a_plugin_calling_sys_exit_is_an_error_not_an_exit(tmp_path, capsys):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    config = write_config(tmp_path, with_changes(TINY, plugins=["quits.py"]))
    fails(capsys, 2, "render", config, "--dry-run", says=("plugin 'quits.py'", "SystemExit: 3"))


def test_layers_of_a_file_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "fake.keras").write_text("not a model")
    fails(capsys, 2, "layers", tmp_path / "fake.keras", says=("fake.keras' is not a Keras model",))


def test_a_decompression_bomb_is_not_told_to_set_size(tmp_path, capsys):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0)  # 400 megapixels, no pixel data
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    config = write_config(tmp_path, with_changes(TINY, input="bomb.png", max_pixels=10**9))
    line = fails(capsys, 2, "render", config, says=("too large to decode safely", "shrink the image"))
    assert "set `size:`" not in line


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_a_long_octave_within_seconds(tmp_path):
    import os
    import signal
    import time

    config = write_config(tmp_path, with_changes(TINY, frames=3, transforms=[],
                                                 dream__steps=3000))  # ~200 s an octave on 2 cores
    command = [sys.executable, "-m", "animator", "render", str(config)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "out/r.gif.frames" / LOCK_FILE).exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(12)  # the model is built and the octave runs
        process.send_signal(signal.SIGINT)
        time.sleep(5)  # two signals within one compiled call would be seen as one
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert "aborted" in error_line(err)
    assert time.monotonic() - sent < 30
