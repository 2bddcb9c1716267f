"""The resume state every `output.checkpoint_every`: a render killed between two resume points
resumes from the older one and still ends with the frames of an uninterrupted render."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from animator.renderer.state import FrameStore

# A transform that does nothing, except that with KILL_AT=i in the environment it waits at frame
# i for two resume points (after frame 0, and after frame 3) to be on disk, then kills its own
# process with SIGKILL: no handler runs, nothing is flushed, as if the machine lost power.
KILLER = """
import os, signal, time
from pathlib import Path
from transforms import register

@register("killer", numpy=True)
def killer(frame, ctx, folder: str = ""):
    if os.environ.get("KILL_AT") == str(ctx.index):
        deadline = time.monotonic() + 60
        while len(list(Path(folder).glob("state-*.npz"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    return frame
"""
EVERY, KILL_AT, FRAMES = 4, 6, 9


def render(folder: Path, *extra: str, kill_at: int | None = None) -> subprocess.CompletedProcess:
    """`animator render` of a tiny zooming animation in `folder`, in a fresh interpreter."""
    (folder / "killer.py").write_text(KILLER)
    frames_dir = folder / "out/r.gif.frames"
    config = {
        "input": {"noise": {"size": [64, 48], "seed": 4}},
        "frames": FRAMES, "fps": 10, "seed": 3,
        "dream": {"model": "vgg16-hed", "octaves": 1, "steps": 2, "jitter": 8,
                  "layers": {"block3_conv3": 1.0}},
        "transforms": [{"zoom": {"factor": 1.05}}, {"killer": {"folder": str(frames_dir)}}],
        "plugins": ["killer.py"],
        "output": {"path": "out/r.gif", "checkpoint_every": EVERY},
    }
    (folder / "r.yaml").write_text(yaml.safe_dump(config))
    env = {key: value for key, value in os.environ.items() if key != "KILL_AT"}
    if kill_at is not None:
        env["KILL_AT"] = str(kill_at)
    command = [sys.executable, "-m", "animator", "render", str(folder / "r.yaml"), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def frames_of(folder: Path) -> dict[str, bytes]:
    """Each frame's pixels (the PNGs' text differs: it carries the killer's folder, a setting)."""
    return {p.name: np.asarray(Image.open(p)).tobytes()
            for p in sorted((folder / "out/r.gif.frames").glob("[0-9]*.png"))}


def test_a_render_killed_between_two_resume_points_resumes_to_identical_frames(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    assert render(whole).returncode == 0

    done = render(killed, kill_at=KILL_AT)
    assert done.returncode == -9, done.stderr[-2000:]
    store = FrameStore(killed / "out/r.gif.frames")
    assert store.latest_state().index == EVERY  # the newest resume point: frames 0..3 done
    on_disk = store.frame_count()
    assert EVERY < on_disk <= KILL_AT + 1  # frames past it were written, then the process died
    before = {i: os.stat(store.frame_path(i)).st_ino for i in range(on_disk)}

    done = render(killed, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert frames_of(killed) == frames_of(whole)
    assert len(frames_of(whole)) == FRAMES
    after = {i: os.stat(store.frame_path(i)).st_ino for i in range(on_disk)}
    # frames before the resume point were kept; those after it were dreamed (and written) again
    assert [i for i in before if before[i] != after[i]] == list(range(EVERY, on_disk))


def test_frame_names_become_durable_with_the_resume_point_that_counts_them(tmp_path, monkeypatch):
    """A frame's rename is synced to disk with the next resume point (one folder fsync for many
    frames), and before that point's own file is written: a point never counts a frame whose
    name a power cut could lose."""
    from animator.media import images

    events = []
    rename = os.replace
    monkeypatch.setattr(images, "sync_folder", lambda folder: events.append("sync"))
    monkeypatch.setattr(os, "replace", lambda old, new: (events.append(Path(new).name), rename(old, new)))
    store = FrameStore(tmp_path / "frames")
    store.create()
    pixels = np.full((4, 6, 3), 7, np.uint8)
    store.write_frame(0, pixels)
    store.write_frame(1, pixels)
    assert events == ["00000.png", "00001.png"]
    store.save_state(2, pixels.astype(np.float32), {"n": 1})
    assert events[2] == "sync" and events[3].startswith("state") and events[4] == "sync"
    assert store.latest_state().index == 2
