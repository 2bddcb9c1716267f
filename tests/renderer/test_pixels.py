"""A frame copied to the host: the same uint8 pixels and finiteness on the device as on the host,
on TensorFlow and on JAX."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from animator.media import images
from animator.renderer.pixels import to_host


def awkward_frame() -> np.ndarray:
    """Values below 0, above 255 and exactly halfway between two levels (rounded to even)."""
    frame = np.random.default_rng(4).uniform(-40, 300, (37, 51, 3)).astype(np.float32)
    frame[0, :8, 0] = [0.5, 1.5, 2.5, 254.5, 255.5, -0.5, -0.4, 127.49]
    return frame


@pytest.mark.parametrize("on_device", [True, False])
def test_frame_copied_to_the_host_rounds_as_to_uint8(on_device):
    frame = awkward_frame()
    host = to_host(frame, on_device=on_device)
    assert host.finite
    assert host.rgb.dtype == np.uint8 and host.rgb.flags.c_contiguous
    np.testing.assert_array_equal(host.rgb, images.to_uint8(frame))
    assert host.rgb[0, :8, 0].tolist() == [0, 2, 2, 254, 255, 0, 0, 127]


@pytest.mark.parametrize("on_device", [True, False])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_anywhere_is_reported(on_device, bad):
    frame = awkward_frame()
    frame[36, 50, 2] = bad
    assert not to_host(frame, on_device=on_device).finite


def test_the_device_copy_on_jax_matches_the_host(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from animator.renderer.pixels import to_host\n"
        "frame = np.load(sys.argv[1])\n"
        "bad = frame.copy(); bad[3, 4, 1] = np.nan\n"
        "host = to_host(frame, on_device=True)\n"
        "np.savez(sys.argv[2], rgb=host.rgb, finite=host.finite,"
        " bad=to_host(bad, on_device=True).finite)\n"
    )
    frame = awkward_frame()
    source, out = tmp_path / "frame.npy", tmp_path / "out.npz"
    np.save(source, frame)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script, str(source), str(out)], env=env, cwd=ROOT,
                          timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as result:
        np.testing.assert_array_equal(result["rgb"], images.to_uint8(frame))
        assert bool(result["finite"]) and not bool(result["bad"])
