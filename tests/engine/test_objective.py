"""Objectives as weighted terms: guide, total variation, stay near the input, schedules."""

from __future__ import annotations

import engine_cases
import keras
import numpy as np
import pytest
from conftest import skimage_photo
from helpers import TESTS

from animator.engine import objective
from animator.engine.dream import Dreamer, DreamSettings
from animator.settings.errors import ConfigError, InputError

SETTINGS = DreamSettings(octaves=1, steps=6, jitter=4)


def total_variation(pixels) -> float:
    return float(np.abs(np.diff(pixels, axis=0)).mean() + np.abs(np.diff(pixels, axis=1)).mean())


def dream(photo, items=(), **options):
    dreamer = Dreamer(model="vgg16-hed", layers={"block3_conv3": 1.0}, objective=list(items), **options)
    return dreamer.dream(photo, SETTINGS, seed=0)


def mean_feature(pixels, layer="block3_conv3") -> np.ndarray:
    from animator.engine import models

    model = models.feature_model("vgg16-hed", models.build_backbone("vgg16-hed"), [layer])
    features = keras.ops.convert_to_numpy(model(np.asarray(pixels, np.float32)[None]))
    return features.reshape(-1, features.shape[-1]).mean(axis=0)


def cosine(a, b) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_a_guide_pulls_the_features_toward_the_guides(photo):
    from PIL import Image

    guide_path = skimage_photo("coffee")
    with Image.open(guide_path) as image:
        guide = mean_feature(np.asarray(image.convert("RGB").resize((96, 64)), np.float32))
    guided = Dreamer(model="vgg16-hed", objective=[{"guide": str(guide_path), "layers": ["block3_conv3"]}])
    plain = Dreamer(model="vgg16-hed", layers={"block3_conv3": 1.0})

    def similarity(dreamer, steps):
        settings = DreamSettings(octaves=1, steps=steps, jitter=4)
        return cosine(mean_feature(dreamer.dream(photo, settings, seed=0)), guide)

    before, early, late = (similarity(guided, steps) for steps in (0, 2, 4))
    assert before < early < late
    assert late - before > 0.005 > similarity(plain, 4) - before


def test_total_variation_smooths_the_dream(photo):
    plain, smooth = dream(photo), dream(photo, [{"tv": 1.0}])
    assert total_variation(smooth) < 0.8 * total_variation(plain)


def test_stay_near_keeps_the_dream_nearer_the_input(photo):
    plain, near = dream(photo), dream(photo, [{"stay_near": 1.0}])
    assert np.square(near - photo).mean() < 0.8 * np.square(plain - photo).mean()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """engine_cases' tiny model, with tanh activations: smooth, for finite differences."""
    model = keras.models.load_model(engine_cases.tiny_model_file(tmp_path_factory.mktemp("tiny")))
    for layer in model.layers:
        if hasattr(layer, "activation"):
            layer.activation = keras.activations.tanh
    return model


@pytest.mark.parametrize("items", [
    [{"layers": {"c1": 1.0}}],
    [{"layers": {"deep:2": 1.0}, "reduction": "l2"}],
    [{"guide": "GUIDE", "layers": ["deep"]}],
    [{"layers": {"c1": 0.0}}, {"tv": 1.0}],
    [{"layers": {"c1": 0.0}}, {"stay_near": 1.0}],
])
def test_each_terms_gradient_matches_a_finite_difference(tiny, tmp_path, items):
    import tensorflow as tf
    from PIL import Image

    rng = np.random.default_rng(1)
    guide = tmp_path / "guide.png"
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), np.uint8)).save(guide)
    items = [{**item, "guide": str(guide)} if "guide" in item else item for item in items]
    dreamer = Dreamer(model=tiny, objective=items)
    # float64 pixels (the model computes in float32): the image terms' differences stay exact
    image = tf.constant(rng.uniform(0, 255, (16, 20, 3)), tf.float64)
    base = tf.constant(rng.uniform(0, 255, (16, 20, 3)), tf.float64)
    weights, inputs = dreamer.objective.weights(), dreamer.objective_inputs(base)

    def value(x):
        outputs = dreamer.model(x[None], training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        total = tf.cast(dreamer.objective.tile_value(outputs, weights, inputs), tf.float64)
        if dreamer.objective.has_image_terms:
            total += dreamer.objective.image_value(x, weights.astype(np.float64), inputs)
        return total

    with tf.GradientTape() as tape:
        tape.watch(image)
        loss = value(image)
    gradient = tape.gradient(loss, image)
    direction = tf.constant(rng.choice([-1.0, 1.0], image.shape), tf.float64)
    eps = 0.01
    numeric = (float(value(image + eps * direction)) - float(value(image - eps * direction))) / (2 * eps)
    analytic = float(tf.reduce_sum(gradient * direction))
    assert abs(analytic) > 0
    assert numeric == pytest.approx(analytic, rel=0.03)


def test_a_scheduled_weight_changes_the_frames_without_a_new_trace(photo):
    dreamer = Dreamer(model="vgg16-hed", layers={"block3_conv3": 1.0},
                      objective=[{"tv": {0: 0.0, 1: 2.0}}])
    rng = np.random.default_rng
    first = dreamer.dream_frame(photo, DreamSettings(octaves=1, steps=3, frame=0), rng(0))[0]
    traces = dreamer._octave.traces
    second = dreamer.dream_frame(photo, DreamSettings(octaves=1, steps=3, frame=1), rng(0))[0]
    assert traces == dreamer._octave.traces == 1
    first, second = keras.ops.convert_to_numpy(first), keras.ops.convert_to_numpy(second)
    assert total_variation(second) < 0.9 * total_variation(first)


def test_a_keras_model_dreams_as_it_is(tiny):
    dreamer = Dreamer(model=tiny, layers={"c1": 1.0})
    frame = engine_cases.frame()
    dreamed, losses = dreamer.dream_frame(frame, DreamSettings(octaves=1, steps=4, jitter=2),
                                          np.random.default_rng(0))
    assert losses[-1] > losses[0]


def test_objective_items_are_checked_with_their_path():
    with pytest.raises(ConfigError, match=r"dream.objective\[1\]: expected one of"):
        objective.parse_items([{"tv": 1}, {"blur": 2}])
    with pytest.raises(ConfigError, match=r"dream.objective\[0\].tv: "):
        objective.parse_items([{"tv": "sin("}])
    with pytest.raises(ConfigError, match=r"unknown key 'weight' for a tv term"):
        objective.parse_items([{"tv": 1, "weight": 2}])


def test_a_missing_guide_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="nothing.png"):
        Dreamer(model="vgg16-hed", layers="block3_conv3", guide=str(tmp_path / "nothing.png"))


