"""JAX's persistent compilation cache in the user's cache folder.

XLA compiles each octave size of a model once per process: tens of seconds on a CPU before the
first frame. With the cache, the compiled programs are kept on disk, so a second render of the
same sizes (and model, layers and JAX version) loads them instead of compiling.

The folder is `$ANIMATOR_JAX_CACHE` if set (`off` turns the cache off), else
`$XDG_CACHE_HOME/deepdream-animator/jax` (`~/.cache/...` by default). A cache folder JAX was
already given (`JAX_COMPILATION_CACHE_DIR`, or `jax.config`) is kept. TensorFlow's traced
octaves have their own cache (`animator.engine.trace_cache`), in a folder beside this one.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ANIMATOR_JAX_CACHE"
OFF = ("", "0", "off", "none")


def cache_folder(environ=None, variable: str = ENV_VAR, name: str = "jax") -> Path | None:
    """Where compiled programs go: the folder environment variable `variable` names (None if
    it says off), else `name` in the user's cache folder."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(variable)
    if chosen is not None:
        return None if chosen.strip().lower() in OFF else Path(chosen).expanduser()
    return user_cache_folder(environ) / name


def user_cache_folder(environ=None) -> Path:
    """The project's folder in the user's cache: `$XDG_CACHE_HOME/deepdream-animator`, by default
    `~/.cache/deepdream-animator` (JAX's programs, TensorFlow's traces, this machine's precision
    measurements)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepdream-animator"


def use_jax_cache() -> Path | None:
    """Point JAX's persistent compilation cache at `cache_folder()`; returns the folder in use.

    Call it before the model is built (building runs small compiled programs too): every
    program is cached, however quick to compile, so a warm start compiles nothing. Does nothing
    on another backend, and keeps a folder JAX was already given. A folder that cannot be
    created leaves the cache off: it only saves time.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    given = jax.config.jax_compilation_cache_dir
    if given:
        return Path(given)
    folder = cache_folder()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    compilation_cache.reset_cache()  # JAX decides once, at its first compile, whether to cache
    return folder
