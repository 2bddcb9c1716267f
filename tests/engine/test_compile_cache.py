"""JAX's persistent compilation cache: a second start with the same sizes compiles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from animator.engine.compile_cache import cache_folder

# Dream one small frame on JAX and report JAX's compilation-cache events (hits, misses).
DREAM = """
import json, sys
import numpy as np
from jax import monitoring
events = {}
monitoring.register_event_listener(lambda name, **_: events.__setitem__(name, events.get(name, 0) + 1))
from animator.engine.dream import Dreamer
dreamer = Dreamer(model=sys.argv[1], layers="deep")
pixels = np.random.default_rng(0).uniform(0, 255, (40, 48, 3)).astype("float32")
# 3 steps: the first frame runs of 2 steps and 1 (two programs per octave), both cached
dreamed = dreamer.dream(pixels, octaves=2, octave_scale=1.2, steps=3, jitter=4)
print(json.dumps({"events": events, "mean": float(dreamed.mean())}))
"""


def tiny_model(folder: Path) -> Path:
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="deep")(x)
    path = folder / "tiny.keras"
    keras.Model(inputs, x).save(path)
    return path


def dream_on_jax(model: Path, cache: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "ANIMATOR_JAX_CACHE": str(cache),
           "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", DREAM, str(model)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_warm_jax_start_loads_every_program_from_the_cache(tmp_path):
    model, cache = tiny_model(tmp_path), tmp_path / "jax-cache"
    cold = dream_on_jax(model, cache)
    programs = sorted(p.name for p in cache.iterdir())
    assert cold["events"].get("/jax/compilation_cache/cache_misses", 0) > 0
    assert cold["events"].get("/jax/compilation_cache/cache_hits", 0) == 0
    assert len(programs) > 0

    warm = dream_on_jax(model, cache)
    assert warm["events"].get("/jax/compilation_cache/cache_misses", 0) == 0  # nothing compiled
    assert warm["events"]["/jax/compilation_cache/cache_hits"] >= len(programs)
    assert sorted(p.name for p in cache.iterdir()) == programs
    assert warm["mean"] == cold["mean"]  # the same programs dream the same frame


def test_the_cache_folder_is_the_users_unless_the_environment_says(tmp_path):
    home = Path.home()
    assert cache_folder({}) == home / ".cache" / "deepdream-animator" / "jax"
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "deepdream-animator" / "jax"
    assert cache_folder({"ANIMATOR_JAX_CACHE": str(tmp_path / "c"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "c"
    assert cache_folder({"ANIMATOR_JAX_CACHE": "off"}) is None
