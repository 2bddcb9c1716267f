"""Fixed dreams of a tiny seeded model, to hold the engine's frames to a recorded reference.

`tests/data/engine_reference.npz` holds the frames these cases dreamed on the engine as it was
before its step was written once for every backend (then TensorFlow, TensorFlow with XLA and JAX
each had their own step, and agreed within 5e-5 grey levels; the file holds plain TensorFlow's).
The cases dream whole and tiled frames, over octaves, with jitter, both normalisations and both
reductions. Run as a script to save the current engine's frames for the active Keras backend:
`KERAS_BACKEND=jax python tests/engine_cases.py OUT.npz` (keys "variant/case").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).parent / "data" / "engine_reference.npz"

# name: (Dreamer options, dream settings)
CASES = {
    "whole": ({}, {"octaves": 2, "octave_scale": 1.3, "steps": 3, "jitter": 5}),
    "tiled": ({}, {"octaves": 2, "octave_scale": 1.3, "steps": 3, "jitter": 5, "tile_size": 32}),
    "l2_mean_abs": ({"objective": "l2"},
                    {"octaves": 1, "steps": 3, "jitter": 3, "tile_size": 32,
                     "normalisation": "mean_abs", "step_size": 4.0}),
}
LAYERS = {"c1": 1.0, "deep:3": 0.5}


def tiny_model_file(folder: Path) -> str:
    """A two-convolution model with seeded weights, saved as a .keras file in `folder`."""
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="deep")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(11)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    path = Path(folder) / "tiny.keras"
    model.save(path)
    return str(path)


def frame() -> np.ndarray:
    """A 40x56 frame of smooth seeded noise, float32 0..255."""
    rng = np.random.default_rng(3)
    coarse = rng.uniform(0, 255, (10, 14, 3)).astype(np.float32)
    return np.kron(coarse, np.ones((4, 4, 1), np.float32))


def variants() -> dict[str, dict]:
    """The engine variants of the active backend: name -> Dreamer options."""
    import keras

    if keras.backend.backend() == "jax":
        return {"jax": {}, "jax_batched": {"tile_batch": 2}}
    return {"tf": {"xla": False}, "tf_xla": {"xla": True}, "tf_xla_batched": {"xla": True, "tile_batch": 2}}


def dream_all(model_file: str) -> dict[str, np.ndarray]:
    """Every case under every variant of the active backend: "variant/case" -> frame."""
    from animator.engine.dream import Dreamer

    frames = {}
    for variant, options in variants().items():
        for case, (extra, settings) in CASES.items():
            dreamer = Dreamer(model=model_file, layers=LAYERS, **options, **extra)
            frames[f"{variant}/{case}"] = dreamer.dream(frame(), seed=7, **settings)
    return frames


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        np.savez(sys.argv[1], **dream_all(tiny_model_file(Path(folder))))
