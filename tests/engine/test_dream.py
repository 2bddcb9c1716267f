"""The dream engine: octaves, tiling, objective, determinism, models and their errors."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from animator.engine import models
from animator.engine.dream import Dreamer, DreamSettings, octave_sizes
from animator.settings.errors import ConfigError, ModelError


@pytest.fixture(scope="module")
def hed():
    return Dreamer(model="vgg16-hed", layers={"block3_conv3": 1.0, "block4_conv1": 0.5})


def pixel_model_file(tmp_path_factory) -> str:
    """A tiny fully convolutional model whose 1x1 convolutions see one pixel at a time."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 1, activation="relu", name="mix")(inputs)
    x = keras.layers.Conv2D(4, 1, name="head")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path_factory.mktemp("models") / "pixels.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def pixel_model(tmp_path_factory) -> str:
    return pixel_model_file(tmp_path_factory)


def test_a_model_file_with_a_fixed_input_size_dreams_any_frame_size(tmp_path, photo):
    # Saved for 224x224 classification (convolutions, pooling, a Dense head): the feature model
    # up to a convolution must take the 64x96 photo and its octaves all the same.
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c2")(x)
    x = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, x).save(tmp_path / "fixed.keras")
    dreamer = Dreamer(model=str(tmp_path / "fixed.keras"), layers={"c2": 1.0})
    dreamed, losses = dreamer.dream_frame(photo, DreamSettings(octaves=2, steps=4, jitter=2),
                                          np.random.default_rng(0))
    assert tuple(dreamed.shape) == photo.shape
    assert losses[-1] > losses[0]


def test_objective_rises_over_the_steps(hed, photo):
    settings = DreamSettings(octaves=1, steps=8, jitter=4)
    dreamed, losses = hed.dream_frame(photo, settings, np.random.default_rng(0))
    assert len(losses) == 8
    assert losses[-1] > losses[0] * 1.2
    assert hed.loss(keras.ops.convert_to_numpy(dreamed)) > hed.loss(photo) * 1.2


def test_dream_changes_pixels_within_range(hed, photo):
    out = hed.dream(photo, octaves=2, steps=3)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 255.0
    assert np.abs(out - photo).mean() > 1.0


def test_octave_sizes_follow_the_scale():
    assert octave_sizes(100, 200, 3, 2.0) == [(25, 50), (50, 100), (100, 200)]
    assert octave_sizes(64, 96, 1, 1.4) == [(64, 96)]
    sizes = octave_sizes(512, 512, 4, 1.4)
    assert sizes[-1] == (512, 512)
    for small, big in zip(sizes, sizes[1:]):
        assert big[0] / small[0] == pytest.approx(1.4, abs=0.02)


def test_octaves_dream_at_each_size(hed, photo):
    seen = []
    original = hed._octave

    def record(image, *args):
        seen.append(tuple(image.shape[:2]))
        return original(image, *args)

    hed._octave = record
    try:
        hed.dream(photo, octaves=3, octave_scale=1.25, steps=1)
    finally:
        hed._octave = original
    assert seen == octave_sizes(64, 96, 3, 1.25) == [(41, 61), (51, 77), (64, 96)]


def test_tiled_and_untiled_gradients_agree_on_one_tile(hed, photo):
    whole = hed.dream(photo, octaves=1, steps=3, tile_size=512, seed=5)
    one_tile = hed.dream(photo, octaves=1, steps=3, tile_size=96, seed=5)
    np.testing.assert_allclose(whole, one_tile, atol=1e-3)


