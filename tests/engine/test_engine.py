"""The engine keeps its frames: every backend and variant dreams the recorded reference frames."""

from __future__ import annotations

import os
import subprocess
import sys

import engine_cases
import numpy as np
import pytest
from helpers import TESTS

# Float rounding only: the variants recorded before agreed within 5e-5 grey levels.
TOLERANCE = 1e-3


def check_against_reference(frames: dict) -> None:
    reference = np.load(engine_cases.REFERENCE)
    assert {key.split("/")[1] for key in frames} == set(reference.files)
    for key, dreamed in frames.items():
        expected = reference[key.split("/")[1]]
        assert np.abs(expected - engine_cases.frame()).mean() > 1.0  # the case does dream
        np.testing.assert_allclose(dreamed, expected, atol=TOLERANCE, err_msg=key)


def test_tensorflow_dreams_the_reference_frames(tmp_path):
    check_against_reference(engine_cases.dream_all(engine_cases.tiny_model_file(tmp_path)))


@pytest.mark.timeout(600)
def test_jax_dreams_the_reference_frames(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS / "engine"), *sys.path]))
    out = tmp_path / "jax.npz"
    done = subprocess.run([sys.executable, engine_cases.__file__, str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    frames = dict(np.load(out))
    assert {key.split("/")[0] for key in frames} == {"jax", "jax_batched"}
    check_against_reference(frames)
