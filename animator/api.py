"""The Python API: load a config, render it, or iterate over its dreamed frames.

    import animator
    result = animator.render("configs/zoom.yaml", frames=12, dream__steps=4)
    for frame in animator.frames("configs/zoom.yaml", force=True):
        ...  # uint8 H×W×3 RGB numpy arrays, as each is dreamed

Each call takes a `Config`, the path of a YAML file, or a mapping shaped like one, plus overrides
as keyword arguments: a top-level key (`frames=12`), a key path written with `__` or `.`
(`dream__steps=4`, `**{"dream.steps": 4}`), where a number indexes a list as in `--set`
(`transforms__0__zoom__factor=1.1`), or a section merged into the file's (`dream={"steps": 4}`);
`output="x.gif"` names the output file (relative to the working folder, like any Python path).
Everything runs the same frame loop as `animator render` (`animator.renderer.loop`): the same frames,
the same frames folder, the same resume points.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from animator import config as config_module
from animator.config import Config
from animator.settings.errors import ConfigError

ConfigLike = Config | str | Path | Mapping[str, Any]


def load_config(config: ConfigLike, **overrides: Any) -> Config:
    """A checked `Config` from a `Config`, a YAML path or a mapping, with `overrides` applied.

    An override's key is a top-level key or a key path written with `__` or `.`, where a number
    indexes a list (`transforms__0__zoom__factor=1.1`, as `--set transforms.0.zoom.factor=1.1`);
    a mapping merges into the section it names. Raises `ConfigError` naming every bad key path
    at once (`dream.steps: ...`), or the override whose path cannot be followed (a list index
    out of range, a key under a value that is not a section).
    """
    if isinstance(config, Config):
        if not overrides:
            return config
        data = config.animation.model_dump(mode="json", exclude_unset=True)
        base_dir, source = config.base_dir, config.source
    elif isinstance(config, Mapping):
        data, base_dir, source = copy.deepcopy(dict(config)), Path.cwd(), "animation"
    else:
        data, base_dir, source = config_module.read(config), Path(config).parent, str(config)
    for key, value in overrides.items():
        _override(data, key, value)
    return config_module.from_mapping(data, base_dir, source=source)


def _override(data: dict, key: str, value: Any) -> None:
    """Set `key` (a path: `dream__steps`, `dream.steps`, `transforms__0__zoom__factor`) in `data`
    with `config.set_key`, as `--set` does; a mapping merges into a section."""
    if key == "output" and isinstance(value, (str, Path)):
        key, value = "output.path", str(Path(value).absolute())
    path = key.replace("__", ".")
    if isinstance(value, Mapping) and isinstance(config_module.get_key(data, path), dict):
        for inner, item in value.items():
            _override(data, f"{path}.{inner}", item)
        return
    try:
        config_module.set_key(data, path, copy.deepcopy(value))
    except ConfigError as error:
        raise ConfigError(f"{key}: {error}") from None


def render(
    config: ConfigLike,
    *,
    resume: bool = False,
    force: bool = False,
    preview: bool | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    stop: threading.Event | None = None,
    note: Callable[[str], None] | None = None,
    **overrides: Any,
):
    """Render an animation to its frames folder and its GIF or MP4; returns a `RenderResult`
    (frames, started_at, output path, frames_dir, seconds).

    `resume=True` continues an interrupted render of the same config, `force=True` starts over.
    In Jupyter (`preview=None`: whenever a notebook kernel runs this) the cell shows the latest
    frame with progress and ETA while the render runs, then the GIF or MP4 itself.
    `progress(done, total, started_at)` is called after each frame; setting `stop` ends the
    render after the current frame (what is done is kept and assembled, and `Interrupted` is
    raised); `note(text)` receives remarks (default: issued as warnings).
    """
    from animator.renderer import loop as animate

    config = load_config(config, **overrides)
    show = _in_notebook() if preview is None else preview
    live = None
    if show:
        from animator.notebook import LivePreview

        live = LivePreview(config)
    result = animate.render(config, resume=resume, force=force, progress=progress, stop=stop,
                            note=note or _warn, on_frame=None if live is None else live.update)
    if live is not None:
        live.finish(result)
    return result


def frames(
    config: ConfigLike,
    *,
    resume: bool = False,
    force: bool = False,
    note: Callable[[str], None] | None = None,
    dreamer: Callable | None = None,
    **overrides: Any,
) -> Iterator[np.ndarray]:
    """Dream an animation, yielding each frame (uint8 H×W×3 RGB, the pixels of its PNG).

    The frames are the ones `render` makes, written to the same frames folder: stopping early
    (`break`) keeps every frame yielded so far, and `frames(..., resume=True)` then yields the
    rest. Iterating to the end also writes the GIF or MP4. Arguments as for `render`; `dreamer`
    as for `animate.run` (what builds the Dreamer, for a caller that reuses one).
    """
    from animator.renderer import loop as animate

    config = load_config(config, **overrides)
    steps = animate.run(config, resume=resume, force=force, note=note or _warn, dreamer=dreamer)
    with contextlib.closing(steps):
        for made in steps:
            yield made.pixels.result()


def _warn(text: str) -> None:
    warnings.warn(text, stacklevel=4)


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython already imported and running as a kernel)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")