def test_tiles_cover_the_frame_exactly(pixel_model, photo):
    # A model that sees one pixel at a time has the same gradient direction tiled or whole:
    # four equal tiles must give the untiled result, so every tile lands where it belongs.
    dreamer = Dreamer(model=pixel_model, layers={"head": 1.0}, objective="l2")
    frame = photo[:64, :64]
    whole = dreamer.dream(frame, octaves=1, steps=1, step_size=8, tile_size=64, jitter=7, seed=1)
    tiled = dreamer.dream(frame, octaves=1, steps=1, step_size=8, tile_size=32, jitter=7, seed=1)
    assert np.abs(whole - frame).mean() > 0.5
    np.testing.assert_allclose(whole, tiled, atol=1e-3)


def test_a_large_frame_dreams_in_tiles(pixel_model):
    dreamer = Dreamer(model=pixel_model, layers={"mix": 1.0})
    frame = np.random.default_rng(0).uniform(0, 255, (2048, 2048, 3)).astype(np.float32)
    out = dreamer.dream(frame, octaves=2, steps=2, tile_size=512)
    assert out.shape == (2048, 2048, 3)
    assert np.abs(out - frame).mean() > 0.5


def test_the_seed_makes_runs_identical(hed, photo):
    first = hed.dream(photo, octaves=2, steps=2, seed=3)
    again = hed.dream(photo, octaves=2, steps=2, seed=3)
    other = hed.dream(photo, octaves=2, steps=2, seed=4)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0


def test_max_loss_stops_the_ascent(hed, photo):
    free = hed.dream_frame(photo, DreamSettings(octaves=1, steps=5), np.random.default_rng(0))[1]
    cap = (free[0] + free[1]) / 2  # the first step passes, the second exceeds the cap
    capped = hed.dream(photo, octaves=1, steps=5, max_loss=cap, seed=0)
    one_step = hed.dream(photo, octaves=1, steps=1, seed=0)
    np.testing.assert_array_equal(capped, one_step)
    assert np.abs(one_step - photo).max() > 0


@pytest.mark.parametrize("name", models.names())
def test_each_model_builds_with_its_default_layers(name):
    weights = "bundled" if name == "vgg16-hed" else "none"
    dreamer = Dreamer(model=name, weights=weights)
    assert dreamer.objective.layers == list(models.ZOO[name].default_layers)
    size = max(96, 2 * models.ZOO[name].min_size)
    frame = np.full((size, size, 3), 128.0, np.float32)
    assert np.isfinite(dreamer.loss(frame))