def test_the_cli_dreams_with_a_guide_and_refuses_a_missing_one(tmp_path, photo, capsys):
    from PIL import Image

    from animator.cli import main

    source, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(photo.astype(np.uint8)).save(source)
    base = ["dream", str(source), "-o", str(out), "--octaves", "1", "--steps", "2",
            "--model", "vgg16-hed", "--layers", "block3_conv3"]
    assert main([*base, "--guide", str(skimage_photo("coffee"))]) == 0, capsys.readouterr().err
    assert np.abs(np.asarray(Image.open(out), np.float32) - photo).mean() > 1.0
    capsys.readouterr()
    assert main([*base, "--force", "--guide", str(tmp_path / "nothing.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing.png" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_the_config_takes_an_objective_list_and_names_a_bad_term(tmp_path):
    from animator.config import from_mapping

    data = {"input": "in.png", "dream": {"layers": {"block3_conv3": "0:(1), 10:(0.5)"},
                                         "guide": "g.jpg",
                                         "objective": [{"tv": 0.1}, {"stay_near": "t / 10"}]}}
    config = from_mapping(data, tmp_path)
    assert config.dream_settings(7).frame == 7
    bad = {**data, "dream": {**data["dream"], "objective": [{"tv": 0.1}, {"stay_near": "sin("}]}}
    with pytest.raises(ConfigError, match=r"dream.objective\[1\].stay_near: "):
        from_mapping(bad, tmp_path)


JAX_TERMS = """
import json, sys
import numpy as np
import engine_cases
from pathlib import Path
from animator.engine.dream import Dreamer, DreamSettings
model = engine_cases.tiny_model_file(Path(sys.argv[1]))
items = [{"guide": sys.argv[2]}, {"tv": {0: 0, 1: 1}}, {"stay_near": 0.5}]
dreamer = Dreamer(model=model, layers={"c1": 1.0}, objective=items, tile_batch=2)
frame = engine_cases.frame()
settings = DreamSettings(octaves=2, octave_scale=1.3, steps=3, tile_size=32)
first = dreamer.dream(frame, settings, seed=1)
traces = [dreamer._octave.traces]
second = dreamer.dream(frame, DreamSettings(**{**settings.__dict__, "frame": 1}), seed=1)
traces.append(dreamer._octave.traces)
dreamer.dream(frame, settings, seed=1)
traces.append(dreamer._octave.traces)
plain = Dreamer(model=model, layers={"c1": 1.0}).dream(frame, settings, seed=1)
tv = lambda x: float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())
print(json.dumps({"traces": traces, "changed": float(np.abs(first - second).max()),
                  "tv": [tv(first), tv(second)], "guided": float(np.abs(first - plain).max())}))
"""


def test_the_terms_dream_on_jax_with_one_trace_per_octave_size(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS / "engine"), *sys.path]))
    done = subprocess.run([sys.executable, "-c", JAX_TERMS, str(tmp_path), str(skimage_photo("coffee"))],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Two octave sizes: the first frame in runs of 2 steps and 1 (four programs), the next ones
    # whole (two more); the scheduled tv weight, frame 1's then frame 0's, recompiles nothing.
    assert result["traces"] == [4, 6, 6]
    assert result["changed"] > 1.0 and result["tv"][1] < result["tv"][0]
    assert result["guided"] > 1.0
