"""The frame stays on the device: the frame loop's own thread copies nothing back to the host."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from animator.config import from_mapping
from animator.renderer import loop as animate
from animator.settings.errors import PluginError

CONFIG = {
    "input": {"noise": {"size": [64, 48], "seed": 3}},
    "frames": 4,
    "dream": {"model": "vgg16-hed", "octaves": 2, "octave_scale": 1.3, "steps": 2,
              "layers": {"block3_conv3": 1.0},
              "objective": [{"tv": 0.01}, {"stay_near": "t / 4"}]},
    "transforms": [{"zoom": {"factor": 1.05}}, {"rotate": {"degrees": 2}}, "blur"],
    "color": {"coherence": "match_first"},
    "output": {"path": "out/loop.gif"},
}


@pytest.fixture
def host_copies(monkeypatch):
    """Counts every copy of a float or bool TensorFlow tensor (pixels, a loss, a finiteness
    flag) to the host made on the main thread, from the moment `counting` is set (numpy(),
    np.asarray, float(), bool() all go through `_numpy`). TensorFlow itself reads integer
    constants made from Python values (a resize's size, a dilation rate): those stay uncounted."""
    from tensorflow.python.framework import ops as tf_ops

    seen = {"count": 0, "counting": False}
    original = tf_ops._EagerTensorBase._numpy
    main = threading.main_thread()

    def counted(tensor):
        if seen["counting"] and threading.current_thread() is main and not tensor.dtype.is_integer:
            seen["count"] += 1
        return original(tensor)

    monkeypatch.setattr(tf_ops._EagerTensorBase, "_numpy", counted)
    return seen


def test_the_frame_loop_copies_no_frame_to_the_host(tmp_path, host_copies):
    config = from_mapping(CONFIG, tmp_path)

    def progress(done, total, started_at):
        host_copies["counting"] = True  # the first frame is copied once, for colour coherence

    result = animate.render(config, progress=progress)
    assert result.frames == 4
    assert host_copies["counting"] and host_copies["count"] == 0


def test_a_transform_that_makes_nan_on_the_device_stops_the_render_keeping_the_frames(tmp_path):
    from transforms.registry import isolated

    with isolated() as registry:
        @registry.register("device_poison")
        def device_poison(frame, ctx):
            from keras import ops

            return frame * ops.convert_to_tensor(np.nan if ctx.index == 1 else 1.0, "float32")

        config = from_mapping({**CONFIG, "transforms": ["device_poison"]}, tmp_path)
        says = r"frame 2 holds non-finite values \(NaN or inf\) made by the transforms of frame 1"
        with pytest.raises(PluginError, match=says):
            animate.render(config)
    assert sorted(p.name for p in (tmp_path / "out" / "loop.gif.frames").glob("*.png")) == \
        ["00000.png", "00001.png"]