def tiny_custom_model() -> keras.Model:
    """Two 1x1 convolutions on raw pixels: a model the zoo knows no default layers for."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 1, activation="relu", name="mix")(inputs)
    x = keras.layers.Conv2D(4, 1, name="head")(x)
    x = keras.layers.Conv2D(4, 1, name="tail")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_a_custom_model_with_named_layers_needs_no_default_layers(monkeypatch, photo):
    def no_defaults(model, backbone):
        raise ModelError("model has no default feature layers")

    monkeypatch.setattr(models, "default_layers", no_defaults)
    dreamer = Dreamer(model=tiny_custom_model(), layers={"head": 1.0})
    assert dreamer.objective.layers == ["head"]
    assert np.isfinite(dreamer.loss(photo))
    with pytest.raises(ModelError, match="no default feature layers"):
        Dreamer(model=tiny_custom_model())


def test_a_custom_model_without_named_layers_dreams_its_default_or_says_why():
    assert Dreamer(model=tiny_custom_model()).objective.layers == ["head"]
    inputs = keras.Input((None, None, 3))
    flat = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs), name="flat")
    with pytest.raises(ModelError) as error:
        Dreamer(model=flat)
    assert str(error.value) == "model 'flat' has no feature-map layers to dream with"


def test_a_sequential_models_first_convolution_can_be_dreamed(photo):
    # A Sequential model lists no input layer: its first layer is a feature map like the others.
    model = keras.Sequential([keras.Input((None, None, 3)),
                              keras.layers.Conv2D(4, 3, padding="same", name="first"),
                              keras.layers.Conv2D(4, 3, padding="same", name="second")])
    assert [name for name, _ in models.dreamable_layers(model)] == ["first", "second"]
    dreamer = Dreamer(model=model, layers={"first": 1.0})
    image = photo[:48, :48]
    dreamed = dreamer.dream(image, octaves=1, steps=3, step_size=2.0, jitter=0)
    assert dreamer.loss(dreamed) > dreamer.loss(image)


def test_mean_and_channel_objectives(hed, photo):
    whole = Dreamer(model="vgg16-hed", layers="block3_conv3")
    channel = Dreamer(model="vgg16-hed", layers="block3_conv3:7")
    acts = keras.ops.convert_to_numpy(
        models.feature_model("vgg16-hed", models.build_backbone("vgg16-hed"),
                             ["block3_conv3"])(photo[None]))
    assert whole.loss(photo) == pytest.approx(acts.mean(), rel=1e-4)
    assert channel.loss(photo) == pytest.approx(acts[..., 7].mean(), rel=1e-4)


def test_unknown_layer_lists_close_names():
    with pytest.raises(ModelError, match=r"no layer 'block4_conv33'.*block4_conv3"):
        Dreamer(model="vgg16-hed", layers="block4_conv33")


def test_unknown_channel_is_refused():
    with pytest.raises(ModelError, match="256 channels"):
        Dreamer(model="vgg16-hed", layers="block3_conv3:300")


def test_unknown_model_lists_close_names():
    with pytest.raises(ModelError, match=r"unknown model 'incepton_v3'.*inception_v3"):
        Dreamer(model="incepton_v3")


def test_imagenet_offline_names_the_alternatives(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    models.build_backbone.cache_clear()
    with pytest.raises(ModelError, match=r"imagenet weights of vgg19.*vgg16-hed.*weights: PATH"):
        models.build_backbone("vgg19", "imagenet")


def test_a_weights_file_that_does_not_match(tmp_path):
    small = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)])
    path = tmp_path / "other.weights.h5"
    small.save_weights(path)
    with pytest.raises(ModelError, match="does not match model vgg19"):
        models.build_backbone("vgg19", str(path))


def test_too_small_for_the_octaves(hed):
    with pytest.raises(ConfigError, match=r"too small for 4 octaves.*octaves <= 2"):
        hed.dream(np.zeros((48, 48, 3), np.float32), octaves=4, octave_scale=1.4)


def test_smaller_than_the_model_asks_for_a_larger_size(hed):
    with pytest.raises(ConfigError, match="use a size whose short side is at least 32 px"):
        hed.dream(np.zeros((24, 40, 3), np.float32), octaves=1)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="octave_scale: must be > 1"):
        DreamSettings(octave_scale=0.8)


JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from animator.engine.dream import Dreamer, DreamSettings
    assert keras.backend.backend() == "jax"
    frame = np.asarray(np.load(sys.argv[1]), np.float32)
    hed = Dreamer(model="vgg16-hed", layers={"block3_conv3": 1.0})
    out, losses = hed.dream_frame(frame, DreamSettings(octaves=2, steps=4, jitter=4),
                                  np.random.default_rng(0))
    again = hed.dream(frame, octaves=2, steps=4, jitter=4, seed=0)
    one_tile = hed.dream(frame, octaves=1, steps=2, tile_size=96, seed=2)
    whole = hed.dream(frame, octaves=1, steps=2, tile_size=512, seed=2)
    four_tiles = hed.dream(frame, octaves=1, steps=2, tile_size=48, seed=2)
    hed._tile_batch = 4  # the four 32x48 tiles in one call, as on a GPU
    batched = hed.dream(frame, octaves=1, steps=2, tile_size=48, seed=2)
    print(json.dumps({"losses": [float(x) for x in losses],
                      "same_seed": bool(np.array_equal(np.asarray(out), again)),
                      "tiles_agree": float(np.abs(one_tile - whole).max()),
                      "batched_agree": float(np.abs(batched - four_tiles).max()),
                      "tiles_matter": float(np.abs(four_tiles - whole).max()),
                      "changed": float(np.abs(again - frame).mean())}))
    """
)


def test_the_jax_backend_dreams(tmp_path, photo):
    np.save(tmp_path / "frame.npy", photo)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "frame.npy")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    first_octave = result["losses"][:4]
    assert first_octave[-1] > first_octave[0]
    assert result["same_seed"]
    assert result["tiles_agree"] < 1e-3
    assert result["batched_agree"] < 0.05 < result["tiles_matter"]
    assert result["changed"] > 1.0


def test_auto_tiles_only_when_the_frame_does_not_fit():
    from animator.engine.backend import auto_tile_size

    assert auto_tile_size(1080, 1920, 1000.0, 8 << 30) == 1920  # fits: one tile, no seams
    side = auto_tile_size(2160, 3840, 1000.0, 1 << 30)
    assert side % 32 == 0 and side * side * 3000 <= 1 << 30 < (side + 32) ** 2 * 3000
    assert auto_tile_size(4000, 4000, 1e6, 1 << 20) == 128  # never below 128


def test_the_dreamer_picks_tiles_from_its_memory_budget(hed, photo):
    assert 500 < hed.bytes_per_pixel < 5000  # VGG16 to block4_conv1: about 1.6 KB per pixel
    settings = DreamSettings()
    assert hed.tile_size(64, 96, settings) == 96
    saved = hed.memory_budget
    hed.memory_budget = int(hed.bytes_per_pixel * 3 * 160 * 160)
    try:
        assert hed.tile_size(1024, 1024, settings) == 160
        assert hed.tile_size(64, 96, settings) == 96
        assert hed.tile_size(1024, 1024, DreamSettings(tile_size=256)) == 256
    finally:
        hed.memory_budget = saved


def test_the_xla_octave_matches_the_plain_one(photo):
    # XLA is the default on a GPU; here it must give the plain tf.function's pixels, tiles
    # included, and the same again with the tiles batched into one call (as on a GPU).
    plain = Dreamer(model="vgg16-hed", layers="block3_conv3", xla=False)
    xla = Dreamer(model="vgg16-hed", layers="block3_conv3", xla=True)
    settings = DreamSettings(octaves=2, steps=2, tile_size=48)
    reference = plain.dream(photo, settings, seed=2)
    np.testing.assert_allclose(xla.dream(photo, settings, seed=2), reference, atol=0.05)
    xla._tile_batch = 4
    assert xla.tile_batch(64, 96, 48) == 4
    np.testing.assert_allclose(xla.dream(photo, settings, seed=2), reference, atol=0.05)


def test_tile_groups_cover_the_frame_once_in_batches_of_one_shape():
    from animator.engine.backend import tile_groups

    groups = tile_groups(100, 70, 32, batch=3)  # rows 4 x 25 px; columns 23, 24, 23 px
    assert [len(g) for g in groups] == [3, 3, 2, 3, 1]
    covered = np.zeros((100, 70), int)
    for group in groups:
        assert len({(y1 - y0, x1 - x0) for y0, y1, x0, x1 in group}) == 1
        for y0, y1, x0, x1 in group:
            covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()
    assert [len(g) for g in tile_groups(100, 70, 32)] == [1] * 12  # batch 1: a tile per call


def test_tiles_are_batched_from_the_memory_budget_on_a_gpu_only(hed):
    from animator.engine.backend import tile_batch

    assert tile_batch(256, 1000.0, 10 * 3 * 1000 * 256 * 256) == 10
    assert tile_batch(256, 1000.0, 1) == 1
    assert tile_batch(64, 1000.0, 1 << 40) == 16  # capped
    assert hed.tile_batch(1024, 1024, 256) == 1  # this CPU: one tile per call
    saved = hed.accelerator, hed.memory_budget
    hed.accelerator = True
    hed.memory_budget = int(hed.bytes_per_pixel * 3 * 256 * 256 * 5)
    try:
        assert hed.tile_batch(1024, 1024, 256) == 5
        assert hed.tile_batch(200, 250, 256) == 1  # a whole frame is one call anyway
    finally:
        hed.accelerator, hed.memory_budget = saved


@pytest.mark.parametrize("precision", ["float16"])  # bfloat16: tests/test_precision.py
def test_half_precision_keeps_the_look(photo, precision):
    # Half-precision compute (float32 frames and weights) must dream the same picture: the
    # same objective rise and pixels within a few grey levels of the float32 dream.
    full = Dreamer(model="vgg16-hed", layers="block3_conv3")
    half = Dreamer(model="vgg16-hed", layers="block3_conv3", precision=precision)
    settings = DreamSettings(octaves=1, steps=3, jitter=0)
    reference = full.dream(photo, settings, seed=0)
    dreamed = half.dream(photo, settings, seed=0)
    assert dreamed.dtype == np.float32
    assert np.abs(dreamed - reference).mean() < 0.1 * np.abs(reference - photo).mean()
    assert half.loss(dreamed) > half.loss(photo) * 1.2


def test_the_tensorflow_gpu_budget_reads_the_cards_size_from_nvidia_smi():
    import subprocess

    from animator.engine.backend import nvidia_total_bytes

    def smi(output, code=0):
        return lambda command, **kwargs: subprocess.CompletedProcess(command, code, output, "")

    assert nvidia_total_bytes(smi("81559\n")) == 81559 << 20  # an H100: MiB to bytes
    assert nvidia_total_bytes(smi("81559\n143771\n")) == 81559 << 20  # the first card
    assert nvidia_total_bytes(smi("", code=9)) is None
    assert nvidia_total_bytes(smi("[N/A]\n")) is None


def test_one_trace_dreams_every_octave_and_every_frame(pixel_model, photo):
    # Whole frames (no tiling): the TensorFlow octave's signature leaves the size free, so three
    # octave sizes and a second frame of another size are dreamed by the first trace.
    dreamer = Dreamer(model=pixel_model, layers="mix")
    settings = DreamSettings(octaves=3, octave_scale=1.3, steps=2)
    rng = np.random.default_rng
    dreamer.dream_frame(photo, settings, rng(0))
    assert dreamer._octave.traces == 1
    dreamer.dream_frame(photo[:100, :120], settings, rng(1))
    assert dreamer._octave.traces == 1
    # a tiled frame's layout depends on its size: a trace of its own, once
    tiled = dataclasses.replace(settings, octaves=1, tile_size=64)
    dreamer.dream_frame(photo, tiled, rng(0))
    dreamer.dream_frame(photo, tiled, rng(1))
    assert dreamer._octave.traces == 2


def test_the_whole_frame_step_dreams_what_one_tile_does(hed, photo):
    # The size-free whole-frame program and the tile layout of a single tile: the same step.
    from keras import ops

    from animator.engine.ascent import WHOLE, Layout

    tensor = functools.partial(ops.convert_to_tensor, dtype="float32")
    shifts = ops.convert_to_tensor(np.array([[3, -5], [-7, 2]]), "int32")
    args = (tensor(photo), shifts, tensor(1.5), tensor(np.inf), tensor(hed.objective.weights()), {})
    whole, whole_losses = hed._octave.run(*args, Layout(WHOLE))
    one_tile, tile_losses = hed._octave.run(*args, Layout(max(photo.shape) + 1))
    np.testing.assert_allclose(ops.convert_to_numpy(whole), ops.convert_to_numpy(one_tile), atol=1e-3)
    np.testing.assert_allclose(ops.convert_to_numpy(whole_losses), ops.convert_to_numpy(tile_losses),
                               rtol=1e-5)
    assert np.abs(ops.convert_to_numpy(whole) - photo).mean() > 0.5  # it dreamed
